"""Unpickle CIFAR-10 batches without letting the file run code.

CIFAR-10's python version is a set of pickles; `pickle.load` would call whatever globals a
(corrupt or malicious) file names. `_RestrictedUnpickler` resolves only the few a CIFAR batch
needs: numpy array reconstruction and protocol-2 bytes.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(str, "latin1"); allow only that.
    ok = isinstance(encoding, str) and encoding.replace("-", "").lower() == "latin1"
    if not isinstance(text, str) or not ok:
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


# The only globals a CIFAR batch needs: numpy array reconstruction (both numpy 1 and 2
# module spellings, resolved here so no deprecated module is imported) and bytes.
_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
    ("_codecs", "encode"): _latin1_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: no code can run from the file."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only plain data and numpy arrays are "
                "allowed (the file may be corrupt or malicious)"
            ) from None
