"""Find the Arm GNU toolchain and the Cortex-M emulator on PATH.

A missing tool is a user's fix (install a Debian package), so it is one line naming the
packages, never a traceback from subprocess.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeconv.errors import EdgeconvError

COMPILER_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
EMULATOR_PACKAGE = "qemu-system-arm"


class ToolMissing(EdgeconvError):
    """A program the MCU path needs is not installed (the message names the packages)."""


@dataclass(frozen=True)
class Toolchain:
    gcc: Path
    gxx: Path
    ar: Path
    size: Path
    version: str      # e.g. "arm-none-eabi-gcc 12.2.1": part of the library's cache key


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def find_toolchain() -> Toolchain:
    names = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-ar", "arm-none-eabi-size")
    paths = [_which(n) for n in names]
    missing = [n for n, p in zip(names, paths) if p is None]
    if missing:
        raise ToolMissing(f"{', '.join(missing)} not found on PATH: install the Arm GNU "
                          f"toolchain (apt-get install {COMPILER_PACKAGES})")
    gcc, gxx, ar, size = paths  # type: ignore[misc]
    return Toolchain(gcc, gxx, ar, size, _version(str(gcc)))


@functools.lru_cache(maxsize=8)
def _version(gcc: str) -> str:
    try:
        out = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolMissing(f"{gcc} does not run ({exc}); reinstall {COMPILER_PACKAGES}") from None
    return f"arm-none-eabi-gcc {out}"


def find_emulator() -> Path:
    qemu = _which("qemu-system-arm")
    if qemu is None:
        raise ToolMissing(f"qemu-system-arm not found on PATH: install the Cortex-M emulator "
                          f"(apt-get install {EMULATOR_PACKAGE})")
    return qemu


def check_tools() -> None:
    """Raise ToolMissing unless both the compiler and the emulator are there: one line with
    the one command that installs every missing piece."""
    try:
        find_toolchain()
    except ToolMissing:
        if _which("qemu-system-arm") is None:  # both missing: one command, not two in turn
            raise ToolMissing("MCU firmware figures need the Arm toolchain and its emulator:"
                              f" apt-get install {COMPILER_PACKAGES} {EMULATOR_PACKAGE}"
                              ) from None
        raise
    find_emulator()
