"""The benchmark harness: every artifact measured on a target, each in its own process.

`run_bench(BenchConfig(...))` -> `BenchReport` (rows of `Measurement`), written as
results.json with `out`. See docs/bench.md.
"""

from __future__ import annotations

from edgeconv.bench.harness import (
    SCHEMA_VERSION,
    BenchConfig,
    BenchReport,
    Measurement,
    run_bench,
)

__all__ = ["SCHEMA_VERSION", "BenchConfig", "BenchReport", "Measurement", "run_bench"]
