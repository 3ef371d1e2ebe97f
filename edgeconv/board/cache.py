"""Where boards live and what makes one complete.

    $EDGECONV_BOARDS_DIR, else $XDG_CACHE_HOME/edgeconv/boards, else ~/.cache/edgeconv/boards
      NAME/                 one board, self-contained (remove = delete the folder)
        root/               the arm64 Debian root; the venv at root/opt/edgeconv
        ssh/id, id.pub      the client key pair (the public half in root/root/.ssh)
        root.json           stamp of the root (Debian, venv, keys): recipe, packages, mirror
        board.json          stamp of the board, written last: edgeconv's version and wheel
                            digest, the runtime versions inside. Without it (or with another
                            recipe) nothing uses the board.
        cpuinfo             the fake aarch64 /proc/cpuinfo (rewritten at each use)
        run/PORT/           a running server's known_hosts and log (removed when it stops)
      .NAME.partial-PID/    a first create in progress (renamed to NAME/ when complete;
                            an interrupted one is removed by the next create)
      .NAME.lock            create/remove hold it exclusively, a running board shared
      .NAME.holder          who creates or removes it, since when, and how far

The partial-folder and lock protocol is edgeconv._cache's (the MCU cache's too). A create
finding another create at work waits for it, showing whose it is and how far it got; a
remove, a start, or a create finding a running board says so and stops.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeconv import _cache
from edgeconv._atomic import write_bytes, write_json
from edgeconv.board import namespace
from edgeconv.board.root import size_on_disk
from edgeconv.board.spec import BOARDS, RECIPE, VENV, BoardSpec
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress

BOARDS_ENV = "EDGECONV_BOARDS_DIR"
ROOT_STAMP = "root.json"
BOARD_STAMP = "board.json"
STAMP_SCHEMA = 1
REMOVE_TIMEOUT_S = 600  # rm -rf of a board (~440 MiB): seconds; past this the disk is stuck


def boards_dir() -> Path:
    return _cache.cache_dir("boards", BOARDS_ENV)


def board_dir(name: str) -> Path:
    return boards_dir() / name


def partials(name: str) -> list[Path]:
    return _cache.partials(board_dir(name))


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def locked(name: str, *, shared: bool, what: str | None = None, wait: bool = False,
           progress: Progress | None = None) -> Iterator[None]:
    """Hold the board's lock for the block: create and remove take it exclusively (`what`
    they do is what others are told), a running board (start) shared. Another edgeconv
    holding it is one line, unless `wait`: then a create or remove in progress is waited
    for, shown on `progress` (a running board is never waited for: it may run for days)."""
    lock = _cache.lock_path(board_dir(name))
    folder = boards_dir()

    def unwritable(exc: OSError) -> EdgeconvError:
        return EdgeconvError(f"cannot use the boards folder {folder}: {exc.strerror or exc}"
                             f" (set {BOARDS_ENV} to another folder)")

    def refuse(holder: _cache.Holder | None) -> EdgeconvError | None:
        if holder is not None and wait:
            return None
        if holder is not None:
            return EdgeconvError(f"board {name} is in use by {holder.describe()}; wait for it")
        doing = ("being created or removed" if shared else
                 "in use (running, or being created or removed)")
        return EdgeconvError(f"board {name} is {doing} by another edgeconv; wait for it"
                             " (a running board: stop `edgeconv board start`)")

    if shared:
        with _cache.shared(lock, refuse, unwritable):
            yield
    else:
        with _cache.exclusive(lock, what or f"the board {name} create or removal",
                              progress=progress, refuse=refuse, unwritable=unwritable):
            yield


def read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_stamp(path: Path, data: dict[str, Any]) -> None:
    write_json(path, {"schema": STAMP_SCHEMA, **data})


def write_cpuinfo(folder: Path, spec: BoardSpec, cpus: int) -> Path:
    path = folder / "cpuinfo"
    write_bytes(path, spec.cpuinfo(cpus).encode())
    return path


@dataclass(frozen=True)
class BoardInfo:
    """A board as `board list` shows it. state: complete | stale (another recipe) |
    incomplete (no stamp: an interrupted create or update) | partial (a first create's
    folder, in progress or interrupted)."""

    name: str
    cpu: str | None
    qemu_cpu: str | None
    target: str | None
    path: str
    state: str
    size_bytes: int
    created: str | None
    edgeconv: str | None
    wheel_sha256: str | None
    note: str

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


def examine(folder: Path, *, size: bool = True) -> BoardInfo:
    """The state of one board folder (or partial folder) and what its stamps say."""
    name = folder.name
    partial = name.startswith(".")
    if partial:
        name = name[1:].split(".partial-")[0]
    spec = BOARDS.get(name)
    board = read_stamp(folder / BOARD_STAMP) or {}
    rootstamp = read_stamp(folder / ROOT_STAMP)
    if partial:
        state, note = "partial", "a create in progress or interrupted (the next create removes it)"
    elif not board:
        state, note = "incomplete", (f"no {BOARD_STAMP}: an interrupted create or update"
                                     f" (`edgeconv board create {name}` finishes it)")
    elif board.get("recipe") != RECIPE or not rootstamp or rootstamp.get("recipe") != RECIPE:
        state, note = "stale", (f"built by recipe {board.get('recipe')}, this edgeconv's is"
                                f" {RECIPE} (`edgeconv board create {name}` rebuilds it)")
    elif not _files_there(folder):
        state, note = "incomplete", "files missing (`edgeconv board create` rebuilds it)"
    else:
        state, note = "complete", ""
    return BoardInfo(
        name=name, cpu=board.get("cpu") or (spec.cpu if spec else None),
        qemu_cpu=board.get("qemu_cpu") or (spec.qemu_cpu if spec else None),
        target=board.get("target") or (spec.target if spec else None), path=str(folder),
        state=state, size_bytes=size_on_disk(folder) if size else 0,
        created=(rootstamp or {}).get("created"), edgeconv=board.get("edgeconv"),
        wheel_sha256=board.get("wheel_sha256"), note=note)


def _files_there(folder: Path) -> bool:
    return all(p.exists() for p in (folder / "ssh" / "id", folder / "root" / "usr" / "sbin" /
                                    "sshd", folder / "root" / VENV.lstrip("/") / "bin" /
                                    "edgeconv"))


def list_boards() -> list[BoardInfo]:
    """Every board folder in the cache (complete or not) and every partial one."""
    folder = boards_dir()
    if not folder.is_dir():
        return []
    found = [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.is_symlink()
             and (not p.name.startswith(".") or ".partial-" in p.name)]
    return [examine(p) for p in found]


def remove_tree(path: Path) -> None:
    """Delete a board folder, never through a mount (a board's mounts live in private
    namespaces, so one here means something else mounted it: refuse)."""
    if not path.exists() and not path.is_symlink():
        return
    mounted = namespace.mounts_under(path)
    if mounted:
        raise EdgeconvError(f"{mounted[0]} is a mount point inside {path}: unmount it"
                            f" (`umount -R {mounted[0]}`) before removing the board")
    # --one-file-system: a mount that appeared meanwhile is skipped, not emptied
    try:
        done = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)],
                              capture_output=True, text=True, check=False,
                              timeout=REMOVE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgeconvError(f"removing {path} timed out after {REMOVE_TIMEOUT_S} s") from None
    if done.returncode != 0 or path.exists():
        lines = done.stderr.strip().splitlines()
        raise EdgeconvError(f"could not remove {path}: {lines[-1] if lines else 'still there'}")


def remove(name: str) -> list[str]:
    """Delete the board `name` and its partial folders; returns what was removed (empty
    when there was nothing). Refuses while the board runs or is being created."""
    removed = []
    with locked(name, shared=False, what=f"the board {name} removal"):
        for path in [board_dir(name), *partials(name)]:
            if path.exists() or path.is_symlink():
                remove_tree(path)
                removed.append(str(path))
    return removed
