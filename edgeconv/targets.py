"""Targets as data: `edgeconv/_targets/*.toml` (shipped with edgeconv, package data), then
`./targets/` or a folder the user names, whose files add targets or override shipped ones
of the same name.

A target says what runs there (runtimes, threads), what it is (host, gpu, board, mcu) and,
for a microcontroller, the SRAM / flash budgets and the runtime's flash overhead.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KINDS = ("host", "gpu", "board", "mcu")
_PACKAGE = Path(__file__).resolve().parent


def builtin_dir() -> Path:
    """The shipped definitions: package data (edgeconv/_targets/*.toml), so a wheel has them."""
    return _PACKAGE / "_targets"


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # host | gpu | board | mcu
    runtimes: tuple[str, ...]
    threads: tuple[int, ...]
    description: str = ""
    arch: str | None = None
    cpu: str | None = None
    cores: int | None = None
    clock_mhz: float | None = None
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    flash_overhead_bytes: int | None = None  # the runtime's code in flash (TFLM), an estimate
    flash_overhead_source: str | None = None
    host: str | None = None  # user@board for a board reached over SSH
    aliases: tuple[str, ...] = ()
    source: str = ""  # the file it was read from
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_targets(targets_dir: str | Path | None = None) -> dict[str, Target]:
    """Every target by name (aliases included), shipped ones first, then ./targets/ and
    `targets_dir`, later files overriding earlier ones of the same name."""
    folders = [builtin_dir(), Path("targets")]
    if targets_dir is not None:
        if not Path(targets_dir).is_dir():
            raise EdgeconvError(f"--targets-dir {targets_dir} is not a directory")
        folders.append(Path(targets_dir))
    found: dict[str, Target] = {}
    seen: set[Path] = set()
    for folder in folders:
        if not folder.is_dir() or folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        for file in sorted(folder.glob("*.toml")):
            target = _read(file)
            found[target.name] = target
    for target in list(found.values()):
        for alias in target.aliases:
            found.setdefault(alias, target)
    return found


def get_target(name: str, targets_dir: str | Path | None = None) -> Target:
    targets = load_targets(targets_dir)
    if name not in targets:
        raise EdgeconvError(f"unknown target '{name}'{did_you_mean(name, targets)}; "
                            f"choose from {', '.join(sorted(targets))}")
    return targets[name]


def _read(file: Path) -> Target:
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EdgeconvError(f"{file}: not a readable TOML target ({exc})") from None
    budgets, runtime = data.pop("budgets", {}), data.pop("runtime", {})
    try:
        kind = data.pop("kind")
        runtimes = tuple(data.pop("runtimes"))
        threads = tuple(int(t) for t in data.pop("threads", [1]))
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgeconvError(f"{file}: a target needs kind, runtimes and a list of integer "
                            f"threads ({type(exc).__name__}: {exc})") from None
    if kind not in KINDS:
        raise EdgeconvError(f"{file}: kind '{kind}' is not one of {', '.join(KINDS)}")
    if kind == "mcu" and not {"sram_bytes", "flash_bytes"} <= budgets.keys():
        raise EdgeconvError(f"{file}: an mcu target needs [budgets] sram_bytes and flash_bytes")
    known = {"description", "arch", "cpu", "cores", "clock_mhz", "host"}
    return Target(
        name=file.stem, kind=kind, runtimes=runtimes, threads=threads,
        aliases=tuple(data.pop("aliases", ())),
        **{k: data.pop(k) for k in known & data.keys()},
        sram_bytes=budgets.get("sram_bytes"), flash_bytes=budgets.get("flash_bytes"),
        flash_overhead_bytes=runtime.get("flash_overhead_bytes"),
        flash_overhead_source=runtime.get("flash_overhead_source"),
        source=str(file), extra=data)
