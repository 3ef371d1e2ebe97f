"""The report as a renderer-neutral document: sections of paragraphs, tables and images.

Everything the report says is decided here, from the collected data, the verdicts and the
plots; render_md and render_html only lay it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edgeconv import render, stats
from edgeconv.formats import FLOAT
from edgeconv.report import baselines, figures, plots
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


def _load(environment: dict) -> str:
    """The bench machine's 1-minute load average before and after, flagged when above its
    cores (the latencies then include waiting for a core); '' when not recorded."""
    loads = [environment.get(k) for k in ("load_before", "load_after")]
    if not any(loads):
        return ""
    text = " / ".join(f"{load[0]:.2f}" if load else "?" for load in loads)
    cores = environment.get("cores")
    busy = stats.load_note(*loads, cores) is not None  # the bench's own rule
    return text + (f" (**busy**: over {cores} cores)" if busy else "")


def header(data: Collection, rows: list[ModelRow], inputs: list[str]) -> Section:
    s = Section("What this report is built from")
    s.blocks.append(f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by"
                    f" `edgeconv report {' '.join(inputs)}` from {len(data.exports)} export(s)"
                    f" and {len(data.results_files)} results.json file(s). Nothing here was"
                    " re-measured: every figure comes from a manifest.json, a results.json,"
                    " a train.json or the models' own arithmetic (`edgeconv inspect`).")
    envs = [[t, e.get("cpu", ""), str(e.get("cores", "")), e.get("machine", ""),
             (e.get("target") or {}).get("description", ""), e.get("created", ""), _load(e)]
            for t, e in sorted(data.environments.items())]
    if envs:
        s.blocks.append(Table(["target", "CPU (bench machine)", "cores", "arch",
                               "target description", "measured at",
                               "1-min load before / after"], envs))
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
        s.blocks.append("**Trained** on " + ", ".join(sorted({
            figures.described(e.dataset) for e in trained})) + ": " + ", ".join(
            f"{e.label} on {figures.dataset_name(e.dataset)} ({e.train.epochs_run} epochs)"
            for e in trained) + ".")
    s.blocks.append(
        "**How sure the figures are.** An accuracy reads `94.7% [92.0, 96.4] (digits, 359"
        " images)`: top-1 on the dataset's test images, its 95% Wilson interval in brackets,"
        " the data and the number of images (one image of 359 is 0.28 points). An int8 drop"
        " is float minus int8 accuracy on the same images, in points, with its 95% paired"
        " (Newcombe) interval, the images only one of the two gets right and McNemar's exact"
        " p. A p50 reads `0.031 [0.030, 0.033]`: milliseconds with the 95% order-statistics"
        " interval of the median (none below 6 timed runs). A speed-up is the ratio of two"
        " p50s with its 95% interval; a verdict calls a model faster only when that"
        " interval excludes 1. Files written before edgeconv recorded intervals show none,"
        " and say so.")
    emulated = [r for r in data.rows if r.row.timed_on == "emulated" and r.row.mcu is None]
    if emulated:
        s.blocks.append(
            f"**Emulated boards**: {len(emulated)} bench row(s) on "
            + ", ".join(sorted({r.row.target for r in emulated}))
            + " were timed on an emulated board (qemu), whose times are not the board's:"
            " they are left out of every latency table, plot and verdict.")
    from edgeconv.report.parity import parity_blocks  # boards' outputs against x86, per file
    s.blocks.extend(parity_blocks(data))
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
    columns += [f"{t} {p} p50 [95%] (p90) ms" for t, p in timed]
    columns += ["peak RSS (fp32 TFLite)", "acc float [95%] (data, images)", "acc int8",
                "int8 drop [95%]", "TFLM arena"]
    body = []
    for r in table.rows:
        line = [r.export.label, r.export.weights, render.count(r.params), render.macs(r.macs)]
        line += [render.nbytes(r.sizes.get(p)) for p in SIZED]
        for t, p in timed:
            lat = r.latency(t, p)
            line.append(f"{figures.p50(lat)} ({lat.p90_ms:.3f})" if lat and lat.p90_ms else "")
        rss = next((lat.row.peak_rss_bytes for lat in r.latencies
                    if lat.row.format == SHOWN_FORMAT and lat.precision == FLOAT
                    and lat.row.timed_on != "host"), None)
        trained = r.export.trained
        line += [render.nbytes(rss),
                 figures.float_accuracy(r.export) if trained else "(untrained)",
                 figures.file_accuracy(r.export, r.int8) if trained else "",
                 figures.drop(r.export, r.int8) if trained else "",
                 render.nbytes(r.arena_bytes)]
        body.append(line)
    s.blocks.append(Table(columns, body))
    s.blocks.append("Latency: LiteRT on host targets with the fewest threads measured, p50 with"
                    " its 95% interval in brackets when recorded; MCU targets are in their own"
                    " section (estimates from emulated instructions); emulated boards left out."
                    " Peak RSS is the bench child process (runtime + model + Python). Accuracy:"
                    " the int8 TFLite file as export measured it, on the same test images as"
                    " the float model.")
    png = plot(f"pair-{c.id}.png")
    if png:
        s.blocks.append(Image(png.name, f"{c.id}: params, MACs, size, latency"))
    return s


def pareto_section(rows: list[ModelRow], plot_fn: Callable[..., Path | None]) -> Section:
    s = Section("Accuracy vs latency, per target")
    trained = [r for r in rows if r.export.trained]
    datasets = sorted({r.export.dataset or "" for r in trained})
    any_points = False
    # MCU rows are TFLite Micro timed on the bench machine, not the board: no trade-off there
    # (and emulated boards never reach ModelRow.latencies). Accuracies on different data are
    # not comparable: one front per dataset.
    for target in targets_of([r for r in rows if any(lat.row.timed_on != "host"
                                                     for lat in r.latencies)]):
        for dataset in datasets:
            shown: dict[str, str] = {}  # point label -> its accuracy with interval
            points = []
            for r in trained:
                if (r.export.dataset or "") != dataset:
                    continue
                for lat in r.latencies:
                    if lat.row.target != target or lat.row.format != SHOWN_FORMAT \
                            or lat.row.timed_on == "host":
                        continue
                    artifact = next((f for f in r.export.files if file_name(f) == lat.file),
                                    None)
                    if artifact is None or artifact.accuracy is None:
                        continue
                    label = f"{r.export.label} {lat.precision}"
                    points.append((label, lat.p50_ms, artifact.accuracy))
                    shown[label] = figures.file_accuracy(r.export, artifact)
            if not points:
                continue
            any_points = True
            front = plots.pareto_front(points)
            name = figures.dataset_name(dataset or None)
            s.blocks.append(f"**{target}**, accuracy on {name}: Pareto front (no other file is"
                            " both faster and more accurate): " + "; ".join(
                                f"{p[0]} {p[1]:.3f} ms {shown[p[0]]}" for p in front) + ".")
            suffix = f"-{dataset}" if len(datasets) > 1 and dataset else ""
            png = plot_fn(f"pareto-{target}{suffix}.png", points, target, name)
            if png:
                s.blocks.append(Image(png.name, f"accuracy on {name} vs latency on {target}"))
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
    columns += [f"{t} fp32 p50 [95%] ms" for t in targets] + ["acc float [95%] (data, images)"]
    top = grid[0].macs or 0
    body = []
    for r in grid:
        line = [f"{r.export.options.get('alpha', 1.0):g}", "x".join(map(str, r.export.input_hw)),
                r.export.weights, render.count(r.params), render.macs(r.macs),
                f"{r.macs / top:.3f}" if r.macs and top else ""]
        line += [figures.p50(lat) if (lat := r.latency(t, FLOAT)) else "" for t in targets]
        line.append(figures.float_accuracy(r.export) if r.export.trained else "(untrained)")
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
        line += [figures.p50(lat) if (lat := r.latency(t, p)) else "" for t, p in columns]
        body.append(line)
    s.blocks.append(Table(["input", "weights", "params", "MACs", "output"]
                          + [f"{t} {p} p50 ms" for t, p in columns], body))
    sized = [r for r in gap if r.export.input_hw[0]]
    if len(sized) >= 2 and any(r.latencies for r in sized):
        png = plot("gap-mnist-sizes.png")
        if png:
            s.blocks.append(Image(png.name, "gap-mnist latency vs input size"))
    return s


def baselines_section(rows: list[ModelRow], found: baselines.Baselines) -> Section | None:
    """Published Fashion-MNIST points next to ours, for the exports trained on it; None when
    there is no such export or no published file was read."""
    ours = [r for r in rows if r.export.trained and r.export.dataset == "fashion_mnist"]
    if not ours or found.empty:
        return None
    s = Section("Published reference points (Fashion-MNIST)")
    if found.published:
        typical = stats.wilson(9000, 10_000)
        s.blocks.append(
            f"Published: the table of submitted results in the dataset's README"
            f" (`{found.published_from}`, {len(found.published)} entries): Fashion-MNIST"
            " test accuracy on the same 10,000 test images, as each submitter reported it."
            " The dataset's authors say they have not verified these; training recipes,"
            " augmentation and epochs differ from ours, and none states an interval (on"
            f" 10,000 images a 95% interval around 90% is [{typical.low:.1%},"
            f" {typical.high:.1%}], about +-0.6 points). Comparable means the same family:"
            " the zoo's small networks against the submitted CNNs of 2 to 5 conv layers,"
            " MobileNet, SqueezeNet, AlexNet and VGG against their namesakes.")
        body = []
        for r in ours:
            family, points = found.comparable(r.export.model)
            listed = "; ".join(f"{p.classifier} {p.accuracy:.1%}"
                               + (f" ({p.preprocessing})" if p.preprocessing not in ("", "None",
                                                                                      "-")
                                  else "")
                               for p in sorted(points, key=lambda p: -p.accuracy)[:6])
            body.append([r.export.label, figures.float_accuracy(r.export),
                         figures.file_accuracy(r.export, r.int8), family or "none in the table",
                         baselines.summary([p.accuracy for p in points]) if points else "",
                         listed + (" ..." if len(points) > 6 else "")])
        s.blocks.append(Table(["ours", "float [95%] (data, images)", "int8",
                               "published, comparable family", "published accuracy",
                               "entries (best first)"], body))
        human = found.human()
        if human is not None:
            s.blocks.append(f"For scale, the README's human baseline: {human.accuracy:.1%}"
                            f" ({human.preprocessing}).")
    if found.sklearn:
        s.blocks.append(
            f"scikit-learn benchmark results (`{found.sklearn_from}`): the best mean accuracy of"
            f" each of {len(found.sklearn)} classifiers, "
            + baselines.summary(list(found.sklearn.values()))
            + ". These are classical classifiers on raw pixels (no CNN): context, not a"
            " comparable model family.")
    if found.grid:
        s.blocks.append(
            f"`{found.grid_from}` is the configuration of the dataset authors' scikit-learn"
            f" benchmark: the {len(found.grid)} classifiers it ran ("
            + ", ".join(found.grid[:20]) + (", ..." if len(found.grid) > 20 else "")
            + ") and their parameter grids. It records no accuracy (the benchmark's results"
            " were published on its web site, not in the package), and none of them is a"
            " CNN, so nothing from it is shown as a figure.")
    return s
