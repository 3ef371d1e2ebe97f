"""Targets as data: the shipped definitions (the top-level `targets/` folder of the project,
packaged as `edgeconv/_targets/`), then `./targets/` or a folder the user names, whose files
add targets or override shipped ones of the same name.

A target says what runs there (runtimes, in order of preference: a file runs in the first
that reads its format), threads, what it is (`kind`) and, for a microcontroller, the SRAM /
flash budgets and the runtime's flash overhead. What differs between kinds of target is the
`KINDS` table below, read by the bench and the CLI; nothing else branches on a kind's name.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.runtimes.registry import runtime_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Kind:
    """What a kind of target means to a bench."""

    name: str
    description: str
    # Where a row's latency is measured: "target" (on the target itself) or "host" (this
    # machine, running the runtime that stands in for the target: TFLite Micro for an MCU).
    timed_on: str
    ssh: bool  # may be benched on another machine over SSH (--host)
    # "module:function(target, config)" that raises EdgeconvError when this machine cannot
    # bench the target here (no GPU, another CPU architecture); None: it always can.
    reachable: str | None
    # Rows get the fit check: the runtime gets the board's SRAM as its arena, and arena /
    # flash are compared with [budgets] sram_bytes / flash_bytes, which the file must give.
    fit: bool
    device: str  # what the measuring child runs on: "cpu" or "gpu"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("host", "this machine's CPU", timed_on="target", ssh=True, reachable=None, fit=False,
         device="cpu"),
    Kind("gpu", "an NVIDIA GPU on this machine", timed_on="target", ssh=True,
         reachable="edgeconv.bench.local:check_gpu", fit=False, device="gpu"),
    Kind("board", "a Linux board (Raspberry Pi): benched on it, or over SSH", timed_on="target",
         ssh=True, reachable="edgeconv.bench.local:check_arch", fit=False, device="cpu"),
    Kind("mcu", "a microcontroller: its runtime emulated on this machine", timed_on="host",
         ssh=False, reachable=None, fit=True, device="cpu"),
)}
FIT_BUDGETS = ("sram_bytes", "flash_bytes")  # what a `fit` kind's [budgets] must give


def builtin_dir() -> Path:
    """The shipped definitions.

    The project keeps them in its top-level `targets/` folder; `edgeconv/_targets` is a
    symlink to it, which a wheel carries as package data (real files). Where the link did
    not survive a checkout (git on Windows without symlinks), the checkout's folder is used.
    """
    packaged = _PACKAGE / "_targets"
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / "targets"


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # a key of KINDS
    runtimes: tuple[str, ...]  # in order of preference
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

    @property
    def kind_info(self) -> Kind:
        return KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_targets(targets_dir: str | Path | None = None) -> dict[str, Target]:
    """Every target by name (aliases included), shipped ones first, then ./targets/ and
    `targets_dir`, later files overriding earlier ones of the same name. A folder is read
    once, however it is reached (in the project's checkout ./targets/ is the shipped one)."""
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
    known_runtimes = runtime_names()
    for name in runtimes:
        if name not in known_runtimes:
            raise EdgeconvError(f"{file}: unknown runtime {name!r}"
                                f"{did_you_mean(str(name), known_runtimes)}; choose from"
                                f" {', '.join(known_runtimes)}")
    if KINDS[kind].fit and not set(FIT_BUDGETS) <= budgets.keys():
        raise EdgeconvError(f"{file}: an {kind} target needs [budgets] "
                            f"{' and '.join(FIT_BUDGETS)}")
    known = {"description", "arch", "cpu", "cores", "clock_mhz", "host"}
    return Target(
        name=file.stem, kind=kind, runtimes=runtimes, threads=threads,
        aliases=tuple(data.pop("aliases", ())),
        **{k: data.pop(k) for k in known & data.keys()},
        sram_bytes=budgets.get("sram_bytes"), flash_bytes=budgets.get("flash_bytes"),
        flash_overhead_bytes=runtime.get("flash_overhead_bytes"),
        flash_overhead_source=runtime.get("flash_overhead_source"),
        source=str(file), extra=data)
