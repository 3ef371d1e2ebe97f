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
from edgeconv.files import in_pseudo_fs


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
    tmp.unlink(missing_ok=True)  # a stale one, or a symlink planted to redirect the write
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "xb") as fh:  # exclusive: never through a symlink put there since
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    write_bytes(target, (json.dumps(data, indent=2) + "\n").encode())


def check_output_file(target: str | os.PathLike[str], option: str) -> Path:
    """Refuse, before any work starts, a file path that cannot be written: a directory, a
    device or FIFO (an atomic write would replace it with a file: /dev/null), a path under a
    regular file, or a folder that cannot be created or written (/proc)."""
    return _check_output(Path(target), option, is_dir=False)


def check_output_dir(target: str | os.PathLike[str], option: str) -> Path:
    """Refuse, before any work starts, a folder path that cannot be made or written into."""
    return _check_output(Path(target), option, is_dir=True)


def _check_output(target: Path, option: str, *, is_dir: bool) -> Path:
    if "\n" in str(target) or "\r" in str(target) or "\0" in str(target):
        raise EdgeconvError(f"{option} {str(target)!r}: a path with a line break or NUL")
    try:
        return _check_output_path(target, option, is_dir=is_dir)
    except OSError as exc:  # a name too long, a symlink loop, a folder we may not search
        raise EdgeconvError(f"{option} {target}: {exc.strerror or exc}") from None


def _check_output_path(target: Path, option: str, *, is_dir: bool) -> Path:
    if is_dir and target.exists() and not target.is_dir():
        raise EdgeconvError(f"{option} {target} is a file, not a folder")
    if not is_dir and target.is_dir():
        raise EdgeconvError(f"{option} {target} is a directory; give a file path to write")
    if not is_dir and target.exists() and not target.is_file():
        raise EdgeconvError(f"{option} {target} is not a regular file (a device, FIFO or"
                            " socket); give a file path to write")
    # The nearest folder that exists must be a writable folder, and nothing on the way a file.
    existing = target if is_dir and target.exists() else target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise EdgeconvError(f"{option} {target}: {existing} is a file, not a folder")
    # /proc and /sys accept some writes (root passes os.access) but hold no files of ours.
    if not os.access(existing, os.W_OK | os.X_OK) or in_pseudo_fs(existing):
        raise EdgeconvError(f"{option} {target}: cannot write in {existing}")
    return target
