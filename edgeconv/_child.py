"""Run a piece of edgeconv in a child process, where a crash or a hang cannot take us down.

Every "run this in a child, turn a crash or a hang into a reason" goes through `run_child`:
the bench's per-measurement child and TFLite Micro's probe. The child prints one JSON
object as its last line on stdout; anything else (a signal, a timeout, no JSON) becomes a
one-line reason of the same shape everywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REASON_CHARS = 500  # of the child's last words on stderr, in a reason


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
    command = [sys.executable, "-m", module, *args]
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=child_env(), check=False,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ChildOutcome(None, f"{what} timed out after {timeout:g} s")
    last_words = last_line(done.stderr)[:REASON_CHARS]
    if done.returncode < 0:
        crash = f"{what} crashed ({signal_name(-done.returncode)})"
        return ChildOutcome(None, f"{crash}: {last_words}" if last_words else crash)
    try:
        payload = json.loads(last_line(done.stdout))
    except json.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        return ChildOutcome(None, f"{what} exited {done.returncode} without a result"
                                  + (f": {last_words}" if last_words else ""))
    return ChildOutcome(payload)


def child_env() -> dict[str, str]:
    """This environment, with edgeconv importable in the child however the caller found it."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def signal_name(number: int) -> str:
    try:
        return f"signal {number} {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
