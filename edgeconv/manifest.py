"""manifest.json: what an export directory holds, and the check that it still holds it.

The manifest is the only thing a bench on a device reads besides the model files, so this
module needs nothing but the standard library (no TensorFlow on a Raspberry Pi). It is
written last and atomically by the exporter: a file it lists was complete and verified when
it was written, and `verified_path` checks it is still that file before anything loads it.

A manifest is read back as untrusted input: `load_manifest` validates the whole document
(MANIFEST_DOC) and refuses an artifact path that is not a plain relative name inside the
manifest's folder once symbolic links are followed, and duplicate entries.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.files import open_regular
from edgeconv.formats import FORMATS, PRECISIONS, USER_FILE_KINDS
from edgeconv.onnx_external import MAX_DATA_FILES
from edgeconv.quant.output_parity import OUTPUT_PARITY  # stdlib only at its top
from edgeconv.records import (
    COUNT,
    FRACTION,
    FRACTION_INTERVAL,
    MAX_MODEL_BYTES,
    MODEL_OPTIONS,
    NAME,
    PREPROCESSING,
    SEED,
    SHA256,
    TEXT,
    VERSUS_FLOAT,
    check_version,
    read_json,
)
from edgeconv.records import MANIFEST_SCHEMA as SCHEMA_VERSION
from edgeconv.schema import (
    Bool,
    DictOf,
    Each,
    Int,
    ListOf,
    Num,
    Obj,
    Opt,
    RelPath,
    SchemaError,
    Spec,
    Str,
    contained,
    validate,
)
from edgeconv.zoo._registry import MAX_SIDE

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Artifact:
    """One model file, as exported and as measured in its own runtime on the test split."""

    path: str  # relative to the manifest's directory
    format: str  # keras | tflite | onnx
    precision: str  # fp32 | fp16 | dynamic | int8
    size_bytes: int
    sha256: str
    accuracy: float | None = None  # top-1 on the test split, run in `runtime`
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
    # How sure the figures are (edgeconv.stats): the test images measured, 95% Wilson
    # intervals [low, high], and for every file but the Keras one the paired comparison with
    # it on the same images (records.VERSUS_FLOAT). None in manifests written before.
    eval_samples: int | None = None
    accuracy_interval: list[float] | None = None
    agreement_interval: list[float] | None = None
    versus_float: dict[str, Any] | None = None
    # Every output against the float reference's on the same images (part B's
    # edgeconv.quant.output_parity: max |diff|, RMSE, cosine, SNR dB per output); None in
    # manifests written before, and for the reference itself.
    output_parity: list[dict[str, Any]] | None = None

    @classmethod
    def from_checked(cls, data: dict[str, Any]) -> Artifact:
        """An entry of a manifest already validated against MANIFEST_DOC (whose ARTIFACT
        spec checks every entry): unknown keys ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ModelInfo:
    """Which model the export holds: a zoo name and its options, and whether it was trained."""

    name: str
    options: dict[str, Any]
    trained: bool
    # A user model's export (edgeconv export PATH): {"kind": keras | h5 | savedmodel | onnx
    # | tflite, "file": the name given, "sha256": of the file (of saved_model.pb for a
    # SavedModel)}; None for a zoo model.
    source: dict[str, Any] | None = None


@dataclass(frozen=True)
class InputInfo:
    """The model's input and how images are prepared for it (what a bench must repeat)."""

    shape: list[int | None]  # with the batch dimension first, e.g. [None, 28, 28, 1]
    layout: str  # NHWC, or NCHW for a user model that takes it (shape is then N, C, H, W)
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
    # A user export's images (edgeconv.data.user.UserDataSpec.to_dict()): where they were
    # read and how they were split; bench reads them again from there. None for a zoo one.
    user: dict[str, Any] | None = None

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

    def located_path(self, artifact: Artifact) -> Path:
        """The artifact's file, after the checks that read no content: inside the manifest's
        folder once symbolic links are followed, a regular file (not a FIFO, a device or
        /proc), of `size_bytes` (a 40 GB file listed as 200 KB is refused unread). A reader
        that hashes the bytes it takes (bench's private copy) needs no more."""
        path = self.directory / artifact.path
        manifest = self.directory / MANIFEST
        if not contained(self.directory, artifact.path):
            raise EdgeconvError(f"{manifest} lists {artifact.path}, which leads outside"
                                f" {self.directory} (a symbolic link?); re-run `edgeconv export`")
        if not os.path.exists(path):  # never raises (a name too long is missing too)
            raise EdgeconvError(f"{path} is listed in {manifest} but missing;"
                                " re-run `edgeconv export`")
        with open_regular(path) as (_, info):
            self._check_size(path, info.st_size, artifact)
        return path

    def verified_path(self, artifact: Artifact) -> Path:
        """`located_path`, and the file's sha256 is the listed one."""
        path = self.located_path(artifact)
        with open_regular(path) as (fh, info):
            self._check_size(path, info.st_size, artifact)  # again: what was opened now
            digest = _sha256_of_file(fh)
        if digest != artifact.sha256:
            raise EdgeconvError(
                f"{path}: sha256 {digest[:12]}... does not match the manifest's"
                f" {artifact.sha256[:12]}...: the file changed after export;"
                " re-run `edgeconv export`")
        return path

    @staticmethod
    def _check_size(path: Path, size: int, artifact: Artifact) -> None:
        if size != artifact.size_bytes:
            raise EdgeconvError(
                f"{path} is {size:,} bytes, not the {artifact.size_bytes:,} the"
                " manifest lists: the file changed after export; re-run `edgeconv export`")


def sha256_of(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return _sha256_of_file(fh)


def _sha256_of_file(fh) -> str:
    digest = hashlib.sha256()
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
    file = path / MANIFEST if os.path.isdir(path) else path
    if not os.path.exists(file):
        where = f"{path} has no {MANIFEST}" if path.is_dir() else f"{path} does not exist"
        raise EdgeconvError(f"{where}; run `edgeconv export` first")
    data = read_json(file)  # a regular file of bounded size, or one line
    if not isinstance(data, dict) or "schema_version" not in data:
        raise EdgeconvError(f"{file}: not an edgeconv manifest (no schema_version)")
    check_version(data, SCHEMA_VERSION, str(file), "", "re-export with it")
    validate(data, MANIFEST_DOC, str(file))
    for i, entry in enumerate(data["artifacts"]):
        if not contained(file.parent, entry["path"]):
            raise EdgeconvError(f"{file}: artifacts[{i}].path must stay inside {file.parent}"
                                f" once symbolic links are followed; got {entry['path']!r}")
    artifacts = [Artifact.from_checked(a) for a in data["artifacts"]]
    return Manifest(directory=file.parent, data=data, artifacts=artifacts, **_header(data))


def _header(data: dict[str, Any]) -> dict[str, Any]:
    """The typed top level: model, input, dataset, float accuracy (MANIFEST_DOC-checked)."""
    model, given = data["model"], data.get("input") or {}
    dataset = data.get("dataset") or {}
    float_accuracy = data.get("float_accuracy")
    return {
        "model_info": ModelInfo(name=model["name"], options=dict(model.get("options") or {}),
                                trained=bool(model.get("trained", True)),
                                source=model.get("source")),
        "input": InputInfo(shape=list(given.get("shape") or []),
                           layout=given.get("layout") or "NHWC",
                           dtype=given.get("dtype") or "float32",
                           preprocessing=dict(given.get("preprocessing") or {})),
        "dataset": DatasetInfo(name=dataset.get("name"), seed=dataset.get("seed") or 0,
                               test_subset=dataset.get("test_subset"),
                               user=dataset.get("user")),
        "float_accuracy": None if float_accuracy is None else float(float_accuracy),
    }


# --- the schema ---------------------------------------------------------------------------


class _ArtifactRules(Spec):
    """What one entry's fields must agree on: a precision its format carries, and a path
    ending in the format's suffix (the runtime is chosen by format, the file named by it)."""

    def check(self, value: Any, where: str) -> Any:
        fmt = FORMATS[value["format"]]
        if value["precision"] not in fmt.precisions:
            raise SchemaError(f"{where}.precision".lstrip("."),
                              f"one of {', '.join(fmt.precisions)} for {fmt.title}",
                              value["precision"])
        if PurePosixPath(value["path"]).suffix.lower() != fmt.suffix:
            raise SchemaError(f"{where}.path".lstrip("."),
                              f"a name ending in {fmt.suffix} for {fmt.title}",
                              value["path"])
        return value


class _NoDuplicates(Spec):
    """One entry per file and one per format and precision (a bench or a report would
    otherwise measure or show one of them under the other's figures)."""

    def check(self, value: Any, where: str) -> Any:
        paths: dict[str, int] = {}
        kinds: dict[tuple[str, str], int] = {}
        for i, entry in enumerate(value):
            path = PurePosixPath(entry["path"]).as_posix()
            kind = (entry["format"], entry["precision"])
            if path in paths:
                raise SchemaError(f"{where}[{i}]", "", message=f"repeats the path {path!r} of"
                                  f" {where}[{paths[path]}]")
            if kind in kinds:
                raise SchemaError(f"{where}[{i}]", "", message=f"repeats {kind[0]} {kind[1]}"
                                  f" of {where}[{kinds[kind]}]")
            paths[path], kinds[kind] = i, i
        return value


TENSOR = Obj({"name": Opt(Str()),
              "shape": Opt(ListOf(Opt(Int(0, 1 << 31)), max_len=16)),
              "dtype": Opt(Str(max_len=100)), "scale": Opt(Num(min=0)),
              "zero_point": Opt(Int(-(1 << 31), 1 << 31))})
QUANTIZATION = Obj({"scale": Num(min=0), "zero_point": Int(-(1 << 31), 1 << 31),
                    "dtype": Opt(Str(max_len=100))}, required=("scale", "zero_point"))
# How a file was made (export/convert.py); Int8Settings.from_options reads it back.
MADE_WITH = Obj({
    "per_channel": Opt(Bool()), "float_io": Opt(Bool()), "opset": Opt(Int(1, 1000)),
    "calibration": Opt(Obj({"samples": Opt(COUNT), "split": Opt(Str(max_len=100)),
                            "seed": Opt(SEED), "method": Opt(Str(max_len=100))})),
    "quantizer": Opt(Str(max_len=100)),  # who quantised it, where not the format's converter
    "accuracy_budget": Opt(Obj()),
})
ARTIFACT = Obj({
    "path": RelPath(), "format": Str(choices=tuple(FORMATS)),
    "precision": Str(choices=tuple(PRECISIONS)), "size_bytes": Int(0, MAX_MODEL_BYTES),
    "sha256": SHA256, "accuracy": Opt(FRACTION), "agreement": Opt(FRACTION),
    # a file whose outputs went NaN is measured as such, and its manifest still loads
    "max_abs_diff": Opt(Num(min=0, finite=False, nan=True)), "runtime": Opt(Str(max_len=1000)),
    "inputs": ListOf(TENSOR, max_len=64), "outputs": ListOf(TENSOR, max_len=64),
    "options": MADE_WITH,
    "quantization": Opt(Obj({"input": Opt(QUANTIZATION), "output": Opt(QUANTIZATION)})),
    "micro": Opt(Obj({"ok": Bool(), "arena_bytes": Opt(COUNT), "error": Opt(TEXT)},
                     required=("ok",))),
    "eval_samples": Opt(COUNT), "accuracy_interval": Opt(FRACTION_INTERVAL),
    "agreement_interval": Opt(FRACTION_INTERVAL), "versus_float": Opt(VERSUS_FLOAT),
    "output_parity": Opt(OUTPUT_PARITY),
}, required=("path", "format", "precision", "size_bytes", "sha256"))
# Where a user model came from (ModelInfo.source) and where its images were read
# (DatasetInfo.user, edgeconv.data.user: `bench` and `quant-report` read them again, as
# images through Pillow or an .npz through files.open_regular, never as code).
USER_DATA = Obj({"kind": Str(choices=("dataset", "folder", "npz")),
                 "name": Opt(Str(max_len=100)), "path": Opt(Str(max_len=4096)),
                 "data_dir": Opt(Str(max_len=4096)), "calibration": Opt(Str(max_len=4096)),
                 "seed": Opt(SEED)}, required=("kind",), closed=True)
MODEL_SOURCE = Obj({"kind": Str(choices=USER_FILE_KINDS),
                    "file": Str(max_len=4096), "sha256": Opt(SHA256),
                    # an ONNX file's external data files, inlined into the export's files
                    # (edgeconv.onnx_external): each as the model names it, and its bytes
                    "external_data": Opt(ListOf(Obj({
                        "file": Str(max_len=4096), "sha256": SHA256,
                        "size_bytes": Int(0, MAX_MODEL_BYTES)},
                        required=("file", "sha256", "size_bytes"), closed=True),
                        max_len=MAX_DATA_FILES))},
                   required=("kind", "file"))
MANIFEST_DOC = Obj({
    "schema_version": Int(), "created": Opt(Str(max_len=100)),
    "model": Obj({"name": NAME, "options": Opt(MODEL_OPTIONS), "trained": Opt(Bool()),
                  "source": Opt(MODEL_SOURCE)},
                 required=("name",)),
    "input": Opt(Obj({
        # with the batch dimension first: [null, 28, 28, 1]
        "shape": Opt(ListOf(Opt(Int(1, MAX_SIDE, expected="a dimension")), max_len=8)),
        "layout": Opt(Str(max_len=100)), "dtype": Opt(Str(max_len=100)),
        "preprocessing": Opt(PREPROCESSING)})),
    "labels": Opt(ListOf(Str(max_len=1000))),
    "dataset": Opt(Obj({
        "name": Opt(Str(max_len=4096)), "seed": Opt(SEED),
        "test_subset": Opt(Obj({"samples": Int(1, COUNT.max), "of": Opt(COUNT),
                                "seed": Opt(SEED)},
                               required=("samples",))),
        "user": Opt(USER_DATA)})),
    "float_accuracy": Opt(FRACTION), "versions": Opt(DictOf(Opt(Str(max_len=1000)))),
    "calibration": Opt(Obj()),
    "artifacts": Each((ListOf(Each((ARTIFACT, _ArtifactRules())), max_len=1000),
                       _NoDuplicates())),
}, required=("schema_version", "model", "artifacts"))
