"""Keras as the float reference the exported files are checked against."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeconv._lazy import keras
from edgeconv.errors import EdgeconvError, one_line
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


def load_model(path: str | Path):
    """Load a .keras file in safe mode: code stored in the file (Lambda layers) never runs."""
    path = Path(path)
    if not path.is_file():
        raise EdgeconvError(f"{path} does not exist")
    try:
        return keras().saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - zip, JSON, unknown-layer, unsafe-lambda errors
        reason = ("it contains Python code (a Lambda layer), which safe mode refuses to run"
                  if "safe_mode" in str(exc) else one_line(exc)[:300])
        raise EdgeconvError(f"cannot load {path} with Keras: {reason}") from None


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
