"""Output helpers shared by the commands: JSON for scripts, rich tables for people.

Tables go to stdout (they are the result); progress and diagnostics go to stderr.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
from typing import Any

# What the bench and export tables are made to fit by default (their less-used columns wait
# behind --wide): a common terminal's width, and what a piped table is cut to by COLUMNS.
FIT_WIDTH = 120


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def stdout_console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped into a file or a CI log: wide enough that tables stay one row per line,
        # unless COLUMNS says how wide the reader's screen is.
        columns = os.environ.get("COLUMNS", "")
        console = Console(width=int(columns) if columns.isdigit() and int(columns) else 200)
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


def table(title: str | None, columns: list[str], rows: list[list[Any]], *, right: set[str] = (),
          no_wrap: set[str] = ()):
    """A rich Table with numeric columns (named in `right`) right-aligned; the columns named in
    `no_wrap` never wrap (an interval stays on one line)."""
    from rich.table import Table

    # min_width keeps a narrow table from wrapping its own title (up to FIT_WIDTH: a longer
    # title wraps rather than widening the table past a common terminal).
    t = Table(title=title, title_justify="left", header_style="bold",
              min_width=min(len(title) + 2, FIT_WIDTH) if title else None)
    for i, name in enumerate(columns):
        # The first column names the row (a model, a layer): never wrap or truncate it.
        t.add_column(name, justify="right" if name in right else "left",
                     no_wrap=i == 0 or name in no_wrap)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def file_table(title: str, columns: list[str], rows: list[list[Any]], *,
               right: set[str] = (), no_wrap: set[str] = (), keep: set[str] = ()):
    """A table whose first column names files, made to fit: the folder all of them lie in is
    said once, in the title; where the rest still name several folders, each run of rows in
    one folder gets a heading row with the folder and its rows the file names alone. Columns
    empty in every row are left out, except those named in `keep`. The title is a line of
    its own above the table (wrapped at the screen's width), so that a long title never
    widens a narrow table."""
    from rich.console import Group
    from rich.text import Text

    shown = [c for i, c in enumerate(columns)
             if i == 0 or c in keep or any(row[i] not in (None, "") for row in rows)]
    rows = [[row[columns.index(c)] for c in shown] for row in rows]
    names = [str(row[0]) for row in rows]
    common = _common_folder(names)
    if common:
        title += f"; files in {common}/"
        names = [posixpath.relpath(n, common) for n in names]
    t = table(None, shown, [], right=right, no_wrap=no_wrap)
    folders = [posixpath.dirname(n) for n in names]
    grouped = len(set(folders)) > 1
    for i, (row, name, folder) in enumerate(zip(rows, names, folders)):
        if grouped and folder and (i == 0 or folders[i - 1] != folder):
            t.add_row(f"{folder}/", style="bold")
        cells = [f"  {posixpath.basename(name)}" if grouped and folder else name, *row[1:]]
        t.add_row(*("" if v is None else str(v) for v in cells))
    return Group(Text(title, style="table.title"), t)


def _common_folder(names: list[str]) -> str:
    """The folder every name lies in, "" when none (a bare file name, or no shared folder)."""
    folders = [posixpath.dirname(n) for n in names]
    if not folders or not all(folders):
        return ""
    try:
        return posixpath.commonpath(folders)
    except ValueError:  # absolute and relative names mixed
        return ""


def percent_interval(value: float | None, interval: list[float] | None) -> str:
    """97.5 [96.9–98.0]: a share in percent (the column says so) and its 95% interval, with
    the digits that show the interval's width."""
    if value is None:
        return ""
    if not interval:
        return f"{100 * value:.2f}"
    low, high = (100 * v for v in interval)
    digits = 2 if high - low < 1 else 1
    return f"{100 * value:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}]"


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


def print_table(console, table, *, wide: bool = False) -> None:
    """Print a table; `wide` (--wide): at its natural width even where that is wider than
    the screen (the lines then run on) rather than squeezed into columns of ellipses."""
    if not wide:
        console.print(table)
        return
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    screen = console.width
    console.width = max(screen, natural)  # print(width=) is capped at the console's
    try:
        console.print(table, crop=False)
    finally:
        console.width = screen
