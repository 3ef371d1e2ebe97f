"""`edgeconv bench` and `edgeconv targets`."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import JsonFlag
from edgeconv.commands.export import percent_with_interval
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
    emulated: Annotated[bool, typer.Option(
        "--emulated", help="Bench on the emulated board standing in for the target (rpi4,"
                           " rpi5; `edgeconv board create`), over SSH: proves the files run on"
                           " aarch64 and agree with this machine; its latencies are not board"
                           " times.")] = False,
    tflm_tree: Annotated[Path | None, typer.Option(
        help="TFLite Micro source tree (folder or .tgz, or a folder holding"
             " tflm-tree-<kernels>.tgz per kernel set) to build MCU firmware from (default:"
             " $EDGECONV_TFLM_TREE; docs/mcu.md says how to make one).",
        show_default=False)] = None,
    custom_objects: Annotated[Path | None, typer.Option(
        help="A Python file of yours registering custom Keras layers, as for `edgeconv"
             " export --custom-objects`: the .keras reference row loads with it (edgeconv"
             " runs this file; the model file is still loaded in safe mode).",
        show_default=False)] = None,
    outputs_dir: Annotated[Path | None, typer.Option(
        hidden=True, help="Internal (the board's side of an SSH bench): save each row's raw"
                          " outputs here.")] = None,
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
        ssh_options=tuple(ssh_option or ()), remote_edgeconv=remote_edgeconv, out=out,
        emulated=emulated, outputs_dir=None if outputs_dir is None else str(outputs_dir),
        tflm_tree=None if tflm_tree is None else str(tflm_tree),
        custom_objects=_custom_objects(custom_objects))
    with RichProgress(render.stderr_console()) as progress:
        report = run_bench(config, progress)
    if json:
        render.print_json(report.to_dict())
        return
    env = report.environment
    title = f"{target} ({env['target']['description']}) on {env['cpu']}, {env['cores']} cores"
    if env.get("load_before") and env.get("load_after"):
        title += (f", load {env['load_before'][0]:.1f} before / {env['load_after'][0]:.1f}"
                  " after")
    if "ssh" in env:
        title += f", {env['host']} over SSH ({env['ssh']['host']})"
    kind = KINDS.get(report.target_kind)
    if kind is not None and kind.fit:  # a microcontroller: its own table (firmware figures)
        _mcu_output(title, report, out)
        return
    rows = [[r.artifact, r.runtime, r.precision or "", r.threads or "", _status(r),
             _p50(r.latency_ms), _pair(_ms(r.latency_ms, "p90"), _ms(r.latency_ms, "p99")),
             _pair(_f(r.init_ms), _f(r.first_ms)), r.runs or "", render.nbytes(r.size_bytes),
             render.nbytes(r.peak_rss_bytes),
             percent_with_interval(r.accuracy, r.accuracy_interval), _pct(r.agreement),
             render.nbytes(r.arena_bytes), render.nbytes(r.flash_bytes),
             "" if r.fits is None else ("yes" if r.fits else "NO")]
            for r in report.results]
    columns = ["artifact", "runtime", "precision", "threads", "status", "p50 ms [95% CI]",
               "p90/p99 ms", "init/first ms", "runs", "size", "peak RSS",
               "accuracy [95% CI]", "agrees", "arena", "flash", "fits"]
    if kind is None or not kind.fit:  # arena, flash and fits come from the fit check
        columns, rows = columns[:-3], [row[:-3] for row in rows]
    stdout = render.stdout_console()
    table = render.table(title, columns, rows, right=set(columns[5:]))
    table.columns[5].no_wrap = True  # a p50 and its interval stay on one line
    table.columns[4].no_wrap = True  # "ok (emulated)": never cut to "ok (emulat…"
    stdout.print(table)
    if any(r.latency_ms for r in report.results):  # how the intervals were obtained
        stdout.print("p50 [95% CI]: order statistics of the timed runs (none below 6 runs);"
                     " accuracy [95% CI]: Wilson score interval on the test images",
                     highlight=False, soft_wrap=True, markup=False)
    _emulation_lines(stdout, report)
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


def _mcu_output(title: str, report, out: Path | None) -> None:
    """A microcontroller's rows: estimated latency (emulated instructions x the calibrated
    cycles per instruction, with its band), arena, RAM, flash, fits; then the top operators
    and the parity of each firmware row. A row the firmware did not run shows the host
    interpreter's time, labelled as such; under the table, each row's caveats of two kinds
    (why no firmware ran it, that its latency is host time), chosen by kind, never by
    their wording."""
    from edgeconv.bench.firmware import HOST_LABEL, by_op_type
    from edgeconv.records import HOST_TIME, NO_FIRMWARE

    rows = []
    for r in report.results:
        mcu = r.mcu or {}
        rows.append([r.artifact, r.precision or "", _status(r),
                     f"{mcu.get('core', '')} {mcu.get('kernels', '')}".strip(),
                     _estimate(r.estimate_ms) if r.estimate_ms else
                     (f"{significant(r.latency_ms.p50)} ({HOST_LABEL})" if r.latency_ms else ""),
                     f"{mcu['invoke_instructions'] / 1e6:.2f}M" if mcu else "",
                     percent_with_interval(r.accuracy, r.accuracy_interval),
                     render.nbytes(r.arena_bytes), render.nbytes(r.ram_bytes),
                     render.nbytes(r.flash_bytes),
                     "" if r.fits is None else ("yes" if r.fits else "NO")])
    columns = ["artifact", "precision", "status", "core, kernels", "latency ms", "instr.",
               "accuracy [95% CI]", "arena", "RAM", "flash", "fits"]
    stdout = render.stdout_console()
    table = render.table(title, columns, rows, right=set(columns[4:]))
    table.columns[4].no_wrap = True
    stdout.print(table)
    say = functools.partial(stdout.print, highlight=False, soft_wrap=True, markup=False)
    if any(r.estimate_ms for r in report.results):
        basis = next(r.estimate_ms["basis"] for r in report.results if r.estimate_ms)
        say(f"latency ms: centre [band], emulated, estimate ({basis}); not a measurement")
        say("RAM = arena + stack peak + static data; flash = linked firmware + model (exact)")
    for r in report.results:
        if r.ops:
            top = by_op_type(r.ops)[:4]
            say(f"top operators: {r.artifact} [{(r.mcu or {}).get('kernels', '')}]: "
                + ", ".join(f"{name} {share:.0%}" + (f" ({i / m:.1f} instr/MAC)" if m else "")
                            for name, i, share, m in top))
        for label, parity in (("host TFLM", r.parity), ("LiteRT reference", r.reference_parity)):
            if parity:
                say(f"parity vs {label}: {r.artifact}: {parity_text(parity)}")
    console = render.stderr_console()
    for r in report.results:
        if r.error:
            console.print(f"{r.artifact} [{r.runtime}]: {r.status}: {r.error}",
                          highlight=False, soft_wrap=True, markup=False)
        for note in r.caveats_of(NO_FIRMWARE, HOST_TIME):  # why no firmware; host time
            console.print(f"note: {r.artifact}: {note.text}", highlight=False, soft_wrap=True,
                          markup=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    if out is not None:
        console.print(f"results: {out}", highlight=False)


def _estimate(estimate: dict) -> str:
    """~72.3 [57.9–86.8]: the estimate's centre and band, in ms."""
    from edgeconv.mcu.calibration import band_text

    return band_text(estimate)


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
             f"{t.core} ({', '.join(t.kernels)})" if t.core else "",
             ", ".join(t.aliases), t.description] for t in sorted(unique.values(),
                                                                    key=lambda t: t.name)]
    render.stdout_console().print(render.table(
        "targets", ["name", "kind", "runtimes", "threads", "SRAM", "flash", "core (kernels)",
                    "aliases", "description"], rows, right={"SRAM", "flash"}))


def _custom_objects(path: Path | None) -> str | None:
    """The --custom-objects file as an absolute path (the Keras row's child runs it), refused
    here with one line when it is no Python file, before anything is measured."""
    if path is None:
        return None
    from edgeconv.export.user_model import custom_objects_file

    return str(custom_objects_file(path))


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
    shown = {"host": "ok (host time)", "emulated": "ok (emulated)"}
    return shown.get(row.timed_on, row.status) if row.status == "ok" else row.status


def _emulation_lines(console, report) -> None:
    """Under the table: that emulated latencies are not board times, and each row's outputs
    against this machine's (what an SSH bench proves beyond its own figures)."""
    if any(r.timed_on == "emulated" for r in report.results):
        cpu = (report.environment.get("emulated") or {}).get("cpu", "board")
        console.print(f"emulated: latencies were timed on an emulated {cpu} (qemu user mode,"
                      " tens to hundreds of times slower than native): NOT board times; what"
                      " the rows show is that the files run on aarch64, their accuracy, and"
                      " parity below",
                      highlight=False, soft_wrap=True, markup=False)
    for r in report.results:
        if r.parity:
            console.print(f"parity: {r.artifact} [{r.runtime}"
                          f"{f' x{r.threads}' if r.threads else ''}]: {parity_text(r.parity)}",
                          highlight=False, soft_wrap=True, markup=False)


def parity_text(p: dict) -> str:
    """A row's outputs against this machine's, in words (records.PARITY)."""
    on = f"{p['inputs']} {p.get('on', 'inputs')}"
    if p["equal"]:
        return f"bit-exact with {p.get('reference')} on {on} ({p['values']} values)"
    top1 = f"top-1 equal on {p['top1_equal']}/{p['inputs']}, " if "top1_equal" in p else ""
    exact = (f"bit-exact on {p['inputs_equal']}/{p['inputs']}, " if "inputs_equal" in p
             else "")
    return (f"vs {p.get('reference')} on {on}: {top1}{exact}{p['differing']} of {p['values']}"
            f" values differ, max |diff| {p['max_abs_diff']:g}")


def _ms(stats, key: str) -> str:
    return "" if not stats else significant(getattr(stats, key))


def _p50(stats) -> str:
    """0.707 [0.701–0.716]: the p50 and its interval, when there were runs enough."""
    if not stats:
        return ""
    if stats.p50_low is None or stats.p50_high is None:
        return significant(stats.p50)
    return f"{significant(stats.p50)} [{significant(stats.p50_low)}–{significant(stats.p50_high)}]"




def _pair(first: str, second: str) -> str:
    return f"{first}/{second}" if first or second else ""


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def significant(ms: float) -> str:
    """Three significant digits, never in exponent form (edgeconv.mcu.calibration's rule,
    imported here lazily: the mcu package loads numpy, which --help must not)."""
    from edgeconv.mcu.calibration import significant as three_digits

    return three_digits(ms)
