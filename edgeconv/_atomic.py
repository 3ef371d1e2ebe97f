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


def check_output_file(target: str | os.PathLike[str], option: str) -> Path:
    """Refuse, before any work starts, a file path that cannot be written: a directory, a
    path under a regular file, or a folder that cannot be created or written (/proc)."""
    return _check_output(Path(target), option, is_dir=False)


def check_output_dir(target: str | os.PathLike[str], option: str) -> Path:
    """Refuse, before any work starts, a folder path that cannot be made or written into."""
    return _check_output(Path(target), option, is_dir=True)


def _check_output(target: Path, option: str, *, is_dir: bool) -> Path:
    if "\n" in str(target) or "\r" in str(target):
        raise EdgeconvError(f"{option} {str(target)!r}: a path with a line break")
    if is_dir and target.exists() and not target.is_dir():
        raise EdgeconvError(f"{option} {target} is a file, not a folder")
    if not is_dir and target.is_dir():
        raise EdgeconvError(f"{option} {target} is a directory; give a file path to write")
    # The nearest folder that exists must be a writable folder, and nothing on the way a file.
    existing = target if is_dir and target.exists() else target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise EdgeconvError(f"{option} {target}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or _is_pseudo_fs(existing):
        raise EdgeconvError(f"{option} {target}: cannot write in {existing}")
    return target


def _is_pseudo_fs(folder: Path) -> bool:
    """/proc and /sys accept some writes (root passes os.access) but hold no files of ours."""
    resolved = folder.resolve()
    return any(resolved == Path(p) or Path(p) in resolved.parents for p in ("/proc", "/sys"))
