"""Per-layer quantisation error of an export's int8 files, worst layers first.

TFLite: TensorFlow's QuantizationDebugger re-runs the int8 conversion of the run's Keras
model with the export's settings and calibration images, and compares each quantised op's
output with the float op's on the same input. ONNX: the exported fp32 and int8 files
themselves, every activation before and after its QuantizeLinear/DequantizeLinear, and
against the float model's same tensor (onnxruntime's qdq_loss_debug). Both on the export's
calibration images, which are re-drawn exactly (same split, seed and count).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv.calibration_check import check_calibration, check_input_quantization
from edgeconv.errors import EdgeconvError
from edgeconv.manifest import MANIFEST, Artifact, Manifest, load_manifest


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
    chosen = [a for a in manifest.artifacts if a.precision == "int8"
              and (path.is_dir() or (manifest.directory / a.path).resolve() == path.resolve())]
    if not chosen:
        what = f"{path} is not an int8 file of" if path.is_file() else "no int8 file in"
        raise EdgeconvError(f"{what} the export in {manifest.directory}; export with --int8")
    data, calibration, labels = _calibration_data(manifest, chosen[0], data_dir)
    check = check_calibration(calibration, labels, data.train.x,
                              data.preprocessing.to_dict(), data.num_classes)
    reports = [_errors(manifest, artifact, calibration, data.preprocessing.to_dict())
               for artifact in chosen]
    return QuantReport(directory=manifest.directory, model=manifest.model,
                       calibration_samples=len(calibration), warnings=check.warnings,
                       artifacts=reports)


def _calibration_data(manifest: Manifest, artifact: Artifact, data_dir: str | None):
    from edgeconv.data import calibration_indices, load_recorded

    dataset = manifest.data["dataset"]
    data = load_recorded(dataset["name"], manifest.data["input"]["preprocessing"],
                         data_dir=data_dir, seed=dataset["seed"],
                         made=f"{manifest.directory} was exported")
    calibration = artifact.options.get("calibration", {})
    picked = calibration_indices(data, calibration.get("samples", 200),
                                 seed=calibration.get("seed", 0))
    return data, data.train.x[picked], data.train.y[picked]


def _errors(manifest: Manifest, artifact: Artifact, calibration: np.ndarray,
            preprocessing: dict[str, Any]) -> ArtifactErrors:
    warnings = check_input_quantization(artifact.quantization, preprocessing)
    if artifact.format == "tflite":
        from edgeconv.convert.tflite import layer_errors
        from edgeconv.runtimes.keras import load_model

        keras_file = manifest.find("keras", "fp32")
        if keras_file is None:
            raise EdgeconvError(f"{manifest.directory}: no Keras model in the manifest")
        model = load_model(manifest.verified_path(keras_file))
        layers = layer_errors(model, calibration,
                              float_io=bool(artifact.options.get("float_io")),
                              per_channel=artifact.options.get("per_channel", True))
        method = ("TensorFlow QuantizationDebugger: each int8 op against the float op on"
                  " the same input (re-quantised from model.keras with the export's settings)")
    else:
        from edgeconv.convert.onnx import layer_errors

        fp32 = manifest.find("onnx", "fp32")
        if fp32 is None:
            raise EdgeconvError(f"{manifest.directory}: no fp32 ONNX file to compare with")
        layers = layer_errors(manifest.verified_path(fp32).read_bytes(),
                              manifest.verified_path(artifact).read_bytes(), calibration)
        method = ("onnxruntime qdq_loss_debug: each activation before/after its QDQ pair;"
                  " accumulated_sqnr_db against the float model's same tensor")
    layers.sort(key=lambda row: row["sqnr_db"])
    return ArtifactErrors(artifact=artifact.path, format=artifact.format, method=method,
                          layers=layers, warnings=warnings)
