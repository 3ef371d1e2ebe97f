"""How an int8 file is made: the settings conversion, the per-layer report and the manifest
share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Int8Settings:
    per_channel: bool = True  # weight scales per output channel (False: one per tensor)
    float_io: bool = False  # TFLite: keep float32 input and output around the int8 graph
    # the format's calibration method (edgeconv.formats.Format.calibration_methods)
    method: str = "minmax"

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Int8Settings:
        """The settings a manifest artifact's `options` recorded (older files: defaults)."""
        calibration = options.get("calibration") or {}
        return cls(per_channel=options.get("per_channel", True),
                   float_io=bool(options.get("float_io")),
                   method=calibration.get("method", "minmax"))
