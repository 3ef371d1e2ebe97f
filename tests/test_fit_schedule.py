"""Successive halving's decisions (edgeconv.fit.schedule): Optuna's ASHA pruner, told the
rung results in the order trials entered the rung, whatever order they arrived in."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.fit.schedule import Halving, rung_epochs

pytest.importorskip("optuna")


def test_rungs_are_geometric_and_end_at_the_maximum():
    assert rung_epochs(1, 9, 3) == [1, 3, 9]
    assert rung_epochs(1, 10, 3) == [1, 3, 9, 10]
    assert rung_epochs(2, 2, 2) == [2]
    assert rung_epochs(1, 2, 2) == [1, 2]


@pytest.mark.parametrize("args, flag", [((0, 9, 3), "--min-epochs"), ((5, 3, 3), "--min-epochs"),
                                        ((1, 9, 1), "--reduction-factor")])
def test_bad_rungs_are_one_line(args, flag):
    with pytest.raises(EdgeconvError, match=flag):
        rung_epochs(*args)


def _run(order: list[int], scores: list[float], epochs=(1, 3, 9)) -> list[list[str]]:
    keys = [f"t{i}" for i in range(len(scores))]
    halving = Halving(keys, list(epochs), 3)
    for i in order:  # rung 0 results arrive in `order`
        halving.tell(keys[i], 0, scores[i])
        halving.decide()
    for rung in range(1, len(epochs)):
        for key in reversed(list(halving.entrants[rung])):  # later rungs: reversed arrival
            halving.tell(key, rung, scores[keys.index(key)] + rung)
            halving.decide()
    return halving.entrants


def test_the_same_scores_give_the_same_promotions_in_any_arrival_order():
    scores = [0.5, 0.9, 0.7, 0.6, 0.8, 0.3, 0.95, 0.4, 0.2]
    first = _run(list(range(9)), scores)
    rng = random.Random(0)
    for _ in range(5):
        order = list(range(9))
        rng.shuffle(order)
        assert _run(order, scores) == first
    # ASHA told in entrant order: the first is promoted (nothing to compare with yet), then
    # each one in the top third of the rung so far
    assert first[1] == ["t0", "t1", "t6"]
    # with three at rung 1 the same rule promotes each new best: all three, here
    assert first[2] == ["t0", "t1", "t6"]


def test_the_best_of_a_rung_always_goes_on():
    for scores in itertools.permutations([0.1, 0.2, 0.3, 0.4]):
        entrants = _run(list(range(4)), list(scores), epochs=(1, 3))
        assert f"t{scores.index(0.4)}" in entrants[1]


def test_a_failed_trial_is_never_promoted():
    halving = Halving(["a", "b", "c"], [1, 3], 3)
    for key, score in (("a", math.nan), ("b", 0.5), ("c", 0.7)):
        halving.tell(key, 0, score)
    decisions = {d.key: d.promoted for d in halving.decide()}
    assert decisions["a"] is False
    assert "a" not in halving.entrants[1]


def test_waiting_and_survivors():
    halving = Halving(["a", "b", "c", "d"], [1, 3], 3)
    assert halving.waiting() == [("a", 0), ("b", 0), ("c", 0), ("d", 0)]
    assert halving.survivors() == (-1, [])
    for key, score in (("a", 0.5), ("b", 0.9), ("c", 0.1), ("d", 0.95)):
        halving.tell(key, 0, score)
    halving.decide()
    assert halving.entrants[1] == ["a", "b", "d"]
    assert halving.waiting() == [("a", 1), ("b", 1), ("d", 1)]
    # stopped by a budget before any result at rung 1: the promoted, by their rung-0 score
    assert halving.survivors() == (1, ["d", "b", "a"])
    halving.tell("a", 1, 0.6)  # one finished: it comes first, the others after it
    assert halving.survivors() == (1, ["a", "d", "b"])
