"""MobileNet v1 (alpha 1, 224x224x3) on this CPU: the Keras float model, compiled and eager,
vs every exported file, and the threads sweep. Answers "how much faster is int8 LiteRT than
the Keras float model", against a fair float baseline.

Run:  .venv/bin/python benchmarks/mobilenet_speedup.py [--threads 1,2] [--runs 50]

Exports untrained weights (speed does not depend on them) into a temporary directory with
`edgeconv export mobilenet --untrained --int8 --fp16`, benches it with `edgeconv bench
--target cpu` (whose Keras row runs the reference as the bench does: KerasRuntime's default
mode "auto", compiled), then times the Keras file once more in each explicit mode (eager,
tf.function, tf.function+XLA) through the bench's own child process (`python -m
edgeconv.bench`: the same timing loop, the same warm-up, runs and minimum time). Prints a
markdown table with each p50's 95% interval and each speed-up against the compiled Keras
reference (with an interval) and against eager Keras, plus the machine's load average
before and after: paste it into docs/bench.md with the date and the machine. Keras has one
row per mode (it sets its threads process-wide).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from edgeconv._child import run_child
from edgeconv.bench import BenchConfig, run_bench
from edgeconv.bench.child import Job
from edgeconv.export import ExportConfig, export
from edgeconv.records import Latency
from edgeconv.runtimes import get_runtime
from edgeconv.stats import CONFIDENCE, Interval, ratio_interval

MODES = ("eager", "function", "xla")  # timed besides the bench's own (auto) Keras row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-time", type=float, default=2.0)
    args = parser.parse_args()
    threads = tuple(int(t) for t in args.threads.split(","))
    load_before, started = os.getloadavg(), time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mobilenet"
        export(ExportConfig(target="mobilenet", untrained=True,
                            precisions=frozenset({"int8", "fp16"}),
                            model_options={"input_shape": (224, 224, 3)}, out=out))
        report = run_bench(BenchConfig(paths=(out,), target="cpu", threads=threads,
                                       runs=args.runs, warmup=10, min_time=args.min_time))
        keras_file = next(out.glob("*.keras"))
        modes = {mode: _keras_row(keras_file, mode, args) for mode in MODES}
        rows = [r for r in report.results if r.status == "ok"]
        keras = next(r for r in rows if r.format == "keras")
        auto_form = _form(keras.notes) or _auto_here(keras_file)
    load_after, elapsed = os.getloadavg(), time.time() - started
    env = report.environment
    print(f"{env['cpu']}, {env['cores']} cores, Python {env['python']}; mobilenet alpha 1,"
          f" 224x224x3, batch 1, {args.runs}+ runs and {args.min_time:g} s after 10 warm-up;"
          f" load average (1, 5, 15 min) {_load(load_before)} before, {_load(load_after)}"
          f" after; {elapsed:.0f} s in all\n")
    print(f"compiled Keras reference (the bench's Keras row, mode auto): {auto_form}\n")
    print("| file | runtime | threads | p50 ms [95% interval] | p90 ms | min ms |"
          " speed-up vs compiled Keras [95%] | vs eager Keras |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    eager = modes["eager"]
    short = auto_form.split(" (", 1)[0]
    table = [(f"{keras_file.name}", f"keras (bench default: auto, ran {short})", None,
              keras.latency_ms)]
    table += [(keras_file.name, f"keras, mode {mode}", None, latency)
              for mode, latency in modes.items() if latency is not None]
    table += [(Path(r.artifact).name, r.runtime, r.threads, r.latency_ms)
              for r in rows if r.format != "keras"]
    for name, runtime, n_threads, lat in table:
        print(f"| {name} | {runtime} | {n_threads or 'all'} | {lat.p50:.2f} {_range(lat)} |"
              f" {lat.p90:.2f} | {lat.min:.2f} | {_speedup(keras.latency_ms, lat)} |"
              f" {_speedup(eager, lat, interval=False) if eager else '-'} |")
    for mode, latency in modes.items():
        if latency is None:
            print(f"\nkeras mode {mode}: no figure (the child failed; see stderr)")


def _keras_row(path: Path, mode: str, args) -> Latency | None:
    """The Keras file timed in one mode by the bench's child process (its timing loop)."""
    job = Job(path=str(path), format="keras", entry=Job.entry_of(get_runtime("keras")),
              options={"mode": mode}, warmup=10, runs=args.runs, min_time=args.min_time)
    outcome = run_child("edgeconv.bench", what=f"keras ({mode})", timeout=600,
                        stdin=json.dumps(asdict(job)))
    answer = outcome.payload if outcome.ok else None
    if not answer or answer.get("status") != "ok":
        print(f"keras mode {mode}: {outcome.error or answer.get('error')}", file=sys.stderr)
        return None
    return Latency.from_dict(answer["latency_ms"])


def _form(notes: list[str]) -> str | None:
    """How the bench child says the Keras reference ran (KerasRuntime.compiled_note)."""
    return next((n.removeprefix("Keras ran as ") for n in notes
                 if n.startswith("Keras ran as ")), None)


def _auto_here(path: Path) -> str:
    """Which form mode auto picks, asked in this process: for a bench child that does not
    note the form its Keras row ran in."""
    from edgeconv.runtimes import open_runtime

    with open_runtime(path, "keras") as runtime:
        note = runtime.compiled_note.removeprefix("Keras ran as ")
    return f"{note} [chosen in this script's process: the bench row does not say]"


def _interval(lat: Latency) -> Interval | None:
    if lat.p50_low is None or lat.p50_high is None:
        return None
    return Interval(lat.p50_low, lat.p50_high, CONFIDENCE, "order statistics")


def _range(lat: Latency) -> str:
    interval = _interval(lat)
    return "" if interval is None else f"[{interval.low:.2f}, {interval.high:.2f}]"


def _speedup(reference: Latency, lat: Latency, interval: bool = True) -> str:
    ratio = f"{reference.p50 / lat.p50:.1f}x"
    ours, theirs = _interval(lat), _interval(reference)
    if not interval or ours is None or theirs is None:
        return ratio
    bounds = ratio_interval(reference.p50, theirs, lat.p50, ours)
    return f"{ratio} [{bounds.low:.1f}, {bounds.high:.1f}]"


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in load)


if __name__ == "__main__":
    main()
