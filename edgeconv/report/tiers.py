"""The report's accuracy-vs-cost curve per model: the tiers a user chooses from when int8
costs too much accuracy (docs/int8-accuracy.md).

A model's tiers are its files across every export of it given to the report: fp32, fp16,
dynamic, int8, int16x8, and the `--max-drop` file ("mixed": an int8 file whose search
widened layers to int16x8 or kept them float). Per model, a table and a plot of each file's
accuracy (with its 95% interval) against what it costs: its size; on a microcontroller the
emulated firmware's instructions per invoke (or, without a firmware run, TFLite Micro timed
on the bench machine), its estimated latency, arena and flash; elsewhere the latency
measured on the target. Every figure names how it was obtained. Nothing is re-measured:
the figures are the manifests' and the results.json rows' (linked to a file by sha256).

A model is shown when its files hold an int16x8 or a mixed tier: the curve is this
section's reason to be; fp32 against int8 alone is the pair tables' and the Pareto plot's.
Standard library only, except the plot (matplotlib, through report.plots).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv import render
from edgeconv.formats import FORMATS, PRECISIONS, WIDE
from edgeconv.manifest import Artifact
from edgeconv.report import figures
from edgeconv.report.collect import BenchRecord, Collection, ExportRecord, file_name
from edgeconv.report.document import Image, Section, Table
from edgeconv.report.mcu import latency_text

TITLE = "Accuracy against cost, per tier"
MIXED = "mixed"  # the --max-drop file: int8 with some layers at int16x8 (or float)
TIER_ORDER = (*PRECISIONS, MIXED)
SHOWN_FORMATS = ("tflite", "onnx")  # the deployed files; the Keras file is the reference


@dataclass(frozen=True)
class Tier:
    """One file of a model, with the bench rows that measured it."""

    name: str  # a precision, or MIXED
    export: ExportRecord
    artifact: Artifact
    rows: dict[str, BenchRecord]  # by target: the row shown (see _shown_rows)

    @property
    def label(self) -> str:
        return f"{self.name} {FORMATS[self.artifact.format].title}"

    @property
    def accuracy(self) -> float | None:
        return self.artifact.accuracy


@dataclass(frozen=True)
class CostAxis:
    """One kind of cost a plot panel shows: how to read it from a tier, and what it is."""

    title: str  # names the kind of figure: measured / emulated / estimated, and the target
    unit: str
    value: Callable[[Tier], float | None]
    interval: Callable[[Tier], tuple[float, float] | None] = lambda _: None


def tier_name(artifact: Artifact) -> str:
    """The file's precision, or MIXED for a --max-drop file that changed layers."""
    budget = (artifact.options or {}).get("accuracy_budget") or {}
    if budget.get("int16x8_layers") or budget.get("kept_float"):
        return MIXED
    return artifact.precision


def model_key(export: ExportRecord) -> tuple[Any, ...]:
    """Exports of the same model share this: a user's by their source file's sha256, a zoo
    model's by its name, options and training; both on the same data."""
    source = export.manifest.model_info.source or {}
    who = source.get("sha256") or (export.model, repr(sorted(export.options.items())),
                                   export.trained)
    return who, export.dataset


def tiers_section(data: Collection, draw: Callable[[Callable[..., Path]], Callable[..., Any]]
                  ) -> Section | None:
    """The section, or None when no model in the inputs has an int16x8 or mixed file.
    `draw(fn)` gives the build's plot runner for `fn(*args, path)` (None: no plots)."""
    models = [tiers for tiers in _models(data)
              if any(t.name in (WIDE, MIXED) for t in tiers)]
    if not models:
        return None
    s = Section(TITLE)
    s.blocks.append(
        "Each model's files at every tier given to the report (`--int8 --int16x8` and a"
        " `--max-drop` export of the same model): fp32, int8, int16x8 (int16 activations,"
        " int8 weights) and **mixed** (the `--max-drop` file: int8 with the layers the"
        " per-layer ranking blamed at int16x8, or float with `--allow-float`). Accuracy:"
        " top-1 on the export's test images, measured at export in the file's own runtime,"
        " with its 95% Wilson interval; drop from float: float minus the file's accuracy on"
        " the same images, in points, with its 95% paired interval. Size: the file's"
        " bytes. On a microcontroller target, `instructions` are counted exactly by"
        " the emulated Cortex-M firmware (TFLite Micro + the board's kernels); its latency"
        " is an **estimate** from them (a band, not a measurement); arena and flash are"
        " exact. Without a firmware run, an MCU row is TFLite Micro's interpreter timed on"
        " the bench machine (x86 host, reference kernels: not a board time). Other"
        " targets: p50 latency measured on the target [95% interval].")
    for index, tiers in enumerate(models):
        s.blocks.extend(_model_blocks(index, tiers, draw))
    return s


def _models(data: Collection) -> list[list[Tier]]:
    """Per model (in the order its first export was given), its tiers in TIER_ORDER, one
    per distinct file (the same file in two exports counts once)."""
    grouped: dict[tuple[Any, ...], list[Tier]] = {}
    for export in data.exports:
        tiers = grouped.setdefault(model_key(export), [])
        seen = {t.artifact.sha256 for t in tiers}
        for artifact in export.files:
            if artifact.format in SHOWN_FORMATS and artifact.sha256 not in seen:
                seen.add(artifact.sha256)
                tiers.append(Tier(tier_name(artifact), export, artifact,
                                  _shown_rows(artifact, data)))
    order = {name: i for i, name in enumerate(TIER_ORDER)}
    return [sorted(tiers, key=lambda t: (SHOWN_FORMATS.index(t.artifact.format),
                                         order.get(t.name, len(order))))
            for tiers in grouped.values() if tiers]


def _shown_rows(artifact: Artifact, data: Collection) -> dict[str, BenchRecord]:
    """target -> the row that gives the file's cost there: a firmware or host-interpreter
    row on an MCU, a timed row elsewhere (the fewest threads); an emulated Linux board's
    qemu time and an NPU's estimate (their own sections) are left out. A file none of
    whose rows on a target ran: its first row, for the status."""
    shown: dict[str, BenchRecord] = {}
    for record in data.rows:
        if record.row.sha256 != artifact.sha256 or _left_out(record):
            continue
        best = shown.get(record.row.target)
        if best is None or _better(record, best):
            shown[record.row.target] = record
    return shown


def _left_out(record: BenchRecord) -> bool:
    timed_on = record.row.timed_on
    return (timed_on == "emulated" and record.row.mcu is None) or timed_on == "estimated"


def _better(record: BenchRecord, best: BenchRecord) -> bool:
    if record.row.ok != best.row.ok:
        return record.row.ok
    if (record.row.mcu is not None) != (best.row.mcu is not None):
        return record.row.mcu is not None  # the firmware's exact counts over the host's
    return (record.row.threads or 0) < (best.row.threads or 0)


def _is_mcu(record: BenchRecord) -> bool:
    return record.row.mcu is not None or record.row.timed_on == "host"


# --- the table ------------------------------------------------------------------------


def _model_blocks(index: int, tiers: list[Tier], draw) -> list[Any]:
    export = tiers[0].export
    labelled = any(t.accuracy is not None for t in tiers)
    targets = sorted({target for t in tiers for target in t.rows})
    mcu = [x for x in targets if any(_is_mcu(t.rows[x]) for t in tiers if x in t.rows)]
    columns = ["tier", "file", "accuracy [95%]", "drop from float, points [95%]", "size"]
    for target in targets:
        if target in mcu:
            columns += [f"{target} instructions / invoke (emulated)", f"{target} latency ms",
                        f"{target} arena", f"{target} flash"]
        else:
            columns.append(f"{target} latency ms (measured)")
    body = []
    for tier in tiers:
        line = [tier.label + _layers(tier.artifact),
                f"`{tier.export.directory.name}/{file_name(tier.artifact)}`",
                figures.file_accuracy(tier.export, tier.artifact) or "no labels",
                _drop(tier), render.nbytes(tier.artifact.size_bytes)]
        for target in targets:
            record = tier.rows.get(target)
            if target in mcu:
                line += _mcu_cells(record)
            else:
                line.append(_host_cell(record))
        body.append(line)
    exports = sorted({f"{t.export.directory.name}/" for t in tiers})
    float_text = figures.float_accuracy(export)
    name = _name(export)
    blocks: list[Any] = [
        f"**{name}** ({', '.join(exports)}): {len(tiers)} files;"
        f" float accuracy {float_text or 'not recorded'}."
        + ("" if labelled else " No labels: no accuracy, and no curve to plot.")]
    blocks.append(Table(columns, body))
    if labelled:
        axes = _axes(tiers, targets, mcu)
        png = draw(tiers_figure)(f"tiers-{index + 1}.png", name, tiers, axes,
                                 export.float_accuracy)
        if png:
            blocks.append(Image(png.name, f"{name}: accuracy against cost per tier"))
    return blocks


def _name(export: ExportRecord) -> str:
    """A user's model by its name (its size is the file's own), a zoo model by its label."""
    return export.model if export.manifest.model_info.source else export.label


def _layers(artifact: Artifact) -> str:
    """' (3 of 4 layers int16x8)' for a mixed file (', 1 fp32' after it for a layer kept
    float): what the search changed."""
    budget = (artifact.options or {}).get("accuracy_budget") or {}
    precisions = budget.get("layer_precisions") or {}
    if not precisions or tier_name(artifact) != MIXED:
        return ""
    counts = {p: sum(1 for v in precisions.values() if v == p) for p in set(precisions.values())}
    changed = [f"{counts[p]} {p}" for p in (WIDE, "fp32") if counts.get(p)]
    first, *rest = changed or ["0 changed"]
    count, precision = first.split(" ", 1)
    return f" ({', '.join([f'{count} of {len(precisions)} layers {precision}', *rest])})"


def _drop(tier: Tier) -> str:
    versus = tier.artifact.versus_float
    if versus is None:
        return figures.drop(tier.export, tier.artifact)
    low, high = versus["drop_interval"]
    return f"{100 * versus['drop']:+.2f} pt [{100 * low:+.2f}, {100 * high:+.2f}]"


def _mcu_cells(record: BenchRecord | None) -> list[str]:
    if record is None:
        return ["", "", "", ""]
    if not record.row.ok:
        return [f"**{record.row.status}**", (record.row.error or "")[:80], "", ""]
    mcu = record.row.mcu
    instructions = f"{mcu['invoke_instructions']:,}" if mcu else "no firmware run"
    arena = render.nbytes(record.row.arena_bytes) + ("" if mcu else " (host interpreter)")
    return [instructions, latency_text(record), arena,
            render.nbytes(record.row.flash_bytes) if mcu else ""]


def _host_cell(record: BenchRecord | None) -> str:
    if record is None:
        return ""
    if not record.row.ok:
        return f"**{record.row.status}**"
    return figures.p50(record)


# --- the plot -------------------------------------------------------------------------


def _axes(tiers: list[Tier], targets: list[str], mcu: list[str]) -> list[CostAxis]:
    """The costs every panel plots: size, then per target its cost (MCU: the firmware's
    instructions, else the host interpreter's time; elsewhere the measured p50)."""
    axes = [CostAxis("file size (manifest)", "file size, KiB",
                     lambda t: t.artifact.size_bytes / 1024)]
    for target in targets:
        rows = [t.rows[target] for t in tiers if target in t.rows and t.rows[target].row.ok]
        if target in mcu and any(r.row.mcu for r in rows):
            core = next(r.row.mcu["core"] for r in rows if r.row.mcu)
            most = max(r.row.mcu["invoke_instructions"] for r in rows if r.row.mcu)
            scale, unit = (1e6, "millions") if most >= 1e6 else (1e3, "thousands")
            axes.append(CostAxis(f"{target}: instructions per invoke (emulated {core})",
                                 f"instructions, {unit}",
                                 lambda t, x=target, k=scale: _instructions(t, x, k)))
        elif any(r.p50_ms for r in rows):
            kind = "x86 host, TFLite Micro reference kernels" if target in mcu else "measured"
            axes.append(CostAxis(f"{target}: latency p50 ({kind})", "latency p50, ms",
                                 lambda t, x=target: _p50(t, x),
                                 lambda t, x=target: _p50_interval(t, x)))
    return axes


def _instructions(tier: Tier, target: str, scale: float) -> float | None:
    record = tier.rows.get(target)
    mcu = record.row.mcu if record and record.row.ok else None
    return mcu["invoke_instructions"] / scale if mcu else None


def _p50(tier: Tier, target: str) -> float | None:
    record = tier.rows.get(target)
    return record.p50_ms if record and record.ok else None


def _p50_interval(tier: Tier, target: str) -> tuple[float, float] | None:
    record = tier.rows.get(target)
    latency = record.row.latency_ms if record and record.ok else None
    if latency is None or latency.p50_low is None or latency.p50_high is None:
        return None
    return latency.p50_low, latency.p50_high


def tiers_figure(model: str, tiers: list[Tier], axes: list[CostAxis],
                 float_accuracy: float | None, path: Path) -> Path:
    """One panel per cost: accuracy (%, 95% interval as whiskers) against it, each point
    labelled by its tier; the float model's accuracy as a dashed line."""
    from edgeconv.report.plots import _plt, _save

    plt = _plt()
    fig, panels = plt.subplots(1, len(axes), figsize=(4.2 * len(axes), 3.8), squeeze=False)
    fig.suptitle(f"{model}: accuracy against cost, per tier")
    for ax, axis in zip(panels[0], axes):
        placed: list[tuple[float, float]] = []
        for fmt, marker in zip(SHOWN_FORMATS, "os"):
            points = [(t, axis.value(t)) for t in tiers if t.artifact.format == fmt
                      and t.accuracy is not None and axis.value(t) is not None]
            for tier, x in points:
                # tiers at the same point (int16x8 and a mixed file that widened every
                # layer): each label one line lower than the last one there
                near = sum(1 for p in placed if _close(p, (x, tier.accuracy), placed))
                placed.append((x, tier.accuracy))
                y = 100 * tier.accuracy
                interval = tier.artifact.accuracy_interval
                yerr = ([[y - 100 * interval[0]], [100 * interval[1] - y]] if interval
                        else None)
                span = axis.interval(tier)
                xerr = [[x - span[0]], [span[1] - x]] if span else None
                ax.errorbar([x], [y], yerr=yerr, xerr=xerr, fmt=marker, capsize=2,
                            color="tab:blue" if fmt == "tflite" else "tab:orange")
                ax.annotate(tier.label, (x, y), fontsize=7, xytext=(4, 4 - 9 * near),
                            textcoords="offset points")
        if float_accuracy is not None:
            ax.axhline(100 * float_accuracy, color="grey", linestyle="--", linewidth=1,
                       label="float model")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xlabel(axis.unit)
        ax.set_title(axis.title, fontsize=8)
        ax.set_ylabel("test accuracy, % (95% interval)")
    return _save(fig, path)


def _close(a: tuple[float, float], b: tuple[float, float],
           points: list[tuple[float, float]]) -> bool:
    """Within 3% of the panel's spread on both axes (so far): labels there would overlap."""
    xs, ys = [p[0] for p in [*points, b]], [p[1] for p in [*points, b]]
    dx, dy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    return abs(a[0] - b[0]) <= 0.03 * dx and abs(a[1] - b[1]) <= 0.03 * dy
