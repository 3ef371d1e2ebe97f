"""The measuring side of the harness: one artifact in one runtime, in its own process.

Run as `python -m edgeconv.bench` with a job (JSON) on stdin, it prints one JSON line
with the measurement on stdout. The parent (`edgeconv.bench.harness`) turns a crash, a hang
or garbage on stdout into a failed row, so nothing here has to guard against the runtime.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv.errors import EdgeconvError, one_line
from edgeconv.runtimes import Runtime, TensorInfo, open_runtime

_AGREEMENT_SAMPLES = 32  # random inputs for TFLM vs LiteRT when there is no labelled data


@dataclass
class Job:
    path: str
    runtime: str  # litert | onnxruntime | keras | tflite-micro
    threads: int | None
    warmup: int
    runs: int
    min_time: float  # seconds
    hwc: list[int] | None = None  # fills the free dimensions of the input (manifest)
    data: str | None = None  # .npz with the test split: x (float32), y (int64)
    reference_out: str | None = None  # keras: write its top-1 on `data` (+ MACs) here (.npz)
    reference_in: str | None = None  # others: agreement against this top-1
    seed: int = 0
    arena_size: int | None = None  # tflite-micro: the board's SRAM, what it can give TFLM
    device: str = "cpu"  # gpu: Keras must see a GPU, onnxruntime runs `providers`
    providers: list[str] | None = None


@dataclass
class ChildResult:
    status: str  # ok | unsupported | failed
    error: str | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    latency_ms: dict[str, float] | None = None
    runs: int | None = None
    batch: int | None = None
    peak_rss_bytes: int | None = None
    accuracy: float | None = None
    agreement: float | None = None
    arena_bytes: int | None = None
    macs: int | None = None
    notes: list[str] = field(default_factory=list)


def latency_stats(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean()),
            "std": float(ms.std()), "min": float(ms.min())}


def timed_runs(invoke, warmup: int, runs: int, min_time: float) -> list[int]:
    """Steady-state latencies (ns) of `invoke()` after `warmup` calls: at least `runs` runs
    and `min_time` seconds, as TFLite's benchmark_model does. Only the call is timed."""
    for _ in range(warmup):
        invoke()
    clock = time.perf_counter_ns
    samples: list[int] = []
    deadline = clock() + int(min_time * 1e9)
    while len(samples) < runs or clock() < deadline:
        start = clock()
        invoke()
        samples.append(clock() - start)
    return samples


def measure(job: Job) -> ChildResult:
    result = ChildResult(status="ok")
    options: dict[str, Any] = {}
    if job.runtime in ("litert", "onnxruntime"):
        options["threads"] = job.threads
    if job.providers:
        options["providers"] = job.providers
    if job.runtime == "tflite-micro" and job.arena_size:
        options["arena_size"] = job.arena_size
    if job.device == "gpu" and job.runtime == "keras" and not _keras_sees_gpu():
        # Keras would quietly run on the CPU: that is not a GPU figure.
        return ChildResult(status="unsupported", error="TensorFlow sees no GPU here (install"
                           " tensorflow[and-cuda] in place of tensorflow-cpu)")
    start = time.perf_counter_ns()
    try:
        runtime = open_runtime(job.path, job.runtime, **options)
    except EdgeconvError as exc:  # the runtime refuses this file: not a harness failure
        return ChildResult(status="unsupported", error=str(exc), peak_rss_bytes=_peak_rss())
    result.init_ms = (time.perf_counter_ns() - start) / 1e6
    with runtime:
        try:
            x = random_input(runtime.inputs()[0], job.hwc, job.seed)
            start = time.perf_counter_ns()
            runtime.run_raw(x)
            result.first_ms = (time.perf_counter_ns() - start) / 1e6
            samples = timed_runs(runtime.prepared(x), job.warmup, job.runs, job.min_time)
            result.latency_ms, result.runs, result.batch = latency_stats(samples), len(samples), \
                x.shape[0]
            if job.runtime == "tflite-micro":
                result.arena_bytes = runtime.arena_used_bytes()
                _micro_agreement(runtime, job, result)
            elif job.data:
                _quality(runtime, job, result)
        except EdgeconvError as exc:
            result.status, result.error = "failed", str(exc)
    result.peak_rss_bytes = _peak_rss()
    return result


def _keras_sees_gpu() -> bool:
    from edgeconv._lazy import keras

    keras()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def random_input(info: TensorInfo, hwc: list[int] | None, seed: int) -> np.ndarray:
    """One sample of the input's shape and dtype: the whole dtype range for integers,
    [0, 1) for floats (the models' usual normalisation)."""
    shape = [1 if info.shape[0] is None else info.shape[0], *info.shape[1:]]
    if None in shape:
        if hwc is None or len(hwc) != len(shape) - 1:
            raise EdgeconvError(f"the input {info.name} has free dimensions {info.shape}; "
                                "bench its export directory (the manifest fixes them)")
        shape = [shape[0], *(h if d is None else d for d, h in zip(shape[1:], hwc))]
    rng = np.random.default_rng(seed)
    dtype = np.dtype(info.dtype)
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        return rng.integers(limits.min, limits.max, size=shape, endpoint=True, dtype=dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def _quality(runtime: Runtime, job: Job, result: ChildResult) -> None:
    """Accuracy on the test split; top-1 agreement with the Keras reference's."""
    with np.load(job.data) as data:
        x, y = data["x"], data["y"]
    top1 = runtime.run(x).reshape(len(x), -1).argmax(axis=1)
    result.accuracy = float((top1 == y).mean())
    if job.reference_out:
        from edgeconv.analyze import analyze  # Keras is loaded in this process already
        from edgeconv.runtimes.keras import load_model

        result.macs = analyze(load_model(job.path)).macs or None
        np.savez(job.reference_out, top1=top1, macs=np.int64(result.macs or 0))
    elif job.reference_in:
        with np.load(job.reference_in) as reference:
            result.agreement = float((top1 == reference["top1"]).mean())
        result.notes.append("agreement: top-1 vs the Keras float model on the test split")


def _micro_agreement(micro: Runtime, job: Job, result: ChildResult) -> None:
    """TFLM's outputs against LiteRT's reference kernels (what TFLM implements) on the same
    inputs: the test split when there is one, else seeded random inputs."""
    from edgeconv.runtimes.litert import LiteRTRuntime

    info = micro.inputs()[0]
    if job.data:
        with np.load(job.data) as data:
            x, y = data["x"], data["y"]
        feed = micro.run
    else:
        x = np.concatenate([random_input(info, None, job.seed + i)
                            for i in range(_AGREEMENT_SAMPLES)])
        y, feed = None, micro.run_raw
    try:
        reference = LiteRTRuntime(job.path, reference=True)
    except EdgeconvError as exc:
        result.notes.append(f"no agreement figure: {exc}")
        ours = feed(x)
    else:
        with reference:
            ours = feed(x)
            theirs = reference.run(x) if feed == micro.run else reference.run_raw(x)
        result.agreement = float((_top1(ours) == _top1(theirs)).mean())
        source = "test split" if y is not None else f"{len(x)} random inputs"
        result.notes.append(f"agreement: top-1 of TFLite Micro vs LiteRT reference kernels"
                            f" on the {source}")
    if y is not None:
        result.accuracy = float((_top1(ours) == y).mean())


def _top1(outputs: np.ndarray) -> np.ndarray:
    return outputs.reshape(len(outputs), -1).argmax(axis=1)


def _peak_rss() -> int:
    # Linux carries ru_maxrss over from the parent across fork+exec; VmHWM is this process's.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main() -> None:
    job = Job(**json.loads(sys.stdin.read()))
    try:
        result = measure(job)
    except Exception as exc:  # noqa: BLE001 - any failure of a runtime is this row's reason
        result = ChildResult(status="failed", error=one_line(exc)[:500],
                             peak_rss_bytes=_peak_rss())
    print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()
