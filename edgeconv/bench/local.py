"""The plan run on this machine: each measured row in its own child process
(`python -m edgeconv.bench`, through edgeconv._child.run_child), its answer merged into the
planned row, then what the parent adds (the fit check, MACs from the reference row). On an
MCU target with an Arm core, an int8 .tflite row then runs in TFLite Micro firmware on the
emulated core (edgeconv.bench.firmware): the row becomes the firmware's.

A child opens the artifact's private copy (plan.Artifact.copy: the bytes that were hashed
and checked), never the user's path; its reasons and notes name the user's path again.

Also the checks that this machine can bench a target here at all (the `reachable` of the
target's kind in edgeconv.targets.KINDS).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgeconv._child import run_child
from edgeconv.bench import firmware
from edgeconv.bench.child import ANSWER_FIELDS, Job
from edgeconv.bench.plan import (
    BenchConfig, Plan, PlannedRow, dataset_spec, emulation, outputs_file, staged_split,
)
from edgeconv.files import show_path
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress
from edgeconv.records import BenchRow
from edgeconv.runtimes.registry import get_runtime
from edgeconv.stats import load_note
from edgeconv.targets import Target

_ARCH_NAMES = {"arm64": "aarch64", "amd64": "x86_64"}  # what macOS / Windows call them


def bench_here(plan: Plan, config: BenchConfig, progress: Progress,
               environment: dict[str, Any] | None = None) -> tuple[list[BenchRow], list[str]]:
    """Run `plan` on this machine: its rows (in plan order) and notes. `environment`, when
    given, gets the machine's load averages before and after (`load_before`, `load_after`),
    and the notes say when they exceeded the cores."""
    _require_runtimes(plan)
    load_before = load_average()
    rows: list[BenchRow] = []
    planned_rows: list[PlannedRow] = []  # the plan's row each measured row comes from
    with tempfile.TemporaryDirectory(prefix="edgeconv-bench-") as scratch:
        data_files = _prepare_data(plan, config, Path(scratch))
        progress.start(len(plan.rows), "benching")
        for done, planned in enumerate(plan.rows):
            progress.update(done, planned.describe())
            measured = _measure(planned, plan.target, config, data_files, Path(scratch),
                                progress)
            rows.extend(measured)
            planned_rows.extend([planned] * len(measured))  # a row per MCU kernel set
            progress.start(len(plan.rows), "benching", completed=done + 1)
        progress.update(len(plan.rows), "done")
    _add_macs(rows, planned_rows)
    load_after = load_average()
    if environment is not None:
        environment.update(load_before=load_before, load_after=load_after)
    busy = load_note(load_before, load_after, os.cpu_count())
    return rows, list(plan.target.notes) + plan.notes + ([busy] if busy else [])


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages; None where the system has none (Windows)."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _require_runtimes(plan: Plan) -> None:
    """One line naming the pip extra for a runtime that is not installed here; a reference
    nobody asked for is left out with a note instead."""
    for planned in plan.measured():
        entry = get_runtime(planned.runtime)
        if planned.optional and not entry.available():
            plan.drop(planned, f"{planned.artifact.label}: {entry.name} is not installed, so no"
                               f" float reference (pip install 'edgeconv[{entry.extra}]')")
        else:
            entry.require()


def _prepare_data(plan: Plan, config: BenchConfig, scratch: Path) -> dict[Path, Path]:
    """Test split per export, saved for the children; a dataset that is not here is a note."""
    import numpy as np

    files: dict[Path, Path] = {}
    manifests = {a.manifest.directory: a.manifest for a in plan.artifacts_measured()
                 if a.manifest}
    for manifest in manifests.values():
        try:  # the split the SSH path prepared and sent (the board needs no dataset package)
            staged = staged_split(manifest)
        except EdgeconvError as exc:
            plan.notes.append(f"{manifest.directory}: no accuracy figures ({exc})")
            continue
        if staged is not None:
            files[manifest.directory] = staged
            continue
        spec = dataset_spec(manifest, config.data, config.data_dir)
        try:
            prepared = load_split(spec)
        except EdgeconvError as exc:
            plan.notes.append(f"{manifest.directory}: no accuracy figures ({exc})")
            continue
        file = scratch / f"data-{len(files)}.npz"
        np.savez(file, x=prepared.test.x, y=prepared.test.y)
        files[manifest.directory] = file
    return files


def load_split(spec: dict[str, Any]):
    from edgeconv.data import evaluation_subset, load_recorded

    if spec.get("user"):  # a user model's export: its images, prepared as export did
        from edgeconv.data import user

        data = user.load_recorded_user(spec["user"], spec["preprocessing"])
        if data.test.y is None:
            raise EdgeconvError("the export's images have no labels")
        samples = spec.get("test_samples")
        return user.evaluation_subset(data, samples, seed=spec["seed"]) if samples else data
    if not spec["name"] or not spec["preprocessing"]:
        raise EdgeconvError("the manifest names no dataset")
    data = load_recorded(spec["name"], spec["preprocessing"], data_dir=spec["data_dir"],
                         seed=spec["seed"], made="the export was made")
    samples = spec.get("test_samples")
    return evaluation_subset(data, samples, seed=spec["seed"]) if samples else data


def _measure(planned: PlannedRow, target: Target, config: BenchConfig,
             data_files: dict[Path, Path], scratch: Path,
             progress: Progress | None = None) -> list[BenchRow]:
    """The planned row measured; on an MCU target with several kernel sets, a row per set."""
    row = planned.row(target)
    if not planned.measured:
        return [row]
    kind, entry, artifact = target.kind_info, get_runtime(planned.runtime), planned.artifact
    directory = artifact.manifest.directory if artifact.manifest else None
    data = data_files.get(directory) if directory else None
    reference = scratch / f"reference-{abs(hash(str(directory)))}.npz"
    options: dict[str, Any] = {}
    if entry.threaded:
        options["threads"] = planned.threads
    if kind.fit and "arena_size" in entry.options:
        options["arena_size"] = target.sram_bytes  # all the board can give its arena
    job = Job(path=str(artifact.loaded), format=artifact.format, entry=Job.entry_of(entry),
              options=options, warmup=config.warmup, runs=config.runs,
              min_time=config.min_time, hwc=artifact.hwc, data=str(data) if data else None,
              reference_out=str(reference) if artifact.is_reference and data else None,
              reference_in=str(reference) if not artifact.is_reference and reference.exists()
              else None, fit=kind.fit, device=kind.device,
              outputs=outputs_file(config, planned),  # the SSH path's parity check
              custom_objects=config.custom_objects)
    outcome = run_child("edgeconv.bench", what=entry.name, timeout=config.timeout,
                        stdin=json.dumps(asdict(job)))
    row = _answered(row, outcome.payload if outcome.ok
                    else {"status": "failed", "error": outcome.error})
    _name_the_users_file(row, artifact)
    if kind.fit:
        rows = _fit(row, target, config, artifact, data, scratch, progress)
        for each in rows:
            _name_the_users_file(each, artifact)
        return rows
    if kind.timed_on == "host":
        row.notes.append(f"latency is host time of {row.runtime} on this machine, not"
                         " board time")
    if row.timed_on == "emulated" and row.ok:
        row.notes.append(f"latency timed on an emulated {emulation()['cpu']} (qemu user mode):"
                         " not a board time")
    if data is None and row.ok and row.accuracy is None and row.agreement is None:
        row.notes.append("no labelled data: accuracy not measured")
    return [row]


def _answered(row: BenchRow, answer: dict[str, Any]) -> BenchRow:
    """The planned row with the child's measured fields, their types checked."""
    measured = {k: v for k, v in answer.items() if k in ANSWER_FIELDS}
    try:
        return BenchRow.from_dict({**row.to_dict(), **measured})
    except (TypeError, ValueError, KeyError) as exc:
        row.error = f"{row.runtime} child answered a malformed row ({exc})"
        return row


def _name_the_users_file(row: BenchRow, artifact) -> None:
    """The child saw the private copy: its reason and notes name the user's file."""
    copy, shown = str(artifact.loaded), show_path(artifact.path)
    if row.error:
        row.error = row.error.replace(copy, shown)
    row.notes = [note.replace(copy, shown) for note in row.notes]


def _fit(row: BenchRow, target: Target, config: BenchConfig, artifact, data: Path | None,
         scratch: Path, progress: Progress | None) -> list[BenchRow]:
    """The fit check: the firmware's exact RAM and flash where it runs (a row per kernel set
    of the target), else the host interpreter's arena with flash unknown (bench/firmware.py
    says why in the row's notes)."""
    if not firmware.firmware_applies(row, target) or row.status == "unsupported":
        # (an unsupported row: TFLite Micro refuses the file, e.g. a free input size that
        # the firmware would run as its 1x1 placeholder; its error says why)
        reason = None if target.core is None else (
            f"the firmware runs int8 .tflite files, this is {row.precision or row.format}"
            if row.status != "unsupported" else "TFLite Micro refuses this file")
        firmware.host_row(row, target, reason)
        return [row]
    tree = firmware.tree_option(config.tflm_tree)
    rows, host = [], row.to_dict()  # each kernel set starts from the host's row
    for n, kernels in enumerate(target.kernels):
        each = row if n == 0 else BenchRow.from_checked(host)
        missing = firmware.unavailable(target, kernels, tree)
        if missing:
            firmware.host_row(each, target, missing)
        else:
            firmware.add_firmware(each, target, kernels, model=artifact.loaded, data=data,
                                  hwc=artifact.hwc, tree=tree, scratch=scratch,
                                  timeout=config.timeout, progress=progress)
        rows.append(each)
    return rows


def _add_macs(rows: list[BenchRow], planned_rows: list[PlannedRow]) -> None:
    """MACs come from the Keras model (only its child imports Keras): they hold for every
    file of the same export, whose ops are the same layers."""
    by_export = {}
    for row, planned in zip(rows, planned_rows):
        if row.macs and planned.artifact.manifest is not None:
            by_export[planned.artifact.manifest.directory] = row.macs
    for row, planned in zip(rows, planned_rows):
        manifest = planned.artifact.manifest
        macs = by_export.get(manifest.directory) if manifest else None
        if macs and row.latency_ms:
            row.macs = macs
            row.gmac_per_s = macs / (row.latency_ms.p50 / 1000.0) / 1e9


# --- can this machine bench the target here? (KINDS[kind].reachable) ---------------------


def check_gpu(target: Target, config: BenchConfig) -> None:
    reason = gpu_unavailable()
    if reason:
        raise EdgeconvError(f"no GPU here for target '{target.name}': {reason}; bench on"
                            " --target cpu, or run this on a machine with an NVIDIA GPU")


def check_arch(target: Target, config: BenchConfig) -> None:
    machine = _ARCH_NAMES.get(platform.machine().lower(), platform.machine().lower())
    arch = target.arch and _ARCH_NAMES.get(target.arch.lower(), target.arch.lower())
    if not arch or machine == arch:
        return
    if config.local:  # on the board's side of an SSH bench, or told to stay here
        raise EdgeconvError(f"this machine is {machine}, not an {target.arch} board like"
                            f" {target.name}: nothing measured here would be its numbers")
    raise EdgeconvError(
        f"not on an {target.arch} board and no --host given (this machine is {machine}):"
        f" run `edgeconv bench --target {config.target}` on the board (pip install"
        f" 'edgeconv[litert]'), or pass --host user@board to bench it over SSH")


def gpu_unavailable() -> str | None:
    """Why onnxruntime cannot run on an NVIDIA GPU here, or None when it can."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install 'edgeconv[gpu]')"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return ("this onnxruntime has no CUDA provider (pip install 'edgeconv[gpu]':"
                " onnxruntime-gpu)")
    if not Path("/dev/nvidiactl").exists() and shutil.which("nvidia-smi") is None:
        return "no NVIDIA driver found (no /dev/nvidiactl, no nvidia-smi)"
    return None
