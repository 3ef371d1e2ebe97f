"""The edgeconv wheel a board installs, built from this checkout as a user would build one
to copy to a Pi (`pip wheel --no-deps`: edgeconv is pure Python; its aarch64 dependencies
come from the package index inside the board).

The build runs on a copy of the files the wheel is made of, so the checkout gets no build/
folder. Its digest is over the wheel's members, not the zip file's bytes (whose timestamps
change with every build): the same sources give the same digest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from edgeconv._child import python_command
from edgeconv.board._proc import run_step
from edgeconv.errors import EdgeconvError

WHEEL_ENV = "EDGECONV_BOARD_WHEEL"  # a ready edgeconv wheel, when edgeconv is not a checkout
_TOP_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", "README.md",
              "README.rst", "LICENSE", "LICENSE.txt", "NOTICE")


def checkout() -> Path | None:
    """The source tree edgeconv runs from, when it is one (an editable install)."""
    top = Path(__file__).resolve().parents[2]
    pyproject = top / "pyproject.toml"
    try:
        if 'name = "edgeconv"' in pyproject.read_text():
            return top
    except OSError:
        pass
    return None


def build(out: Path) -> Path:
    """An edgeconv wheel in `out`: $EDGECONV_BOARD_WHEEL's, else one built from the checkout."""
    given = os.environ.get(WHEEL_ENV)
    if given:
        wheel = Path(given).expanduser()
        if not (wheel.is_file() and wheel.name.startswith("edgeconv-")
                and wheel.suffix == ".whl"):
            raise EdgeconvError(f"{WHEEL_ENV}={given}: not an edgeconv-*.whl file")
        out.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheel, out / wheel.name))
    top = checkout()
    if top is None:
        raise EdgeconvError("edgeconv is not running from its source tree, so there is no wheel"
                            f" to install on the board: set {WHEEL_ENV}=path/to/edgeconv-*.whl")
    with tempfile.TemporaryDirectory(prefix="edgeconv-wheel-") as scratch:
        source = Path(scratch) / "src"
        source.mkdir()
        for name in _TOP_FILES:
            if (top / name).is_file():
                shutil.copy2(top / name, source / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        # symlinks=True keeps edgeconv/_targets -> ../targets, which setuptools follows
        shutil.copytree(top / "edgeconv", source / "edgeconv", symlinks=True, ignore=ignore)
        if (top / "targets").is_dir():
            shutil.copytree(top / "targets", source / "targets", ignore=ignore)
        out.mkdir(parents=True, exist_ok=True)
        # pip, and the build it starts, run in the scratch folder and never import from the
        # user's working directory (a checkout holding pip/__main__.py would run as root).
        run_step(python_command("pip", ["wheel", "--no-deps", "--quiet", "--wheel-dir",
                                        str(out.resolve()), str(source)]),
                 what="building the edgeconv wheel", timeout=600, cwd=scratch)
    wheels = sorted(out.glob("edgeconv-*.whl"))
    if len(wheels) != 1:
        raise EdgeconvError(f"building the edgeconv wheel left {len(wheels)} wheels in {out}")
    return wheels[0]


def digest(wheel: Path) -> str:
    """sha256 over the wheel's member names and contents, in name order."""
    sha = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in sorted(archive.namelist()):
                sha.update(name.encode() + b"\0")
                sha.update(archive.read(name))
                sha.update(b"\0")
    except (OSError, zipfile.BadZipFile) as exc:
        raise EdgeconvError(f"{wheel}: not a readable wheel ({exc})") from None
    return sha.hexdigest()


def version(wheel: Path) -> str:
    """The version in a wheel's file name (edgeconv-0.1.0-py3-none-any.whl -> 0.1.0)."""
    parts = wheel.name.split("-")
    return parts[1] if len(parts) >= 5 else "?"
