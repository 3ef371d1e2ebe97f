"""Where edgeconv keeps what it builds once and reuses (emulated boards, Cortex-M libraries
and firmwares), and the one protocol by which an entry is built there.

    KIND/NAME/                 a complete entry: only ever made by a rename
    KIND/.NAME.partial-PID/    an entry being built by process PID
    KIND/.NAME.lock            flock'ed while NAME is built (or, for a board, used)
    KIND/.NAME.holder          who holds the lock exclusively: pid, since when, what it
                               builds and its latest progress line (JSON, replaced whole)

An entry is built in its partial folder under the exclusive lock and renamed into place
only once complete (a rename is atomic), so an interrupted build (Ctrl-C, kill -9, power
loss) never leaves anything that looks complete; the next builder of the same name, holding
the lock, removes every partial folder of it (none can be in progress).

A process that finds the lock held waits visibly: "waiting for the <what> build started by
process N at HH:MM (<its latest progress>)", refreshed while it waits. The lock is an
flock, which the kernel releases when its holder dies however it dies, so a dead holder's
lock is taken over at once; the .holder record it leaves is then stale, is recognised as
such (its process is gone, or another process has its pid) and is overwritten by the next
holder. Nothing is inherited by children: Python opens the lock without O_INHERIT and
subprocess closes other descriptors, so a compiler left running by a killed build does not
keep the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress

POLL_S = 0.1  # how soon a waiter sees a released lock
SHOW_EVERY_S = 1.0  # how often a waiter refreshes who it waits for; a builder its record
NO_RECORD_GRACE_S = 1.0  # a new holder writes its record within this after taking the lock


def cache_dir(kind: str, override_env: str) -> Path:
    """$override_env if set, else $XDG_CACHE_HOME/edgeconv/KIND, else ~/.cache/edgeconv/KIND."""
    given = os.environ.get(override_env)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgeconv" / kind


# --- partial folders --------------------------------------------------------------------

def partials(final: Path) -> list[Path]:
    """The partial folders of the entry `final` (being built, or left by a killed build)."""
    folder = final.parent
    return sorted(folder.glob(f".{final.name}.partial-*")) if folder.is_dir() else []


def build_in_partial(final: Path, build: Callable[[Path], None], *,
                     remove: Callable[[Path], None] | None = None) -> Path:
    """Run `build(tmp)` in this process's partial folder of `final` and rename it to `final`
    when it returns. Hold the exclusive lock of `final`; `final` must not exist. A failed or
    interrupted build's folder is removed now (by `remove`); a killed one's by the next
    builder (`clear_partials`)."""
    remove = remove or _rmtree
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    if tmp.exists():  # ours from an earlier failed try in this process
        remove(tmp)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(EdgeconvError):
            remove(tmp)
        raise
    return final


def clear_partials(final: Path, *, remove: Callable[[Path], None] | None = None) -> None:
    """Remove what interrupted builds of `final` left; hold its exclusive lock."""
    for stale in partials(final):
        (remove or _rmtree)(stale)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def build_once(final: Path, build: Callable[[Path], None], complete: Callable[[Path], bool],
               *, what: str, progress: Progress | None = None,
               unwritable: Callable[[OSError], EdgeconvError] | None = None) -> Path:
    """The entry `final`: as it is when `complete(final)`, else built by `build(tmp)` in a
    partial folder under the exclusive lock and renamed into place. A second process asking
    for it meanwhile waits (showing `what` and the builder's progress) and takes it."""
    if complete(final):
        return final
    with exclusive(lock_path(final), f"the {what} build", progress=progress,
                   unwritable=unwritable):
        if complete(final):  # another process built it while we waited
            return final
        clear_partials(final)
        if final.exists():  # incomplete under the final name: never trusted, rebuilt
            shutil.rmtree(final, ignore_errors=True)
        return build_in_partial(final, build)


# --- the lock and who holds it ----------------------------------------------------------

def lock_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.lock")


def _record_path(lock: Path) -> Path:
    return lock.with_suffix(".holder")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock exclusively, from its .holder record."""

    pid: int
    started: float  # time.time() when it took the lock
    what: str  # "the TFLite Micro library (cmsis-nn, cortex-m7) build"
    progress: str  # its latest progress line ("" before the first)

    def describe(self) -> str:
        at = time.strftime("%H:%M", time.localtime(self.started))
        said = f"{self.what} started by process {self.pid} at {at}"
        return f"{said} ({self.progress})" if self.progress else said


def read_holder(lock: Path) -> Holder | None:
    """The live holder the record beside `lock` names; None when there is no record, it is
    unreadable, or its process is gone (a dead holder's flock is already released)."""
    try:
        data = json.loads(_record_path(lock).read_bytes()[:4096])
        holder = Holder(int(data["pid"]), float(data["started"]), _clean(data["what"]),
                        _clean(data.get("progress", "")))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if not 0 < holder.started < 1e11 or holder.pid <= 0:  # not a time localtime() takes
        return None
    if _process_start(holder.pid) != data.get("process_start"):
        return None  # gone, or its pid now names another process
    return holder


def _clean(text: object) -> str:
    """One short printable line (a record is shown on the user's terminal)."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())[:200]


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), None if it is gone:
    with the pid it tells a process from a later one given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if not Path("/proc/self/stat").exists():  # no /proc: trust the pid alone
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return "?"
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 (starttime); comm may hold spaces


class _Held:
    """The record of an exclusive lock this process holds, rewritten as the build goes: at
    most every SHOW_EVERY_S, the latest line always (a timer writes one held back)."""

    def __init__(self, lock: Path, what: str) -> None:
        self.path, self.what = _record_path(lock), what
        self.started, self.written = time.time(), 0.0
        self.line = ""
        self.guard = threading.Lock()
        self.timer: threading.Timer | None = None
        self.closed = False
        self._write()

    def note(self, line: str) -> None:
        with self.guard:
            self.line = _clean(line)
            wait = self.written + SHOW_EVERY_S - time.monotonic()
            if wait <= 0:
                self._write()
            elif self.timer is None:
                self.timer = threading.Timer(wait, self._flush)
                self.timer.daemon = True
                self.timer.start()

    def _flush(self) -> None:
        with self.guard:
            self.timer = None
            if not self.closed:
                self._write()

    def _write(self) -> None:
        self.written = time.monotonic()
        data = {"pid": os.getpid(), "process_start": _process_start(os.getpid()),
                "started": self.started, "what": self.what, "progress": self.line}
        tmp = self.path.with_suffix(".holder-tmp")  # one writer at a time: the lock's holder
        try:
            tmp.write_text(json.dumps(data) + "\n")
            os.replace(tmp, self.path)
        except OSError:  # only what waiters see: the build goes on without it
            pass

    def remove(self) -> None:
        """Before the lock is released: no write of ours may land after the next holder's."""
        with self.guard:
            self.closed = True
            if self.timer is not None:
                self.timer.cancel()
            with contextlib.suppress(OSError):
                self.path.unlink()


_held = threading.local()  # a stack of the records this thread's exclusive locks keep


def note(line: str) -> None:
    """Show `line` as the progress of the build this thread holds a lock for (no-op when
    it holds none), to processes waiting for that lock."""
    stack = getattr(_held, "stack", None)
    if stack:
        stack[-1].note(line)


class TellWaiters(Progress):
    """`progress`, whose descriptions and messages also become the progress line that
    processes waiting for this thread's build see."""

    def __init__(self, progress: Progress | None) -> None:
        self.inner = progress or Progress()

    def start(self, total: int, description: str, completed: int = 0) -> None:
        self.inner.start(total, description, completed)
        note(description)

    def update(self, completed: int, description: str | None = None) -> None:
        self.inner.update(completed, description)
        if description:
            note(description)

    def message(self, text: str) -> None:
        self.inner.message(text)
        note(text)

    def stop(self) -> None:
        self.inner.stop()


def open_lock(lock: Path, unwritable: Callable[[OSError], EdgeconvError] | None = None) -> int:
    """An open descriptor of `lock` (made with its folder if need be); a folder that cannot
    be written is one line (`unwritable(exc)`)."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if unwritable is not None:
            raise unwritable(exc) from None
        raise EdgeconvError(f"cannot write in {lock.parent}: {exc.strerror or exc}") from None


def _try_flock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def exclusive(lock: Path, what: str, *, progress: Progress | None = None,
              refuse: Callable[[Holder | None], EdgeconvError | None] | None = None,
              unwritable: Callable[[OSError], EdgeconvError] | None = None) -> Iterator[None]:
    """Hold `lock` exclusively for the block, recording this process as doing `what`
    ("the board rpi4 create"). While another holds it, wait and show whose lock it is on
    `progress`, unless `refuse(holder)` (holder None: no live record, as for a board that
    is running) returns an error to raise instead."""
    fd = open_lock(lock, unwritable)
    try:
        if not _try_flock(fd, fcntl.LOCK_EX):
            _wait(fd, fcntl.LOCK_EX, lock, progress or Progress(), refuse)
        held = _Held(lock, what)
        stack = _held.__dict__.setdefault("stack", [])
        stack.append(held)
        try:
            yield
        finally:
            stack.remove(held)
            held.remove()  # before the lock goes: a record is never newer than its holder
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def shared(lock: Path, refuse: Callable[[Holder | None], EdgeconvError],
           unwritable: Callable[[OSError], EdgeconvError] | None = None) -> Iterator[None]:
    """Hold `lock` shared for the block (users that exclude builds, not each other); while
    it is held exclusively, `refuse(holder)` is raised (it waits for nobody)."""
    fd = open_lock(lock, unwritable)
    try:
        if not _try_flock(fd, fcntl.LOCK_SH):
            _wait(fd, fcntl.LOCK_SH, lock, Progress(), refuse)
        yield
    finally:
        os.close(fd)


def _wait(fd: int, mode: int, lock: Path, progress: Progress,
          refuse: Callable[[Holder | None], EdgeconvError | None] | None) -> None:
    """Poll for the lock until it is ours; show whose it is, refreshed, meanwhile."""
    began = time.monotonic()
    shown: str | None = None
    last_holder: Holder | None = None
    next_look = began
    while True:
        now = time.monotonic()
        if now >= next_look:
            next_look = now + SHOW_EVERY_S
            holder = read_holder(lock)
            if holder is None and now - began < NO_RECORD_GRACE_S:
                pass  # a holder that just took the lock may not have written its record yet
            elif refuse is not None and (error := refuse(holder)) is not None:
                if shown is not None:
                    progress.stop()
                raise error
            else:
                last_holder = holder or last_holder
                text = (f"waiting for {holder.describe()}" if holder else
                        "waiting for another process holding " + lock.name)
                if shown is None:
                    progress.start(1, text)
                elif text != shown:
                    progress.update(0, text)
                shown = text
        if _try_flock(fd, mode):
            break
        time.sleep(POLL_S)
    if shown is not None:
        waited = time.monotonic() - began
        progress.stop()
        whose = (f"process {last_holder.pid}'s {last_holder.what.removeprefix('the ')}"
                 if last_holder else "the other process")
        progress.message(f"waited {_duration(waited)} for {whose}")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
