"""Per-export figures side by side: what the pair tables, the plots and the grid show.

One `ModelRow` per export: params and MACs (from bench rows when they carry them, else from
the model's arithmetic), file sizes per precision (manifest), latency per target and file
(results.json), peak memory, accuracy float vs int8, TFLite Micro arena.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeconv.formats import FLOAT
from edgeconv.manifest import Artifact
from edgeconv.report.arithmetic import Arithmetic
from edgeconv.report.collect import (BenchRecord, Collection, ExportRecord,
                                     micro_arena_bytes)
from edgeconv.zoo.options import FAMILY_OPTIONS
from edgeconv.zoo.pairs import COMPARISONS, Comparison, Entry

# The format the tables and plots compare: every target runs TFLite files, MCUs included.
SHOWN_FORMAT = "tflite"
# The precisions the latency columns compare: the float reference and the int8 deployment.
TIMED = (FLOAT, "int8")
# The file sizes the pair tables show: the articles' float32, float16 and int8.
SIZED = (FLOAT, "fp16", "int8")


@dataclass(frozen=True)
class ModelRow:
    export: ExportRecord
    params: int | None
    macs: int | None
    sizes: dict[str, int]  # SHOWN_FORMAT file bytes by precision
    latencies: list[BenchRecord]  # timed rows, one per (target, file): the fewest threads
    arena_bytes: int | None
    int8: Artifact | None = None  # the int8 TFLite file's manifest entry (accuracy, drop)

    def latency(self, target: str, precision: str, fmt: str = SHOWN_FORMAT
                ) -> BenchRecord | None:
        return next((lat for lat in self.latencies if lat.row.target == target
                     and lat.precision == precision and lat.row.format == fmt), None)


@dataclass(frozen=True)
class PairTable:
    comparison: Comparison
    rows: list[ModelRow]
    missing: list[Entry] = field(default_factory=list)


def model_rows(data: Collection, arithmetic: Arithmetic) -> list[ModelRow]:
    return [_row(e, data, arithmetic) for e in data.exports]


def _row(export: ExportRecord, data: Collection, arithmetic: Arithmetic) -> ModelRow:
    rows = [r for r in data.rows if r.export is export]
    macs = next((r.row.macs for r in rows if r.row.macs), None)
    figures = arithmetic.of(export.model, export.options)
    if figures is not None:
        macs = macs or figures.macs
    sizes = {f.precision: f.size_bytes for f in export.files if f.format == SHOWN_FORMAT}
    int8 = export.file(SHOWN_FORMAT, "int8")
    arena = next((r.row.arena_bytes for r in rows if r.row.arena_bytes), None) or (
        micro_arena_bytes(int8) if int8 else None)
    return ModelRow(export=export, params=figures.params if figures else None, macs=macs,
                    sizes=sizes, latencies=_latencies(rows),
                    arena_bytes=arena, int8=int8)


def _latencies(rows: list[BenchRecord]) -> list[BenchRecord]:
    """One timed row per (target, file): the fewest threads measured. Rows timed on an
    emulated board are left out: their time is qemu's, not the board's; so are an MCU's rows
    timed on this host (TFLite Micro's interpreter on x86: report.mcu shows them, labelled)."""
    best: dict[tuple[str, str], BenchRecord] = {}
    for r in sorted((r for r in rows if r.ok and r.row.timed_on not in ("emulated", "host")),
                    key=lambda r: r.row.threads or 0):
        best.setdefault((r.row.target, r.file), r)
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
    for key in FAMILY_OPTIONS:
        # A record without the key was written before the option existed: the default.
        if key in defaults and export.options.get(key, defaults[key]) \
                != entry.options.get(key, defaults[key]):
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
    return sorted({lat.row.target for r in rows for lat in r.latencies})
