"""Where edgeconv keeps what it builds once and reuses (emulated boards, Cortex-M libraries
and firmwares): one folder per kind under the user's cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str, override_env: str) -> Path:
    """$override_env if set, else $XDG_CACHE_HOME/edgeconv/KIND, else ~/.cache/edgeconv/KIND."""
    given = os.environ.get(override_env)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgeconv" / kind
