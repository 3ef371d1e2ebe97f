"""`create`: make a board, or reuse or update the one in the cache; `load`: a complete one.

A first build goes into .NAME.partial-PID beside the final folder and is renamed to NAME
when both stamps are written (edgeconv._cache's protocol), so a folder called NAME without
board.json is never the product of a build that finished. A board whose root is complete
but whose edgeconv differs from this checkout's wheel is updated in place: board.json is
removed first, so an interrupted update leaves a board nothing uses, which the next create
finishes (the root is kept: root.json vouches for it).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeconv import _cache
from edgeconv.board import cache, host, root, wheel
from edgeconv.board._proc import run_step
from edgeconv.board.spec import ARCH, BOARDS, PACKAGES, RECIPE, SUITE, VENV, BoardSpec, get_spec
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress, Steps


@dataclass(frozen=True)
class Board:
    """A complete board in the cache."""

    name: str
    target: str  # the edgeconv target it stands in for
    cpu: str  # "Cortex-A72"
    qemu_cpu: str  # "cortex-a72"
    path: Path  # the board's folder
    root: Path  # its root file system
    edgeconv: str  # the version installed inside
    wheel_sha256: str  # digest of the wheel's members (edgeconv.board.wheel.digest)
    python: str  # the board's Python version
    packages: dict[str, str]  # numpy, typer, rich, ai-edge-litert versions inside
    created: str  # when the root was built (UTC, ISO 8601)
    action: str = "reused"  # what create did: built | updated | reused
    seconds: float = 0.0  # how long create took
    size_bytes: int = 0
    remote_edgeconv: str = f"{VENV}/bin/edgeconv"
    remote_python: str = f"{VENV}/bin/python"
    timings: dict[str, float] = field(default_factory=dict)  # per step of this create

    @property
    def spec(self) -> BoardSpec:
        return get_spec(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "root": str(self.root)}


def load(name: str) -> Board:
    """The complete board `name`, or one line saying how to make it."""
    spec = get_spec(name)
    folder = cache.board_dir(name)
    if not folder.is_dir():
        raise EdgeconvError(f"board {name} is not created: run `edgeconv board create {name}`"
                            f" (as root; ~4 min the first time)")
    info = cache.examine(folder, size=False)
    if not info.complete:
        raise EdgeconvError(f"board {name} is {info.state}: {info.note}")
    return _board(spec, folder)


def _board(spec: BoardSpec, folder: Path, **extra: Any) -> Board:
    stamp = cache.read_stamp(folder / cache.BOARD_STAMP) or {}
    rootstamp = cache.read_stamp(folder / cache.ROOT_STAMP) or {}
    return Board(name=spec.name, target=spec.target, cpu=spec.cpu, qemu_cpu=spec.qemu_cpu,
                 path=folder, root=folder / "root", edgeconv=stamp.get("edgeconv", "?"),
                 wheel_sha256=stamp.get("wheel_sha256", ""), python=stamp.get("python", "?"),
                 packages=dict(stamp.get("packages", {})),
                 created=rootstamp.get("created", "?"), **extra)


def create(name: str, progress: Progress | None = None) -> Board:
    """Make the board `name` (rpi4, rpi5) in the cache, or reuse it: a complete board with
    this checkout's wheel is reused as it is, one with another edgeconv gets the new wheel
    (10-20 s), a new one copies another board's root (~15 s) or is built from nothing
    (3.5-6 min, ~440 MiB)."""
    spec = get_spec(name)
    host.require_root(f"edgeconv board create {name}")
    host.require_tools(host.CREATE_TOOLS)
    host.ensure_binfmt()
    sources = host.debian_sources()
    started = time.monotonic()
    progress = _cache.TellWaiters(progress)  # what another create waiting for us shows
    timings: dict[str, float] = {}

    def timed(what: str, began: float) -> None:
        timings[what] = round(time.monotonic() - began, 1)

    # the bar starts once the lock is ours: waiting for another create shows its own
    with cache.locked(name, shared=False, what=f"the board {name} create", wait=True,
                      progress=progress), \
            tempfile.TemporaryDirectory(prefix="edgeconv-board-wheel-") as scratch:
        steps = Steps(progress, 5, f"board {name}: building the edgeconv wheel")
        # interrupted first builds: never trusted
        _cache.clear_partials(cache.board_dir(name), remove=cache.remove_tree)
        steps.step(f"board {name}: building the edgeconv wheel")
        began = time.monotonic()
        built = wheel.build(Path(scratch))
        digest = wheel.digest(built)
        timed("wheel", began)
        final = cache.board_dir(name)
        info = cache.examine(final, size=False) if final.is_dir() else None
        if info is not None and info.complete and info.wheel_sha256 == digest:
            steps.progress.update(5, f"board {name}: reused")
            return _finish(spec, final, "reused", started, timings)
        if info is not None and _root_reusable(final):
            steps.progress.message(f"board {name}: installing this checkout's edgeconv"
                                   f" (was {info.edgeconv or 'none'})")
            (final / cache.BOARD_STAMP).unlink(missing_ok=True)  # not a board until stamped
            steps.begun = 3
            _install(spec, final, built, digest, steps, timings)
            return _finish(spec, final, "updated", started, timings)
        if final.exists() or final.is_symlink():
            steps.progress.message(f"board {name}: {info.state if info else 'unreadable'}"
                                   " folder in the cache: building it again")
            cache.remove_tree(final)

        def build(partial: Path) -> None:
            sibling = _sibling(spec)
            if sibling is not None:
                _copy_root(spec, partial, sibling, steps, timings)
            else:
                _build_root(spec, partial, sources, steps, timings)
            _install(spec, partial, built, digest, steps, timings)

        # a failed build is removed now; if we are killed, the next create removes it
        _cache.build_in_partial(final, build, remove=cache.remove_tree)
        return _finish(spec, final, "built", started, timings)


def _root_reusable(folder: Path) -> bool:
    stamp = cache.read_stamp(folder / cache.ROOT_STAMP)
    return (stamp is not None and stamp.get("recipe") == RECIPE
            and (folder / "ssh" / "id").is_file()
            and (folder / "root" / VENV.lstrip("/") / "bin" / "python").exists()
            and (folder / "root" / "usr" / "sbin" / "sshd").is_file())


def _sibling(spec: BoardSpec) -> str | None:
    """Another complete board whose root this one can start from: the roots of all boards
    are the same (only the CPU model and cpuinfo differ, and they are not in the root)."""
    for other in BOARDS:
        if other != spec.name and _root_reusable(cache.board_dir(other)) \
                and cache.examine(cache.board_dir(other), size=False).complete:
            return other
    return None


def _copy_root(spec: BoardSpec, folder: Path, sibling: str, steps: Steps,
               timings: dict[str, float]) -> None:
    """The sibling's root, copied (cp -a, reflinks where the file system has them), with
    new keys: each board stays one folder of its own, removable alone."""
    source = cache.board_dir(sibling)
    steps.step(f"board {spec.name}: copying board {sibling}'s root")
    began = time.monotonic()
    with cache.locked(sibling, shared=True):  # not removed or rebuilt while we copy
        run_step(["cp", "-a", "--one-file-system", "--reflink=auto", str(source / "root"),
                  str(folder / "root")], what=f"copying board {sibling}'s root", timeout=1800)
        stamp = cache.read_stamp(source / cache.ROOT_STAMP) or {}
    timings["copy"] = round(time.monotonic() - began, 1)
    steps.step(f"board {spec.name}: new keys")
    root.make_keys(folder, folder / "root", spec.name)
    cache.write_stamp(folder / cache.ROOT_STAMP, {
        **{k: v for k, v in stamp.items() if k != "schema"}, "created": cache.now(),
        "copied_from": sibling})


def _build_root(spec: BoardSpec, folder: Path, sources: list[str], steps: Steps,
                timings: dict[str, float]) -> None:
    steps.step(f"board {spec.name}: mmdebstrap arm64 Debian {SUITE} (~3 min)")
    began = time.monotonic()
    root.debootstrap(folder / "root", sources, _describe(steps, "mmdebstrap", ("I: ",)))
    timings["mmdebstrap"] = round(time.monotonic() - began, 1)
    steps.step(f"board {spec.name}: keys and the venv at {VENV}")
    began = time.monotonic()
    root.make_keys(folder, folder / "root", spec.name)
    cpuinfo = cache.write_cpuinfo(folder, spec, host.host_cpus())
    root.make_venv(folder / "root", spec, cpuinfo)
    cache.write_stamp(folder / cache.ROOT_STAMP, {
        "recipe": RECIPE, "suite": SUITE, "arch": ARCH, "packages": list(PACKAGES),
        "sources": sources, "created": cache.now(), "venv": VENV})
    timings["keys_venv"] = round(time.monotonic() - began, 1)


def _install(spec: BoardSpec, folder: Path, built: Path, digest: str, steps: Steps,
             timings: dict[str, float]) -> None:
    steps.step(f"board {spec.name}: pip install 'edgeconv[litert]' (~1 min)")
    began = time.monotonic()
    cpuinfo = cache.write_cpuinfo(folder, spec, host.host_cpus())
    root.install_edgeconv(folder / "root", built, spec, cpuinfo,
                          _describe(steps, "pip", ("Collecting", "Downloading", "Installing",
                                                   "Successfully")))
    timings["pip"] = round(time.monotonic() - began, 1)
    steps.step(f"board {spec.name}: checking edgeconv and LiteRT inside")
    began = time.monotonic()
    found = root.inspect(folder / "root", spec, cpuinfo)
    root.write_marker(folder / "root", spec)
    timings["check"] = round(time.monotonic() - began, 1)
    cache.write_stamp(folder / cache.BOARD_STAMP, {  # last: from now on it is a board
        "board": spec.name, "target": spec.target, "cpu": spec.cpu, "qemu_cpu": spec.qemu_cpu,
        "recipe": RECIPE, "edgeconv": found["edgeconv"], "wheel": built.name,
        "wheel_sha256": digest, "python": found["python"], "packages": found["packages"],
        "tensorflow": found["tensorflow"], "installed": cache.now()})


def _finish(spec: BoardSpec, folder: Path, action: str, started: float,
            timings: dict[str, float]) -> Board:
    return _board(spec, folder, action=action, seconds=round(time.monotonic() - started, 1),
                  size_bytes=root.size_on_disk(folder), timings=timings)


def _describe(steps: Steps, tool: str, prefixes: tuple[str, ...]):
    """An output-line callback that shows a tool's progress lines in the bar."""
    label = steps.progress

    def on_line(line: str) -> None:
        if line.startswith(prefixes):
            text = line.removeprefix("I: ")
            label.update(max(steps.begun - 1, 0), f"{tool}: {text[:70]}")

    return on_line


def remove(name: str) -> list[str]:
    """Delete the board `name` from the cache (and any interrupted build of it)."""
    if not name or "/" in name or name.startswith("."):
        raise EdgeconvError(f"'{name}' is not a board name")
    if name not in BOARDS and not cache.board_dir(name).exists() and not cache.partials(name):
        get_spec(name)  # the one line naming the boards there are
    return cache.remove(name)
