"""Run one step of building a board: its output lines feed the progress bar, its failure is
one line, and an interrupt or a timeout kills its whole process group (apt, dpkg, pip)."""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable

from edgeconv.errors import EdgeconvError

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def run_step(argv: list[str], *, what: str, timeout: float, env: dict[str, str] | None = None,
             on_line: Callable[[str], None] | None = None, cwd: str | None = None) -> str:
    """Run `argv`; return its output (stdout and stderr together). A non-zero exit, a
    timeout or a missing program is an EdgeconvError naming `what` and the last words."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace", env=env,
                                start_new_session=True,  # its own group: one kill stops all
                                cwd=cwd,
                                preexec_fn=die_with_parent)
    except OSError as exc:
        raise EdgeconvError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        kill_group(proc)

    timer = threading.Timer(timeout, expire)
    timer.start()
    tail: collections.deque[str] = collections.deque(maxlen=200)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            if on_line is not None and line.strip():
                on_line(line.strip())
        proc.wait()
    except BaseException:  # Ctrl-C: nothing of the step may outlive us
        kill_group(proc)
        raise
    finally:
        timer.cancel()
    if expired.is_set():
        raise EdgeconvError(f"{what} timed out after {timeout:g} s")
    if proc.returncode != 0:
        raise EdgeconvError(f"{what} failed (exit status {proc.returncode}): {_reason(tail)}")
    return "\n".join(tail)


def die_with_parent() -> None:
    """In a child before exec: SIGKILL it when its parent (this edgeconv) dies, even by
    SIGKILL; unshare's --kill-child then takes the whole namespace down with it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to tie
        pass


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group `proc` leads (it was started in a session of its own)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def _reason(lines: collections.deque[str]) -> str:
    """The most telling of the last lines: an error line if there is one, else the last."""
    text = [line.strip() for line in lines if line.strip()]
    for line in reversed(text[-30:]):
        if line.startswith(("E:", "ERROR", "error:", "Error")) or "Error:" in line:
            return line
    return text[-1] if text else "no output"
