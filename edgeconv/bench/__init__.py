"""The benchmark harness: every artifact measured on a target, each in its own process.

`run_bench(BenchConfig(...), progress)` -> `edgeconv.records.BenchReport`, whose rows are
`BenchRow`s, written as results.json with `out`. The modules: `plan` (what to measure, made
once), its executors `local` (the host: run the plan here, one child per row), `firmware`
(the rows an MCU target's Arm core takes, in emulated TFLite Micro firmware: a row per kernel
set) and `remote` (run the plan on a board over SSH), `child` (`python -m edgeconv.bench`:
one measurement), `harness` (which executors, composed, and results.json), `validate`
(regular-file, size and structural checks of model files, the private copy a bench
measures), `ssh_rules` (what may reach ssh, from where). See docs/bench.md.

The names below are imported on first use, so that `edgeconv.targets` can use
`validate` and `ssh_rules` (standard library only) without importing the harness, and the
child process (`python -m edgeconv.bench`) starts without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BenchConfig", "BenchReport", "BenchRow", "run_bench"]
_WHERE = {"BenchConfig": "edgeconv.bench.plan", "run_bench": "edgeconv.bench.harness",
          "BenchReport": "edgeconv.records", "BenchRow": "edgeconv.records"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'edgeconv.bench' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
