"""Atomic file writes: a temporary file beside the target, then a rename.

An interrupted run leaves either the previous complete file or none, never half of one that a
later step (export, bench) would trust.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `target` only if the block succeeds.

    The temporary name keeps the target's suffix, for writers that check it (Keras' .keras).
    """
    target = Path(target)
    if target.is_dir():  # os.replace would fail after the work, leaving the temporary file
        raise EdgeconvError(f"{target} is a directory; give a file path to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    write_bytes(target, (json.dumps(data, indent=2) + "\n").encode())
