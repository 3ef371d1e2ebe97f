"""Successive halving: which trials go on to the next, longer rung.

The decisions are Optuna's asynchronous successive halving (ASHA: `SuccessiveHalvingPruner`,
driven through its ask-and-tell interface), not a hand-written rule. One thing is ours: the
order in which results are told. ASHA decides each trial when its rung result arrives, so the
order of arrival matters; here a trial is decided only once every trial before it (in the
order it entered the rung) has been decided. The same scores then give the same promotions
whether two local processes or twenty Ray workers produced them, in whatever order they
finished, and a resumed study replays the decisions it had taken.

What ASHA does with that order: the first trial told at a rung is promoted (there is nothing
to compare it with yet), and each later one when it is in the top 1/eta of the rung so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgeconv.errors import EdgeconvError


def rung_epochs(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """The rungs' training budgets in epochs: min_epochs * eta**k up to max_epochs, and
    max_epochs itself as the last rung when the series does not land on it."""
    if min_epochs < 1 or max_epochs < min_epochs:
        raise EdgeconvError(f"--min-epochs must be >= 1 and <= --max-epochs; got"
                            f" {min_epochs} and {max_epochs}")
    if eta < 2:
        raise EdgeconvError(f"--reduction-factor must be >= 2; got {eta}")
    epochs = [min_epochs]
    while epochs[-1] * eta <= max_epochs:
        epochs.append(epochs[-1] * eta)
    if epochs[-1] != max_epochs:
        epochs.append(max_epochs)
    return epochs


@dataclass
class Decision:
    key: str
    rung: int  # the rung whose result was decided
    promoted: bool  # goes on to rung + 1 (never true at the last rung)


@dataclass
class Halving:
    """The rungs of one study: who entered each, their scores, and ASHA's decisions."""

    keys: list[str]  # every trial, in the order they enter the first rung
    epochs: list[int]  # rung_epochs(...)
    eta: int
    entrants: list[list[str]] = field(default_factory=list)
    scores: list[dict[str, float]] = field(default_factory=list)
    decided: list[int] = field(default_factory=list)  # per rung: entrants decided so far

    def __post_init__(self) -> None:
        from edgeconv._lazy import require

        optuna = require("optuna", extra="fit")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=self.epochs[0], reduction_factor=self.eta, min_early_stopping_rate=0)
        self._study = optuna.create_study(direction="maximize", pruner=pruner,
                                          sampler=optuna.samplers.RandomSampler(seed=0))
        self._trials = {key: self._study.ask() for key in self.keys}
        self.entrants = [list(self.keys)] + [[] for _ in self.epochs[1:]]
        self.scores = [{} for _ in self.epochs]
        self.decided = [0 for _ in self.epochs]

    def tell(self, key: str, rung: int, score: float) -> None:
        """A trial's result at a rung: its best validation accuracy (NaN: it failed)."""
        if key not in self.entrants[rung]:
            raise ValueError(f"{key} did not enter rung {rung}")  # a programming error
        self.scores[rung][key] = score

    def decide(self) -> list[Decision]:
        """Every decision that the results told so far allow, in the deterministic order."""
        made: list[Decision] = []
        for rung in range(len(self.epochs)):
            entrants = self.entrants[rung]
            while self.decided[rung] < len(entrants) and entrants[self.decided[rung]] in \
                    self.scores[rung]:
                key = entrants[self.decided[rung]]
                self.decided[rung] += 1
                made.append(self._decide(key, rung))
        return made

    def _decide(self, key: str, rung: int) -> Decision:
        trial = self._trials[key]
        score = self.scores[rung][key]
        trial.report(score, step=self.epochs[rung])
        last = rung == len(self.epochs) - 1
        # At the last rung there is no next one: nothing to ask the pruner.
        promoted = not last and not math.isnan(score) and not trial.should_prune()
        if promoted:
            self.entrants[rung + 1].append(key)
        return Decision(key, rung, promoted)

    def waiting(self) -> list[tuple[str, int]]:
        """(key, rung) pairs that entered a rung and have no result there yet."""
        return [(key, rung) for rung, entrants in enumerate(self.entrants)
                for key in entrants if key not in self.scores[rung]]

    def survivors(self) -> tuple[int, list[str]]:
        """The trials halving has kept: those that entered the highest rung any trial
        entered; the ones with a result there first (best first), then those a time budget
        stopped before their result there, by their result one rung below. (-1, []) before
        any result."""
        for rung in reversed(range(len(self.epochs))):
            here = self.scores[rung]
            done = [k for k in self.entrants[rung] if k in here and not math.isnan(here[k])]
            below = self.scores[rung - 1] if rung else {}
            undone = [k for k in self.entrants[rung] if k not in here and k in below
                      and not math.isnan(below[k])]
            if done or undone:
                return rung, (sorted(done, key=lambda k: -here[k])
                              + sorted(undone, key=lambda k: -below[k]))
        return -1, []
