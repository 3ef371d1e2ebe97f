"""Helpers for running a runtime in a child process, where a crash cannot take us down."""

from __future__ import annotations

import os
import signal
from pathlib import Path


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
