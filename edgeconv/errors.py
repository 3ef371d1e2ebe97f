"""The one exception type for errors a user can cause.

The CLI catches `EdgeconvError`, prints its message as one line on stderr and exits 2.
Anything else escaping to the user is a bug in edgeconv, not a user error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgeconvError(Exception):
    """A problem with the user's input: bad name, bad option, missing or corrupt file."""


def did_you_mean(given: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" with the closest choice, or '' when nothing is close."""
    matches = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def one_line(exc: BaseException) -> str:
    """A third-party exception as "Type: message" on one line, for a user-facing reason."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
