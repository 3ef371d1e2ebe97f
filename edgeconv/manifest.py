"""manifest.json: what an export directory holds, and the check that it still holds it.

The manifest is the only thing a bench on a device reads besides the model files, so this
module needs nothing but the standard library (no TensorFlow on a Raspberry Pi). It is
written last and atomically by the exporter: a file it lists was complete and verified when
it was written, and `verified_path` checks the size and sha256 before anything loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.formats import FORMATS
from edgeconv.records import MANIFEST_SCHEMA as SCHEMA_VERSION

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Artifact:
    """One model file, as exported and as measured in its own runtime on the test split."""

    path: str  # relative to the manifest's directory
    format: str  # keras | tflite | onnx
    precision: str  # fp32 | fp16 | dynamic | int8
    size_bytes: int
    sha256: str
    accuracy: float | None  # top-1 on the test split, run in `runtime`
    agreement: float | None = None  # share of test images whose top-1 matches Keras fp32
    max_abs_diff: float | None = None  # largest |output - Keras fp32 output| on the test split
    runtime: str | None = None  # what measured `accuracy`, with its version
    inputs: list[dict[str, Any]] = field(default_factory=list)  # name, shape, dtype, scale,
    outputs: list[dict[str, Any]] = field(default_factory=list)  # zero_point (int8 io)
    options: dict[str, Any] = field(default_factory=dict)  # how it was made
    # int8 files: {"input": {scale, zero_point, dtype}, "output": {...}}; None inside when
    # that boundary is float (float io) and the quantisation happens within the graph.
    quantization: dict[str, Any] | None = None
    micro: dict[str, Any] | None = None  # TFLite Micro check: ok, arena_bytes, error

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        known = {f.name for f in fields(cls)}
        artifact = cls(**{k: v for k, v in data.items() if k in known})
        if artifact.format not in FORMATS \
                or artifact.precision not in FORMATS[artifact.format].precisions:
            raise ValueError(f"unknown format/precision {artifact.format}/{artifact.precision}")
        return artifact


@dataclass(frozen=True)
class ModelInfo:
    """Which model the export holds: a zoo name and its options, and whether it was trained."""

    name: str
    options: dict[str, Any]
    trained: bool


@dataclass(frozen=True)
class InputInfo:
    """The model's input and how images are prepared for it (what a bench must repeat)."""

    shape: list[int | None]  # with the batch dimension first, e.g. [None, 28, 28, 1]
    layout: str  # NHWC
    dtype: str
    preprocessing: dict[str, Any]  # edgeconv.data.Preprocessing.to_dict(), as recorded

    @property
    def hwc(self) -> list[int] | None:
        """The image size the export was made for (fills free dimensions of the model)."""
        shape = self.preprocessing.get("input_shape")
        return list(shape) if isinstance(shape, list) else None


@dataclass(frozen=True)
class DatasetInfo:
    """The data the files were measured on at export."""

    name: str | None
    seed: int
    # The test images each file was measured on, when fewer than the whole test split:
    # {"samples": n, "of": total, "seed": s}; a bench measures on the same ones.
    test_subset: dict[str, Any] | None = None

    @property
    def test_samples(self) -> int | None:
        return self.test_subset.get("samples") if self.test_subset else None


@dataclass(frozen=True)
class Manifest:
    directory: Path  # where the manifest lives; artifact paths are relative to it
    data: dict[str, Any]  # the whole document, for the fields this module does not model
    artifacts: list[Artifact]
    model_info: ModelInfo
    input: InputInfo
    dataset: DatasetInfo
    float_accuracy: float | None = None

    @property
    def model(self) -> str:
        return self.model_info.name

    def find(self, fmt: str, precision: str) -> Artifact | None:
        return next((a for a in self.artifacts
                     if a.format == fmt and a.precision == precision), None)

    def verified_path(self, artifact: Artifact) -> Path:
        """The artifact's file, after checking it is the file the manifest describes."""
        path = self.directory / artifact.path
        if not path.is_file():
            raise EdgeconvError(f"{path} is listed in {self.directory / MANIFEST} but missing;"
                                " re-run `edgeconv export`")
        digest = sha256_of(path)
        if digest != artifact.sha256:
            raise EdgeconvError(
                f"{path}: sha256 {digest[:12]}... does not match the manifest's"
                f" {artifact.sha256[:12]}...: the file changed after export;"
                " re-run `edgeconv export`")
        return path


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_file(path: Path, directory: Path) -> dict[str, Any]:
    """path (relative), size_bytes and sha256 of a written file."""
    return {"path": path.relative_to(directory).as_posix(), "size_bytes": path.stat().st_size,
            "sha256": sha256_of(path)}


def write_manifest(directory: Path, data: dict[str, Any], artifacts: list[Artifact]) -> Path:
    target = Path(directory) / MANIFEST
    document = {"schema_version": SCHEMA_VERSION, **data,
                "artifacts": [asdict(a) for a in artifacts]}
    _atomic.write_json(target, document)
    return target


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest.json, or the one in a directory; a bad one is one clear error."""
    path = Path(path)
    file = path / MANIFEST if path.is_dir() else path
    if not file.is_file():
        where = f"{path} has no {MANIFEST}" if path.is_dir() else f"{path} does not exist"
        raise EdgeconvError(f"{where}; run `edgeconv export` first")
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeconvError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise EdgeconvError(f"{file}: not an edgeconv manifest (no schema_version)")
    if data["schema_version"] != SCHEMA_VERSION:
        raise EdgeconvError(f"{file}: schema_version {data['schema_version']!r} is not the"
                            f" {SCHEMA_VERSION} this edgeconv reads; re-export with it")
    try:
        artifacts = [Artifact.from_dict(a) for a in data["artifacts"]]
        header = _header(data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise EdgeconvError(f"{file}: malformed manifest ({type(exc).__name__}: {exc})"
                            ) from None
    return Manifest(directory=file.parent, data=data, artifacts=artifacts, **header)


def _header(data: dict[str, Any]) -> dict[str, Any]:
    """The typed top level: model, input, dataset, float accuracy (checked, not trusted)."""
    model = data["model"]
    if not isinstance(model["name"], str) or not isinstance(model.get("options", {}), dict):
        raise TypeError("model.name must be a string and model.options an object")
    given = data.get("input") or {}
    preprocessing = given.get("preprocessing") or {}
    shape = given.get("shape") or []
    if not isinstance(preprocessing, dict) or not isinstance(shape, list):
        raise TypeError("input.preprocessing must be an object and input.shape a list")
    dataset = data.get("dataset") or {}
    subset = dataset.get("test_subset")
    if subset is not None and not (isinstance(subset, dict)
                                   and isinstance(subset.get("samples"), int)):
        raise TypeError("dataset.test_subset must be an object with an integer samples")
    float_accuracy = data.get("float_accuracy")
    if float_accuracy is not None and not isinstance(float_accuracy, (int, float)):
        raise TypeError("float_accuracy must be a number")
    return {
        "model_info": ModelInfo(name=model["name"], options=dict(model.get("options") or {}),
                                trained=bool(model.get("trained", True))),
        "input": InputInfo(shape=shape, layout=str(given.get("layout", "NHWC")),
                           dtype=str(given.get("dtype", "float32")),
                           preprocessing=preprocessing),
        "dataset": DatasetInfo(name=dataset.get("name"), seed=int(dataset.get("seed", 0)),
                               test_subset=subset),
        "float_accuracy": None if float_accuracy is None else float(float_accuracy),
    }
