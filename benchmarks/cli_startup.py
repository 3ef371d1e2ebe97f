"""Wall time of the commands that must feel instant: `edgeconv --help`, `edgeconv models`.

Run:  .venv/bin/python benchmarks/cli_startup.py [--runs 20]
Prints a markdown table (paste it into docs/benchmarks.md with the date and machine).
Budget from the foundation issue: under 0.5 s wall each on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["models"], ["models", "--json"], ["--version"])


def time_command(exe: str, args: list[str], runs: int) -> list[float]:
    subprocess.run([exe, *args], capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        subprocess.run([exe, *args], capture_output=True, check=True)
        times.append((time.perf_counter_ns() - start) / 1e9)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("edgeconv", path=os.path.dirname(sys.executable)) or "edgeconv"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {args.runs} runs each after one warm-up\n")
    print("| command | min s | median s | max s |")
    print("|---|---:|---:|---:|")
    for cmd in COMMANDS:
        t = time_command(exe, cmd, args.runs)
        print(f"| `edgeconv {' '.join(cmd)}` | {min(t):.3f} | {statistics.median(t):.3f} |"
              f" {max(t):.3f} |")


if __name__ == "__main__":
    main()
