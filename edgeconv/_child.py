"""Run a piece of edgeconv in a child process, where a crash or a hang cannot take us down.

Every "run this in a child, turn a crash or a hang into a reason" goes through `run_child`:
the bench's per-measurement child and TFLite Micro's probe. The child prints one JSON
object as its last line on stdout; anything else (a signal, a timeout, no JSON, an answer
too large or nested too deeply) becomes a one-line reason of the same shape everywhere.

Every Python edgeconv starts (these children, the board's wheel build) starts through
`python_command`: never with the caller's working directory on its sys.path, where a
cloned repository's numpy.py or pip/ would run in place of the real one.

Whatever a child or a board prints is read through `run_captured` (at most a bounded tail
of it is kept) and parsed through `parse_reply` (bounded in size and nesting depth).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.files import format_size

REASON_CHARS = 500  # of the child's last words on stderr, in a reason
MAX_REPLY_BYTES = 16 << 20  # a child's answer (its last line on stdout)
MAX_REPLY_DEPTH = 64  # lists and objects inside one another in an answer: rows are 3 deep
_STDERR_KEEP = 64 << 10  # of a child's stderr: its last words, for a reason
_CHUNK = 64 << 10

# `python -m` and `python -c` put the working directory first on sys.path (`-P`, which
# does not, exists from Python 3.11 only). The child runs this instead: it takes that entry
# off before it imports anything, then runs the module as `-m` would.
_BOOTSTRAP = ("import sys\n"
              "if sys.path[:1] == ['']: del sys.path[0]\n"
              "import runpy\n"
              "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n")


@dataclass(frozen=True)
class ChildOutcome:
    """What a child printed (its last stdout line, parsed), or why it printed nothing."""

    payload: dict[str, Any] | None
    error: str | None = None  # set exactly when payload is None

    @property
    def ok(self) -> bool:
        return self.payload is not None


def run_child(module: str, args: Sequence[str] = (), *, what: str, timeout: float,
              stdin: str | None = None) -> ChildOutcome:
    """`python -m module args...` with `stdin`; its JSON answer, or a reason naming `what`."""
    try:
        done = run_captured(python_command(module, args), timeout=timeout, env=child_env(),
                            stdin=stdin, keep=MAX_REPLY_BYTES)
    except subprocess.TimeoutExpired:
        return ChildOutcome(None, f"{what} timed out after {timeout:g} s")
    last_words = last_line(done.stderr)[:REASON_CHARS]
    if done.returncode < 0:
        crash = f"{what} crashed ({signal_name(-done.returncode)})"
        return ChildOutcome(None, f"{crash}: {last_words}" if last_words else crash)
    try:
        payload = parse_reply(done.last_line())  # bounded in size, then in depth
    except BadReply as exc:
        if exc.shape:  # JSON, but too large or too deep: say so, not "without a result"
            return ChildOutcome(None, f"{what} answered {exc}")
        payload = None
    if not isinstance(payload, dict):
        return ChildOutcome(None, f"{what} exited {done.returncode} without a result"
                                  + (f": {last_words}" if last_words else ""))
    return ChildOutcome(payload)


def python_command(module: str, args: Sequence[str] = ()) -> list[str]:
    """The command line of `python -m module args...` in this environment, without the
    working directory on the child's sys.path."""
    return [sys.executable, "-c", _BOOTSTRAP, module, *args]


def python_script_command(script: str | os.PathLike[str], args: Sequence[str] = ()
                          ) -> list[str]:
    """The command line of `python SCRIPT args...` in this environment: a third-party
    script run on purpose (TFLM's create_tflm_tree.py), whose own folder Python puts first
    on its sys.path, never the working directory."""
    return [sys.executable, str(script), *args]


def python_bin_dir() -> str:
    """The folder of this environment's `python3`, for a tool that runs `python3` itself."""
    return str(Path(sys.executable).parent)


def child_env() -> dict[str, str]:
    """This environment, with edgeconv importable in the child however the caller found it.
    An empty PYTHONPATH entry (`PYTHONPATH=$PYTHONPATH:x` with none set) means the working
    directory: it is dropped; a relative one is made absolute, to mean what it means here."""
    root = str(Path(__file__).resolve().parents[1])
    given = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
             if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, *given])}


# --- what a child or a board prints ---------------------------------------------------------


@dataclass(frozen=True)
class Captured:
    """A finished process: its exit status, the tail of its stdout (whole when `cut` is
    False) and the tail of its stderr."""

    returncode: int
    stdout: str
    stderr: str
    cut: bool = False  # stdout was longer than what was kept: its start is gone
    kept: int = MAX_REPLY_BYTES  # the most of stdout that was kept

    def last_line(self) -> str:
        """The last non-blank stdout line; BadReply when it began before the tail kept (it
        is longer than the bound)."""
        if self.cut and "\n" not in self.stdout.rstrip():
            raise BadReply(f"more than {format_size(self.kept)}", shape=True)
        return last_line(self.stdout)


class _Tail:
    """The last `keep` bytes a pipe carried, read in chunks: never more in memory."""

    def __init__(self, keep: int) -> None:
        self.keep, self.data, self.cut = keep, bytearray(), False

    def drain(self, pipe) -> None:
        try:
            while chunk := pipe.read(_CHUNK):
                self.data += chunk
                if len(self.data) > self.keep:
                    del self.data[:len(self.data) - self.keep]
                    self.cut = True
        except (OSError, ValueError):  # closed under us: what was read stands
            pass

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def run_captured(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
                 stdin: str | None = None, keep: int = MAX_REPLY_BYTES,
                 cwd: str | os.PathLike[str] | None = None) -> Captured:
    """`subprocess.run(argv, capture_output=True, text=True)` that keeps at most `keep`
    bytes of stdout (its end) and a few KiB of stderr, whatever the process prints, so a
    child or a board cannot fill this machine's memory. Raises subprocess.TimeoutExpired
    (the process killed) and OSError (no such program) as subprocess.run does."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            env=env, cwd=cwd)
    out, err = _Tail(keep), _Tail(_STDERR_KEEP)
    workers = [(threading.Thread(target=out.drain, args=(proc.stdout,), daemon=True),
                proc.stdout),
               (threading.Thread(target=err.drain, args=(proc.stderr,), daemon=True),
                proc.stderr)]
    if stdin is not None:
        workers.append((threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True),
                        None))
    for worker, _ in workers:
        worker.start()
    try:
        proc.wait(timeout=timeout)
    except BaseException:  # the timeout, or Ctrl-C: the child does not outlive the wait
        proc.kill()
        proc.wait()
        raise
    finally:
        for worker, pipe in workers:
            worker.join(timeout=5)  # a grandchild holding a pipe open must not hang us:
            if pipe is not None and not worker.is_alive():  # its reader is left behind
                pipe.close()
    return Captured(proc.returncode, out.text(), err.text(), out.cut, keep)


def _feed(pipe, text: str) -> None:
    try:
        with pipe:
            pipe.write(text.encode("utf-8"))
    except (BrokenPipeError, OSError, ValueError):  # the child stopped reading: its business
        pass


class BadReply(ValueError):
    """A reply that is not the JSON asked for; `shape` when it is JSON too large or too
    deep (rather than none at all)."""

    def __init__(self, reason: str, shape: bool = False) -> None:
        super().__init__(reason)
        self.shape = shape


def parse_reply(text: str, *, start: int | None = None, max_bytes: int = MAX_REPLY_BYTES,
                max_depth: int = MAX_REPLY_DEPTH) -> Any:
    """The JSON document `text` (or the first value from index `start`, what follows it
    ignored), bounded before and after parsing: at most `max_bytes` long and `max_depth`
    containers deep. Anything else is BadReply, never a RecursionError or a value whose
    depth breaks a later reader."""
    if len(text) - (start or 0) > max_bytes:
        raise BadReply(f"more than {format_size(max_bytes)}", shape=True)
    try:
        value = (json.loads(text) if start is None
                 else json.JSONDecoder().raw_decode(text, start)[0])
    except RecursionError:
        raise BadReply(f"JSON nested more than {max_depth} deep", shape=True) from None
    # ValueError: JSONDecodeError, and integers beyond Python's 4300-digit limit
    except ValueError as exc:
        raise BadReply(f"no JSON ({' '.join(str(exc).split())[:200]})") from None
    if not _within_depth(value, max_depth):
        raise BadReply(f"JSON nested more than {max_depth} deep", shape=True)
    return value


def _within_depth(value: Any, limit: int) -> bool:
    """No list or object deeper than `limit` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return True


def signal_name(number: int) -> str:
    try:
        return f"signal {number} {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
