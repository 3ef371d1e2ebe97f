"""Per-export figures side by side: what the pair tables, the plots and the grid show.

One `ModelRow` per export: params and MACs (from bench rows when they carry them, else from
the model's arithmetic), file sizes per precision (manifest), latency per target and file
(results.json), peak memory, accuracy float vs int8, TFLite Micro arena.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeconv.report.arithmetic import Arithmetic
from edgeconv.report.collect import BenchRecord, Collection, ExportRecord
from edgeconv.zoo.pairs import COMPARISONS, Comparison, Entry

PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
_FAMILY_KEYS = ("alpha", "version", "groups")


@dataclass(frozen=True)
class Latency:
    target: str
    file: str
    format: str
    precision: str
    runtime: str
    threads: int | None
    p50_ms: float
    p90_ms: float | None
    peak_rss_bytes: int | None
    accuracy: float | None
    timed_on: str


@dataclass(frozen=True)
class ModelRow:
    export: ExportRecord
    params: int | None
    macs: int | None
    sizes: dict[str, int]  # TFLite file bytes by precision
    latencies: list[Latency]
    int8_accuracy: float | None  # the int8 TFLite file, as export measured it
    arena_bytes: int | None

    def latency(self, target: str, precision: str, fmt: str = "tflite") -> Latency | None:
        return next((lat for lat in self.latencies if lat.target == target
                     and lat.precision == precision and lat.format == fmt), None)


@dataclass(frozen=True)
class PairTable:
    comparison: Comparison
    rows: list[ModelRow]
    missing: list[Entry] = field(default_factory=list)


def model_rows(data: Collection, arithmetic: Arithmetic) -> list[ModelRow]:
    return [_row(e, data, arithmetic) for e in data.exports]


def _row(export: ExportRecord, data: Collection, arithmetic: Arithmetic) -> ModelRow:
    rows = [r for r in data.rows if r.export is export]
    macs = next((r.macs for r in rows if r.macs), None)
    figures = arithmetic.of(export.model, export.options)
    if figures is not None:
        macs = macs or figures.macs
    sizes = {f.precision: f.size_bytes for f in export.files if f.format == "tflite"}
    int8 = export.file("tflite", "int8")
    arena = next((r.arena_bytes for r in rows if r.arena_bytes), None) or (
        int8.micro_arena_bytes if int8 else None)
    return ModelRow(export=export, params=figures.params if figures else None, macs=macs,
                    sizes=sizes, latencies=_latencies(rows),
                    int8_accuracy=int8.accuracy if int8 else None, arena_bytes=arena)


def _latencies(rows: list[BenchRecord]) -> list[Latency]:
    """One latency per (target, file): the fewest threads measured."""
    best: dict[tuple[str, str], Latency] = {}
    for r in sorted((r for r in rows if r.ok), key=lambda r: r.threads or 0):
        best.setdefault((r.target, r.file), Latency(
            r.target, r.file, r.format, r.precision or "", r.runtime, r.threads, r.p50_ms,
            r.p90_ms, r.peak_rss_bytes, r.accuracy, r.timed_on))
    return list(best.values())


def matches(entry: Entry, siblings: tuple[Entry, ...], export: ExportRecord) -> bool:
    """Does `export` show `entry`? Family options (alpha, version, groups) must equal the
    entry's or, unset, the model's default. An input shape must match only when the
    comparison is about it, so a model trained small on digits still shows in its pair; but
    untrained weights at another size than the model's own are a point of a size study (the
    alpha x resolution grid, gap-mnist's sizes), shown in its own section, not here."""
    if export.model != entry.model:
        return False
    from edgeconv.zoo import get_spec, resolve_options

    defaults = resolve_options(get_spec(entry.model)).to_dict()
    for key in _FAMILY_KEYS:
        if key in defaults and export.options.get(key) != entry.options.get(key, defaults[key]):
            return False
    shape = list(export.options.get("input_shape") or [])
    if any("input_shape" in s.options for s in siblings if s.model == entry.model):
        return shape == list(entry.options.get("input_shape", defaults["input_shape"]))
    return export.trained or shape == list(defaults["input_shape"])


def pair_tables(rows: list[ModelRow]) -> list[PairTable]:
    tables = []
    for comparison in COMPARISONS:
        shown: list[ModelRow] = []
        missing: list[Entry] = []
        for entry in comparison.entries:
            found = [r for r in rows if matches(entry, comparison.entries, r.export)]
            shown.extend(r for r in found if r not in shown)
            if not found:
                missing.append(entry)
        tables.append(PairTable(comparison, shown, missing))
    return tables


def targets_of(rows: list[ModelRow]) -> list[str]:
    return sorted({lat.target for r in rows for lat in r.latencies})
