"""python -m edgeconv.npu MODEL... --target alif-e7 [--json]: compile each model with Vela for
a target's Ethos-U ([npu] in its TOML) and print Vela's figures as a Markdown table (the
docs' NPU tables come from this). No TensorFlow, no firmware: Vela only."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeconv.errors import EdgeconvError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeconv.npu", description=__doc__)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--target", required=True, help="a target with [npu] (alif-e7, ...)")
    parser.add_argument("--targets-dir", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        from edgeconv.npu import NpuConfig, compile_for_npu
        from edgeconv.targets import get_target

        target = get_target(args.target, args.targets_dir)
        if target.npu is None:
            raise EdgeconvError(f"target {target.name} has no [npu]")
        config = NpuConfig.from_dict(target.npu)
        runs = [(m, compile_for_npu(m, config, where=f"target {target.name} [npu]"))
                for m in args.models]
    except EdgeconvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({m.name: run.to_dict() for m, run in runs}, indent=2))
        return 0
    print(f"{target.name}: {config.label}, Vela {runs[0][1].vela_version}"
          " (Vela performance estimate, not a measurement)\n")
    print("| model | NPU cycles | latency ms (Vela) | SRAM KiB | flash KiB | ops NPU/CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for model, run in runs:
        print(f"| {model.stem} | {run.cycles_total:,} | {run.latency_ms:.3f} |"
              f" {run.sram_bytes / 1024:.1f} | {run.flash_bytes / 1024:.1f} |"
              f" {len(run.placement) - len(run.cpu_ops)}/{len(run.cpu_ops)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
