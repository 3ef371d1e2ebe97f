"""The harness: check the target can be benched from here, make the one plan, run it here
(`local.bench_here`) or on a board over SSH (`remote.bench_over_ssh`), write results.json.

Everything a user gives is checked before any work: the numbers (BenchConfig), the output
path, the target file, the SSH options; then each model is copied into a private scratch
folder (removed at the end) as the bytes that were hashed and checked, and only those
copies are run or sent.
"""

from __future__ import annotations

import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeconv import __version__, _atomic
from edgeconv.bench.local import bench_here
from edgeconv.bench.plan import BenchConfig, collect, make_plan
from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.formats import resolve
from edgeconv.progress import Progress
from edgeconv.records import BenchReport
from edgeconv.runtimes import runtime_versions
from edgeconv.runtimes.registry import get_runtime
from edgeconv.targets import Target, get_target


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Bench `config.paths` on `config.target`; written to `config.out` when it is set."""
    progress = progress or Progress()
    if config.out is not None:
        _atomic.check_output_file(config.out, "--out")
    target = get_target(config.target, config.targets_dir)
    kind = target.kind_info
    if config.local and config.host:
        raise EdgeconvError("--local benches on this machine, --host on another: pick one")
    host = config.host or (None if config.local else target.host)
    if host is not None and not kind.ssh:
        raise EdgeconvError(f"{target.name} is an {kind.name} target ({kind.description}),"
                            " not reached over SSH; drop --host")
    if config.runtime is not None:
        get_runtime(config.runtime)  # unknown: one line with the closest name
        if config.runtime not in target.runtimes:
            raise EdgeconvError(f"target {target.name} runs {', '.join(target.runtimes)}, not"
                                f" '{config.runtime}'"
                                f"{did_you_mean(config.runtime, target.runtimes)}")
    if host is None and kind.reachable:
        resolve(kind.reachable)(target, config)
    ssh = None
    if host is not None:
        from edgeconv.bench import remote  # only the SSH path needs it

        ssh = remote.check_ssh(host, target, config)  # before copying anything
    with tempfile.TemporaryDirectory(prefix="edgeconv-bench-") as scratch:
        plan = make_plan(collect(list(config.paths), Path(scratch) / "files"), target, config)
        if ssh is not None:
            env, results, notes = remote.bench_over_ssh(ssh, plan, config, progress)
        else:
            results, notes = bench_here(plan, config, progress)
            env = environment(target)
    report = BenchReport(environment=env, config=config.record(), results=results,
                         notes=notes, out=config.out)
    if config.out is not None:
        report.write(config.out)
    return report


def environment(target: Target) -> dict[str, Any]:
    return {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "machine": platform.machine(), "os": platform.platform(),
            "python": platform.python_version(), "edgeconv": __version__,
            "runtimes": runtime_versions(), "target": target.to_dict(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
