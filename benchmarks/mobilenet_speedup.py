"""MobileNet v1 (alpha 1, 224x224x3) on this CPU: Keras float vs every exported file, and
the threads sweep. Answers "how much faster is int8 LiteRT than the Keras float model".

Run:  .venv/bin/python benchmarks/mobilenet_speedup.py [--threads 1,2,4] [--runs 50]
Exports untrained weights (speed does not depend on them) into a temporary directory with
`edgeconv export mobilenet --untrained --int8 --fp16`, benches it with `edgeconv bench
--target cpu`, and prints a markdown table (paste it into docs/bench.md with the date and
the machine). Keras is one row (it sets its threads process-wide).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edgeconv.bench import BenchConfig, run_bench
from edgeconv.export import ExportConfig, export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    threads = tuple(int(t) for t in args.threads.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mobilenet"
        export(ExportConfig(target="mobilenet", untrained=True,
                            precisions=frozenset({"int8", "fp16"}),
                            model_options={"input_shape": (224, 224, 3)}, out=out))
        report = run_bench(BenchConfig(paths=(out,), target="cpu", threads=threads,
                                       runs=args.runs, warmup=10, min_time=2.0))
    rows = [r for r in report.results if r.status == "ok"]
    keras = next(r for r in rows if r.format == "keras")
    env = report.environment
    print(f"{env['cpu']}, {env['cores']} cores, Python {env['python']}; mobilenet alpha 1,"
          f" 224x224x3, batch 1, {args.runs}+ runs after 10 warm-up\n")
    print("| file | runtime | threads | p50 ms | p90 ms | min ms | speed-up vs Keras p50 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        lat = r.latency_ms
        print(f"| {Path(r.artifact).name} | {r.runtime} | {r.threads or ''} |"
              f" {lat.p50:.2f} | {lat.p90:.2f} | {lat.min:.2f} |"
              f" {keras.latency_ms.p50 / lat.p50:.1f}x |")


if __name__ == "__main__":
    main()
