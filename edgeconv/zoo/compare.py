"""Tabulate the articles' comparisons (edgeconv.zoo.pairs) from the zoo's own arithmetic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from edgeconv.zoo.analyze import inspect_by_name
from edgeconv.zoo.pairs import get_comparisons


@dataclass(frozen=True)
class Row:
    label: str
    model: str
    options: dict
    params: int
    macs: int
    weight_bytes_fp32: int
    weight_bytes_int8: int
    peak_activation_bytes: int
    article: str  # the article's figures for this configuration and whether they match


@dataclass(frozen=True)
class ComparisonTable:
    id: str
    title: str
    source: str
    claim: str
    rows: list[Row]

    def to_dict(self) -> dict:
        return asdict(self)


def run_comparisons(ids: list[str] | None = None,
                    on_build: Callable[[str], None] = lambda label: None) -> list[ComparisonTable]:
    tables = []
    for comparison in get_comparisons(ids):
        rows = []
        for entry in comparison.entries:
            on_build(entry.label)
            report = inspect_by_name(entry.model, **entry.options)
            s = report.stats
            article = "; ".join(
                f"{f.quantity} {f.stated} {'matches' if f.matches else 'DIFFERS'}"
                for f in report.facts)
            rows.append(Row(entry.label, entry.model, report.options, s.params, s.macs,
                            s.weight_bytes_fp32, s.weight_bytes_int8, s.peak_activation_bytes,
                            article))
            _free_keras_memory()
        tables.append(ComparisonTable(comparison.id, comparison.title, comparison.source,
                                      comparison.claim, rows))
    return tables


def _free_keras_memory() -> None:
    # VGG16 and AlexNet weigh 0.5 GB and 0.25 GB in fp32; drop each before building the next.
    from edgeconv._lazy import keras

    keras().backend.clear_session()
