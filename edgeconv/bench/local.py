"""The host executor: the plan run on this machine, each measured row in its own child
process (`python -m edgeconv.bench`, through edgeconv._child.run_child), its answer merged
into the planned row; one row per planned row. On an MCU target, a row the firmware executor
takes (edgeconv.bench.firmware: an int8 .tflite on a target with an Arm core) is handed on as
measured (the harness gives it to that executor, whose rows stand for it in the results);
every other row gets the fit check from the host interpreter's figures, with a caveat saying
why no firmware ran it.

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeconv._child import run_child
from edgeconv.bench import firmware
from edgeconv.bench.child import ANSWER_FIELDS, Job
from edgeconv.bench.plan import (
    Artifact, BenchConfig, Plan, PlannedRow, dataset_spec, emulation, name_the_users_file,
    outputs_file, staged_split,
)
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress
from edgeconv.records import BenchRow
from edgeconv.runtimes.registry import get_runtime
from edgeconv.targets import Target

_ARCH_NAMES = {"arm64": "aarch64", "amd64": "x86_64"}  # what macOS / Windows call them


@dataclass(frozen=True)
class Workspace:
    """What the executors on this machine share: the bench's private scratch folder and each
    export's test split saved there for the children."""

    scratch: Path
    data: dict[Path, Path]  # an export's folder -> its test split (.npz)

    def data_for(self, artifact: Artifact) -> Path | None:
        return self.data.get(artifact.manifest.directory) if artifact.manifest else None


def prepare(plan: Plan, config: BenchConfig, scratch: Path) -> Workspace:
    """Before measuring: one line naming the pip extra of a runtime that is not installed
    (a reference nobody asked for is left out with a note instead), then each export's test
    split saved in `scratch` (a dataset that is not here is a note of the plan's)."""
    _require_runtimes(plan)
    return Workspace(scratch, _prepare_data(plan, config, scratch))


def bench_here(plan: Plan, config: BenchConfig, progress: Progress,
               work: Workspace) -> list[BenchRow]:
    """Run `plan` on this machine: one row per planned row, in plan order."""
    rows: list[BenchRow] = []
    progress.start(len(plan.rows), "benching")
    for done, planned in enumerate(plan.rows):
        progress.update(done, planned.describe())
        rows.append(_measure(planned, plan.target, config, work))
        progress.start(len(plan.rows), "benching", completed=done + 1)
    progress.update(len(plan.rows), "done")
    return rows


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
        spec = dataset_spec(manifest, config.data, config.data_dir, config.eval_samples)
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
    """The labelled images a manifest's files were measured on (edgeconv.data.measured)."""
    from edgeconv.data.measured import load_measured

    data = load_measured(spec, spec["preprocessing"], data_dir=spec["data_dir"])
    if data.test.y is None:
        raise EdgeconvError("the export's images have no labels")
    # the export's subset, or bench's --eval-samples: the same seeded, stratified choice as
    # export --eval-samples makes (the same images for the same count)
    caps = [n for n in (spec.get("test_samples"), spec.get("eval_samples")) if n]
    return data.subset(min(caps), seed=spec["seed"]) if caps else data


def _measure(planned: PlannedRow, target: Target, config: BenchConfig,
             work: Workspace) -> BenchRow:
    """The planned row measured in its child."""
    row = planned.row(target)
    if not planned.measured:
        return row
    kind, entry, artifact = target.kind_info, get_runtime(planned.runtime), planned.artifact
    directory = artifact.manifest.directory if artifact.manifest else None
    data = work.data_for(artifact)
    reference = work.scratch / f"reference-{abs(hash(str(directory)))}.npz"
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
              custom_objects=config.custom_objects,
              phase_file=str(work.scratch / "phase.txt"))
    Path(job.phase_file).unlink(missing_ok=True)  # type: ignore[arg-type]
    outcome = run_child("edgeconv.bench", what=entry.name, timeout=config.timeout,
                        stdin=json.dumps(asdict(job)))
    row = _answered(row, outcome.payload if outcome.ok
                    else {"status": "failed", "error": _why_not(outcome.error, job, config)})
    name_the_users_file(row, artifact)
    if kind.fit:
        refused = firmware.refusal(planned, target)
        if refused is not None:  # no firmware will run it: the host's figures are the row's
            row.caveats.append(firmware.no_firmware(refused))
            firmware.fit_on_host(row, target)
        return row  # else the firmware executor's, as measured
    if kind.timed_on == "host":
        row.notes.append(f"latency is host time of {row.runtime} on this machine, not"
                         " board time")
    if row.timed_on == "emulated" and row.ok:
        row.notes.append(f"latency timed on an emulated {emulation()['cpu']} (qemu user mode):"
                         " not a board time")
    if data is None and row.ok and row.accuracy is None and row.agreement is None:
        row.notes.append("no labelled data: accuracy not measured")
    return row


def _why_not(error: str | None, job: Job, config: BenchConfig) -> str | None:
    """A child's failure, naming what it was doing when it ran past --timeout (the phase it
    wrote: Job.phase_file): the timed runs, or N test images through the runtime."""
    if not error or " timed out after " not in error or not job.phase_file:
        return error
    try:
        with open(job.phase_file, encoding="utf-8", errors="replace") as fh:
            phase = fh.read(200)
    except OSError:
        return error
    name = job.entry["name"]
    words = phase.split()
    if words[:1] == ["accuracy"]:
        count = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
        through = ("TFLite Micro's reference kernels on this machine" if name == "tflite-micro"
                   else name)
        return (f"{name} timed out after {config.timeout:g} s running {count:,} test images"
                f" through {through}; cap them with --eval-samples N (or raise --timeout)")
    if phase == "timed runs":
        return (f"{name} timed out after {config.timeout:g} s in its timed runs; lower --runs"
                " and --min-time (or raise --timeout)")
    return f"{error} ({phase})"


def _answered(row: BenchRow, answer: dict[str, Any]) -> BenchRow:
    """The planned row with the child's measured fields, their types checked."""
    measured = {k: v for k, v in answer.items() if k in ANSWER_FIELDS}
    try:
        return BenchRow.from_dict({**row.to_dict(), **measured})
    except (TypeError, ValueError, KeyError) as exc:
        row.error = f"{row.runtime} child answered a malformed row ({exc})"
        return row


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
