"""Import heavy optional libraries on first use, with an install hint when missing.

`edgeconv --help`, `edgeconv models` and a device install must never pay for TensorFlow:
modules call these helpers inside the functions that need the library.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from edgeconv.errors import EdgeconvError


def require(module: str, extra: str) -> ModuleType:
    """Import `module` or fail with the `pip install 'edgeconv[extra]'` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EdgeconvError(
            f"this needs the Python package '{module.split('.')[0]}' ({exc}); "
            f"install it with: pip install 'edgeconv[{extra}]'"
        ) from None


def keras() -> ModuleType:
    """Keras 3 on the TensorFlow backend, imported quietly."""
    # TensorFlow's C++ start-up chatter (CPU feature notices) is noise for a CLI user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with _quiet_native_stderr():
            require("tensorflow", extra="train")
    return require("keras", extra="train")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what C++ code writes to fd 2 while TensorFlow loads.

    TF 2.21 logs through absl before TF_CPP_MIN_LOG_LEVEL is read ("oneDNN custom operations
    are on"), so the variable alone does not keep a CLI's output clean. Python exceptions
    are unaffected: an ImportError still reaches `require`.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
