"""The harness: plan the (artifact, runtime, threads) measurements for a target, run each in
its own child process, collect typed rows, write results.json atomically."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeconv import __version__, _atomic
from edgeconv._child import child_env, last_line, signal_name
from edgeconv.bench.child import Job
from edgeconv.bench.plan import (
    HOST_RUNTIME,
    Artifact,
    collect,
    dataset_spec,
    require_runtime,
    runtime_available,
)
from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.runtimes import runtime_versions
from edgeconv.targets import Target, get_target

SCHEMA_VERSION = 1
_REASON_CHARS = 500
_ARCH_NAMES = {"arm64": "aarch64", "amd64": "x86_64"}  # what macOS / Windows call them


@dataclass(frozen=True)
class BenchConfig:
    paths: tuple[Path, ...] = ()
    target: str = "cpu"
    runtime: str | None = None
    threads: tuple[int, ...] | None = None  # None: the target's
    warmup: int = 10
    runs: int = 50
    min_time: float = 1.0  # seconds of timed runs, at least
    data: str | None = None
    data_dir: str | None = None
    timeout: float = 600.0  # per child process
    targets_dir: str | None = None
    host: str | None = None  # user@board[:port]: bench there over SSH (default: the target's)
    local: bool = False  # bench here even if the target names a host (what runs on the board)
    ssh_options: tuple[str, ...] = ()  # ssh_config options, Key=Value
    remote_edgeconv: str | None = None  # the board's edgeconv command (default: the target's)
    out: Path | None = None


@dataclass
class Measurement:
    """One row of results.json: an artifact in a runtime at a thread count on a target."""

    artifact: str
    sha256: str
    format: str
    precision: str | None
    runtime: str
    target: str
    threads: int | None
    status: str  # ok | unsupported | failed
    error: str | None = None
    latency_ms: dict[str, float] | None = None  # p50, p90, p99, mean, std, min
    timed_on: str = "target"  # "host" for MCU targets: TFLite Micro ran on this machine
    init_ms: float | None = None
    first_ms: float | None = None
    runs: int | None = None
    throughput_ips: float | None = None  # inferences per second at the mean latency
    macs: int | None = None
    gmac_per_s: float | None = None
    peak_rss_bytes: int | None = None
    size_bytes: int | None = None
    accuracy: float | None = None
    agreement: float | None = None
    arena_bytes: int | None = None
    flash_bytes: int | None = None
    fits: bool | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class BenchReport:
    environment: dict[str, Any]
    config: dict[str, Any]
    results: list[Measurement]
    notes: list[str]
    out: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "environment": self.environment,
                "config": self.config, "results": [asdict(r) for r in self.results],
                "notes": self.notes}


Progress = Callable[[int, int, str], None]  # (done, total, what runs next)


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    target = get_target(config.target, config.targets_dir)
    if config.local and config.host:
        raise EdgeconvError("--local benches on this machine, --host on another: pick one")
    host = config.host or (None if config.local else target.host)
    if host is None:
        _check_reachable(target, config)
    elif target.kind == "mcu":
        raise EdgeconvError(f"{target.name} is a microcontroller target: TFLite Micro runs on"
                            " this machine, not over SSH; drop --host")
    if config.runtime is not None:
        if config.runtime not in target.runtimes:
            raise EdgeconvError(f"target {target.name} runs {', '.join(target.runtimes)}, not"
                                f" '{config.runtime}'{did_you_mean(config.runtime, target.runtimes)}")
        if host is None:
            require_runtime(config.runtime)
    artifacts = collect(list(config.paths))
    if host is not None:
        from edgeconv.bench.remote import bench_over_ssh  # only the SSH path needs it

        env, results, notes = bench_over_ssh(host, artifacts, target, config, progress)
    else:
        results, notes = _bench_here(artifacts, target, config, progress)
        env = environment(target)
    report = BenchReport(environment=env,
                         config={k: v for k, v in asdict(config).items()
                                 if k in ("runtime", "threads", "warmup", "runs", "min_time",
                                          "data", "timeout")},
                         results=results, notes=notes, out=config.out)
    if config.out is not None:
        _atomic.write_json(config.out, report.to_dict())
    return report


def _bench_here(artifacts: list[Artifact], target: Target, config: BenchConfig,
                progress: Progress | None) -> tuple[list[Measurement], list[str]]:
    notes: list[str] = []
    plan = _plan(artifacts, target, config, notes)
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="edgeconv-bench-") as scratch:
        data_files = _prepare_data(artifacts, config, Path(scratch), notes)
        for done, (artifact, runtime, threads) in enumerate(plan):
            if progress:
                progress(done, len(plan), f"{artifact.label} {runtime}"
                         + (f" x{threads}" if threads else ""))
            results.append(_measure(artifact, runtime, threads, target, config,
                                    data_files, Path(scratch)))
        if progress:
            progress(len(plan), len(plan), "done")
    _add_macs(results, plan)
    return results, notes


def environment(target: Target) -> dict[str, Any]:
    return {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "machine": platform.machine(), "os": platform.platform(),
            "python": platform.python_version(), "edgeconv": __version__,
            "runtimes": runtime_versions(), "target": target.to_dict(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _check_reachable(target: Target, config: BenchConfig) -> None:
    """A target this machine cannot measure is one line and exit 2, never invented numbers."""
    if target.kind == "gpu":
        reason = gpu_unavailable()
        if reason:
            raise EdgeconvError(f"no GPU here for target '{target.name}': {reason}; bench on"
                                " --target cpu, or run this on a machine with an NVIDIA GPU")
    machine = _ARCH_NAMES.get(platform.machine().lower(), platform.machine().lower())
    arch = target.arch and _ARCH_NAMES.get(target.arch.lower(), target.arch.lower())
    if target.kind == "board" and arch and machine != arch:
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


def _gpu_providers() -> list[str]:
    """TensorRT first when it is installed (onnxruntime falls back to CUDA per node), else
    CUDA. onnxruntime-gpu lists TensorRT as available even without TensorRT's libraries,
    and a provider that then fails to start fails the row, so look for them."""
    import ctypes.util

    import onnxruntime

    tensorrt = ("TensorrtExecutionProvider" in onnxruntime.get_available_providers()
                and (importlib.util.find_spec("tensorrt") is not None
                     or ctypes.util.find_library("nvinfer") is not None))
    return ["tensorrt", "cuda"] if tensorrt else ["cuda"]


def _plan(artifacts: list[Artifact], target: Target, config: BenchConfig,
          notes: list[str]) -> list[tuple[Artifact, str, int | None]]:
    """(artifact, runtime, threads) in measuring order: a Keras reference before the files
    of its export, so that they can be compared with it."""
    threads = config.threads or target.threads
    plan = []
    for artifact in sorted(artifacts, key=lambda a: a.format != "keras"):
        runtime = "tflite-micro" if target.kind == "mcu" else HOST_RUNTIME[artifact.format]
        if config.runtime not in (None, runtime):
            continue
        if runtime not in target.runtimes or (target.kind == "mcu" and artifact.format != "tflite"):
            plan.append((artifact, runtime, None))  # becomes an `unsupported` row
            continue
        if runtime == "keras" and artifact.manifest is not None and config.runtime is None \
                and not runtime_available("keras"):
            notes.append(f"{artifact.label}: Keras is not installed, so no float reference "
                         "(pip install 'edgeconv[train]')")
            continue
        require_runtime(runtime)
        # Keras sets threads process-wide and TFLite Micro has one: one row each.
        for count in threads if runtime in ("litert", "onnxruntime") else threads[:1]:
            plan.append((artifact, runtime, count if runtime != "keras" else None))
    return plan


def _prepare_data(artifacts: list[Artifact], config: BenchConfig, scratch: Path,
                  notes: list[str]) -> dict[Path, Path]:
    """Test split per export, saved for the children; a dataset that is not here is a note."""
    import numpy as np

    files: dict[Path, Path] = {}
    for manifest in {a.manifest.directory: a.manifest for a in artifacts if a.manifest}.values():
        spec = dataset_spec(manifest, config.data, config.data_dir)
        try:
            prepared = _load_split(spec)
        except EdgeconvError as exc:
            notes.append(f"{manifest.directory}: no accuracy figures ({exc})")
            continue
        file = scratch / f"data-{len(files)}.npz"
        np.savez(file, x=prepared.test.x, y=prepared.test.y)
        files[manifest.directory] = file
    return files


def _load_split(spec: dict[str, Any]):
    from edgeconv.data import evaluation_subset, load_recorded

    if not spec["name"] or not spec["preprocessing"]:
        raise EdgeconvError("the manifest names no dataset")
    data = load_recorded(spec["name"], spec["preprocessing"], data_dir=spec["data_dir"],
                         seed=spec["seed"], made="the export was made")
    samples = spec.get("test_samples")
    return evaluation_subset(data, samples, seed=spec["seed"]) if samples else data


def _measure(artifact: Artifact, runtime: str, threads: int | None, target: Target,
             config: BenchConfig, data_files: dict[Path, Path], scratch: Path) -> Measurement:
    row = Measurement(artifact=artifact.label, sha256=artifact.sha256, format=artifact.format,
                      precision=artifact.precision, runtime=runtime, target=target.name,
                      threads=threads, status="unsupported", size_bytes=artifact.size_bytes,
                      timed_on="host" if target.kind == "mcu" else "target")
    if runtime not in target.runtimes or (target.kind == "mcu" and artifact.format != "tflite"):
        row.error = (f"{artifact.format} files do not run on {target.name}"
                     f" (it runs {', '.join(target.runtimes)})")
        return row
    directory = artifact.manifest.directory if artifact.manifest else None
    data = data_files.get(directory) if directory else None
    reference = scratch / f"reference-{abs(hash(str(directory)))}.npz"
    job = Job(path=str(artifact.path), runtime=runtime, threads=threads, warmup=config.warmup,
              runs=config.runs, min_time=config.min_time, hwc=artifact.hwc,
              data=str(data) if data else None,
              reference_out=str(reference) if runtime == "keras" and data else None,
              reference_in=str(reference) if runtime != "keras" and reference.exists() else None,
              arena_size=target.sram_bytes if target.kind == "mcu" else None,
              device="gpu" if target.kind == "gpu" else "cpu",
              providers=_gpu_providers() if target.kind == "gpu" and runtime == "onnxruntime"
              else None)
    child = _run_child(job, config.timeout)
    for key, value in child.items():
        if hasattr(row, key) and key not in ("batch",):
            setattr(row, key, value)
    if row.status == "ok" and row.latency_ms:
        row.throughput_ips = 1000.0 * (child.get("batch") or 1) / row.latency_ms["mean"]
    if target.kind == "mcu":
        _fit(row, target)
    if data is None and row.status == "ok" and target.kind != "mcu":
        row.notes.append("no labelled data: accuracy not measured")
    return row


def _run_child(job: Job, timeout: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "edgeconv.bench"]
    try:
        done = subprocess.run(command, input=json.dumps(asdict(job)), capture_output=True,
                              text=True, timeout=timeout, env=child_env(), check=False)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"{job.runtime} timed out after {timeout:g} s"}
    last_words = last_line(done.stderr)[:_REASON_CHARS]
    if done.returncode < 0:
        crash = f"{job.runtime} crashed ({signal_name(-done.returncode)})"
        return {"status": "failed", "error": f"{crash}: {last_words}" if last_words else crash}
    try:
        return json.loads(last_line(done.stdout))
    except json.JSONDecodeError:
        return {"status": "failed", "error": f"{job.runtime} child exited {done.returncode}"
                                             + (f": {last_words}" if last_words else "")}


def _fit(row: Measurement, target: Target) -> None:
    """Flash = model + the runtime's code (an estimate, see the target file); RAM = arena."""
    overhead = target.flash_overhead_bytes or 0
    row.flash_bytes = (row.size_bytes or 0) + overhead
    row.notes.append(f"flash = model + {overhead} B runtime ({target.flash_overhead_source})")
    row.notes.append("latency is host time of TFLite Micro on this machine, not board time")
    if row.arena_bytes is not None:
        row.fits = row.arena_bytes <= target.sram_bytes and row.flash_bytes <= target.flash_bytes
    elif row.error and "Failed to resize buffer" in row.error:
        # TFLM was given the board's whole SRAM as its arena and could not plan in it.
        row.fits = False
        row.notes.append(f"the tensor arena does not fit in {target.sram_bytes} B of SRAM")


def _add_macs(results: list[Measurement],
              plan: list[tuple[Artifact, str, int | None]]) -> None:
    """MACs come from the Keras model (only its child imports Keras): they hold for every
    file of the same export, whose ops are the same layers."""
    by_export = {}
    for row, (artifact, _, _) in zip(results, plan):
        if row.macs and artifact.manifest is not None:
            by_export[artifact.manifest.directory] = row.macs
    for row, (artifact, _, _) in zip(results, plan):
        macs = by_export.get(artifact.manifest.directory) if artifact.manifest else None
        if macs and row.latency_ms:
            row.macs = macs
            row.gmac_per_s = macs / (row.latency_ms["p50"] / 1000.0) / 1e9
