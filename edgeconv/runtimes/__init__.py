"""Inference engines behind one interface: open a model file, describe its tensors, run it.

Importing this package loads no engine: each one is imported when a model is opened, so a
board with only ai-edge-litert (or only onnxruntime) installed can use what it has.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.runtimes.base import Runtime, TensorInfo, installed_version

__all__ = ["RUNTIMES", "Runtime", "TensorInfo", "open_runtime", "runtime_versions"]

# runtime name -> (module, class)
_CLASSES = {
    "litert": ("edgeconv.runtimes.litert", "LiteRTRuntime"),
    "onnxruntime": ("edgeconv.runtimes.onnxrt", "OnnxRuntime"),
    "keras": ("edgeconv.runtimes.keras", "KerasRuntime"),
    "tflite-micro": ("edgeconv.runtimes.micro", "MicroRuntime"),
}
RUNTIMES = tuple(_CLASSES)
_BY_SUFFIX = {".tflite": "litert", ".onnx": "onnxruntime", ".keras": "keras"}

# the libraries behind the runtimes, as pip distributions (alternatives in order)
_LIBRARIES = {
    "ai-edge-litert": ("ai-edge-litert",),
    "tflite-runtime": ("tflite-runtime",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tflite-micro": ("tflite-micro",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
}


def open_runtime(path: str | Path, runtime: str | None = None, **options) -> Runtime:
    """Load `path` in `runtime`, by default the one its suffix implies.

    Options go to the runtime: threads / xnnpack (litert), threads / providers (onnxruntime),
    batch_size (keras), arena_size (tflite-micro).
    """
    path = Path(path)
    name = runtime or _BY_SUFFIX.get(path.suffix.lower())
    if name is None:
        raise EdgeconvError(f"no runtime for '{path.suffix}' files ({path.name}); expected "
                            f"{', '.join(_BY_SUFFIX)}, or name a runtime: {', '.join(RUNTIMES)}")
    if name not in _CLASSES:
        raise EdgeconvError(f"unknown runtime '{name}'{did_you_mean(name, RUNTIMES)}; "
                            f"choose from {', '.join(RUNTIMES)}")
    module, class_name = _CLASSES[name]
    return getattr(importlib.import_module(module), class_name)(path, **options)


def runtime_versions() -> dict[str, str]:
    """Versions of the runtime libraries installed here, read from package metadata.

    Nothing is imported, so asking costs no TensorFlow start-up.
    """
    found = {name: installed_version(*dists) for name, dists in _LIBRARIES.items()}
    return {name: found_version for name, found_version in found.items() if found_version}
