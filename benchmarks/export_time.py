"""Time to export a model to every format and precision, step by step.

Run:  .venv/bin/python benchmarks/export_time.py [--model mobilenet] [--input-shape 224,224,3]
Exports freshly initialised weights (`edgeconv export NAME --untrained --int8 --fp16
--dynamic`) into a temporary directory, so no training time is included: each conversion,
and each file's accuracy run on the digits test split in its own runtime, is timed on its own.
Prints a markdown table (paste it into docs/benchmarks.md with the date and machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from edgeconv.commands._options import parse_shape
from edgeconv.export import ExportConfig, export
from edgeconv.progress import Progress


class StepTimer(Progress):
    """Records how long each export step takes (a step ends when the next begins)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None

    def update(self, completed: int, description: str | None = None) -> None:
        if description:  # export's steps name what runs now (edgeconv.progress.Steps)
            self._close()
            self._current = (description, time.perf_counter())

    def _close(self) -> None:
        if self._current is not None:
            name, started = self._current
            self.steps.append((name, time.perf_counter() - started))
            self._current = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet")
    parser.add_argument("--input-shape", default="224,224,3")
    parser.add_argument("--alpha", type=float, default=None)
    args = parser.parse_args()
    options = {"input_shape": parse_shape(args.input_shape)}
    if args.alpha is not None:
        options["alpha"] = args.alpha
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = export(ExportConfig(target=args.model, model_options=options,
                                     precisions=frozenset({"int8", "fp16", "dynamic"}),
                                     untrained=True, out=Path(tmp) / args.model), timer)
        total = time.perf_counter() - started
        timer._close()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python"
          f" {platform.python_version()}; {args.model} {args.input_shape}"
          f" {options.get('alpha', '')}, untrained weights, 200 calibration images,"
          " each file's accuracy run on the digits test split\n")
    print_tables(timer, total, "incl. data loading and set-up", result)


def print_tables(timer: StepTimer, total: float, total_includes: str, result) -> None:
    """The markdown tables for docs/benchmarks.md: each step's seconds, then each file."""
    print("| step | seconds |")
    print("|---|---:|")
    for name, seconds in timer.steps:
        print(f"| {name} | {seconds:.1f} |")
    print(f"| **total ({total_includes})** | **{total:.1f}** |\n")
    print("| file | bytes |")
    print("|---|---:|")
    for a in result.artifacts:
        print(f"| {a.path} | {a.size_bytes:,} |")


if __name__ == "__main__":
    main()
