"""Run a firmware in qemu-system-arm with instruction counting, and read back its report.

`-icount shift=0` makes every executed instruction advance virtual time by 1 ns; the firmware
reads the machine's timer (cores.Machine): on MPS2 the 25 MHz CMSDK timer, so one tick is 40
instructions (INSTRUCTIONS_PER_TICK); on MPS3 a 32 MHz one, 31.25 instructions per tick. The
firmware talks through semihosting: input.bin and output.bin in the run folder, report lines
("EDGECONV ...") on the emulator's stdout. A fault, an error line or a hang is one line.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgeconv.errors import EdgeconvError
from edgeconv.mcu.toolchain import find_emulator

INSTRUCTIONS_PER_TICK = 40   # 1 ns per instruction (-icount shift=0), timer at 25 MHz
COUNTER = ("qemu-system-arm -icount shift=0 (1 instruction = 1 ns of virtual time), read "
           "through the CMSDK APB timer0 at 25 MHz: instructions in steps of 40")


def counter(machine) -> str:
    """How a machine's instructions are counted (cores.Machine): the MPS2 timer's COUNTER,
    or the same words for an MPS3 machine's timer (32 MHz: 31.25 instructions per tick)."""
    if machine.timer == "cmsdk" and machine.timer_hz == 25_000_000:
        return COUNTER
    timer = ("the SSE-300 system counter" if machine.timer == "sse-counter"
             else "the SSE-200 CMSDK timer0")
    return (f"qemu-system-arm -icount shift=0 (1 instruction = 1 ns of virtual time), read"
            f" through {timer} at {machine.timer_hz / 1e6:g} MHz: instructions in steps of"
            f" {machine.instructions_per_tick:g}")


@dataclass
class Report:
    setup_ticks: int = 0
    setup_stack: int = 0
    arena_used_bytes: int = 0
    input_bytes: dict[int, int] = field(default_factory=dict)
    output_bytes: dict[int, int] = field(default_factory=dict)
    invokes: list[tuple[int, int]] = field(default_factory=list)  # (ticks, stack peak)
    ops: list[tuple[int, int, str]] = field(default_factory=list)  # (depth, ticks, tag)
    done: bool = False
    log: list[str] = field(default_factory=list)                   # everything else printed


def command(elf: Path, machine: str) -> list[str]:
    from edgeconv.mcu.cores import MACHINES

    extra = MACHINES[machine].qemu_options if machine in MACHINES else ()
    return [str(find_emulator()), "-M", machine, *extra, "-nographic", "-monitor", "none",
            "-serial", "null", "-semihosting-config", "enable=on,target=native",
            "-icount", "shift=0", "-kernel", str(elf)]


def run(elf: Path, machine: str, workdir: Path, *, timeout: float) -> Report:
    """Run `elf` in `workdir` (which holds input.bin) and parse its report."""
    cmd = command(elf, machine)
    proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise EdgeconvError(f"the firmware did not finish in {timeout:.0f} s on the emulated "
                            f"{machine} (hung, or far too slow)") from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    report = parse(out.decode(errors="replace"))
    if not report.done:
        reason = _CALLER.sub(lambda m: _function_at(elf, int(m.group(1), 16)), _reason(report))
        raise EdgeconvError(f"the firmware failed on the emulated {machine}: {reason}")
    return report


_CALLER = re.compile(r"from=([0-9a-f]{8})")


def _function_at(elf: Path, address: int) -> str:
    """"in tflite::Function(args)" for a return address in `elf` (the call is just before)."""
    tool = shutil.which("arm-none-eabi-addr2line")
    if tool:
        try:
            out = subprocess.run([tool, "-f", "-C", "-e", str(elf), hex(max(0, address - 2))],
                                 capture_output=True, text=True, timeout=30).stdout.split("\n")
        except (OSError, subprocess.SubprocessError):
            out = []
        if out and out[0] and out[0] != "??":
            return f"in {out[0]}"
    return f"at {address:#010x}"


def parse(text: str) -> Report:
    report = Report()
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) < 2 or parts[0] != "EDGECONV":
            if line.strip():
                report.log.append(line.strip())
            continue
        kind, rest = parts[1], parts[2:]
        if kind == "setup_ticks":
            report.setup_ticks = int(rest[0])
        elif kind == "setup_stack":
            report.setup_stack = int(rest[0])
        elif kind == "arena_used_bytes":
            report.arena_used_bytes = int(rest[0])
        elif kind == "input":
            report.input_bytes[int(rest[0])] = int(rest[1])
        elif kind == "output":
            report.output_bytes[int(rest[0])] = int(rest[1])
        elif kind == "invoke":
            report.invokes.append((int(rest[1]), int(rest[2])))
        elif kind == "op":
            report.ops.append((int(rest[2]), int(rest[3]), " ".join(rest[4:])))
        elif kind == "done":
            report.done = True
        else:  # error, fault, op_overflow
            report.log.append(" ".join(parts[1:]))
    return report


def _reason(report: Report) -> str:
    marked = [i for i, ln in enumerate(report.log) if ln.startswith(("error", "fault"))]
    if marked:  # with what TFLM printed just before it (its own reason)
        last = marked[-1]
        before = [ln for ln in report.log[max(0, last - 2):last]
                  if not ln.startswith(("error", "fault"))]
        return "; ".join([report.log[last], *before])[:400]
    if report.log:
        return "; ".join(report.log[-3:])[:300]
    return "it stopped without a report (crashed before main, or the emulator failed)"
