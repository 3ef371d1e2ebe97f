"""The harness: check the target can be benched from here, make the one plan, hand it to its
executors, write results.json. Here: the host executor (`local.bench_here`) measures every
row, and on an MCU target with an Arm core the firmware executor (`firmware.bench_firmware`)
makes the rows of those the core takes, which stand in the results where the host's row
would (`_bench_here`), and on a target with an Ethos-U NPU the NPU executor
(`npu.bench_npu`) adds each .tflite's Vela row after them. On a board: the SSH executor
(`remote.bench_over_ssh`). With
`emulated`, the board is the emulated one standing in for the target (edgeconv.board),
started for this bench on a loopback port and stopped at its end: the same SSH path.

Everything a user gives is checked before any work: the numbers (BenchConfig), the output
path, the target file, the SSH options; then each model is copied into a private scratch
folder (removed at the end) as the bytes that were hashed and checked, and only those
copies are run or sent.
"""

from __future__ import annotations

import os
import platform
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeconv import __version__, _atomic
from edgeconv.bench import firmware, local, npu
from edgeconv.bench.plan import BenchConfig, Plan, PlannedRow, collect, emulation, make_plan
from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.formats import resolve
from edgeconv.progress import Progress
from edgeconv.records import BenchReport, BenchRow
from edgeconv.runtimes import runtime_versions
from edgeconv.runtimes.registry import get_runtime
from edgeconv.stats import load_note
from edgeconv.targets import Target, get_target


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Bench `config.paths` on `config.target`; written to `config.out` when it is set."""
    progress = progress or Progress()
    if config.out is not None:
        _atomic.check_output_file(config.out, "--out")
    target = get_target(config.target, config.targets_dir)
    kind = target.kind_info
    if config.local and config.host:
        raise EdgeconvError("--local benches on this machine, --host on another: pick one")
    board = _emulated_board(target, config) if config.emulated else None
    host = None if board else config.host or (None if config.local else target.host)
    if host is not None and not kind.ssh:
        raise EdgeconvError(f"{target.name} is an {kind.name} target ({kind.description}),"
                            " not reached over SSH; drop --host")
    if config.runtime is not None:
        get_runtime(config.runtime)  # unknown: one line with the closest name
        if config.runtime not in target.runtimes:
            raise EdgeconvError(f"target {target.name} runs {', '.join(target.runtimes)}, not"
                                f" '{config.runtime}'"
                                f"{did_you_mean(config.runtime, target.runtimes)}")
    if host is None and board is None and kind.reachable:
        resolve(kind.reachable)(target, config)
    npu.check_target(target)  # [npu] names Vela does not know: one line, before any work
    if config.outputs_dir is not None:  # the board's side of an SSH bench
        _atomic.check_output_dir(config.outputs_dir, "--outputs-dir")
        Path(config.outputs_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    ssh = None
    if host is not None:
        from edgeconv.bench import remote  # only the SSH path needs it

        ssh = remote.check_ssh(host, target, config)  # before copying anything
    with tempfile.TemporaryDirectory(prefix="edgeconv-bench-") as scratch:
        plan = make_plan(collect(list(config.paths), Path(scratch) / "files"), target, config)
        if board is not None:
            env, results, notes = _bench_on_board(board, plan, config, progress)
        elif ssh is not None:
            env, results, notes = remote.bench_over_ssh(ssh, plan, config, progress)
        else:
            env, results, notes = _bench_here(plan, config, progress, Path(scratch) / "work")
    if env.get("emulated"):  # the board said so (its marker), whatever reached it
        for row in results:
            row.timed_on = "emulated"
    report = BenchReport(environment=env, config=config.record(), results=results,
                         notes=notes, out=config.out)
    if config.out is not None:
        report.write(config.out)
    return report


def _bench_here(plan: Plan, config: BenchConfig, progress: Progress, scratch: Path
                ) -> tuple[dict[str, Any], list[BenchRow], list[str]]:
    """The plan on this machine: (the environment, the rows in plan order, notes). The host
    executor measures every row; each row the firmware executor takes goes to it as
    measured, and its rows (one per kernel set) take that row's place. Then the MACs of an
    export's reference row for its other rows, and the machine's load before and after
    (the notes say when it exceeded the cores)."""
    scratch.mkdir(mode=0o700)
    load_before = local.load_average()
    work = local.prepare(plan, config, scratch)
    measured = local.bench_here(plan, config, progress, work)  # one per planned row
    routed = [n for n, planned in enumerate(plan.rows) if firmware.takes(planned, plan.target)]
    made = dict(zip(routed, firmware.bench_firmware(
        [(plan.rows[n], measured[n]) for n in routed], plan.target, config, work, progress)))
    # a target with an Ethos-U: each .tflite's NPU row (Vela) after its rows on the core,
    # whose per-operator counts cost the operators Vela leaves to the CPU
    to_npu = [n for n, planned in enumerate(plan.rows) if npu.takes(planned, plan.target)]
    compiled = dict(zip(to_npu, npu.bench_npu(
        [(plan.rows[n], made.get(n, [measured[n]])) for n in to_npu], plan.target, config,
        progress)))
    rows = [(planned, row) for n, planned in enumerate(plan.rows)
            for row in [*made.get(n, [measured[n]]), *([compiled[n]] if n in compiled else [])]]
    _add_macs(rows)
    load_after = local.load_average()
    busy = load_note(load_before, load_after, os.cpu_count())
    env = {**environment(plan.target), "load_before": load_before, "load_after": load_after}
    return (env, [row for _, row in rows],
            list(plan.target.notes) + plan.notes + ([busy] if busy else []))


def _add_macs(rows: list[tuple[PlannedRow, BenchRow]]) -> None:
    """MACs come from the Keras model (only its child imports Keras): they hold for every
    file of the same export, whose ops are the same layers."""
    by_export = {}
    for planned, row in rows:
        if row.macs and planned.artifact.manifest is not None:
            by_export[planned.artifact.manifest.directory] = row.macs
    for planned, row in rows:
        manifest = planned.artifact.manifest
        macs = by_export.get(manifest.directory) if manifest else None
        if macs and row.latency_ms:
            row.macs = macs
            row.gmac_per_s = macs / (row.latency_ms.p50 / 1000.0) / 1e9


def _emulated_board(target: Target, config: BenchConfig):
    """The complete emulated board standing in for `target` (--emulated), or one line."""
    from edgeconv.board import BOARDS, host, load

    if config.host or config.local:
        other = ("--host names another machine" if config.host
                 else "--local benches on this one")
        raise EdgeconvError(f"--emulated benches on an emulated board this machine starts;"
                            f" {other}: pick one")
    names = [spec.name for spec in BOARDS.values() if spec.target == target.name]
    if not names:
        kind = target.kind_info
        raise EdgeconvError(f"--emulated runs a board target on its emulated board"
                            f" ({', '.join(s.target for s in BOARDS.values())}); target"
                            f" {target.name} is of kind {kind.name} ({kind.description})")
    board = load(names[0])  # not created, half-built or stale: one line saying what to run
    host.require_root(f"edgeconv bench --target {target.name} --emulated")
    return board


def _bench_on_board(board, plan: Plan, config: BenchConfig, progress: Progress
                    ) -> tuple[dict[str, Any], list, list[str]]:
    """Start the emulated board, bench the plan on it over SSH (its host, key, known_hosts
    and edgeconv), stop it (also on an error or Ctrl-C)."""
    from edgeconv.bench import remote
    from edgeconv.board import start

    progress.start(1, f"starting the emulated board {board.name} ({board.cpu})")
    with start(board.name) as running:
        config = replace(config, host=running.host, remote_edgeconv=running.remote_edgeconv,
                         ssh_options=(*running.ssh_options, *config.ssh_options))
        ssh = remote.check_ssh(running.host, plan.target, config)
        env, results, notes = remote.bench_over_ssh(ssh, plan, config, progress)
    if not env.get("emulated"):  # a board's edgeconv that does not read its marker
        env["emulated"] = {"board": board.name, "target": board.target, "cpu": board.cpu,
                           "qemu_cpu": board.qemu_cpu}
        env["cpu"] = _emulated_cpu(board.cpu)
    return env, results, notes


def environment(target: Target) -> dict[str, Any]:
    env = {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
           "machine": platform.machine(), "os": platform.platform(),
           "python": platform.python_version(), "edgeconv": __version__,
           "runtimes": runtime_versions(), "target": target.to_dict(),
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    marker = emulation()
    if marker:  # an emulated board (edgeconv board): its timings are not the board's
        env.update(cpu=_emulated_cpu(marker["cpu"]), emulated=marker)
    return env


def _emulated_cpu(cpu: str) -> str:
    return f"{cpu} (emulated, qemu user mode)"


# Arm's part numbers (the Main ID register's PartNum, /proc/cpuinfo `CPU part`, implementer
# 0x41) of the cores boards carry: an aarch64 kernel prints no "model name".
ARM_PARTS = {
    0xd03: "Cortex-A53", 0xd04: "Cortex-A35", 0xd05: "Cortex-A55", 0xd07: "Cortex-A57",
    0xd08: "Cortex-A72", 0xd09: "Cortex-A73", 0xd0a: "Cortex-A75", 0xd0b: "Cortex-A76",
    0xd0c: "Neoverse-N1", 0xd0d: "Cortex-A77", 0xd40: "Neoverse-V1", 0xd41: "Cortex-A78",
    0xd44: "Cortex-X1", 0xd46: "Cortex-A510", 0xd47: "Cortex-A710", 0xd48: "Cortex-X2",
    0xd49: "Neoverse-N2", 0xd4f: "Neoverse-V2",
}


def _cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name: x86's "model name", else the Arm core named by `CPU part` (each kind
    once, in order: "Cortex-A55 + Cortex-A76" on a big.LITTLE board)."""
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        text = ""
    cores: list[str] = []
    implementer = None
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and value:
            return value
        if key == "CPU implementer":
            implementer = value
        if key == "CPU part" and implementer == "0x41":
            try:
                name = ARM_PARTS.get(int(value, 16), f"Arm core {value}")
            except ValueError:
                continue
            if name not in cores:
                cores.append(name)
    if cores:
        return " + ".join(cores)
    return platform.processor() or platform.machine()
