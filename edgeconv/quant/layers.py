"""Per-layer int8 error, one dispatch for every format: `layer_errors(fmt, source, int8)`
calls the function the format table names (edgeconv.formats: `Format.layer_errors`).

Both users go through it: `edgeconv quant-report` (every layer, worst first) and export's
`--max-drop` search (`lossy_layers`: which layers to keep in float first). The float side
comes from a `FloatSource`: the export's conversion session while exporting, the export's
files (through its manifest) afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgeconv.errors import EdgeconvError
from edgeconv.formats import get_format, resolve
from edgeconv.quant.settings import Int8Settings

# A layer quantised with an SQNR above this is exact in practice (max pooling, reshape):
# keeping it float would cost size and gain nothing.
EXACT_SQNR_DB = 100.0


class FloatSource(Protocol):
    """What an int8 file is compared with, and how it was made."""

    origin: str  # where the float models come from, for messages
    calibration: np.ndarray  # the images the int8 file was calibrated on
    settings: Int8Settings

    def keras_model(self) -> Any:
        """The Keras float model (TFLite re-quantises it under TensorFlow's debugger)."""

    def float_file(self, fmt: str) -> bytes | None:
        """The fp32 file of format `fmt` (ONNX compares with it), None where there is none."""


@dataclass(frozen=True)
class LayerErrors:
    method: str  # how the figures were obtained
    # One row per quantised layer, worst first: name (the layer's output tensor), op, rmse,
    # rmse_per_scale (in int8 steps: 0.29 is pure rounding), sqnr_db, scale, and any
    # format-specific figures (ONNX: accumulated_sqnr_db).
    layers: list[dict[str, Any]] = field(default_factory=list)


def layer_errors(fmt: str, source: FloatSource, int8: bytes,
                 precision: str = "int8") -> LayerErrors:
    """Each quantised layer of the integer file `int8` (format `fmt`, made at `precision`:
    int8 or int16x8), worst SQNR first."""
    dotted = get_format(fmt).layer_errors
    if dotted is None:
        raise EdgeconvError(f"edgeconv has no per-layer int8 report for {fmt} files")
    found: LayerErrors = resolve(dotted)(source, int8, precision)
    return LayerErrors(found.method, sorted(found.layers, key=lambda row: row["sqnr_db"]))


def lossy_layers(fmt: str, source: FloatSource, int8: bytes) -> list[str]:
    """Quantised layers worst first by SQNR; exact ones (pooling, reshape) left out."""
    return [row["name"] for row in layer_errors(fmt, source, int8).layers
            if row["sqnr_db"] < EXACT_SQNR_DB]
