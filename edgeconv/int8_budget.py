"""Accuracy-aware int8: keep the worst-quantised layers in float until a budget holds.

Given the layers ranked worst first by their quantisation error (SQNR, from the per-layer
report), convert again with the k worst left in float, for growing k, and measure each
candidate; stop at the first that meets the budget. A few layers are added per step so a
deep network needs about ten conversions, not one per layer. If no candidate meets the
budget, the most accurate one found is kept and the caller says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MAX_STEPS = 8  # conversions before "every layer float" is the last try


@dataclass(frozen=True)
class Candidate:
    kept_float: tuple[str, ...]
    accuracy: float
    size_bytes: int


@dataclass(frozen=True)
class BudgetSearch:
    met: bool
    best: Candidate  # the one meeting the budget with the fewest float layers, else the
    content: bytes  # most accurate found; and its file content
    tried: list[Candidate] = field(default_factory=list)


def keep_float_until_within(
    ranked: Sequence[str], *, float_accuracy: float, max_drop_points: float,
    convert: Callable[[tuple[str, ...]], bytes], accuracy_of: Callable[[bytes], float],
    on_try: Callable[[int, int], None] = lambda k, n: None,
) -> BudgetSearch:
    """Search k = step, 2*step, ... up to every ranked layer; `convert(kept)` makes a file,
    `accuracy_of(content)` measures it. Accuracies are fractions; the budget is in points."""
    step = max(1, math.ceil(len(ranked) / MAX_STEPS))
    tried: list[Candidate] = []
    best: tuple[Candidate, bytes] | None = None
    for k in [*range(step, len(ranked), step), len(ranked)]:
        on_try(k, len(ranked))
        kept = tuple(ranked[:k])
        content = convert(kept)
        candidate = Candidate(kept, accuracy_of(content), len(content))
        tried.append(candidate)
        if best is None or candidate.accuracy > best[0].accuracy:
            best = (candidate, content)
        if (float_accuracy - candidate.accuracy) * 100 <= max_drop_points:
            return BudgetSearch(met=True, best=candidate, content=content, tried=tried)
    if best is None:  # nothing to keep in float
        raise ValueError("no quantised layers to keep in float")
    return BudgetSearch(met=False, best=best[0], content=best[1], tried=tried)
