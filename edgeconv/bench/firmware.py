"""The firmware executor: the plan's rows that run on an MCU core, in TFLite Micro firmware
on an emulated Cortex-M.

A planned row runs on the core (`takes`) when it is an int8 (or bare) .tflite on an MCU
target with an Arm `core` (targets/*.toml). The host executor (edgeconv.bench.local) measures
every row of the plan first, in TFLite Micro's interpreter on this machine; the harness
hands each row routed here, as measured, to `bench_firmware`, which makes that planned row's
rows of the results: one per kernel set of the target. Each is a new row (the host's is
read, never changed) that starts from the host's measurement (accuracy, the host arena) and
runs the file in the firmware edgeconv.mcu builds for that core and kernel set, on a few test
images:

- timed_on "emulated": instructions were counted in QEMU; there is no time, so latency_ms is
  empty and `estimate_ms` holds the estimated board latency (edgeconv.mcu.calibration);
- arena, stack, static data and RAM = their sum; flash = the linked firmware without the
  model + the model (both exact); `fits` from these against the target's budgets;
- `ops`: instructions per operator, share, MACs and instructions per MAC;
- `parity`: the firmware's outputs against the host TFLite Micro interpreter's on the same
  raw inputs (expected bit-exact), `reference_parity` against LiteRT's reference kernels.

Where no firmware runs for a kernel set (no toolchain, emulator or source tree: `--tflm-tree`
or EDGECONV_TFLM_TREE, a tree folder or .tgz, or a folder holding tflm-tree-<kernels>.tgz
for each kernel set; TFLite Micro refuses the file; the firmware fails), that set's row is
the host's figures with a NO_FIRMWARE caveat (edgeconv.records) saying why and what to
install or point at. A row of an MCU target not routed here (an fp32 file; a target without
a core, esp32s3) is the host executor's, with the same caveat saying why (`refusal`). Either
way (`fit_on_host`): the arena is the host interpreter's; flash is unknown (None); `fits` is
False when the arena alone exceeds the SRAM, else unknown (None; docs/bench.md); the latency
is labelled "x86 host, reference kernels" (timed_on "host", a HOST_TIME caveat).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeconv._child import run_child
from edgeconv.bench.plan import BenchConfig, PlannedRow, name_the_users_file
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress, each
from edgeconv.records import HOST_TIME, NO_FIGURE, NO_FIRMWARE, BenchRow, Note
from edgeconv.runtimes.registry import get_runtime
from edgeconv.targets import Target

if TYPE_CHECKING:
    from edgeconv.bench.local import Workspace

PARITY_IMAGES = 8  # test images the firmware runs: enough for parity, cheap in QEMU
HOST_LABEL = "x86 host, reference kernels"
HOST_ARENA_NOTE = ("arena from the host TFLite Micro interpreter (64-bit structures: a little"
                   " larger than on the board)")


def tree_option(given: str | None) -> str | None:
    """The source tree the user pointed at: --tflm-tree, else EDGECONV_TFLM_TREE (else the
    mcu package's own defaults, see edgeconv.mcu.sources)."""
    from edgeconv.mcu.sources import TREE_ENV

    return given or os.environ.get(TREE_ENV) or None


def tree_for(kernels: str, given: str | None) -> str | None:
    """The tree to build `kernels` from: `given` when it is one (a tree folder or .tgz), or
    the tflm-tree-<kernels>(.tgz) inside `given` when it is a folder of trees; None (the mcu
    package's defaults) when nothing was given."""
    if given is None:
        return None
    folder = Path(given).expanduser()
    for name in (f"tflm-tree-{kernels}.tgz", f"tflm-tree-{kernels}"):
        if folder.is_dir() and (folder / name).exists():
            return str(folder / name)
    return given


# --- which rows are this executor's -----------------------------------------------------


# What the firmware runs: integer files (CMSIS-NN has s8 and s16 kernels), and a bare file
# that does not say (its ops decide when it is read).
FIRMWARE_PRECISIONS = ("int8", "int16x8", None)


def takes(planned: PlannedRow, target: Target) -> bool:
    """Does this planned row run on the target's core: a measured integer (int8, int16x8)
    or bare .tflite on an MCU target with an Arm core."""
    artifact = planned.artifact
    return (target.kind_info.fit and target.core is not None and planned.measured
            and artifact.format == "tflite" and artifact.precision in FIRMWARE_PRECISIONS)


def refusal(planned: PlannedRow, target: Target) -> str | None:
    """Why no firmware runs this row of an MCU target, before anything is measured; None
    when this executor takes it (it may still find no toolchain: `unavailable`)."""
    if takes(planned, target):
        return None
    if target.core is None:
        return f"{target.name} has no Arm core the emulator models"
    artifact = planned.artifact
    return (f"the firmware runs int8 and int16x8 .tflite files, this is"
            f" {artifact.precision or artifact.format}")


def no_firmware(reason: str) -> Note:
    """The caveat of a row no firmware ran: why, and what its figures are instead."""
    return Note(NO_FIRMWARE, f"no firmware run: {reason}; {HOST_ARENA_NOTE}; flash unknown, so"
                             " fits is unknown unless the arena alone is too large")


def unavailable(target: Target, kernels: str, tree: str | None) -> str | None:
    """Why no firmware can be built here (one line naming what to install or point at), or
    None when the toolchain, the emulator and a source tree are all there."""
    try:
        from edgeconv.mcu import check_tools, find_tree
        from edgeconv.mcu.sources import TREE_ENV
    except ImportError as exc:  # a partial install of edgeconv
        return f"edgeconv's firmware path is not available ({exc})"
    try:
        check_tools()  # one line naming the Debian packages
    except EdgeconvError as exc:
        return str(exc)
    try:
        find_tree(kernels, tree_for(kernels, tree))
    except EdgeconvError as exc:
        if tree is None:  # say it in the bench's words: its option, its variable
            return (f"no TFLite Micro source tree for the {kernels} kernels: run `edgeconv"
                    f" mcu fetch`, or pass --tflm-tree FOLDER|TGZ or set {TREE_ENV}"
                    " (docs/mcu.md)")
        return str(exc)
    return None


def fit_on_host(row: BenchRow, target: Target) -> None:
    """An MCU row that no firmware ran, as the host interpreter measured it: no flash
    figure, so `fits` is known only when the arena alone is too large (False); otherwise
    unknown (None), never a yes that no flash figure backs. The latency is labelled x86
    host. (Its NO_FIRMWARE caveat, saying why, is its executor's to add.)"""
    row.timed_on = "host"
    row.flash_bytes = None
    if row.latency_ms is not None:
        row.caveats.append(Note(HOST_TIME, f"latency: {HOST_LABEL} (TFLite Micro's interpreter"
                                           f" on this machine), not {target.name} time"))
    if row.arena_bytes is not None:
        row.fits = False if row.arena_bytes > (target.sram_bytes or 0) else None
    elif row.error and "Failed to resize buffer" in row.error:
        # TFLM was given the board's whole SRAM as its arena and could not plan in it.
        row.fits = False
        row.notes.append(f"the tensor arena does not fit in {target.sram_bytes} B of SRAM")


# --- the executor ------------------------------------------------------------------------


def bench_firmware(routed: list[tuple[PlannedRow, BenchRow]], target: Target,
                   config: BenchConfig, work: Workspace,
                   progress: Progress | None = None) -> list[list[BenchRow]]:
    """For each (planned row this executor `takes`, the host executor's row of it): the
    rows that stand for it in the results, one per kernel set of the target (one only when
    TFLite Micro refuses the file). The host rows are read, never changed."""
    progress = progress or Progress()
    tree = tree_option(config.tflm_tree)
    made: list[list[BenchRow]] = []
    for planned, host in each(progress, routed, "firmware", lambda r: r[0].describe()):
        rows = _rows_of(planned, host, target, config, work, tree, progress)
        for row in rows:
            name_the_users_file(row, planned.artifact)
        made.append(rows)
    return made


def _rows_of(planned: PlannedRow, host: BenchRow, target: Target, config: BenchConfig,
             work: Workspace, tree: str | None, progress: Progress) -> list[BenchRow]:
    if host.status == "unsupported":
        # TFLite Micro refuses the file (e.g. a free input size that the firmware would
        # run as its 1x1 placeholder): the host's row, whose error says why
        return [_without_firmware(host, target, "TFLite Micro refuses this file")]
    rows = []
    for kernels in target.kernels:
        missing = unavailable(target, kernels, tree)
        rows.append(_without_firmware(host, target, missing) if missing else
                    _firmware_row(host, target, kernels, planned, work, tree,
                                  config.timeout, progress, config.tflm_subset))
    return rows


def _without_firmware(host: BenchRow, target: Target, reason: str) -> BenchRow:
    """A row of this executor's where no firmware ran: the host's figures, saying why."""
    row = copy.deepcopy(host)
    row.caveats.append(no_firmware(reason))
    fit_on_host(row, target)
    return row


def _firmware_row(host: BenchRow, target: Target, kernels: str, planned: PlannedRow,
                  work: Workspace, tree: str | None, timeout: float,
                  progress: Progress | None, subset: str | None = None) -> BenchRow:
    """The firmware's row for one kernel set: `planned`'s file (the private copy) run in the
    firmware, with the host's accuracy and arena; where the firmware fails, the host's
    figures with a caveat saying so."""
    from edgeconv.mcu import run_firmware
    from edgeconv.mcu.calibration import estimate_ms

    artifact = planned.artifact
    row = copy.deepcopy(host)
    inputs, outputs, parity_lost = _host_outputs(row, target, artifact.loaded,
                                                 work.data_for(artifact), artifact.hwc,
                                                 work.scratch, timeout)
    try:
        run = run_firmware(artifact.loaded, core=target.core, kernels=kernels,
                           inputs=[inputs[i:i + 1] for i in range(len(inputs))]
                           if inputs is not None else None, tree=tree_for(kernels, tree),
                           progress=progress, label=row.artifact, subset=subset)
    except EdgeconvError as exc:
        row.caveats.append(no_firmware(f"the firmware did not run ({exc})"))
        fit_on_host(row, target)
        return row
    row.status, row.error = "ok", None
    row.timed_on = "emulated"
    # no time was measured: the host child's timings are x86 figures, not this row's
    row.latency_ms = row.init_ms = row.first_ms = row.throughput_ips = row.gmac_per_s = None
    row.runs = row.peak_rss_bytes = row.peak_rss_of = None
    row.arena_bytes, row.stack_bytes = run.arena_bytes, run.stack_bytes
    row.ram_bytes = run.arena_bytes + run.stack_bytes + run.static_bytes
    row.flash_bytes = run.runtime_flash_bytes + run.model_bytes
    row.fits = (row.ram_bytes <= (target.sram_bytes or 0)
                and row.flash_bytes <= (target.flash_bytes or 0))
    row.mcu = {"core": run.core, "kernels": run.kernels, "machine": run.machine,
               "tree": run.tree, "counter": run.counter,
               "invoke_instructions": int(run.invoke_instructions),
               "setup_instructions": int(run.setup_instructions),
               "runtime_flash_bytes": int(run.runtime_flash_bytes),
               "model_bytes": int(run.model_bytes), "static_bytes": int(run.static_bytes),
               "arena_bytes": int(run.arena_bytes), "host_arena_bytes": host.arena_bytes,
               "clock_mhz": target.clock_mhz,
               # wall-clock seconds: the library's build and the firmware's link as the
               # cache recorded them when they were made, this emulator run (docs/mcu.md)
               **{key: getattr(run, key) for key in ("library_seconds", "firmware_seconds",
                                                     "run_seconds") if hasattr(run, key)}}
    estimate = estimate_ms(run.invoke_instructions, run.core, run.kernels, target.clock_mhz)
    row.estimate_ms = estimate.to_dict() if estimate else None
    row.ops = op_profile(run.ops)
    macs = sum(op.macs or 0 for op in run.ops)
    row.macs = row.macs or (macs or None)
    row.notes.append(f"emulated {run.core} ({run.machine}), {run.kernels} kernels:"
                     f" {run.invoke_instructions:,} instructions per invoke"
                     f" ({run.setup_instructions:,} for set-up); latency is an estimate,"
                     " not a measurement")
    row.notes.append(f"RAM = arena {run.arena_bytes} + stack {run.stack_bytes} + static"
                     f" {run.static_bytes} B; flash = firmware {run.runtime_flash_bytes} +"
                     f" model {run.model_bytes} B")
    # each missing figure once, with its own reason: the host row's pass over the test split
    # gives the accuracy, a run of its own on the parity images the parity
    if not host.ok:
        row.caveats.append(Note(NO_FIGURE, "no accuracy: the host TFLite Micro interpreter's"
                                           f" pass failed ({host.error or 'no reason given'})"))
    elif row.accuracy is not None:
        row.notes.append("accuracy: the host TFLite Micro interpreter on the test split (the"
                         " firmware's parity with it below)")
    if parity_lost:
        row.caveats.append(Note(NO_FIGURE, parity_lost))
    if outputs is not None and inputs is not None:
        _parity(row, run, outputs)
    return row


def op_profile(ops) -> list[dict[str, Any]]:
    """Per operator: instructions, share of the invoke, MACs and instructions per MAC."""
    total = sum(op.instructions for op in ops) or 1
    return [{"index": op.index, "op": op.op, "instructions": int(op.instructions),
             "share": op.instructions / total, "macs": op.macs or None,
             "instructions_per_mac": op.instructions / op.macs if op.macs else None}
            for op in ops]


def by_op_type(ops: list[dict[str, Any]]) -> list[tuple[str, int, float, int | None]]:
    """(op type, instructions, share, MACs) summed per type, the costliest first."""
    types: dict[str, list[float]] = {}
    for op in ops:
        entry = types.setdefault(op["op"], [0, 0.0, 0])
        entry[0] += op["instructions"]
        entry[1] += op.get("share") or 0.0
        entry[2] += op.get("macs") or 0
    return sorted(((name, int(i), s, int(m) or None) for name, (i, s, m) in types.items()),
                  key=lambda t: -t[1])


def _host_outputs(row: BenchRow, target: Target, model: Path, data: Path | None,
                  hwc: list[int] | None, scratch: Path, timeout: float):
    """A few test images (seeded random inputs without a dataset) as the host TFLite Micro
    interpreter quantises them, and its raw outputs on them: what the firmware runs and is
    compared with; and why there is no parity, where the host interpreter did not run them
    (the inputs and outputs are then None; the note is the caller's to add)."""
    import numpy as np

    subset = None
    if data is not None:
        with np.load(data) as split:
            subset = scratch / f"mcu-images-{abs(hash(str(data)))}.npz"
            np.savez(subset, x=split["x"][:PARITY_IMAGES], y=split["y"][:PARITY_IMAGES])
    entry = get_runtime("tflite-micro")
    # the host needs more arena than the board (64-bit structures): room beyond the SRAM
    options = {"arena_size": 2 * (target.sram_bytes or 0) or None}
    saved = _run_child(entry.name, {k: v for k, v in options.items() if v}, model, subset,
                       hwc, scratch / f"mcu-host-{abs(hash(str(model)))}.npz", timeout,
                       save_inputs=True)
    if isinstance(saved, str):
        return None, None, f"no parity: the host TFLite Micro interpreter did not run ({saved})"
    from edgeconv.bench.child import output_keys

    with np.load(saved) as npz:  # out, out1, ...: one array per model output
        x = npz["x"]
        out = [npz[k] for k in output_keys(sum(k.startswith("out") for k in npz.files))]
    if subset is None:  # the child's seeded random inputs: keep the firmware's run short
        x, out = x[:PARITY_IMAGES], [o[:PARITY_IMAGES] for o in out]
    row.notes.append(f"firmware and parity inputs: {len(x)} "
                     + ("test images" if subset else "seeded random inputs (no dataset)"))
    return x, {"out": out, "source": "test images" if subset else "seeded random inputs",
               "model": model, "subset": subset, "hwc": hwc, "scratch": scratch,
               "timeout": timeout}, None


def _run_child(runtime: str, options: dict[str, Any], model: Path, data: Path | None,
               hwc: list[int] | None, out: Path, timeout: float,
               save_inputs: bool = False) -> Path | str:
    """One bench child saving its raw outputs on `data` (or seeded random inputs) to `out`;
    the path, or the reason it did not run."""
    from edgeconv.bench.child import Job

    entry = get_runtime(runtime)
    if not entry.available():
        return f"{entry.name} is not installed (pip install 'edgeconv[{entry.extra}]')"
    job = Job(path=str(model), format="tflite", entry=Job.entry_of(entry), options=options,
              warmup=0, runs=1, min_time=0.0, hwc=hwc, data=str(data) if data else None,
              outputs=str(out), save_inputs=save_inputs)
    outcome = run_child("edgeconv.bench", what=entry.name, timeout=timeout,
                        stdin=json.dumps(asdict(job)))
    answer = outcome.payload or {}
    if not outcome.ok or answer.get("status") != "ok" or not out.exists():
        return str(outcome.error or answer.get("error") or "no outputs")
    return out


def _parity(row: BenchRow, run, host: dict[str, Any]) -> None:
    """row.parity: firmware vs host TFLM; row.reference_parity: firmware vs LiteRT's
    reference kernels (on the same raw inputs: the reference child quantises the same test
    images the same way, which the saved inputs' sha256 shows)."""
    import platform

    import numpy as np

    from edgeconv.bench.child import output_keys
    from edgeconv.bench.parity import board_parity
    from edgeconv.runtimes.registry import installed_version

    theirs = host["out"]  # every model output, compared
    try:
        mine = [np.concatenate([np.asarray(outs[k]).reshape(1, *t.shape[1:])
                                for outs in run.outputs]) for k, t in enumerate(theirs)]
        parity = board_parity(mine, theirs)
    except (EdgeconvError, ValueError) as exc:
        row.notes.append(f"no parity: {exc}")
        return
    version = installed_version("tflite-micro") or "?"
    row.parity = {**parity, "on": host["source"], "cpu": f"emulated {run.core}",
                  "reference": f"{platform.machine()} tflite-micro {version} host interpreter"}
    entry = get_runtime("tflite-micro")
    if entry.kernel_reference is None:
        return
    name, options = entry.kernel_reference
    saved = _run_child(name, options, host["model"], host["subset"], host["hwc"],
                       host["scratch"] / f"mcu-ref-{abs(hash(str(host['model'])))}.npz",
                       host["timeout"])
    if isinstance(saved, str):
        row.notes.append(f"no parity with {name}'s reference kernels: {saved}")
        return
    try:
        with np.load(saved) as npz:
            reference = [npz[k][:len(mine[0])] for k in output_keys(len(mine))]
        parity = board_parity(mine, [r.reshape(m.shape) if r.size == m.size else r
                                     for r, m in zip(reference, mine)])
    except (EdgeconvError, KeyError) as exc:
        row.notes.append(f"no parity with {name}'s reference kernels: {exc}")
        return
    litert = installed_version("ai-edge-litert") or "?"
    row.reference_parity = {**parity, "on": host["source"], "cpu": f"emulated {run.core}",
                            "reference": f"{platform.machine()} {name} {litert} reference"
                                         " kernels"}
