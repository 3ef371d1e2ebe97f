"""The measuring side of the harness: one artifact in one runtime, in its own process.

Run as `python -m edgeconv.bench` with a job (JSON) on stdin, it prints one JSON line: the
measured fields of the row (`ANSWER_FIELDS`, a subset of records.BenchRow, as BenchRow
writes them). The parent (`edgeconv.bench.local`, through edgeconv._child.run_child) turns
a crash, a hang or garbage on stdout into a failed row and checks the answer's types with
`BenchRow.from_dict`, so nothing here has to guard against the runtime.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv._child import REASON_CHARS
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.formats import resolve
from edgeconv.records import BenchRow
from edgeconv.runtimes import Runtime, TensorInfo, open_runtime
from edgeconv.runtimes.registry import RuntimeEntry, get_runtime, register
from edgeconv.stats import median_interval, proportion

_AGREEMENT_SAMPLES = 32  # random inputs for the fit check's agreement without labelled data

# The fields of a row the child measures; the parent fills in the rest (what was measured,
# where, the fit check, MACs from the reference row).
ANSWER_FIELDS = ("status", "error", "init_ms", "first_ms", "latency_ms", "runs",
                 "throughput_ips", "peak_rss_bytes", "peak_rss_of", "accuracy", "agreement",
                 "arena_bytes", "macs", "notes", "eval_samples", "accuracy_interval",
                 "agreement_interval")
assert set(ANSWER_FIELDS) <= {f.name for f in fields(BenchRow)}


@dataclass
class Job:
    path: str
    format: str
    # The runtime's registry entry (name, cls, formats, options): a runtime registered only
    # in the parent (a plugin, a test's stand-in) is registered here from it.
    entry: dict[str, Any]
    options: dict[str, Any]  # constructor options of that runtime (threads, arena_size)
    warmup: int
    runs: int
    min_time: float  # seconds
    hwc: list[int] | None = None  # fills the free dimensions of the input (manifest)
    data: str | None = None  # .npz with the test split: x (float32), y (int64)
    reference_out: str | None = None  # the reference (keras): its top-1 on `data` (+ MACs)
    reference_in: str | None = None  # others: agreement against this top-1
    seed: int = 0
    fit: bool = False  # the target's kind gets the fit check: arena, kernel agreement
    device: str = "cpu"  # gpu: the runtime must run on the GPU, or the row is unsupported
    # .npz to save the raw outputs on the evaluation inputs in (save_outputs): what the SSH
    # path compares with this file's outputs on the machine that sent the job
    outputs: str | None = None
    save_inputs: bool = False  # `outputs` also keeps the raw inputs (a few, for the MCU path)
    # bench --custom-objects: the user's Python file registering custom Keras layers, run
    # in a Keras row's child only, so that the .keras reference loads (safe mode still on)
    custom_objects: str | None = None
    # a file the child writes the phase it is in to (`phase`): what the parent names when
    # the child runs past its timeout (the timed runs, or N test images through the runtime)
    phase_file: str | None = None

    @staticmethod
    def entry_of(entry: RuntimeEntry) -> dict[str, Any]:
        return {"name": entry.name, "cls": entry.cls, "formats": list(entry.formats),
                "options": list(entry.options)}


def latency_stats(samples_ns: list[int]) -> dict[str, float | None]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    # the p50's 95% interval from the runs' order statistics; None below 6 runs
    interval = median_interval(ms.tolist())
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean()),
            "std": float(ms.std()), "min": float(ms.min()),
            "p50_low": None if interval is None else interval.low,
            "p50_high": None if interval is None else interval.high}


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


def measure(job: Job) -> dict[str, Any]:
    """The measured fields of the job's row (ANSWER_FIELDS)."""
    entry = _entry(job)
    options = dict(job.options)
    if job.device == "gpu":
        reason = _on_gpu(entry, options)
        if reason:  # it would quietly run on the CPU: that is not a GPU figure
            return {"status": "unsupported", "error": reason}
    result: dict[str, Any] = {"status": "ok", "notes": []}
    if job.custom_objects and entry.name == "keras":
        try:
            _register_custom_objects(job.custom_objects)
        except EdgeconvError as exc:  # the user's file: its failure is this row's reason
            return {"status": "failed", "error": str(exc), "peak_rss_bytes": _peak_rss(),
                    "peak_rss_of": "process"}
    phase(job, "opening the file")
    start = time.perf_counter_ns()
    try:
        runtime = open_runtime(job.path, entry.name, **options)
    except EdgeconvError as exc:  # the runtime refuses this file: not a harness failure
        return {"status": "unsupported", "error": str(exc), "peak_rss_bytes": _peak_rss(),
                "peak_rss_of": "process"}
    result["init_ms"] = (time.perf_counter_ns() - start) / 1e6
    with runtime:
        try:
            x = random_input(runtime.inputs()[0], job.hwc, job.seed)
            phase(job, "timed runs")
            start = time.perf_counter_ns()
            runtime.run_raw_all(x)  # every output: the whole graph is what is timed
            result["first_ms"] = (time.perf_counter_ns() - start) / 1e6
            samples = timed_runs(runtime.prepared(x), job.warmup, job.runs, job.min_time)
            latency = latency_stats(samples)
            result.update(latency_ms=latency, runs=len(samples),
                          throughput_ips=1000.0 * x.shape[0] / latency["mean"])
            # the runtime's memory: read before any test image is loaded, quantised or run
            # (the accuracy pass below is the harness's work, which VmHWM would count)
            result.update(peak_rss_bytes=_peak_rss(), peak_rss_of="runtime")
            if job.data:
                phase(job, f"accuracy {_images_in(job.data)}")
            # how the file ran: Keras compiled or eager; onnxruntime's QDQ unfused
            for how in (getattr(runtime, "compiled_note", None),
                        getattr(runtime, "run_note", None)):
                if how:
                    result["notes"].append(how)
            if job.fit:
                result["arena_bytes"] = runtime.arena_used_bytes()
                _kernel_agreement(runtime, entry, job, result)
            computed = None
            if not job.fit and job.data:
                computed = _quality(runtime, job, result)
            if job.outputs:
                save_outputs(runtime, job, computed)
        except EdgeconvError as exc:
            result["status"], result["error"] = "failed", str(exc)
    if "peak_rss_bytes" not in result:  # stopped before its timed runs: the whole child's
        result.update(peak_rss_bytes=_peak_rss(), peak_rss_of="process")
    return result


def phase(job: Job, what: str) -> None:
    """Write the phase the child is in to job.phase_file (see Job), replacing the last."""
    if job.phase_file:
        Path(job.phase_file).write_text(what)


def _images_in(data: str) -> int:
    with np.load(data) as split:  # the labels only: the images are read by the pass itself
        return len(split["y"])


def _entry(job: Job) -> RuntimeEntry:
    """The job's runtime as this process's registry knows it, registered from the job when
    the parent's was registered at run time (a plugin, a test) and is unknown here."""
    given = job.entry
    try:
        entry = get_runtime(given["name"])
    except EdgeconvError:
        entry = None
    if entry is None or entry.cls != given["cls"]:
        entry = register(RuntimeEntry(given["name"], given["cls"], tuple(given["formats"]),
                                      "registered by the bench's parent process",
                                      options=tuple(given["options"])))
    return entry


def _register_custom_objects(script: str) -> None:
    """Run the user's --custom-objects file (as export does) and make its CUSTOM_OBJECTS
    names Keras resolves in this process; classes it registers with
    register_keras_serializable Keras finds by itself. No code stored in the model runs."""
    from edgeconv._lazy import keras
    from edgeconv.export.user_model import register_custom_objects

    keras().saving.get_custom_objects().update(register_custom_objects(script))


def _on_gpu(entry: RuntimeEntry, options: dict[str, Any]) -> str | None:
    """Put the runtime on the GPU (its registry entry says how), or say why it cannot."""
    if entry.on_gpu is None:
        return f"the {entry.name} runtime has no GPU path"
    return resolve(entry.on_gpu)(options)


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
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def _quality(runtime: Runtime, job: Job, result: dict[str, Any]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Accuracy on the test split; top-1 agreement with the Keras reference's. Returns the
    inputs as the runtime quantised them and its raw outputs (what `run_all` computes), so
    that saving them for parity does not run the split again (slow on an emulated board).
    A model with several outputs is no classifier: it is run, but gets no top-1 figures."""
    from edgeconv.runtimes.base import dequantize, quantize

    with np.load(job.data) as data:
        x, y = data["x"], data["y"]
    x = quantize(x, runtime.inputs()[0])
    raw = runtime.run_raw_all(x)
    top1 = _top1(dequantize(raw[0], runtime.outputs()[0])) if len(raw) == 1 else None
    if top1 is None:
        result["notes"].append(f"{len(raw)} outputs: no accuracy or agreement (top-1 is"
                               " for single-output classifiers)")
    else:
        _share(result, "accuracy", top1 == y)
    if job.reference_out:
        from edgeconv.runtimes.keras import load_model  # Keras is loaded in this process
        from edgeconv.zoo.analyze import analyze

        result["macs"] = analyze(load_model(job.path)).macs or None
        # no top1 for several outputs: the other files then get no agreement either
        np.savez(job.reference_out, macs=np.int64(result["macs"] or 0),
                 **({} if top1 is None else {"top1": top1}))
    elif job.reference_in and top1 is not None:
        with np.load(job.reference_in) as reference:
            if "top1" in reference:
                _share(result, "agreement", top1 == reference["top1"])
                result["notes"].append("agreement: top-1 vs the Keras float model on the"
                                       " test split")
    return x, raw


def _kernel_agreement(runtime: Runtime, entry: RuntimeEntry, job: Job,
                      result: dict[str, Any]) -> None:
    """The fit check's outputs against the kernels the runtime implements (its registry
    entry's kernel_reference: LiteRT's reference kernels for TFLite Micro) on the same
    inputs: the test split when there is one, else seeded random inputs."""
    info = runtime.inputs()[0]
    if job.data:
        with np.load(job.data) as data:
            x, y = data["x"], data["y"]
        floats = True
    else:
        x = np.concatenate([random_input(info, None, job.seed + i)
                            for i in range(_AGREEMENT_SAMPLES)])
        y, floats = None, False
    ours = runtime.run_all(x) if floats else runtime.run_raw_all(x)
    if len(ours) != 1:  # runs (so a kernel TFLM lacks fails here), but has no top-1
        result["notes"].append(f"{len(ours)} outputs: no accuracy or top-1 agreement (top-1"
                               " is for single-output classifiers)")
        return
    ours = ours[0]
    if y is not None:
        _share(result, "accuracy", _top1(ours) == y)
    if entry.kernel_reference is None:
        return
    name, options = entry.kernel_reference
    try:
        reference = open_runtime(job.path, name, **options)
    except EdgeconvError as exc:
        result["notes"].append(f"no agreement figure: {exc}")
        return
    with reference:
        theirs = reference.run(x) if floats else reference.run_raw(x)
    _share(result, "agreement", _top1(ours) == _top1(theirs))
    source = "test split" if y is not None else f"{len(x)} random inputs"
    result["notes"].append(f"agreement: top-1 of {entry.name} vs {name} reference"
                           f" kernels on the {source}")


def _share(result: dict[str, Any], key: str, right: np.ndarray) -> None:
    """An accuracy or agreement, its 95% Wilson interval and the inputs it was measured on."""
    result[key], result[f"{key}_interval"] = proportion(right)
    result["eval_samples"] = len(right)


def save_outputs(runtime: Runtime, job: Job,
                 computed: tuple[np.ndarray, list[np.ndarray]] | None = None) -> None:
    """The engine's raw outputs (int8 stays int8) on the evaluation inputs, saved as
    job.outputs: the test split as the runtime quantises it, else _AGREEMENT_SAMPLES seeded
    random inputs; with the sha256 of those raw inputs (dtype, shape, bytes) and what they
    were, so that two machines' outputs are compared on inputs shown to be the same.
    Output 0 is `out`, further ones `out1`, `out2`, ... (output_keys)."""
    from edgeconv.runtimes.base import quantize

    info = runtime.inputs()[0]
    out = None
    if computed is not None:  # the test split, already run by _quality
        (x, out), source = computed, "test images"
    elif job.data:
        with np.load(job.data) as data:
            x = quantize(data["x"], info)
        source = "test images"
    else:
        x = np.concatenate([random_input(info, job.hwc, job.seed + i)
                            for i in range(_AGREEMENT_SAMPLES)])
        source = "seeded random inputs"
    x = np.ascontiguousarray(x)
    digest = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode() + x.tobytes()).hexdigest()
    # save_inputs: x too, which the MCU path feeds its firmware (bench/firmware.py)
    extra = {"x": x} if job.save_inputs else {}
    outs = runtime.run_raw_all(x) if out is None else out
    np.savez(job.outputs, **dict(zip(output_keys(len(outs)), outs)),
             x_sha256=np.str_(digest), source=np.str_(source), **extra)


def output_keys(count: int) -> list[str]:
    """The keys of a saved outputs file's outputs: `out` (output 0, what a single-output
    reader takes), then `out1`, `out2`, ..."""
    return ["out", *(f"out{k}" for k in range(1, count))]


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
    try:
        result = measure(Job(**json.loads(sys.stdin.read())))
    except Exception as exc:  # noqa: BLE001 - any failure of a runtime is this row's reason
        result = {"status": "failed", "error": one_line(exc)[:REASON_CHARS],
                  "peak_rss_bytes": _peak_rss(), "peak_rss_of": "process"}
    print(json.dumps({k: v for k, v in result.items() if k in ANSWER_FIELDS}), flush=True)


if __name__ == "__main__":
    main()
