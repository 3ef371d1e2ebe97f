"""`edgeconv bench` and `edgeconv targets`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import JsonFlag
from edgeconv.errors import EdgeconvError
from edgeconv.runtimes.registry import runtime_names


def bench(
    paths: Annotated[list[Path] | None, typer.Argument(
        metavar="[PATH]...", help="Run directories (manifest.json) or .tflite/.onnx files;"
                                  " default: every export under runs/.",
        show_default=False)] = None,
    target: Annotated[str, typer.Option(help="Target name (see `edgeconv targets`).")] = "cpu",
    runtime: Annotated[str | None, typer.Option(
        help=f"Only this runtime: {', '.join(runtime_names())}.",
        show_default=False)] = None,
    threads: Annotated[str | None, typer.Option(
        help="Thread counts, e.g. 1,2,4, each 1 to 256 (default: the target's).",
        show_default=False)] = None,
    warmup: Annotated[int, typer.Option(help="Untimed runs first (0 to 100000).")] = 10,
    runs: Annotated[int, typer.Option(help="Timed runs, at least (1 to 100000).")] = 50,
    min_time: Annotated[float, typer.Option(
        help="Seconds of timed runs, at least (0 to 3600).")] = 1.0,
    data: Annotated[str | None, typer.Option(
        help="Dataset for accuracy (default: the export's).", show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding the dataset's files.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option(
        help="Seconds per artifact before it fails (1 to 86400).")] = 600.0,
    targets_dir: Annotated[Path | None, typer.Option(
        help="More target files (*.toml).", show_default=False)] = None,
    host: Annotated[str | None, typer.Option(
        help="user@board[:port]: bench the target there over SSH (default: the target's"
             " `host`).", show_default=False)] = None,
    ssh_option: Annotated[list[str] | None, typer.Option(
        help="ssh_config option for ssh/scp, e.g. IdentityFile=~/.ssh/pi (repeatable).",
        show_default=False)] = None,
    remote_edgeconv: Annotated[str | None, typer.Option(
        help="The board's edgeconv command, e.g. ~/.venv/bin/edgeconv (default: the"
             " target's `remote_edgeconv`, else edgeconv).", show_default=False)] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="Bench on this machine even if the target names a host (what the"
                        " SSH path runs on the board).")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write results.json here.", show_default=False)] = None,
    json: JsonFlag = False,
) -> None:
    """Measure latency, memory, size and accuracy of exported models on a target."""
    from edgeconv.bench import BenchConfig, run_bench
    from edgeconv.commands._progress import RichProgress
    from edgeconv.targets import KINDS

    config = BenchConfig(
        paths=tuple(paths or ()), target=target, runtime=runtime, threads=_threads(threads),
        warmup=warmup, runs=runs, min_time=min_time, data=data,
        data_dir=None if data_dir is None else str(data_dir), timeout=timeout,
        targets_dir=None if targets_dir is None else str(targets_dir), host=host, local=local,
        ssh_options=tuple(ssh_option or ()), remote_edgeconv=remote_edgeconv, out=out)
    with RichProgress(render.stderr_console()) as progress:
        report = run_bench(config, progress)
    if json:
        render.print_json(report.to_dict())
        return
    env = report.environment
    title = f"{target} ({env['target']['description']}) on {env['cpu']}, {env['cores']} cores"
    if "ssh" in env:
        title += f", {env['host']} over SSH ({env['ssh']['host']})"
    rows = [[r.artifact, r.runtime, r.precision or "", r.threads or "", _status(r),
             _ms(r.latency_ms, "p50"), _ms(r.latency_ms, "p90"), _ms(r.latency_ms, "p99"),
             _f(r.init_ms), _f(r.first_ms), r.runs or "", render.nbytes(r.size_bytes),
             render.nbytes(r.peak_rss_bytes), _pct(r.accuracy), _pct(r.agreement),
             render.nbytes(r.arena_bytes), render.nbytes(r.flash_bytes),
             "" if r.fits is None else ("yes" if r.fits else "NO")]
            for r in report.results]
    columns = ["artifact", "runtime", "precision", "threads", "status", "p50 ms", "p90 ms",
               "p99 ms", "init ms", "first ms", "runs", "size", "peak RSS", "accuracy",
               "agrees", "arena", "flash", "fits"]
    kind = KINDS.get(report.target_kind)
    if kind is None or not kind.fit:  # arena, flash and fits come from the fit check
        columns, rows = columns[:15], [row[:15] for row in rows]
    render.stdout_console().print(render.table(title, columns, rows, right=set(columns[5:])))
    console = render.stderr_console()
    for r in report.results:
        if r.error:
            console.print(f"{r.artifact} [{r.runtime}]: {r.status}: {r.error}",
                          highlight=False, soft_wrap=True, markup=False)
    host_timed = sorted({r.runtime for r in report.results if r.ok and r.timed_on == "host"})
    for note in report.notes + ([f"latency is host time ({', '.join(host_timed)} on this"
                                 " machine)"] if host_timed else []):
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    if out is not None:
        console.print(f"results: {out}", highlight=False)


def targets(
    targets_dir: Annotated[Path | None, typer.Option(
        help="More target files (*.toml).", show_default=False)] = None,
    json: JsonFlag = False,
) -> None:
    """List the targets `edgeconv bench --target` knows."""
    from edgeconv.targets import load_targets

    found = load_targets(targets_dir)
    unique = {t.name: t for t in found.values()}
    if json:
        render.print_json({name: t.to_dict() for name, t in sorted(found.items())})
        return
    rows = [[t.name, t.kind, ", ".join(t.runtimes), ",".join(map(str, t.threads)),
             render.nbytes(t.sram_bytes), render.nbytes(t.flash_bytes),
             ", ".join(t.aliases), t.description] for t in sorted(unique.values(),
                                                                    key=lambda t: t.name)]
    render.stdout_console().print(render.table(
        "targets", ["name", "kind", "runtimes", "threads", "SRAM", "flash", "aliases",
                    "description"], rows, right={"SRAM", "flash"}))


def _threads(text: str | None) -> tuple[int, ...] | None:
    """'1,2,4' -> (1, 2, 4); the range and duplicates are BenchConfig's to check."""
    if text is None:
        return None
    words = [t.strip() for t in text.split(",") if t.strip()]
    if not words or len(words) > 64 or not all(w.isascii() and w.isdigit() and len(w) <= 9
                                               for w in words):
        raise EdgeconvError(f"--threads takes positive integers like 1,2,4; got {text!r}")
    return tuple(int(w) for w in words)


def _status(row) -> str:
    return row.status if row.timed_on == "target" or row.status != "ok" else "ok (host time)"


def _ms(stats, key: str) -> str:
    return "" if not stats else f"{getattr(stats, key):.3f}"


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"
