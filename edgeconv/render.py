"""Output helpers shared by the commands: JSON for scripts, rich tables for people.

Tables go to stdout (they are the result); progress and diagnostics go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def stdout_console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped into a file or a CI log: wide enough that tables stay one row per line.
        console = Console(width=200)
    return console


def stderr_console(*, own_fd: bool = False):
    """Console for progress and diagnostics.

    `own_fd`: write through a private duplicate of fd 2, so that progress stays visible
    while a converter's chatter on fd 2 is being captured (see edgeconv._capture).
    """
    from rich.console import Console

    if own_fd:
        try:
            if sys.stderr.fileno() == 2:
                return Console(file=os.fdopen(os.dup(2), "w", buffering=1))
        except (AttributeError, OSError, ValueError):  # a test runner's fake stderr
            pass
    return Console(stderr=True)


def table(title: str | None, columns: list[str], rows: list[list[Any]], *, right: set[str] = ()):
    """A rich Table with numeric columns (named in `right`) right-aligned."""
    from rich.table import Table

    # min_width keeps a narrow table from wrapping its own title.
    t = Table(title=title, title_justify="left", header_style="bold",
              min_width=len(title) + 2 if title else None)
    for i, name in enumerate(columns):
        # The first column names the row (a model, a layer): never wrap or truncate it.
        t.add_column(name, justify="right" if name in right else "left", no_wrap=i == 0)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def count(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def nbytes(n: int | None) -> str:
    """Human-readable size with binary units (KiB, MiB), as device budgets are stated."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def macs(n: int | None) -> str:
    if n is None:
        return ""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(n)


def shape(dims: list | tuple) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def ratio(base: int, value: int) -> str:
    return "" if not value else f"{base / value:.1f}x"
