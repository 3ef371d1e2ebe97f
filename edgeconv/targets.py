"""Targets as data: the shipped definitions (the top-level `targets/` folder of the project,
packaged as `edgeconv/_targets/`), then `./targets/` or a folder the user names, whose files
add targets or override shipped ones of the same name.

A target says what runs there (runtimes, in order of preference: a file runs in the first
that reads its format), threads, what it is (`kind`) and, for a microcontroller, the SRAM /
flash budgets, its Arm core (`core`: the firmware path builds TFLite Micro for it and runs
it in an emulator, edgeconv.mcu), the kernel sets it runs (`kernels`, default
cmsis-nn) and its Ethos-U NPU, if any (`[npu]`: the bench compiles for it with Vela,
edgeconv.npu). A microcontroller without a core (esp32s3's Xtensa) has no firmware path.

Older target files may still carry `[runtime] flash_overhead_bytes / _source` (a 22 KB guess
at TFLM's code size): they load, the values are ignored, and the target keeps a note saying
so (flash now comes from the linked firmware).

What differs between kinds of target is the `KINDS` table below, read by the bench and the CLI; nothing else branches on a kind's name.

Every file is checked on load against `target_spec()` (edgeconv.schema: types, ranges, known
keys with a did-you-mean, one-line strings), one line naming the file and the field. Where a
file comes from decides what it may say about SSH (edgeconv.bench.ssh_rules): a file picked
up from ./targets/ of the working directory, which a cloned repository may hold, may not set
`host` or `remote_edgeconv` and only a few harmless `ssh_options`; a shipped file or one in
the folder the user names with --targets-dir may set `host`, but no option that runs a
command on this machine.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.bench.ssh_rules import NAMED_FILE, WORKING_DIR, check_host, check_options
from edgeconv.files import read_regular, show_path
from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.mcu.cores import CORES, KERNEL_SETS
from edgeconv.npu.config import ACCELERATORS
from edgeconv.runtimes.registry import runtime_names
from edgeconv.schema import Each, Int, ListOf, Num, Obj, Rule, SchemaError, Spec, Str, validate

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


MAX_THREADS = 256  # per thread count, in a target file and in --threads
MAX_TARGET_BYTES = 1 << 20  # a target file is a few hundred bytes; refuse anything huge
MAX_BYTES = 1 << 40  # 1 TiB: sram_bytes, flash_bytes
DEFAULT_KERNELS = ("cmsis-nn",)  # what a board with an Arm core runs unless its file says
# Keys of [runtime] older target files carry: accepted, ignored, noted.
_OLD_RUNTIME_KEYS = ("flash_overhead_bytes", "flash_overhead_source")
TARGET_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_LINE = r"[^\x00-\x1f\x7f]*"  # one line, no control characters


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
    # An MCU's Arm core (a key of edgeconv.mcu.CORES) and the TFLM kernel sets it runs, first
    # the default; None / (): no firmware path (no core the emulator models).
    core: str | None = None
    kernels: tuple[str, ...] = ()
    host: str | None = None  # user@board for a board reached over SSH
    # An MCU's Ethos-U NPU ([npu]: accelerator, system_config, memory_mode, clock_mhz; see
    # edgeconv.npu.config): the bench compiles int8 files for it with Vela. None: no NPU.
    npu: dict[str, Any] | None = None
    aliases: tuple[str, ...] = ()
    source: str = ""  # the file it was read from
    extra: dict[str, Any] = field(default_factory=dict)  # ssh_options, remote_edgeconv
    # The file's text as checked, what the SSH path sends to the board (not re-read).
    toml_text: str = field(default="", repr=False, compare=False)
    notes: tuple[str, ...] = ()  # what loading it said (ignored old keys)

    @property
    def kind_info(self) -> Kind:
        return KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("toml_text")
        return data


@dataclass
class _Command(Spec):
    """remote_edgeconv: a command line ("python3 -m edgeconv") or the list of its words."""

    expected: str = "a command line or a list of its words"

    def check(self, value: Any, where: str) -> Any:
        word = Str(max_len=1000, allow_empty=False, pattern=_LINE,
                   expected="a non-empty string (one line)")
        if isinstance(value, list):
            return ListOf(word, min_len=1, max_len=64).check(value, where)
        if not isinstance(value, str):
            raise SchemaError(where, self.expected, value)
        word.check(value, where)
        try:
            if shlex.split(value):
                return value
        except ValueError:
            pass
        raise SchemaError(where, "a command line shlex can split into words", value)


def target_spec(runtimes: tuple[str, ...] | list[str]) -> Obj:
    """The schema of a target file, with the runtimes registered now."""
    text = Str(max_len=1000, pattern=_LINE)

    def size(low: int) -> Spec:  # bytes, shown as such (not 1.09951e+12)
        return Each((Int(low), Rule(lambda v: v <= MAX_BYTES, "a number of bytes up to 1 TiB")))
    return Obj({
        "description": text,
        "kind": Str(choices=tuple(KINDS)),
        "runtimes": ListOf(Str(choices=tuple(runtimes)), min_len=1, max_len=64, unique=True),
        "threads": ListOf(Int(1, MAX_THREADS), min_len=1, max_len=64, unique=True),
        "arch": Str(pattern=r"[A-Za-z0-9_.+-]{1,64}", expected="an architecture name like"
                    " aarch64"),
        "cpu": text,
        "cores": Int(1, 65536),
        "clock_mhz": Each((Num(0, 100_000), Rule(lambda v: v > 0, "a number of MHz > 0"))),
        "aliases": ListOf(Str(pattern=TARGET_NAME, expected="a target name (letters, digits,"
                              " . _ -)"), max_len=32, unique=True),
        "host": Str(max_len=300, expected="[user@]host[:port]"),
        "ssh_options": ListOf(Str(max_len=1000), max_len=64),
        "remote_edgeconv": _Command(),
        "core": Str(choices=tuple(CORES)),
        "kernels": ListOf(Str(choices=KERNEL_SETS), min_len=1, max_len=len(KERNEL_SETS),
                          unique=True),
        "budgets": Obj({"sram_bytes": size(1), "flash_bytes": size(1)}, closed=True),
        "npu": Obj({"accelerator": Str(choices=ACCELERATORS),
                    "system_config": Str(pattern=r"[A-Za-z0-9_]{1,100}",
                                         expected="a system configuration of Vela's vela.ini"),
                    "memory_mode": Str(pattern=r"[A-Za-z0-9_]{1,100}",
                                       expected="a memory mode of Vela's vela.ini"),
                    "clock_mhz": Each((Num(0, 100_000),
                                       Rule(lambda v: v > 0, "a number of MHz > 0")))},
                   required=("accelerator", "system_config", "memory_mode", "clock_mhz"),
                   closed=True),
        # older files: accepted and ignored (module docstring)
        "runtime": Obj({"flash_overhead_bytes": size(0),
                        "flash_overhead_source": text}, closed=True),
    }, required=("kind", "runtimes"), closed=True)


def load_targets(targets_dir: str | Path | None = None) -> dict[str, Target]:
    """Every target by name (aliases included), shipped ones first, then ./targets/ and
    `targets_dir`, later files overriding earlier ones of the same name. A folder is read
    once, however it is reached (in the project's checkout ./targets/ is the shipped one;
    `--targets-dir targets` makes ./targets/ a folder the user named)."""
    folders = [(builtin_dir(), NAMED_FILE), (Path("targets"), WORKING_DIR)]
    if targets_dir is not None:
        if not Path(targets_dir).is_dir():
            raise EdgeconvError(f"--targets-dir {show_path(targets_dir)} is not a directory")
        named = Path(targets_dir).resolve()
        folders = [(f, o) for f, o in folders if f.resolve() != named]
        folders.append((Path(targets_dir), NAMED_FILE))
    found: dict[str, Target] = {}
    seen: set[Path] = set()
    for folder, origin in folders:
        if not folder.is_dir() or folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        for file in sorted(folder.glob("*.toml")):
            target = _read(file, origin)
            found[target.name] = target
    for target in list(found.values()):
        for alias in target.aliases:
            found.setdefault(alias, target)
    return found


def get_target(name: str, targets_dir: str | Path | None = None) -> Target:
    targets = load_targets(targets_dir)
    if name not in targets:
        shown = name if isinstance(name, str) and name.isprintable() else repr(name)
        raise EdgeconvError(f"unknown target '{shown}'{did_you_mean(str(name), targets)}; "
                            f"choose from {', '.join(sorted(targets))}")
    return targets[name]


def _read(file: Path, origin: str) -> Target:
    shown = show_path(file)
    raw = read_regular(file, MAX_TARGET_BYTES, what="target file")
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise EdgeconvError(f"{shown}: not a readable TOML target (not UTF-8 text)") from None
    except RecursionError:
        raise EdgeconvError(f"{shown}: not a readable TOML target (nested too deeply)"
                            ) from None
    except tomllib.TOMLDecodeError as exc:
        raise EdgeconvError(f"{shown}: not a readable TOML target ({exc})") from None
    if not re.fullmatch(TARGET_NAME, file.stem):
        raise EdgeconvError(f"{shown}: a target file's name is the target's name: letters,"
                            " digits, . _ - (at most 64), starting with a letter or digit")
    validate(data, target_spec(runtime_names()), shown)
    budgets, runtime = data.get("budgets", {}), data.get("runtime", {})
    kind = data["kind"]
    if KINDS[kind].fit and not set(FIT_BUDGETS) <= budgets.keys():
        raise EdgeconvError(f"{shown}: an {kind} target needs [budgets] "
                            f"{' and '.join(FIT_BUDGETS)}")
    if ("core" in data or "kernels" in data) and kind != "mcu":
        raise EdgeconvError(f"{shown}: core and kernels are for an mcu target, not {kind}")
    if "npu" in data and kind != "mcu":
        raise EdgeconvError(f"{shown}: [npu] is for an mcu target, not {kind}")
    if "kernels" in data and "core" not in data:
        raise EdgeconvError(f"{shown}: kernels need a core ({', '.join(CORES)}): without one"
                            " no firmware is built")
    notes = tuple(f"{shown}: [runtime] {key} is ignored (flash is the linked firmware's"
                  " size, edgeconv.mcu)" for key in _OLD_RUNTIME_KEYS if key in runtime)
    extra: dict[str, Any] = {}
    if origin == WORKING_DIR:
        for key in ("host", "remote_edgeconv"):
            if key in data:
                raise EdgeconvError(
                    f"{shown}: {key} is not allowed in a target file picked up from ./targets/"
                    " (a repository's file must not send a bench over SSH or choose what runs"
                    " there); name the folder with --targets-dir to trust it, or pass --host /"
                    " --remote-edgeconv")
    elif "host" in data:
        check_host(data["host"], f"{shown}: host")
    if "ssh_options" in data:
        extra["ssh_options"] = check_options(data["ssh_options"], origin,
                                             f"{shown}: ssh_options")
    if "remote_edgeconv" in data:
        extra["remote_edgeconv"] = data["remote_edgeconv"]
    return Target(
        name=file.stem, kind=kind, runtimes=tuple(data["runtimes"]),
        threads=tuple(data.get("threads", [1])), description=data.get("description", ""),
        arch=data.get("arch"), cpu=data.get("cpu"), cores=data.get("cores"),
        clock_mhz=data.get("clock_mhz"), host=data.get("host"),
        aliases=tuple(data.get("aliases", ())),
        sram_bytes=budgets.get("sram_bytes"), flash_bytes=budgets.get("flash_bytes"),
        core=data.get("core"),
        kernels=tuple(data.get("kernels", DEFAULT_KERNELS)) if "core" in data else (),
        npu=dict(data["npu"]) if "npu" in data else None,
        source=str(file), extra=extra, toml_text=text, notes=notes)
