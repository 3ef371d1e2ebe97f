"""`edgeconv bench` and `edgeconv targets`."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import SAMPLES, JsonFlag, bounded
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
    eval_samples: Annotated[int | None, typer.Option(
        help="Test images accuracy is measured on (stratified, seeded: the images `export"
             " --eval-samples` picks); caps a long pass, e.g. TFLite Micro's reference"
             " kernels. Default: the images the export measured.", show_default=False,
        callback=bounded(SAMPLES))] = None,
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
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column: p90/p99, init/first ms, runs, throughput, peak RSS;"
                       " on a microcontroller also instructions, core and kernels, and the"
                       " host interpreter's x86 time (the default table fits 120"
                       " columns).")] = False,
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
        custom_objects=_custom_objects(custom_objects), eval_samples=eval_samples)
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
        _mcu_output(title, report, out, wide)
        return
    stdout = render.stdout_console()
    render.print_table(stdout, _table(title, report, wide), wide=wide)
    if any(r.latency_ms for r in report.results):  # how the intervals were obtained
        stdout.print("p50 [95% CI]: order statistics of the timed runs (none below 6 runs);"
                     " accuracy % [95% CI]: Wilson score interval on the test images",
                     highlight=False, soft_wrap=True, markup=False)
    if wide and any(r.peak_rss_of == "runtime" for r in report.results):  # what it covers
        stdout.print("peak RSS: the runtime's child after loading the file and the timed"
                     " runs, before the accuracy pass reads any test image",
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


def _table(title: str, report, wide: bool):
    """A host's or a board's rows, made to fit 120 columns (render.file_table): the p50 with
    its interval, size, accuracy and agreement; --wide adds the tail latencies, start-up
    times, runs, throughput and peak RSS. A column that would say one thing down every row
    (one thread count, a precision the file names already say, status ok) is said in the
    title or left out."""
    results = report.results
    threads = sorted({r.threads for r in results if r.threads})
    if len(threads) == 1 and not wide:
        title += f", {threads[0]} thread{'s' if threads[0] > 1 else ''}"
    columns = {  # name: (shown, the row's cell)
        "artifact": (True, lambda r: r.artifact),
        "runtime": (True, lambda r: r.runtime),
        "precision": (wide or not all(map(_named, results)), lambda r: r.precision or ""),
        "threads": (wide or len(threads) > 1, lambda r: r.threads or ""),
        "status": (wide or any(_status(r) != "ok" for r in results), _status),
        "p50 ms [95% CI]": (True, lambda r: _p50(r.latency_ms)),
        "p90/p99 ms": (wide, lambda r: _pair(_ms(r.latency_ms, "p90"),
                                             _ms(r.latency_ms, "p99"))),
        "init/first ms": (wide, lambda r: _pair(_f(r.init_ms), _f(r.first_ms))),
        "runs": (wide, lambda r: r.runs or ""),
        "inferences/s": (wide, lambda r: "" if r.throughput_ips is None
                         else significant(r.throughput_ips)),
        "size": (True, lambda r: render.nbytes(r.size_bytes)),
        "peak RSS": (wide, lambda r: render.nbytes(r.peak_rss_bytes)),
        "accuracy % [95% CI]": (True, lambda r: render.percent_interval(r.accuracy,
                                                                        r.accuracy_interval)),
        "agrees": (True, lambda r: _pct(r.agreement)),
    }
    names = [name for name, (shown, _) in columns.items() if shown]
    rows = [[columns[name][1](r) for name in names] for r in results]
    return render.file_table(title, names, rows, right=set(names[names.index("runtime") + 1:])
                             - {"precision", "status"},
                             # an interval, "ok (emulated)": never split or cut
                             no_wrap={"status", "p50 ms [95% CI]", "accuracy % [95% CI]"})


def _named(row) -> bool:
    """Does the row's name already say its precision (an export's files are NAME_PRECISION.ext,
    its .keras file is the float reference), or has it none to say (a bare file)?"""
    return (not row.precision or row.format == "keras"
            or f"_{row.precision}." in row.artifact.rsplit("/", 1)[-1])


def _mcu_output(title: str, report, out: Path | None, wide: bool) -> None:
    """A microcontroller's rows: estimated latency (emulated instructions x the calibrated
    cycles per instruction, with its band), arena, RAM, flash, fits; then the top operators
    and the parity of each firmware row. The latency column holds firmware estimates
    only: with no firmware figure in any row there is none, never x86 times under the
    board's name (--wide shows the host interpreter's time in its own "x86 host ms"
    column). Under the table, the rows' caveats chosen by kind, never by their wording,
    each said once for the rows it holds for (the one fix for a missing toolchain, not
    one per row)."""
    from edgeconv.bench.firmware import by_op_type
    from edgeconv.commands._npu_table import is_npu_row, npu_output
    from edgeconv.records import HOST_TIME, NO_FIGURE, NO_FIRMWARE

    # a target with an Ethos-U: its NPU rows (Vela's estimate) get their own table below
    npu_rows = [r for r in report.results if is_npu_row(r)]
    results = [r for r in report.results if not is_npu_row(r)]
    cores = sorted({_core(r) for r in results if _core(r)})
    if len(cores) == 1 and not wide:  # one core and kernel set: said once
        title += f", {cores[0]} firmware (emulated)"
    host_time = wide and any(r.timed_on == "host" and r.latency_ms for r in results)
    columns = {  # name: (shown, the row's cell)
        "artifact": (True, lambda r: r.artifact),
        "precision": (wide or not all(map(_named, results)), lambda r: r.precision or ""),
        "status": (wide or not all(r.ok for r in results), _status if wide else
                   lambda r: r.status),
        "core, kernels": (wide or len(cores) > 1, _core),
        # a firmware row of a core with no published calibration: instructions only
        "latency ms": (True, lambda r: _estimate(r.estimate_ms) if r.estimate_ms else
                       ("uncalibrated" if r.mcu else "")),
        "x86 host ms": (host_time, lambda r: significant(r.latency_ms.p50)
                        if r.timed_on == "host" and r.latency_ms else ""),
        "instr.": (wide or any(r.mcu and not r.estimate_ms for r in results),
                   lambda r: _instructions(r.mcu['invoke_instructions']) if r.mcu else ""),
        "accuracy % [95% CI]": (True, lambda r: render.percent_interval(r.accuracy,
                                                                        r.accuracy_interval)),
        "arena": (True, lambda r: render.nbytes(r.arena_bytes)),
        "RAM": (True, lambda r: render.nbytes(r.ram_bytes)),
        "flash": (True, lambda r: render.nbytes(r.flash_bytes)),
        "fits": (True, lambda r: "" if r.fits is None else ("yes" if r.fits else "NO")),
    }
    names = [name for name, (shown, _) in columns.items() if shown]
    rows = [[columns[name][1](r) for name in names] for r in results]
    stdout = render.stdout_console()
    render.print_table(stdout, render.file_table(
        title, names, rows, right=set(names) - {"artifact", "precision", "status",
                                                "core, kernels"},
        no_wrap={"status", "latency ms", "accuracy % [95% CI]"}), wide=wide)
    say = functools.partial(stdout.print, highlight=False, soft_wrap=True, markup=False)
    if any(r.estimate_ms for r in results):
        basis = next(r.estimate_ms["basis"] for r in results if r.estimate_ms)
        say(f"latency ms: centre [band], emulated, estimate ({basis}); not a measurement")
        say("RAM = arena + stack peak + static data; flash = linked firmware + model (exact)")
    for r in results:
        if r.ops:
            top = by_op_type(r.ops)[:4]
            say(f"top operators: {r.artifact} [{(r.mcu or {}).get('kernels', '')}]: "
                + ", ".join(f"{name} {share:.0%}" + (f" ({i / m:.1f} instr/MAC)" if m else "")
                            for name, i, share, m in top))
        for label, parity in (("host TFLM", r.parity), ("LiteRT reference", r.reference_parity)):
            if parity:
                say(f"parity vs {label}: {r.artifact}: {parity_text(parity)}")
    if npu_rows:
        npu_output(stdout, npu_rows, wide)
    console = render.stderr_console()
    for r in report.results:
        if r.error:
            console.print(f"{r.artifact} [{r.runtime}]: {r.status}: {r.error}",
                          highlight=False, soft_wrap=True, markup=False)
    # why no firmware; why a figure is missing; that a shown time is the host's: each once
    for rows_of, note in _once(results, NO_FIRMWARE, NO_FIGURE,
                               *([HOST_TIME] if host_time else [])):
        console.print(f"note: {rows_of}: {note.text}", highlight=False, soft_wrap=True,
                      markup=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    if out is not None:
        console.print(f"results: {out}", highlight=False)


def _instructions(count: int) -> str:
    """24.03M; a count under 10,000 in full (0.00M would say nothing)."""
    return f"{count / 1e6:.2f}M" if count >= 10_000 else f"{count:,}"


def _core(row) -> str:
    """cortex-m7 cmsis-nn: the core and kernel set a firmware row ran ("" for none)."""
    mcu = row.mcu or {}
    return f"{mcu.get('core', '')} {mcu.get('kernels', '')}".strip()


def _once(results, *kinds: str) -> list[tuple[str, object]]:
    """The rows' caveats of these kinds, each text once (in the order first met), with the
    rows it holds for: "every row", or their names."""
    holders: dict[object, list[str]] = {}  # a Note (kind, text): the rows' names
    for kind in kinds:
        for r in results:
            for note in r.caveats_of(kind):
                holders.setdefault(note, []).append(r.artifact)
    return [("every row" if len(names) == len(results) > 1 else ", ".join(dict.fromkeys(names)),
             note) for note, names in holders.items()]


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
             (f"{t.core} ({', '.join(t.kernels)})" if t.core else "")
             + (f" + {t.npu['accelerator']}" if t.npu else ""),
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
