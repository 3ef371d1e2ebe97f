"""Inference engines behind one interface: open a model file, describe its tensors, run it.

Which engines exist, what they read and what they take is the table in `registry.py`.
Importing this package loads no engine: each one is imported when a model is opened, so a
board with only ai-edge-litert (or only onnxruntime) installed can use what it has.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeconv.errors import EdgeconvError
from edgeconv.runtimes.registry import (
    RuntimeEntry,
    default_runtime,
    get_runtime,
    installed_version,
    register,
    runtime_for,
    runtime_names,
    unregister,
)

if TYPE_CHECKING:
    from edgeconv.runtimes.base import Runtime, TensorInfo

__all__ = ["RUNTIMES", "Runtime", "RuntimeEntry", "TensorInfo", "default_runtime",
           "get_runtime", "open_runtime", "register", "runtime_for", "runtime_names",
           "runtime_versions", "unregister"]



def __getattr__(name: str):
    # Runtime and TensorInfo need numpy: imported on first use, so that the registry (read
    # by `--help`, `gate` and planning) costs nothing.
    if name in ("Runtime", "TensorInfo"):
        from edgeconv.runtimes import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The shipped runtimes' names (registry.runtime_names() includes any registered later).
RUNTIMES = runtime_names()


def open_runtime(path: str | Path, runtime: str | None = None, **options) -> Runtime:
    """Load `path` in `runtime`, by default the one its format opens in.

    Options go to the runtime's constructor; the registry lists which each one takes
    (threads / xnnpack / reference for litert, threads / providers for onnxruntime,
    arena_size for tflite-micro).
    """
    from edgeconv.formats import FORMATS

    path = Path(path)
    name = runtime
    if name is None:
        fmt = next((f for f in FORMATS.values() if f.suffix == path.suffix.lower()), None)
        name = default_runtime(fmt.name) if fmt else None
        if name is None:
            suffixes = ", ".join(f.suffix for f in FORMATS.values())
            raise EdgeconvError(f"no runtime for '{path.suffix}' files ({path.name}); expected"
                                f" {suffixes}, or name a runtime: {', '.join(runtime_names())}")
    entry = get_runtime(name)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        raise EdgeconvError(f"the {name} runtime takes no option {', '.join(unknown)}"
                            f" (it takes: {', '.join(entry.options) or 'none'})")
    return entry.load_class()(path, **options)


def runtime_versions() -> dict[str, str]:
    """Versions of the runtime libraries installed here, read from package metadata.

    Nothing is imported, so asking costs no TensorFlow start-up.
    """
    found: dict[str, str] = {}
    for name in runtime_names():
        for label, distributions in get_runtime(name).libraries.items():
            version = installed_version(*distributions)
            if version:
                found.setdefault(label, version)
    return found
