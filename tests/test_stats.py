"""The intervals against values computed independently, and the properties they promise."""

import random

import pytest

from edgeconv.stats import (
    mcnemar_exact,
    median_interval,
    paired,
    paired_counts,
    ratio_interval,
    wilson,
)


def test_wilson_matches_the_textbook_value():
    interval = wilson(90, 100)
    assert (round(interval.low, 3), round(interval.high, 3)) == (0.826, 0.945)
    assert wilson(0, 10).low == 0.0 and wilson(10, 10).high == 1.0
    assert 0.98 < wilson(359, 359).low < 0.99  # 359 right of 359 is not certainty


def test_exact_mcnemar():
    # 2 * P(Bin(12, 1/2) <= 2) = 2 * (1 + 12 + 66) / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0


def test_paired_drop_counts_and_interval():
    reference = [True] * 90 + [False] * 10
    candidate = [True] * 85 + [False] * 5 + [True] * 2 + [False] * 8
    result = paired(reference, candidate)
    assert (result.n, result.both_right, result.reference_only, result.candidate_only) \
        == (100, 85, 5, 2)
    assert result.drop == pytest.approx(0.03)
    assert result.drop_interval.low < 0.03 < result.drop_interval.high
    assert result.drop_interval.low < 0  # 5 against 2 images is not a sure drop
    assert result.mcnemar_p == pytest.approx(mcnemar_exact(5, 2))


def test_paired_interval_narrows_with_agreement():
    # the same 3-point drop: on images where both mostly agree the interval is narrower
    agreeing = paired_counts(870, 30, 0, 100)
    disagreeing = paired_counts(600, 300, 270, 100 - 270 + 270)
    width = lambda r: r.drop_interval.high - r.drop_interval.low  # noqa: E731
    assert agreeing.drop == pytest.approx(0.03)
    assert width(agreeing) < width(disagreeing)
    assert agreeing.drop_interval.low > 0  # 30 discordant images all one way: a real drop


def test_median_interval_ranks_and_coverage():
    values = list(range(1, 101))  # x_(i) = i
    interval = median_interval(values)
    assert (interval.low, interval.high) == (40, 61)  # the tabulated ranks for n = 100
    assert median_interval([1.0] * 5) is None  # no 95% pair of ranks below 6 samples
    # coverage on a known distribution: the true median 1.0 of exp(N(0, 1)) samples
    rng = random.Random(0)
    hits = sum(median_interval([rng.lognormvariate(0, 1) for _ in range(51)]).contains(1.0)
               for _ in range(400))
    assert 0.92 <= hits / 400 <= 0.99


def test_ratio_interval_excludes_one_only_when_the_medians_differ_beyond_noise():
    fast, slow = wilson_like(1.0, 0.05), wilson_like(2.0, 0.1)
    ratio = ratio_interval(2.0, slow, 1.0, fast)
    assert ratio.low > 1 and ratio.contains(2.0)
    noisy = ratio_interval(1.05, wilson_like(1.05, 0.3), 1.0, wilson_like(1.0, 0.3))
    assert noisy.contains(1.0)


def wilson_like(median: float, half: float):
    from edgeconv.stats import Interval

    return Interval(median - half, median + half, 0.95, "given")


def test_proportion_and_the_record_forms():
    from edgeconv.records import VERSUS_FLOAT
    from edgeconv.stats import pair, proportion

    share, interval = proportion([True] * 90 + [False] * 10)
    assert share == 0.9 and interval == [wilson(90, 100).low, wilson(90, 100).high]
    assert pair(None) is None
    with pytest.raises(ValueError):
        proportion([])
    record = paired_counts(85, 5, 2, 8).to_record()
    VERSUS_FLOAT.check(record, "versus_float")  # what manifest.json's reader accepts
    assert (record["n"], record["reference_only"], record["candidate_only"]) == (100, 5, 2)
    assert record["drop_interval"] == pair(paired_counts(85, 5, 2, 8).drop_interval)
    assert record["mcnemar_p"] == mcnemar_exact(5, 2) and record["confidence"] == 0.95
    assert record["method"].startswith("Newcombe") and "McNemar" in record["method"]
