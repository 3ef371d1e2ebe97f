"""Compile a .tflite for an Ethos-U with Arm's Vela, and read back what Vela says about it.

    run = compile_for_npu(Path("model.tflite"), NpuConfig("ethos-u55-128", ...))

Vela (`ethos-u-vela`, the `npu` extra) runs in a child process (`python -m ethosu.vela`)
with a time limit, in a private folder, so a crash or a hang in it is one line here. What
comes back is Vela's own, never re-derived:

- its summary file (`<model>_summary_<system config>.csv`): total and NPU cycles, the
  latency at the configured NPU clock (`inference_time`), SRAM, flash and DRAM used, MACs;
  `VelaRun.summary` keeps the row as Vela wrote it, and the figures the bench shows are read
  from it (a test checks them against the file);
- its per-layer file (`--verbose-performance`): cycles and MACs per NPU operation;
- where each operator of the model runs: an operator the compiled model still holds as a
  TFLite operator runs on the CPU (TFLite Micro, beside the `ethos-u` custom operator that
  runs the rest), with the reason Vela printed for it (`Warning (supported operators)`).

The figures are Vela's performance model ("Vela performance estimate"): no NPU ran.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeconv._child import python_command, run_captured
from edgeconv.errors import EdgeconvError
from edgeconv.files import read_regular
from edgeconv.mcu.ops import MAX_MCU_MODEL_BYTES, ModelOps, parse_ops
from edgeconv.npu.config import NpuConfig, check, our_ini

PIP_EXTRA = "pip install 'edgeconv[npu]'"
COMPILE_TIMEOUT_S = 600.0  # the MLPerf Tiny models take about a second
KIB = 1024
# What an NPU takes: int8 tensors, or int16 activations with int8 weights (16x8); uint8
# (older quantised files) Vela also reads.
NPU_TYPES = ("int8", "int16", "uint8")
BASIS = "Vela performance estimate"


class VelaMissing(EdgeconvError):
    """Vela is not installed (the message names the pip extra)."""


class NotForNpu(EdgeconvError):
    """The file is not one an NPU runs (a float model, or one Vela already compiled)."""


@dataclass(frozen=True)
class Layer:
    """One row of Vela's per-layer file: an NPU operation (a TFLite operator may become
    several, e.g. SOFTMAX)."""

    original_op: str    # the TFLite operator, in Vela's spelling ("Conv2D")
    npu_op: str         # what Vela made of it ("Conv2D", "Relu", "LUT")
    cycles: int
    macs: int
    name: str           # the operator's output tensor
    on: str = "NPU"     # Vela's Target column: "NPU", or "CPU" for an operator left to it


@dataclass(frozen=True)
class Placement:
    """Where one operator of the model runs, and why Vela left it to the CPU."""

    index: int
    op: str             # "CONV_2D"
    output: str         # its output tensor's name
    on: str             # "NPU" or "CPU"
    reason: str | None = None


@dataclass
class VelaRun:
    config: NpuConfig
    vela_version: str
    summary_file: str                  # the summary file's name, as Vela wrote it
    summary: dict[str, str]            # its row, as Vela wrote it
    layers: list[Layer]
    placement: list[Placement]
    compiled_bytes: int                # the compiled .tflite (what the board's flash holds)
    seconds: float                     # the compile, wall clock
    log: list[str] = field(default_factory=list)

    def figure(self, key: str) -> float:
        return float(self.summary[key])

    @property
    def cycles_total(self) -> int:
        return int(self.figure("cycles_total"))

    @property
    def cycles_npu(self) -> int:
        return int(self.figure("cycles_npu"))

    @property
    def latency_ms(self) -> float:
        """Vela's inference_time at the target's NPU clock, in ms."""
        return self.figure("inference_time") * 1e3

    @property
    def sram_bytes(self) -> int:
        return round(self.figure("sram_memory_used") * KIB)

    @property
    def flash_bytes(self) -> int:
        """Vela's on-chip + off-chip flash used (weights and command stream)."""
        return round((self.figure("on_chip_flash_memory_used")
                      + self.figure("off_chip_flash_memory_used")) * KIB)

    @property
    def dram_bytes(self) -> int:
        return round(self.figure("dram_memory_used") * KIB)

    @property
    def cpu_ops(self) -> list[Placement]:
        return [p for p in self.placement if p.on == "CPU"]

    def to_dict(self) -> dict[str, Any]:
        """What a results row keeps (records.NPU)."""
        return {"accelerator": self.config.accelerator,
                "system_config": self.config.system_config,
                "memory_mode": self.config.memory_mode, "clock_mhz": self.config.clock_mhz,
                "vela": self.vela_version, "cycles_total": self.cycles_total,
                "cycles_npu": self.cycles_npu, "latency_ms": self.latency_ms,
                "sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes,
                "dram_bytes": self.dram_bytes, "macs": int(self.figure("nn_macs")),
                "compiled_bytes": self.compiled_bytes, "summary_file": self.summary_file,
                "summary": dict(self.summary),
                "npu_ops": sum(p.on == "NPU" for p in self.placement),
                "cpu_ops": sum(p.on == "CPU" for p in self.placement),
                "placement": [asdict(p) for p in self.placement],
                "layers": [asdict(layer) for layer in self.layers],
                "compile_seconds": round(self.seconds, 3), "basis": BASIS}


def vela_installed() -> str:
    """Vela's version, or VelaMissing naming the pip extra (nothing is imported: a
    missing or broken Vela never costs the bench more than this line)."""
    try:
        found = importlib.util.find_spec("ethosu.vela")
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise VelaMissing(f"Ethos-U figures need Arm's Vela compiler, which is not installed:"
                          f" {PIP_EXTRA}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ethos-u-vela")
    except PackageNotFoundError:
        return "?"


def arm_ini() -> Path:
    """Vela's own configuration file (Arm/vela.ini in the installed package)."""
    spec = importlib.util.find_spec("ethosu")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        ini = Path(root) / "config_files" / "Arm" / "vela.ini"
        if ini.is_file():
            return ini
    raise VelaMissing(f"Vela's configuration file (ethosu/config_files/Arm/vela.ini) is not"
                      f" there: reinstall it ({PIP_EXTRA})")


def check_npu_model(ops: ModelOps, label: str) -> None:
    """An NPU runs int8 models (and int16 activations with int8 weights): a float model is
    one line, before Vela would quietly leave every operator to the CPU."""
    kinds = {t.dtype for t in (*ops.inputs, *ops.outputs)}
    kinds |= {d for op in ops.ops if not op.custom for d in (*op.output_dtypes,)}
    floats = sorted(k for k in kinds if k.startswith("float"))
    if floats or not kinds & set(NPU_TYPES):
        raise NotForNpu(f"{label} is not an int8 (or int16x8) model ({', '.join(floats)}"
                            f" tensors): the Ethos-U runs quantised models only; export it"
                            " with --int8")
    if any(op.op == "ethos-u" for op in ops.ops):
        raise NotForNpu(f"{label} is already compiled for an Ethos-U (an ethos-u"
                            " operator): give the model Vela compiled it from")


def compile_for_npu(model: Path, config: NpuConfig, *, label: str | None = None,
                    timeout: float = COMPILE_TIMEOUT_S, where: str = "npu") -> VelaRun:
    """Compile `model` with Vela for `config` and read back its figures (module doc)."""
    shown = label or str(model)
    version = vela_installed()
    ini = arm_ini()
    check(config, ini, where)
    data = read_regular(model, MAX_MCU_MODEL_BYTES, what="model")
    ops = parse_ops(data, shown)
    check_npu_model(ops, shown)
    with tempfile.TemporaryDirectory(prefix="edgeconv-vela-") as tmp:
        work = Path(tmp)
        source = work / "model.tflite"
        source.write_bytes(data)
        (work / "edgeconv.ini").write_text(our_ini(config, ini))
        out = work / "out"
        cmd = python_command("ethosu.vela", [
            str(source), "--accelerator-config", config.accelerator,
            "--config", str(work / "edgeconv.ini"),
            "--system-config", config.system_config, "--memory-mode", config.memory_mode,
            "--output-dir", str(out), "--verbose-performance", "--show-cpu-operations"])
        started = time.monotonic()
        text = _run(cmd, work, timeout, shown)
        seconds = time.monotonic() - started
        summary_path = next(iter(sorted(out.glob("*_summary_*.csv"))), None)
        compiled = out / "model_vela.tflite"
        if summary_path is None or not compiled.is_file():
            raise EdgeconvError(f"Vela wrote no summary or compiled model for {shown}:"
                                f" {_last_error(text)}")
        summary = _summary(summary_path.read_text(), shown)
        layers = _layers(out / "model_per-layer.csv")
        compiled_ops = parse_ops(compiled.read_bytes(), f"{shown} (compiled by Vela)")
        placement = _placement(ops, compiled_ops, _reasons(text))
        return VelaRun(config, version, summary_path.name.replace("model_", "", 1), summary,
                       layers, placement, compiled.stat().st_size, seconds,
                       [ln for ln in text.splitlines() if ln.strip()][-60:])


def _run(cmd: list[str], cwd: Path, timeout: float, shown: str) -> str:
    try:  # bounded: Vela's report is kilobytes, a runaway one is not kept whole
        result = run_captured(cmd, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise EdgeconvError(f"Vela did not finish compiling {shown} in {timeout:.0f} s"
                            ) from None
    except OSError as exc:
        raise EdgeconvError(f"cannot run Vela ({exc.strerror or exc})") from None
    text = result.stdout + result.stderr
    if result.returncode != 0:
        raise EdgeconvError(f"Vela could not compile {shown}: {_last_error(text)}")
    return text


def _last_error(text: str) -> str:
    """Vela's own reason: its last `Error: ...` line (it prints a traceback before it)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error:" in line:
            found = line[line.index("Error:"):].strip("'\" ")
            return " ".join(found.split())[:400]
    return "; ".join(lines[-2:])[:400] or "no output"


def _summary(text: str, shown: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(text)))
    needed = ("cycles_total", "cycles_npu", "inference_time", "sram_memory_used",
              "on_chip_flash_memory_used", "off_chip_flash_memory_used", "dram_memory_used",
              "nn_macs")
    if len(rows) != 1 or any(k not in rows[0] for k in needed):
        raise EdgeconvError(f"Vela's summary file for {shown} is not the one row of figures"
                            " this edgeconv reads (another Vela version?)")
    return {k: v for k, v in rows[0].items() if k is not None}


def _layers(path: Path) -> list[Layer]:
    if not path.is_file():
        return []
    layers = []
    for row in csv.DictReader(io.StringIO(path.read_text())):
        try:
            layers.append(Layer(row["Original Operator"], row["NNG Operator"],
                                int(float(row["Op Cycles"])), int(float(row["MAC Count"])),
                                row["Name"], row.get("Target") or "NPU"))
        except (KeyError, ValueError):
            continue  # a row this edgeconv does not read: left out, never guessed
    return layers


_WARNING = re.compile(r"^Warning \(supported operators\) operator: (\S+), ofm: '(.*)'$")


def _reasons(text: str) -> dict[tuple[str, str], str]:
    """(operator, output tensor) -> Vela's reason (its `Reason:` line and the detail after
    it), from the warnings it prints for each operator it leaves to the CPU."""
    reasons: dict[tuple[str, str], str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        found = _WARNING.match(line.strip())
        if not found:
            continue
        detail = []
        for follow in lines[i + 1:i + 6]:
            if not follow.strip() or _WARNING.match(follow.strip()):
                break
            detail.append(follow.strip().removeprefix("Reason: "))
        reasons[(found.group(1), found.group(2))] = " ".join(detail) or "no reason printed"
    return reasons


def _placement(ops: ModelOps, compiled: ModelOps, reasons: dict[tuple[str, str], str]
               ) -> list[Placement]:
    """Each operator of the model on the NPU or the CPU: on the CPU when the compiled model
    still holds it as a TFLite operator with the same output tensor."""
    on_cpu = {(op.op, name) for op in compiled.ops if op.op != "ethos-u"
              for name in op.output_names}
    by_output = {ofm: reason for (_, ofm), reason in reasons.items()}
    found = []
    for op in ops.ops:
        output = op.output_names[0] if op.output_names else ""
        if any((op.op, name) in on_cpu for name in op.output_names):
            reason = reasons.get((op.op, output)) or by_output.get(output) or \
                "left to the CPU by Vela (no reason printed)"
            found.append(Placement(op.index, op.op, output, "CPU", reason))
        else:
            found.append(Placement(op.index, op.op, output, "NPU"))
    return found
