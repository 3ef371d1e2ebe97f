"""The harness's own overhead: its reported p50 against a bare `interpreter.invoke()` loop on
the same .tflite file and thread count (target: within 3%).

    .venv/bin/python benchmarks/bench_overhead.py [MODEL.tflite ...] [--threads 1] [--runs 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edgeconv.bench import BenchConfig, run_bench

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlcommons-tiny"


def bare_p50(model: Path, threads: int, runs: int, warmup: int) -> float:
    interpreter = Interpreter(model_path=str(model), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = np.zeros(detail["shape"], dtype=detail["dtype"])
    interpreter.set_tensor(detail["index"], x)
    for _ in range(warmup):
        interpreter.invoke()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        interpreter.invoke()
        samples.append(time.perf_counter_ns() - start)
    return float(np.percentile(samples, 50)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=[
        MODELS / "vww_96_int8.tflite", MODELS / "pretrainedResnet_quant.tflite",
        MODELS / "kws_ref_model.tflite"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    print(f"{'model':32} {'bare p50 ms':>12} {'harness p50 ms':>15} {'diff':>7}")
    for model in args.models:
        bare = bare_p50(model, args.threads, args.runs, args.warmup)
        report = run_bench(BenchConfig(paths=(model,), target="cpu", threads=(args.threads,),
                                       warmup=args.warmup, runs=args.runs, min_time=0))
        harness = report.results[0].latency_ms.p50
        print(f"{model.name:32} {bare:12.4f} {harness:15.4f} {100 * (harness / bare - 1):+6.1f}%")


if __name__ == "__main__":
    main()
