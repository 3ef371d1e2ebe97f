"""The inference engines edgeconv can run a model file in, as data.

One row per runtime: the class that implements `edgeconv.runtimes.base.Runtime` (imported
only when a file is opened), the formats it reads, the keyword options its constructor
takes, the pip extra that installs it, the modules any of which provides it, and the pip
distributions whose versions a result records. Bench planning, the bench child, `--runtime`
help and validation, target checks and `runtime_versions()` all read this table. Adding a
runtime is its adapter module plus one row here (docs/architecture.md); a test or a plugin
can `register()` one at run time. Standard library only.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any
from importlib.metadata import PackageNotFoundError, version

from edgeconv.errors import EdgeconvError, did_you_mean


@dataclass(frozen=True)
class RuntimeEntry:
    name: str
    cls: str  # "package.module:Class", a subclass of edgeconv.runtimes.base.Runtime
    formats: tuple[str, ...]  # the file formats it reads (edgeconv.formats)
    description: str
    # Keyword options its constructor takes: threads, xnnpack, reference (litert), providers
    # (onnxruntime), mode (keras: compiled or eager), arena_size (tflite-micro). A bench
    # sweeps threads only where listed.
    options: tuple[str, ...] = ()
    extra: str = ""  # pip install 'edgeconv[extra]' provides it
    modules: tuple[str, ...] = ()  # import names, any of which provides it (in order)
    # label -> pip distributions (alternatives), whose installed version results record
    libraries: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # "module:function" that puts it on an NVIDIA GPU: takes its constructor options, adds
    # what the GPU needs (onnxruntime's providers), and returns None, or why it cannot run
    # there. None: it has no GPU path, so a gpu target marks its rows unsupported.
    on_gpu: str | None = None
    # The runtime and options whose kernels this one implements, to check its outputs
    # against on the same inputs (TFLite Micro implements TFLite's reference kernels).
    kernel_reference: tuple[str, dict[str, Any]] | None = None

    @property
    def threaded(self) -> bool:
        return "threads" in self.options

    def reads(self, fmt: str) -> bool:
        return fmt in self.formats

    def available(self) -> bool:
        """Is a library behind it importable here (found without importing it)?"""
        return any(_module_exists(m) for m in self.modules) if self.modules else True

    def require(self) -> None:
        """One line naming the pip extra when the library behind it is not installed."""
        if not self.available():
            raise EdgeconvError(f"the {self.name} runtime needs the Python package"
                                f" '{self.modules[0]}'; install it with: pip install"
                                f" 'edgeconv[{self.extra}]'")

    def load_class(self) -> type:
        module, _, name = self.cls.partition(":")
        return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, RuntimeEntry] = {}


def register(entry: RuntimeEntry) -> RuntimeEntry:
    """Add a runtime (or replace one of the same name); returns it."""
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


for _entry in (
    RuntimeEntry(
        "litert", "edgeconv.runtimes.litert:LiteRTRuntime", ("tflite",),
        "LiteRT (ai-edge-litert; else tflite-runtime, else tf.lite), XNNPACK on by default",
        options=("threads", "xnnpack", "reference"), extra="litert",
        modules=("ai_edge_litert", "tflite_runtime", "tensorflow"),
        libraries={"ai-edge-litert": ("ai-edge-litert",),
                   "tflite-runtime": ("tflite-runtime",)}),
    RuntimeEntry(
        "onnxruntime", "edgeconv.runtimes.onnxrt:OnnxRuntime", ("onnx",),
        "onnxruntime (CPU; CUDA / TensorRT providers with onnxruntime-gpu)",
        options=("threads", "providers"), extra="onnx", modules=("onnxruntime",),
        libraries={"onnxruntime": ("onnxruntime", "onnxruntime-gpu")},
        on_gpu="edgeconv.runtimes.onnxrt:use_gpu"),
    RuntimeEntry(
        "keras", "edgeconv.runtimes.keras:KerasRuntime", ("keras",),
        "Keras 3 on TensorFlow: the float reference, compiled (tf.function, XLA where"
        " faster; mode: auto, xla, function or eager)", options=("mode",), extra="train",
        modules=("tensorflow",),
        libraries={"tensorflow": ("tensorflow", "tensorflow-cpu"), "keras": ("keras",)},
        on_gpu="edgeconv.runtimes.keras:use_gpu"),
    RuntimeEntry(
        "tflite-micro", "edgeconv.runtimes.micro:MicroRuntime", ("tflite",),
        "TFLite Micro's Python interpreter (reference kernels) on this machine",
        options=("arena_size",), extra="micro", modules=("tflite_micro",),
        libraries={"tflite-micro": ("tflite-micro",)},
        kernel_reference=("litert", {"reference": True})),
):
    register(_entry)
del _entry


def runtime_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_runtime(name: str) -> RuntimeEntry:
    if name not in _REGISTRY:
        raise EdgeconvError(f"unknown runtime '{name}'{did_you_mean(name, _REGISTRY)};"
                            f" choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def runtime_for(fmt: str, candidates: tuple[str, ...] | list[str]) -> str | None:
    """The first of `candidates` (a target's runtimes, in its order) that reads `fmt`."""
    return next((name for name in candidates
                 if name in _REGISTRY and _REGISTRY[name].reads(fmt)), None)


def default_runtime(fmt: str) -> str | None:
    """The runtime a bare file of this format opens in: the first registered that reads it."""
    return runtime_for(fmt, tuple(_REGISTRY))


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is not there
        return False


def installed_version(*distributions: str) -> str | None:
    """The version of the first of these pip distributions installed, read without importing."""
    for distribution in distributions:
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return None
