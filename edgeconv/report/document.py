"""The report as a renderer-neutral document: sections of paragraphs, tables and images.

Everything the report says is decided here, from the collected data, the verdicts and the
plots; render_md and render_html only lay it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edgeconv import render
from edgeconv.formats import FLOAT
from edgeconv.report import plots
from edgeconv.report.claims import VERDICTS
from edgeconv.report.collect import Collection, file_name, output_shape
from edgeconv.report.summary import SHOWN_FORMAT, SIZED, TIMED, ModelRow, PairTable, targets_of
from edgeconv.report.verdicts import Verdict


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    file: str  # relative to the report directory
    alt: str


Block = str | Table | Image  # a str is a paragraph (Markdown inline: `code`, **bold**)


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section]


PlotFn = Callable[[str], Path | None]  # file name -> drawn PNG path (None: no plots)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def header(data: Collection, rows: list[ModelRow], inputs: list[str]) -> Section:
    s = Section("What this report is built from")
    s.blocks.append(f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by"
                    f" `edgeconv report {' '.join(inputs)}` from {len(data.exports)} export(s)"
                    f" and {len(data.results_files)} results.json file(s). Nothing here was"
                    " re-measured: every figure comes from a manifest.json, a results.json,"
                    " a train.json or the models' own arithmetic (`edgeconv inspect`).")
    envs = [[t, e.get("cpu", ""), str(e.get("cores", "")), e.get("machine", ""),
             (e.get("target") or {}).get("description", ""), e.get("created", "")]
            for t, e in sorted(data.environments.items())]
    if envs:
        s.blocks.append(Table(["target", "CPU (bench machine)", "cores", "arch",
                               "target description", "measured at"], envs))
    untrained = sorted({f"{r.export.label} ({r.export.options.get('classes')} classes)"
                        for r in rows if not r.export.trained})
    if untrained:
        s.blocks.append("**Untrained weights** (`edgeconv export NAME --untrained`): "
                        + ", ".join(untrained) + ". Their sizes, MACs, memory and latency are"
                        " real; their accuracy is meaningless and is not shown. Their class"
                        " count is the"
                        " calibration dataset's, so their last layer (and params) differ from"
                        " the 1000-class figures the articles and `edgeconv inspect` quote.")
    trained = [r.export for r in rows if r.export.trained and r.export.train]
    if trained:
        s.blocks.append("**Trained** on " + ", ".join(sorted({e.dataset or "?" for e in trained}))
                        + ": " + ", ".join(f"{e.label} ({e.train.epochs_run} epochs)"
                                           for e in trained) + ".")
    for note in data.notes:
        s.blocks.append(f"Note: {note}")
    return s


def claims_section(verdicts: list[Verdict]) -> Section:
    s = Section("The articles' claims, measured")
    counts = {v: sum(1 for x in verdicts if x.verdict == v) for v in VERDICTS}
    s.blocks.append(", ".join(f"{n} {v}" for v, n in counts.items()) +
                    f" ({len(verdicts)} claims; data: edgeconv/report/claims.py; the rule"
                    " behind each verdict is in the last column).")
    s.blocks.append(Table(
        ["id", "article", "claim", "stated", "measured", "verdict", "evidence / command",
         "why / rule"],
        [[v.claim.id, v.claim.source, v.claim.claim, v.claim.stated, v.measured,
          f"**{v.verdict}**", v.evidence,
          (v.reason + "; " if v.reason else "") + "rule: " + v.claim.rule_text]
         for v in verdicts]))
    return s


def pair_section(table: PairTable, targets: list[str], plot: PlotFn) -> Section:
    c = table.comparison
    s = Section(f"[{c.id}] {c.title}")
    s.blocks.append(f"Article {c.source}: {c.claim}.")
    if table.missing:
        s.blocks.append("Missing from the inputs: " + ", ".join(e.label for e in table.missing)
                        + ". To add one: `edgeconv export NAME --int8 --fp16 --dynamic`"
                        " (`--untrained` for the 224x224 models), then `edgeconv bench"
                        " runs/NAME --target cpu --out runs/NAME/results-cpu.json`.")
    if not table.rows:
        return s
    columns = ["model", "weights", "params", "MACs", *(f"{p} size" for p in SIZED)]
    # only the (target, precision) pairs something in this table was measured at
    timed = [(t, p) for t in targets for p in TIMED
             if any(r.latency(t, p) for r in table.rows)]
    columns += [f"{t} {p} p50 (p90) ms" for t, p in timed]
    columns += ["peak RSS (fp32 TFLite)", "acc float", "acc int8", "TFLM arena"]
    body = []
    for r in table.rows:
        line = [r.export.label, r.export.weights, render.count(r.params), render.macs(r.macs)]
        line += [render.nbytes(r.sizes.get(p)) for p in SIZED]
        for t, p in timed:
            lat = r.latency(t, p)
            line.append(f"{lat.p50_ms:.3f} ({lat.p90_ms:.3f})" if lat and lat.p90_ms else "")
        rss = next((lat.row.peak_rss_bytes for lat in r.latencies
                    if lat.row.format == SHOWN_FORMAT and lat.precision == FLOAT
                    and lat.row.timed_on != "host"), None)
        trained = r.export.trained
        line += [render.nbytes(rss), _pct(r.export.float_accuracy) if trained else "(untrained)",
                 _pct(r.int8_accuracy) if trained else "", render.nbytes(r.arena_bytes)]
        body.append(line)
    s.blocks.append(Table(columns, body))
    s.blocks.append("Latency: LiteRT on host targets with the fewest threads measured; on MCU"
                    " targets TFLite Micro timed on the bench machine (not board time). Peak"
                    " RSS is the bench child process (runtime + model + Python).")
    png = plot(f"pair-{c.id}.png")
    if png:
        s.blocks.append(Image(png.name, f"{c.id}: params, MACs, size, latency"))
    return s


def pareto_section(rows: list[ModelRow], plot_fn: Callable[[str, list, str], Path | None]
                    ) -> Section:
    s = Section("Accuracy vs latency, per target")
    trained = [r for r in rows if r.export.trained]
    any_points = False
    # MCU rows are TFLite Micro timed on the bench machine, not the board: no trade-off there.
    for target in targets_of([r for r in rows if any(lat.row.timed_on != "host"
                                                     for lat in r.latencies)]):
        points = [(f"{r.export.label} {lat.precision}", lat.p50_ms, acc)
                  for r in trained for lat in r.latencies if lat.row.target == target
                  and lat.row.format == SHOWN_FORMAT and lat.row.timed_on != "host"
                  and (acc := next((f.accuracy for f in r.export.files
                                    if file_name(f) == lat.file), None)) is not None]
        if not points:
            continue
        any_points = True
        front = plots.pareto_front(points)
        s.blocks.append(f"**{target}**: Pareto front (no other file is both faster and more"
                        " accurate): " + "; ".join(f"{p[0]} {p[1]:.3f} ms {p[2]:.1%}"
                                                   for p in front) + ".")
        png = plot_fn(f"pareto-{target}.png", points, target)
        if png:
            s.blocks.append(Image(png.name, f"accuracy vs latency on {target}"))
    if not any_points:
        s.blocks.append("No trained export with a measured latency in the inputs: train and"
                        " export one (`edgeconv export fcn-mnist --int8`), then `edgeconv"
                        " bench runs/fcn-mnist --target cpu --out runs/fcn-mnist/results.json`.")
    return s


def grid_section(rows: list[ModelRow], plot: PlotFn) -> Section:
    s = Section("MobileNet v1: width (alpha) x resolution grid")
    grid = sorted((r for r in rows if r.export.model == "mobilenet"),
                  key=lambda r: (-(r.export.options.get("alpha") or 1),
                                 -(r.export.input_hw[0] or 0)))
    if len(grid) < 2:
        s.blocks.append("Not enough grid points in the inputs (found "
                        f"{len(grid)}): `scripts/reproduce` exports alpha 1/0.75/0.5/0.25 x"
                        " 224/192/160/128, or one point: `edgeconv export mobilenet --untrained"
                        " --alpha 0.5 --input-shape 160,160,3 --int8 --out"
                        " runs/mobilenet-a0.5-160`.")
        return s
    targets = targets_of(grid)
    columns = ["alpha", "input", "weights", "params", "MACs", "MACs rel."]
    columns += [f"{t} fp32 p50 ms" for t in targets] + ["acc float"]
    top = grid[0].macs or 0
    body = []
    for r in grid:
        line = [f"{r.export.options.get('alpha', 1.0):g}", "x".join(map(str, r.export.input_hw)),
                r.export.weights, render.count(r.params), render.macs(r.macs),
                f"{r.macs / top:.3f}" if r.macs and top else ""]
        line += [_ms(lat.p50_ms) if (lat := r.latency(t, FLOAT)) else "" for t in targets]
        line.append(_pct(r.export.float_accuracy) if r.export.trained else "(untrained)")
        body.append(line)
    s.blocks.append(Table(columns, body))
    host = next((t for t in targets if any(lat.row.target == t and lat.row.timed_on != "host"
                                           for r in grid for lat in r.latencies)), None)
    if host:
        png = plot("mobilenet-grid.png")
        if png:
            s.blocks.append(Image(png.name, "MobileNet v1 grid: MACs vs latency"))
    return s


def gap_section(rows: list[ModelRow], plot: PlotFn) -> Section:
    s = Section("gap-mnist: one model, any input size")
    gap = sorted((r for r in rows if r.export.model == "gap-mnist"),
                 key=lambda r: r.export.input_hw[0] or 0)
    if not gap:
        s.blocks.append("No gap-mnist export in the inputs: `edgeconv export gap-mnist"
                        " --untrained --input-shape 56,56,1 --int8 --out runs/gap-mnist-56`"
                        " (and 28, 112), then `edgeconv bench` them on cpu.")
        return s
    # A column per (target, precision) that has a figure: MCU boards run the int8 files only.
    columns = [(t, p) for t in targets_of(gap) for p in TIMED
               if any(r.latency(t, p) for r in gap)]
    body = []
    for r in gap:
        shape = output_shape(f) if (f := r.export.file(SHOWN_FORMAT, FLOAT)) else None
        h, w = r.export.input_hw
        line = [f"{h}x{w}" if h and w else "any (free H, W)", r.export.weights,
                render.count(r.params), render.macs(r.macs), render.shape(shape) if shape else ""]
        line += [_ms(lat.p50_ms) if (lat := r.latency(t, p)) else "" for t, p in columns]
        body.append(line)
    s.blocks.append(Table(["input", "weights", "params", "MACs", "output"]
                          + [f"{t} {p} p50 ms" for t, p in columns], body))
    sized = [r for r in gap if r.export.input_hw[0]]
    if len(sized) >= 2 and any(r.latencies for r in sized):
        png = plot("gap-mnist-sizes.png")
        if png:
            s.blocks.append(Image(png.name, "gap-mnist latency vs input size"))
    return s


def mcu_section(data: Collection, plot_fn: Callable[..., Path | None]) -> Section:
    s = Section("Microcontrollers: arena and flash vs each board's budget")
    boards = sorted({r.row.target for r in data.rows if r.row.timed_on == "host"})
    if not boards:
        s.blocks.append("No MCU bench in the inputs: `edgeconv bench runs/NAME --target"
                        " stm32h7 --out runs/NAME/results-stm32h7.json` (also nrf52840,"
                        " esp32s3) on an int8 export.")
        return s
    for board in boards:
        rows = [r for r in data.rows if r.row.target == board and r.row.format == SHOWN_FORMAT]
        sram = next((r.sram_budget for r in rows if r.sram_budget), None)
        flash = next((r.flash_budget for r in rows if r.flash_budget), None)
        body = [[(r.export.label if r.export else "?") + f" {r.precision}", r.row.status,
                 render.nbytes(r.row.arena_bytes), render.nbytes(r.row.flash_bytes),
                 "" if r.row.fits is None else ("yes" if r.row.fits else "**NO**"),
                 _ms(r.p50_ms), r.row.error or ""] for r in rows]
        s.blocks.append(f"**{board}**: SRAM {render.nbytes(sram)}, flash {render.nbytes(flash)};"
                        " flash = model + the runtime's estimated code size (a lower bound);"
                        " latency is TFLite Micro on the bench machine, not the board.")
        s.blocks.append(Table(["file", "status", "arena", "flash (est.)", "fits", "host p50 ms",
                               "error"], body))
        bars = [((r.export.label if r.export else r.file) + f" {r.precision}",
                 r.row.arena_bytes, r.row.flash_bytes)
                for r in rows if r.row.arena_bytes or r.row.flash_bytes]
        if bars and sram and flash:
            png = plot_fn(f"mcu-{board}.png", bars, sram, flash, board)
            if png:
                s.blocks.append(Image(png.name, f"{board}: arena and flash vs budget"))
    return s
