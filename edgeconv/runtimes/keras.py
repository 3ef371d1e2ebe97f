"""Keras as the float reference the exported files are checked against."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeconv._lazy import keras
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.files import MAX_MODEL_BYTES, open_regular
from edgeconv.records import MAX_RECORD_BYTES
from edgeconv.runtimes.base import Runtime, TensorInfo


class KerasRuntime(Runtime):
    """A .keras file loaded in safe mode: code stored in the file (Lambda layers) never runs."""

    name = "keras"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        k = keras()
        self.backend, self.version = f"keras/{k.backend.backend()}", k.__version__
        self._model = load_model(self.path)
        self._to_numpy = k.ops.convert_to_numpy
        self._inputs = [_tensor_info(t) for t in self._model.inputs]
        self._outputs = [_tensor_info(t) for t in self._model.outputs]

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        return self._to_numpy(self._model(x, training=False))  # Runtime chunks large batches

    def close(self) -> None:
        self._model = None


# A .keras file is a zip that Keras decompresses as it reads: bounds checked on the archive's
# directory first, so a small crafted file cannot make it inflate gigabytes (Keras' own guard
# starts at 4 GiB per member). Keras writes config.json and metadata.json (kilobytes) and
# model.weights.h5 (the weights, stored uncompressed).
MAX_JSON_MEMBER_BYTES = MAX_RECORD_BYTES
MAX_ARCHIVE_BYTES = 2 * MAX_MODEL_BYTES  # all members together, decompressed
MAX_MEMBERS = 10_000


def load_model(path: str | Path):
    """Load a .keras file in safe mode: code stored in the file (Lambda layers) never runs."""
    path = Path(path)
    if not os.path.exists(path):
        raise EdgeconvError(f"{path} does not exist")
    with open_regular(path, MAX_MODEL_BYTES):  # not a FIFO, a device or /proc; bounded
        pass
    _check_archive(path)
    try:
        return keras().saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - zip, JSON, unknown-layer, unsafe-lambda errors
        reason = ("it contains Python code (a Lambda layer), which safe mode refuses to run"
                  if "safe_mode" in str(exc) else one_line(exc)[:300])
        raise EdgeconvError(f"cannot load {path} with Keras: {reason}") from None


def _check_archive(path: Path) -> None:
    """One line, before Keras reads it, for a .keras whose members would decompress past
    the bounds above (the sizes are the zip directory's; Python's zipfile never inflates a
    member past its listed size)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise EdgeconvError(f"cannot load {path} with Keras: not a .keras archive (a zip):"
                            f" {one_line(exc)[:200]}") from None
    if len(members) > MAX_MEMBERS:
        raise EdgeconvError(f"cannot load {path} with Keras: {len(members):,} archive members,"
                            f" over the {MAX_MEMBERS:,} edgeconv reads")
    for member in members:
        if member.filename.endswith(".json") and member.file_size > MAX_JSON_MEMBER_BYTES:
            raise EdgeconvError(
                f"cannot load {path} with Keras: {member.filename[:100]} would decompress to"
                f" {member.file_size:,} bytes, over the {MAX_JSON_MEMBER_BYTES:,} edgeconv"
                " reads")
    total = sum(m.file_size for m in members)
    if total > MAX_ARCHIVE_BYTES:
        raise EdgeconvError(f"cannot load {path} with Keras: it would decompress to"
                            f" {total:,} bytes, over the {MAX_ARCHIVE_BYTES:,} edgeconv reads")


def _tensor_info(tensor) -> TensorInfo:
    return TensorInfo(name=tensor.name, shape=tuple(tensor.shape),
                      dtype=np.dtype(tensor.dtype).name)


def use_gpu(options: dict) -> str | None:
    """Keras places work on TensorFlow's GPU by itself when TensorFlow sees one; without
    one it would quietly run on the CPU, which is not a GPU figure."""
    keras()
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return None
    return "TensorFlow sees no GPU here (install tensorflow[and-cuda] in place of tensorflow-cpu)"
