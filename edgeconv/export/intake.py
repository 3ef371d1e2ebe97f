"""A user's `.onnx` or `.tflite` file taken in for export: checked before anything opens it.

The same path as bench (edgeconv.bench.plan.collect): the user's file is read once, bounded
and regular (edgeconv.files), hashed as it is copied into a private folder (mode 0700, the
copy 0600), and the copy's structure is checked whole (bench.validate.check_model_file).
Only then is the copy opened, in its runtime (LiteRT, onnxruntime) in a child process
(`python -m edgeconv.export.probe`, through edgeconv._child.run_child) that answers what
the file holds. A crash, a hang or a refusal there is one EdgeconvError line naming the
user's file. Every later step opens `TakenFile.copy`, never the user's path, so the file
checked is the file exported even if the original changes meanwhile; a file that changes
while it is being read is refused. An ONNX file's external data files (`model.onnx.data`)
are checked, hashed and inlined into the copy by the same collect (edgeconv.onnx_external):
what is exported is one self-contained file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeconv._child import run_child
from edgeconv.bench.plan import collect
from edgeconv.errors import EdgeconvError
from edgeconv.files import show_path
from edgeconv.formats import get_format
from edgeconv.manifest import TENSOR
from edgeconv.onnx_external import DataFile
from edgeconv.runtimes.registry import default_runtime
from edgeconv.schema import Int, ListOf, Obj, Opt, Str, validate

if TYPE_CHECKING:
    from edgeconv.data.user import ModelInput

FORMATS_TAKEN = ("onnx", "tflite")
# Seconds the probe child may take to open the file (a 2 GiB model loads in far less).
PROBE_TIMEOUT = 300.0
PROBE_MODULE = "edgeconv.export.probe"

# The probe's answer, checked before use: it comes from a process that opened a hostile file.
_ANSWER = Obj({
    "inputs": ListOf(TENSOR, min_len=1, max_len=64),
    "outputs": ListOf(TENSOR, min_len=1, max_len=64),
    "signature": ListOf(Opt(Str(max_len=1000)), max_len=64),
    "precision": Str(choices=("fp32", "fp16", "dynamic", "int8", "int16x8")),
    "opset": Opt(Int(1, 1000)),
}, required=("inputs", "outputs", "signature", "precision"))


@dataclass(frozen=True)
class TakenFile:
    """A user's model file as taken in: its private copy and what its runtime says of it."""

    shown: str  # the user's path as messages name it
    copy: Path  # the private verified copy every later step opens (never the user's path)
    sha256: str
    size_bytes: int  # of the copy (an ONNX file's with its external data inlined)
    format: str  # "onnx" | "tflite"
    precision: str  # read from the file (edgeconv.export.probe): fp32, fp16, dynamic, int8
    inputs: list[dict]  # name, shape (None for free dimensions), dtype, scale, zero_point
    outputs: list[dict]  # name, shape, dtype, scale, zero_point
    signature: list[str | None]  # per output, its serving signature's name (TFLite) or None
    opset: int | None  # ONNX: the ai.onnx opset the graph imports
    # ONNX: the external data files inlined into `copy`, each as read (name, sha256, size)
    external_data: tuple[DataFile, ...] = ()

    @property
    def name(self) -> str:
        """The user's file name, for messages that name the file alone."""
        return Path(self.shown).name

    def model_input(self) -> ModelInput:
        """The file's one input (shape, dtype, quantisation): the preprocessing defaults."""
        from edgeconv.data.user import ModelInput

        if len(self.inputs) != 1:
            raise EdgeconvError(f"{self.name} has {len(self.inputs)} inputs; edgeconv measures"
                                " single-input models")
        first = self.inputs[0]
        return ModelInput(shape=tuple(first["shape"]), dtype=first["dtype"],
                          scale=first["scale"], zero_point=first["zero_point"],
                          name=first["name"])


def take_in(path: str | os.PathLike[str], fmt: str, workdir: Path, *,
            timeout: float = PROBE_TIMEOUT) -> TakenFile:
    """Read the user's file once (bounded, regular, chunked), hash it, write the private copy
    into a fresh folder under `workdir`, check the copy's structure, then probe it in a child
    process. Anything wrong is one EdgeconvError line naming the user's file; nothing of it
    is left in `workdir` then."""
    path = Path(path)
    shown = show_path(path)
    if fmt not in FORMATS_TAKEN:
        raise EdgeconvError(f"{shown}: edgeconv takes in {' and '.join(FORMATS_TAKEN)} files"
                            f" this way, not {fmt}")
    suffix = get_format(fmt).suffix
    if path.suffix.lower() != suffix:  # collect reads the format from the suffix
        raise EdgeconvError(f"{shown} is not a {suffix} file")
    if os.path.isdir(path):  # collect would read a folder as a run directory
        raise EdgeconvError(f"{shown} is a directory, not a regular file (a model file must"
                            " be one)")
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="intake-", dir=workdir))  # 0700, ours alone
    try:
        return _take(path, fmt, shown, private, timeout)
    except BaseException:
        shutil.rmtree(private, ignore_errors=True)
        raise


def _take(path: Path, fmt: str, shown: str, private: Path, timeout: float) -> TakenFile:
    before = _identity(path)
    (artifact,) = collect([path], private)  # read once, hashed, copied, checked whole
    after = _identity(path)
    if before is None or after != before or (artifact.size_bytes != before[2]
                                             and not artifact.external_data):
        raise EdgeconvError(f"{shown} changed while it was being read; run again once it is"
                            " complete")
    copy = artifact.loaded
    runtime = default_runtime(fmt) or fmt
    outcome = run_child(PROBE_MODULE, [str(copy)], what=f"opening {shown} in {runtime}",
                        timeout=timeout)
    if not outcome.ok:
        raise EdgeconvError(outcome.error)
    answer = outcome.payload
    if "error" in answer:
        raise EdgeconvError(_naming(str(answer["error"]), copy, shown))
    validate(answer, _ANSWER, f"{shown}: what {runtime} reported")
    if len(answer["signature"]) != len(answer["outputs"]):
        raise EdgeconvError(f"{shown}: {runtime} named {len(answer['signature'])} signature"
                            f" outputs for {len(answer['outputs'])} outputs")
    return TakenFile(shown=shown, copy=copy, sha256=artifact.sha256,
                     size_bytes=artifact.size_bytes, format=fmt,
                     precision=answer["precision"],
                     inputs=[_tensor(t) for t in answer["inputs"]],
                     outputs=[_tensor(t) for t in answer["outputs"]],
                     signature=list(answer["signature"]), opset=answer.get("opset"),
                     external_data=artifact.external_data)


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """What tells one state of a file from another: device, inode, size, modification time
    (None: there is none; collect then says why)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _tensor(given: dict[str, Any]) -> dict[str, Any]:
    shape = given.get("shape")
    return {"name": given.get("name"), "shape": None if shape is None else tuple(shape),
            "dtype": given.get("dtype"), "scale": given.get("scale"),
            "zero_point": given.get("zero_point")}


def _naming(reason: str, copy: Path, shown: str) -> str:
    """The child's reason, naming the user's file where it named the private copy."""
    reason = " ".join(reason.replace(str(copy), shown).split())
    return reason if shown in reason else f"{shown}: {reason}"
