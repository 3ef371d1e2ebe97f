"""How sure a figure is: intervals for accuracies, paired drops, medians and speed-ups.

Standard library only (results are judged in CI without numpy). Each function names the
method it uses, so a report can say how an interval was obtained:

- a proportion (accuracy, agreement): Wilson's score interval;
- a paired difference of two proportions on the same images (float vs int8 accuracy):
  Newcombe's hybrid score interval (method 10 of Newcombe 1998) and an exact McNemar test
  on the images only one of the two gets right;
- a median latency: the distribution-free interval between two order statistics of the
  timed runs;
- a ratio of two medians ("A is N times faster than B"): normal on the log scale, with each
  median's standard error read from its interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

CONFIDENCE = 0.95


def z_value(confidence: float = CONFIDENCE) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1; got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    confidence: float
    method: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson's score interval for a proportion `successes / n`."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0; got {successes}/{n}")
    z = z_value(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # exact ends where the count is: rounding must not move them off 0 and 1
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high, confidence, "Wilson score")


@dataclass(frozen=True)
class PairedComparison:
    """Two classifiers (a reference and a candidate, e.g. float and int8) on the same images."""

    n: int
    both_right: int
    reference_only: int  # images only the reference gets right
    candidate_only: int  # images only the candidate gets right
    drop: float  # reference accuracy - candidate accuracy (a fraction)
    drop_interval: Interval
    mcnemar_p: float  # exact two-sided McNemar p-value on the discordant images

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["drop_interval"] = self.drop_interval.to_dict()
        return data

    def to_record(self) -> dict[str, Any]:
        """As manifest.json's `versus_float` holds it (records.VERSUS_FLOAT): the interval as
        [low, high], its confidence and how both figures were obtained."""
        return {"n": self.n, "both_right": self.both_right,
                "reference_only": self.reference_only, "candidate_only": self.candidate_only,
                "drop": self.drop, "drop_interval": pair(self.drop_interval),
                "mcnemar_p": self.mcnemar_p, "confidence": self.drop_interval.confidence,
                "method": f"{self.drop_interval.method}; exact McNemar"}


def paired(reference_right: list[bool] | Any, candidate_right: list[bool] | Any,
           confidence: float = CONFIDENCE) -> PairedComparison:
    """Compare two classifiers image by image (`*_right[i]`: image i classified right)."""
    pairs = list(zip(map(bool, reference_right), map(bool, candidate_right), strict=True))
    n = len(pairs)
    a = sum(r and c for r, c in pairs)
    b = sum(r and not c for r, c in pairs)
    c = sum(c and not r for r, c in pairs)
    return paired_counts(a, b, c, n - a - b - c, confidence)


def paired_counts(a: int, b: int, c: int, d: int,
                  confidence: float = CONFIDENCE) -> PairedComparison:
    """From the 2x2 table: a both right, b reference only, c candidate only, d both wrong."""
    n = a + b + c + d
    if n <= 0 or min(a, b, c, d) < 0:
        raise ValueError(f"a 2x2 table of counts >= 0 with n > 0; got {a, b, c, d}")
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _bounds(wilson(a + b, n, confidence))
    l2, u2 = _bounds(wilson(a + c, n, confidence))
    product = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(product) if product else 0.0
    theta = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                            + (p2 - l2) ** 2))
    interval = Interval(max(-1.0, theta - delta), min(1.0, theta + epsilon), confidence,
                        "Newcombe hybrid score (paired)")
    return PairedComparison(n=n, both_right=a, reference_only=b, candidate_only=c,
                            drop=theta, drop_interval=interval, mcnemar_p=mcnemar_exact(b, c))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the discordant counts against Binomial(b + c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.exp(_log_binom_pmf(i, n)) for i in range(k + 1))
    return min(1.0, 2 * tail)


def median_interval(samples: list[float], confidence: float = CONFIDENCE) -> Interval | None:
    """Distribution-free interval for the median between two order statistics: the ranks
    whose Binomial(n, 1/2) coverage is at least `confidence`. None below 6 samples, where
    no pair of ranks reaches 95%."""
    values = sorted(samples)
    n = len(values)
    alpha = 1 - confidence
    # largest k with P(Bin(n, 1/2) <= k - 1) <= alpha / 2: then [x_(k), x_(n-k+1)] (1-based)
    cumulative, k = 0.0, 0
    for i in range(n + 1):
        cumulative += math.exp(_log_binom_pmf(i, n))
        if cumulative > alpha / 2:
            k = i  # P(Bin <= i - 1) <= alpha / 2 < P(Bin <= i)
            break
    if k < 1:
        return None
    return Interval(values[k - 1], values[n - k], confidence, "order statistics")


def ratio_interval(numerator: float, numerator_interval: Interval, denominator: float,
                   denominator_interval: Interval) -> Interval:
    """`numerator / denominator` of two independent medians, normal on the log scale with
    each standard error read from its interval's width."""
    confidence = min(numerator_interval.confidence, denominator_interval.confidence)
    z = z_value(confidence)
    se = math.hypot(_log_se(numerator_interval), _log_se(denominator_interval))
    centre = math.log(numerator / denominator)
    return Interval(math.exp(centre - z * se), math.exp(centre + z * se), confidence,
                    "log-normal from the two medians' intervals")


def _log_se(interval: Interval) -> float:
    if interval.low <= 0:
        raise ValueError("a latency interval must be positive")
    return (math.log(interval.high) - math.log(interval.low)) / (2 * z_value(interval.confidence))


def pair(interval: Interval | None) -> list[float] | None:
    """[low, high], as records hold an interval (their confidence is CONFIDENCE)."""
    return None if interval is None else [interval.low, interval.high]


def proportion(right: Any, confidence: float = CONFIDENCE) -> tuple[float, list[float]]:
    """A share of images (`right[i]`: image i counted) and its Wilson interval as [low,
    high]: what records keep for an accuracy or an agreement."""
    flags = [bool(r) for r in right]
    if not flags:
        raise ValueError("a proportion of no images")
    count = sum(flags)
    return count / len(flags), pair(wilson(count, len(flags), confidence))


def load_note(before: list[float] | None, after: list[float] | None,
              cores: int | None) -> str | None:
    """What to say when the machine had more runnable work than cores, by the 1-minute load
    average before or after a bench (the bench's own threads count in `after`): the
    latencies may then include waiting for a core. None when it did not, or is unknown."""
    if not cores:
        return None
    loads = [load[0] for load in (before, after) if load]
    if not loads or max(loads) <= cores:
        return None
    shown = " / ".join(f"{load[0]:.2f} {when}" for load, when in ((before, "before"),
                                                                   (after, "after")) if load)
    return (f"the machine was busy: 1-minute load {shown} on {cores} cores; latencies may"
            " be inflated")


def _log_binom_pmf(k: int, n: int) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) - n * math.log(2)


def _bounds(interval: Interval) -> tuple[float, float]:
    return interval.low, interval.high
