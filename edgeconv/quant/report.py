"""`edgeconv quant-report`: per-layer quantisation error of an export's int8 files, worst
layers first.

TFLite: TensorFlow's QuantizationDebugger re-runs the int8 conversion of the run's Keras
model with the export's settings and calibration images, and compares each quantised op's
output with the float op's on the same input. ONNX: the exported fp32 and int8 files
themselves, every activation before and after its QuantizeLinear/DequantizeLinear, and
against the float model's same tensor (onnxruntime's qdq_loss_debug). Both on the export's
calibration images, which are re-drawn exactly (same split, seed and count). Which tool
runs for which format is the format table's (edgeconv.quant.layers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv.errors import EdgeconvError
from edgeconv.formats import CALIBRATED, FLOAT
from edgeconv.manifest import MANIFEST, Artifact, Manifest, load_manifest
from edgeconv.quant.calibration import (
    CalibrationSet,
    check_calibration,
    check_input_quantization,
)
from edgeconv.quant.layers import layer_errors
from edgeconv.quant.settings import Int8Settings


@dataclass(frozen=True)
class ArtifactErrors:
    artifact: str
    format: str
    method: str  # how the figures were obtained
    layers: list[dict[str, Any]]  # worst first: name, op, rmse, rmse_per_scale, sqnr_db, ...
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QuantReport:
    directory: Path
    model: str
    calibration_samples: int
    warnings: list[str]  # calibration consistency
    artifacts: list[ArtifactErrors]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["directory"] = str(self.directory)
        return data


def quant_report(path: str | Path, *, data_dir: str | None = None) -> QuantReport:
    """The report for every int8 file of an export directory, or for one int8 file in it."""
    path = Path(path)
    if not path.exists():
        raise EdgeconvError(f"{path} does not exist")
    manifest = load_manifest(path if path.is_dir() else path.parent / MANIFEST)
    chosen = [a for a in manifest.artifacts if a.precision in CALIBRATED
              and (path.is_dir() or (manifest.directory / a.path).resolve() == path.resolve())]
    if not chosen:
        what = f"{path} is not an int8 file of" if path.is_file() else "no int8 file in"
        raise EdgeconvError(f"{what} the export in {manifest.directory}; export with --int8")
    data, calibration = _calibration_data(manifest, chosen[0], data_dir)
    preprocessing = data.preprocessing.to_dict()
    check = check_calibration(calibration.images, calibration.labels, data.train.x,
                              preprocessing, data.num_classes)
    reports = [_errors(manifest, artifact, calibration.images, preprocessing)
               for artifact in chosen]
    return QuantReport(directory=manifest.directory, model=manifest.model,
                       calibration_samples=len(calibration.images), warnings=check.warnings,
                       artifacts=reports)


def _calibration_data(manifest: Manifest, artifact: Artifact, data_dir: str | None
                      ) -> tuple[Any, CalibrationSet]:
    """The export's data and the calibration images `artifact` was made with, re-drawn."""
    from edgeconv.data.measured import load_measured

    dataset = {"name": manifest.dataset.name, "seed": manifest.dataset.seed,
               "user": manifest.dataset.user}
    data = load_measured(dataset, manifest.input.preprocessing, data_dir=data_dir,
                         made=f"{manifest.directory} was exported")
    recorded = artifact.options.get("calibration", {})
    return data, data.draw_calibration(recorded.get("samples", 200), recorded.get("seed", 0))


class _ExportedModels:
    """The float side of the comparison: the export's own verified files (a FloatSource)."""

    def __init__(self, manifest: Manifest, calibration: np.ndarray, settings: Int8Settings):
        self.manifest, self.calibration, self.settings = manifest, calibration, settings
        self.origin = str(manifest.directory)

    def keras_model(self):
        from edgeconv.runtimes.keras import load_model

        keras_file = self.manifest.find("keras", FLOAT)
        if keras_file is None:
            raise EdgeconvError(f"{self.manifest.directory}: no Keras model in the manifest")
        return load_model(self.manifest.verified_path(keras_file))

    def float_file(self, fmt: str) -> bytes | None:
        fp32 = self.manifest.find(fmt, FLOAT)
        if fp32 is None:
            return None
        return self.manifest.verified_path(fp32).read_bytes()


def _errors(manifest: Manifest, artifact: Artifact, calibration: np.ndarray,
            preprocessing: dict[str, Any]) -> ArtifactErrors:
    warnings = check_input_quantization(artifact.quantization, preprocessing)
    source = _ExportedModels(manifest, calibration, Int8Settings.from_options(artifact.options))
    # a mixed file of the --max-drop search (made by another quantiser) is read as it is
    precision = "mixed" if artifact.options.get("quantizer") else artifact.precision
    found = layer_errors(artifact.format, source,
                         manifest.verified_path(artifact).read_bytes(), precision)
    return ArtifactErrors(artifact=artifact.path, format=artifact.format, method=found.method,
                          layers=found.layers, warnings=warnings)

