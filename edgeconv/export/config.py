"""What `edgeconv export` is asked to do, and what it did."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.data.user import PrepFlags
from edgeconv.formats import EXPORT_FORMATS
from edgeconv.manifest import Artifact
from edgeconv.quant.settings import Int8Settings


@dataclass(frozen=True)
class ExportConfig:
    target: str  # a zoo name, a training run or a model file (edgeconv.formats.SOURCE_KINDS)
    model_options: dict[str, Any] = field(default_factory=dict)  # given by the user
    # Precisions to make besides fp32, which is always made (edgeconv.formats.PRECISIONS);
    # each chosen format makes those of them it carries.
    precisions: frozenset[str] = frozenset()
    formats: tuple[str, ...] = EXPORT_FORMATS
    calibration_samples: int = 200
    calibration_method: str = "minmax"  # per format: edgeconv.formats.Format.calibration_methods
    per_tensor: bool = False
    float_io: bool = False
    out: Path | None = None
    dataset: str = "digits"  # used when export trains, or exports untrained weights
    data_dir: str | None = None
    seed: int = 0
    untrained: bool = False  # freshly initialised weights: for size and speed only
    max_drop: float | None = None  # int8 accuracy budget, points below float (test split)
    allow_float: bool = False  # the --max-drop search may keep layers float (after int16x8)
    # Test images each file is measured on (stratified, seeded); None: the whole split, or
    # UNTRAINED_EVAL_SAMPLES for untrained weights, whose accuracy means nothing.
    eval_samples: int | None = None
    # A user model file (edgeconv export PATH; edgeconv.formats.SOURCE_KINDS): its images are
    # `dataset` (a name, a folder or an .npz), calibrated on `calibration_data` when given.
    calibration_data: str | None = None
    prep: PrepFlags = field(default_factory=PrepFlags)  # --input-shape, --layout, --scale...
    custom_objects: str | None = None  # --custom-objects: a Python file of the user's
    measure_only: bool = False  # measure the file as it is, convert nothing (auto: .tflite)
    data_given: bool = True  # False: --data left at its default (a user model needs it)

    @property
    def int8_settings(self) -> Int8Settings:
        return Int8Settings(per_channel=not self.per_tensor, float_io=self.float_io,
                            method=self.calibration_method)


@dataclass(frozen=True)
class Refusal:
    """A file the export could not make or keep, and why (the other files still export).
    `stage`: "convert" (the converter refused), "measure" (the made file failed in its
    runtime; it was removed) or "budget" (the --max-drop search could not run)."""

    file: str
    stage: str
    reason: str

    def text(self) -> str:
        return {"convert": f"{self.file} not made: {self.reason}",
                "measure": f"{self.file} not kept: {self.reason}",
                "budget": f"{self.file}: --max-drop could not search ({self.reason})",
                }[self.stage]


@dataclass(frozen=True)
class ExportResult:
    run_dir: Path
    manifest: Path
    model: str
    trained: bool  # False: untrained weights (accuracy figures are meaningless)
    trained_now: bool  # True: export trained the run first
    float_accuracy: float | None  # None: the images have no labels, or no classifier
    artifacts: list[Artifact]
    notes: list[str]
    seconds: float
    budget_met: bool | None = None  # --max-drop: did every int8 file meet it (None: not set)
    refusals: list[Refusal] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"], data["manifest"] = str(self.run_dir), str(self.manifest)
        return data
