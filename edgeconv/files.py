"""Reading a file edgeconv did not write itself: only a regular file, of bounded size, named
safely in messages.

Every reader of an untrusted file goes through `open_regular` / `read_regular`: records
(manifest.json, results.json, train.json, state.json), target and policy TOML files, model
files. A FIFO would block the reader, a device or a kernel file (/proc/self/mem) never ends
or fails half-way, and a 40 GB sparse file costs minutes: each is refused before a byte is
read, and checked again on the open file (fstat), so a swap between the check and the open
changes nothing. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# Folders whose files look regular (or are devices) but are not data: endless, changing
# under the reader, or failing half-way.
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
# 2 GiB: the most a TFLite flatbuffer (32-bit offsets) or an ONNX protobuf (2 GB message
# limit) can hold, and far above any model a device runs; checked from the file's size
# before a byte is read.
MAX_MODEL_BYTES = 2 * 1024**3
READ_CHUNK = 1 << 20  # what a reader asks for at a time past the size fstat gave
# Folders edgeconv walks (image folders, a TFLite Micro tree, runs/): a real one is a few
# levels deep; a deeper one is refused before a walk could exhaust memory or the path limit.
MAX_FOLDER_DEPTH = 100


def show_path(path: str | os.PathLike[str] | bytes) -> str:
    """A path for a one-line message: as given when printable; control characters escaped
    and the bytes of a non-UTF-8 name as \\xNN, so a message never breaks a line."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # a byte os.fsdecode could not decode
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def format_size(n: int) -> str:
    """Bytes as a short figure for messages: 2 GiB, 1.5 MiB, 300 B."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} B"


def in_pseudo_fs(path: str | os.PathLike[str]) -> bool:
    """Under /proc, /sys or /dev once symbolic links are followed."""
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return False
    return any(real == root or real.startswith(root + "/") for root in PSEUDO_FILESYSTEMS)


@contextlib.contextmanager
def open_regular(path: str | os.PathLike[str], limit: int | None = None, *,
                 what: str = "file", allow_empty: bool = True
                 ) -> Iterator[tuple[IO[bytes], os.stat_result]]:
    """The open file and its stat, when `path` is a regular file of at most `limit` bytes;
    else one EdgeconvError line."""
    from edgeconv.errors import EdgeconvError

    shown = show_path(path)
    if in_pseudo_fs(path):
        raise EdgeconvError(f"{shown} is a kernel or device file"
                            f" ({show_path(os.path.realpath(path))}), not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise EdgeconvError(f"{shown} does not exist") from None
    except (OSError, ValueError) as exc:
        raise EdgeconvError(f"{shown}: cannot read it ({reason(exc)})") from None
    try:
        info = os.fstat(fd)  # what was opened, which may not be what was named a moment ago
        _check_regular(shown, info, limit, what, allow_empty)
        with os.fdopen(fd, "rb") as fh:
            fd = -1  # the file object closes it now
            yield fh, info
    finally:
        if fd >= 0:
            os.close(fd)


def read_regular(path: str | os.PathLike[str], limit: int, *, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see `open_regular`)."""
    from edgeconv.errors import EdgeconvError

    with open_regular(path, limit, what=what) as (fh, _):
        try:
            data = read_upto(fh, limit)
        except OSError as exc:
            raise EdgeconvError(f"{show_path(path)}: cannot read it ({reason(exc)})") from None
    if len(data) > limit:  # it grew after the check
        raise EdgeconvError(f"{show_path(path)} grew past {format_size(limit)} while being"
                            " read")
    return data


def walk_files(folder: str | os.PathLike[str], *, skip_hidden: bool = False,
               what: str = "folder") -> list[Path]:
    """Every entry under `folder` but the folders it walks into: what `Path.rglob("*")`
    finds less those folders (symbolic links, FIFOs and the like are kept, for the caller
    to judge; linked folders are not entered; unreadable sub-folders are skipped), walked
    with a list rather than recursion, so a folder nested thousands deep is one line, not
    a RecursionError. `skip_hidden`: no dot-entry, nothing under a dot-folder. One
    EdgeconvError line for a folder under /proc, /sys or /dev, one nested more than
    MAX_FOLDER_DEPTH deep, or one that cannot be listed. Unsorted."""
    from edgeconv.errors import EdgeconvError

    top = Path(folder)
    if in_pseudo_fs(top):
        raise EdgeconvError(f"{what} {show_path(top)} is a kernel or device folder"
                            f" ({show_path(os.path.realpath(top))}), not a folder of files")
    found: list[Path] = []
    stack = [(top, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except PermissionError:
            if depth == 0:
                raise EdgeconvError(f"cannot list {what} {show_path(top)} (permission"
                                    " denied)") from None
            continue
        except OSError as exc:
            raise EdgeconvError(f"cannot list {what} {show_path(current)}"
                                f" ({reason(exc)})") from None
        for entry in entries:
            if skip_hidden and entry.name.startswith("."):
                continue
            path = current / entry.name
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:  # gone since it was listed
                continue
            if not is_folder:
                found.append(path)
            elif depth + 1 > MAX_FOLDER_DEPTH:
                raise EdgeconvError(f"{what} {show_path(top)} is nested more than"
                                    f" {MAX_FOLDER_DEPTH} folders deep")
            else:
                stack.append((path, depth + 1))
    return found


def read_upto(fh: IO[bytes], limit: int) -> bytes:
    """The rest of an open regular file, up to `limit` + 1 bytes (more than `limit`: it grew
    past it; the caller says so). Asks for what the file holds, never for the bound: a
    `read(limit + 1)` allocates the bound up front, 2 GiB for a 3 KB model, which fails on
    a small board whatever the file."""
    try:
        size = os.fstat(fh.fileno()).st_size - fh.tell()
    except (OSError, AttributeError, ValueError):  # not a real file: read in chunks
        size = 0
    first = fh.read(max(0, min(size, limit)) + 1)
    if len(first) <= size:  # the end came where fstat said it would
        return first
    chunks, total = [first], len(first)
    while total <= limit:  # it grew after fstat (or never said): chunks, not the bound
        chunk = fh.read(min(READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def reason(exc: BaseException) -> str:
    """An OS error's reason, one line."""
    return getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__


def _check_regular(shown: str, info: os.stat_result, limit: int | None, what: str,
                   allow_empty: bool) -> None:
    from edgeconv.errors import EdgeconvError

    if stat.S_ISDIR(info.st_mode):
        raise EdgeconvError(f"{shown} is a directory, not a regular file (a {what} must be one)")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else "a socket"
                if stat.S_ISSOCK(info.st_mode) else "a device")
        raise EdgeconvError(f"{shown} is {kind}, not a regular file (a {what} must be one)")
    if info.st_size == 0 and not allow_empty:
        raise EdgeconvError(f"{shown} is empty, not a {what}")
    if limit is not None and info.st_size > limit:
        raise EdgeconvError(f"{shown} is {format_size(info.st_size)} ({info.st_size:,} bytes);"
                            f" edgeconv reads a {what} of at most {format_size(limit)}")


__all__ = ["MAX_FOLDER_DEPTH", "MAX_MODEL_BYTES", "PSEUDO_FILESYSTEMS", "format_size",
           "in_pseudo_fs", "open_regular", "read_regular", "read_upto", "reason", "show_path",
           "walk_files"]
