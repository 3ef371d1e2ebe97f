"""The benchmark harness: every artifact measured on a target, each in its own process.

`run_bench(BenchConfig(...), progress)` -> `edgeconv.records.BenchReport`, whose rows are
`BenchRow`s, written as results.json with `out`. The modules: `plan` (what to measure, made
once), `local` (run the plan here, one child per row), `child` (`python -m edgeconv.bench`:
one measurement), `remote` (run the plan on a board over SSH), `harness` (which of the two,
and results.json), `validate` (structural checks of model files). See docs/bench.md.
"""

from __future__ import annotations

from edgeconv.bench.harness import run_bench
from edgeconv.bench.plan import BenchConfig
from edgeconv.records import BenchReport, BenchRow

__all__ = ["BenchConfig", "BenchReport", "BenchRow", "run_bench"]
