"""The NPU executor: the plan's int8 .tflite rows on a target with an Ethos-U, compiled with
Vela for the target's accelerator, system configuration, memory mode and NPU clock
(edgeconv.npu).

For each planned row it takes (`takes`), one row is added to the results, after the host's
or the firmware's rows of the same file: runtime "ethos-u" (what a board runs: TFLite Micro
with the Ethos-U operator Vela's compiled model holds), timed_on "estimated" (nothing ran:
Vela's performance model), and `npu` holding Vela's figures as its summary file states
them: total and NPU cycles, the latency at the NPU clock ("Vela performance estimate",
never a measurement: latency_ms stays empty), SRAM and flash used, per-layer cycles, and for
every operator whether it runs on the NPU or the CPU, with Vela's reason.

Operators Vela leaves to the CPU run in TFLite Micro on the target's core. Where the
firmware executor ran the same file on that core (the emulated Cortex-M55), their
instructions are taken from its per-operator counts (the same kernels run them on the
board), and the row's `npu.cpu_fallback` says so; with a calibrated core they become an
estimated time added to the NPU's, otherwise the row says the CPU share is uncosted.

`fits` judges Vela's SRAM against the target's SRAM and the compiled model's bytes against
its flash (the TFLite Micro runtime and the Ethos-U driver are not counted: a note says so).
A file the NPU cannot take (not int8 / int16x8), a missing Vela (one line naming the pip
extra) or a failed compile is the row's error, never the bench's.
"""

from __future__ import annotations

from typing import Any

from edgeconv.bench.plan import BenchConfig, PlannedRow, name_the_users_file
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress, each
from edgeconv.records import NO_FIGURE, BenchRow, Note
from edgeconv.targets import Target

RUNTIME = "ethos-u"
FLASH_NOTE = ("flash = the Vela-compiled model (weights, command stream, CPU operators' data);"
              " the TFLite Micro runtime and the Ethos-U driver are not counted")


def npu_config(target: Target):
    from edgeconv.npu import NpuConfig

    return NpuConfig.from_dict(target.npu or {})


def check_target(target: Target) -> None:
    """A target's [npu] names Vela knows, before any work: one line naming the bad field and
    the known names. Without Vela nothing is checked here: each NPU row says Vela is
    missing."""
    if target.npu is None:
        return
    from edgeconv.npu import VelaMissing
    from edgeconv.npu.config import check
    from edgeconv.npu.vela import arm_ini, vela_installed

    try:
        vela_installed()
        ini = arm_ini()
    except VelaMissing:
        return
    check(npu_config(target), ini, f"target {target.name} [npu]")


# An export's files an NPU runs; a bare file (no precision recorded) gets a row too, which
# says why the NPU refuses it when it is a float model. An export's float files get none.
NPU_PRECISIONS = ("int8", "int16x8", None)


def takes(planned: PlannedRow, target: Target) -> bool:
    """Does this planned row get an NPU row: a measured int8 / int16x8 (or bare) .tflite on
    a target with an NPU."""
    return (target.npu is not None and planned.measured
            and planned.artifact.format == "tflite"
            and planned.artifact.precision in NPU_PRECISIONS)


def bench_npu(routed: list[tuple[PlannedRow, list[BenchRow]]], target: Target,
              config: BenchConfig, progress: Progress | None = None) -> list[BenchRow]:
    """For each (planned row, the rows made of it on the target's core): its NPU row."""
    progress = progress or Progress()
    rows = []
    for planned, cpu_rows in each(progress, routed, "Ethos-U (Vela)",
                                  lambda r: r[0].describe()):
        row = _npu_row(planned, cpu_rows, target, config)
        name_the_users_file(row, planned.artifact)
        rows.append(row)
    return rows


def _npu_row(planned: PlannedRow, cpu_rows: list[BenchRow], target: Target,
             config: BenchConfig) -> BenchRow:
    from edgeconv.npu import BASIS, NotForNpu, compile_for_npu

    a = planned.artifact
    row = BenchRow(artifact=a.label, sha256=a.sha256, format=a.format, precision=a.precision,
                   runtime=RUNTIME, target=target.name, threads=None, status="failed",
                   timed_on="estimated", size_bytes=a.size_bytes)
    npu = npu_config(target)
    try:
        run = compile_for_npu(a.loaded, npu, label=a.label, timeout=config.timeout,
                              where=f"target {target.name} [npu]")
    except NotForNpu as exc:  # a float model: no runtime of this NPU reads it
        row.status, row.error = "unsupported", str(exc)
        return row
    except EdgeconvError as exc:  # no Vela, or Vela failed: the row says why
        row.error = str(exc)
        return row
    row.status = "ok"
    record = run.to_dict()
    record["cpu_fallback"] = _cpu_fallback(run, cpu_rows, target)
    row.npu = record
    row.macs = record["macs"] or None
    row.arena_bytes = row.ram_bytes = run.sram_bytes
    row.flash_bytes = run.compiled_bytes
    row.fits = (run.sram_bytes <= (target.sram_bytes or 0)
                and run.compiled_bytes <= (target.flash_bytes or 0))
    row.notes.append(f"{BASIS}: {run.cycles_total:,} cycles ({run.cycles_npu:,} NPU) at"
                     f" {npu.clock_mhz:g} MHz on {npu.label} (Vela {run.vela_version}); not"
                     " a measurement")
    row.notes.append(f"SRAM = Vela's SRAM used {run.sram_bytes} B; {FLASH_NOTE}")
    cpu = run.cpu_ops
    if cpu:
        row.notes.append(f"{len(cpu)} of {len(run.placement)} operators on the CPU: "
                         + "; ".join(f"{p.op} ({p.reason})" for p in cpu[:6]))
        fallback = record["cpu_fallback"]
        if fallback.get("instructions") is None:
            row.caveats.append(Note(NO_FIGURE, f"CPU-fallback operators not costed:"
                                               f" {fallback['why']}"))
    return row


def _cpu_fallback(run, cpu_rows: list[BenchRow], target: Target) -> dict[str, Any]:
    """The CPU-fallback operators' cost from the firmware row of the same file on the
    target's core (its per-operator instructions, same index and operator)."""
    ops = [{"index": p.index, "op": p.op} for p in run.cpu_ops]
    if not ops:
        return {"ops": [], "instructions": 0, "why": "every operator runs on the NPU"}
    firmware = next((r for r in cpu_rows if r.ok and r.mcu and r.ops
                     and r.mcu.get("kernels") == (target.kernels or ("cmsis-nn",))[0]), None)
    if firmware is None:  # the core's caveat says why ("no firmware run: <why>; ...")
        why = next((n.text for r in cpu_rows for n in r.caveats), None) or \
            "no firmware row of this file on the target's core"
        why = why.removeprefix("no firmware run: ").split("; ")[0]
        return {"ops": ops, "instructions": None, "why": f"no firmware run: {why}"[:300]}
    counted = {(o["index"], o["op"]): o["instructions"] for o in firmware.ops}
    for op in ops:
        op["instructions"] = counted.get((op["index"], op["op"]))
    if any(op["instructions"] is None for op in ops):
        return {"ops": ops, "instructions": None,
                "why": "the firmware's operator list does not match the model's"}
    total = sum(op["instructions"] for op in ops)
    result: dict[str, Any] = {"ops": ops, "instructions": total,
                              "core": firmware.mcu["core"], "kernels": firmware.mcu["kernels"],
                              "source": "instructions counted on the emulated"
                                        f" {firmware.mcu['core']} firmware of the same file"}
    from edgeconv.mcu.calibration import estimate_ms

    estimate = estimate_ms(total, firmware.mcu["core"], firmware.mcu["kernels"],
                           target.clock_mhz)
    result["estimate_ms"] = estimate.to_dict() if estimate else None
    if estimate is None:
        result["why"] = (f"{firmware.mcu['core']} has no published calibration: instructions"
                         " only (uncalibrated)")
    return result
