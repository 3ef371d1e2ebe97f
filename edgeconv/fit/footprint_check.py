"""`python -m edgeconv.fit.footprint_check [--core cortex-m4] [--tree TREE] [--json]`: how
the pruning's figures compare with the firmware's, on small untrained int8 candidates.

For each point: the footprint (host TFLite Micro planner's arena) against the arena the
firmware measures on the emulated core, and the instructions per MAC the firmware counts
(edgeconv.mcu.calibration.SMALL_MODELS holds the Cortex-M4 counts this prints). A
developer's and the docs' tool; needs the Arm GNU toolchain and qemu-system-arm.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError

CLASSES, CHANNELS = 10, 1
# (model, options, size): the points of calibration.SMALL_MODELS
POINTS = (("mobilenet", (("alpha", 0.25),), 32), ("mobilenet", (("alpha", 0.25),), 48),
          ("mobilenetv2", (("alpha", 0.35),), 32), ("squeezenet", (("version", "1.1"),), 48),
          ("separable-vgg-cifar", (("blocks", 2), ("kernel", 3)), 32),
          ("gap-mnist", (), 28), ("fcn-mnist", (), 28))


def check_point(candidate, workdir: Path, *, core: str = "cortex-m4",
                kernels: str = "cmsis-nn", tree: str | Path | None = None) -> dict[str, Any]:
    """The footprint of `candidate` at int8 (10 classes, 1 channel) against the firmware's
    figures on the same file."""
    from edgeconv.fit.footprint import footprint
    from edgeconv.mcu import run_firmware

    fp = footprint(candidate, "int8", CLASSES, CHANNELS, workdir, "nucleo-l4r5zi")
    if fp.arena_bytes is None:
        raise EdgeconvError(f"{candidate.label}: no host arena ({fp.error})")
    run = run_firmware(workdir / f"{candidate.key}-int8.tflite", core=core, kernels=kernels,
                       tree=tree)
    return {"point": candidate.label, "macs": fp.macs, "model_bytes": fp.model_bytes,
            "host_arena_bytes": fp.arena_bytes, "firmware_arena_bytes": run.arena_bytes,
            "host_excess": fp.arena_bytes / run.arena_bytes - 1,
            "stack_bytes": run.stack_bytes, "static_bytes": run.static_bytes,
            "runtime_flash_bytes": run.runtime_flash_bytes,
            "instructions": run.invoke_instructions,
            "instructions_per_mac": run.invoke_instructions / fp.macs,
            "estimate_from_macs": fp.latency}


def main(argv: list[str] | None = None) -> int:
    from edgeconv.fit.space import Candidate

    parser = argparse.ArgumentParser(prog="python -m edgeconv.fit.footprint_check",
                                     description=__doc__)
    parser.add_argument("--core", default="cortex-m4")
    parser.add_argument("--kernels", default="cmsis-nn")
    parser.add_argument("--tree", help="TFLM source tree (folder or .tgz)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="edgeconv-footprint-") as tmp:
            for model, options, size in POINTS:
                row = check_point(Candidate(model, options, size), Path(tmp), core=args.core,
                                  kernels=args.kernels, tree=args.tree)
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
    except EdgeconvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"| point ({args.core}, {args.kernels}) | MACs | host arena | firmware arena |"
              " host excess | instructions | per MAC |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['point']} | {r['macs']:,} | {r['host_arena_bytes']:,} |"
                  f" {r['firmware_arena_bytes']:,} | {100 * r['host_excess']:+.1f}% |"
                  f" {r['instructions']:,} | {r['instructions_per_mac']:.2f} |")
        worst = max(rows, key=lambda r: abs(r["host_excess"]))
        print(f"worst: {worst['point']}, host arena {100 * worst['host_excess']:+.1f}% of the"
              " firmware's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
