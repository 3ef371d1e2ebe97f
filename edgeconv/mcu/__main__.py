"""`python -m edgeconv.mcu MODEL... --core cortex-m7 --kernels cmsis-nn [--json]`: run models
on the emulated core and print instructions, memory and build times (docs/mcu.md).

A developer's and CI's tool for the figures in docs/mcu.md; users get the same through
`edgeconv bench --target <mcu board>`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from edgeconv.errors import EdgeconvError
from edgeconv.mcu import CORES, KERNEL_SETS, run_firmware
from edgeconv.progress import Progress


class _Lines(Progress):
    """Progress as plain lines on stderr, every 25 files."""

    def update(self, completed: int, description: str | None = None) -> None:
        if description and completed % 25 == 0:
            print(description, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeconv.mcu", description=__doc__)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--core", choices=list(CORES), default="cortex-m7")
    parser.add_argument("--kernels", choices=list(KERNEL_SETS), default="cmsis-nn")
    parser.add_argument("--tree", help="TFLM source tree (folder or .tgz)")
    parser.add_argument("--arena-bytes", type=int)
    parser.add_argument("--subset", help="build the library from a named subset of the"
                        " tree's files (edgeconv.mcu.subset: mlperf-tiny)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        for model in args.models:
            started = time.monotonic()
            run = run_firmware(model, core=args.core, kernels=args.kernels, tree=args.tree,
                               progress=_Lines(), arena_bytes=args.arena_bytes,
                               subset=args.subset)
            row = asdict(run)
            row.pop("outputs")
            row["model"] = str(model)
            row["wall_seconds"] = round(time.monotonic() - started, 2)
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{model.name}: {run.core} {run.kernels}: "
                      f"{run.invoke_instructions / 1e6:.2f}M instructions per invoke "
                      f"(set-up {run.setup_instructions / 1e6:.2f}M), arena {run.arena_bytes:,} B, "
                      f"stack {run.stack_bytes:,} B, static {run.static_bytes:,} B, "
                      f"flash {run.runtime_flash_bytes:,} B + model {run.model_bytes:,} B; "
                      f"firmware {run.firmware_seconds:.1f} s, run {run.run_seconds:.2f} s",
                      flush=True)
    except EdgeconvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
