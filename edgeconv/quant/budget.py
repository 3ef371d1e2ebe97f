"""Accuracy-aware int8: give the worst-quantised layers more precision until a budget holds.

Given the layers ranked worst first by their quantisation error (SQNR, from the per-layer
report), convert again with the k worst given more precision (int16 activations first,
float only where the user allows it: edgeconv.export.budget), for growing k, and measure
each candidate; stop at the first that meets the budget. A few layers are added per step so
a deep network needs about ten conversions, not one per layer. If no candidate meets the
budget, the most accurate one found is kept and the caller says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

MAX_STEPS = 8  # conversions before "every layer float" is the last try

Made = TypeVar("Made")  # what a conversion returns: the file's bytes, or bytes with metadata


@dataclass(frozen=True)
class Candidate:
    layers: tuple[str, ...]  # the layers given more precision in this file
    accuracy: float
    size_bytes: int


@dataclass(frozen=True)
class BudgetSearch(Generic[Made]):
    met: bool
    best: Candidate  # the one meeting the budget with the fewest layers changed, else the
    made: Made  # most accurate found; and what `convert` returned for it
    tried: list[Candidate] = field(default_factory=list)


def widen_until_within(
    ranked: Sequence[str], *, float_accuracy: float, max_drop_points: float,
    convert: Callable[[tuple[str, ...]], Made], accuracy_of: Callable[[Made], float],
    size_of: Callable[[Made], int] = len,
    on_try: Callable[[int, int], None] = lambda k, n: None,
) -> BudgetSearch[Made]:
    """Search k = step, 2*step, ... up to every ranked layer; `convert(layers)` makes a file
    with those layers given more precision, `accuracy_of(made)` measures it, `size_of(made)`
    is its size in bytes. Accuracies are fractions; the budget is in points."""
    step = max(1, math.ceil(len(ranked) / MAX_STEPS))
    tried: list[Candidate] = []
    best: tuple[Candidate, Made] | None = None
    for k in [*range(step, len(ranked), step), len(ranked)]:
        on_try(k, len(ranked))
        layers = tuple(ranked[:k])
        made = convert(layers)
        candidate = Candidate(layers, accuracy_of(made), size_of(made))
        tried.append(candidate)
        if best is None or candidate.accuracy > best[0].accuracy:
            best = (candidate, made)
        if (float_accuracy - candidate.accuracy) * 100 <= max_drop_points:
            return BudgetSearch(met=True, best=candidate, made=made, tried=tried)
    if best is None:  # no layer to change
        raise ValueError("no quantised layers to give more precision")
    return BudgetSearch(met=False, best=best[0], made=best[1], tried=tried)


# The search's name from when float was its one remedy.
keep_float_until_within = widen_until_within
