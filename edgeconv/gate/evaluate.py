"""Rules against evidence: one `Check` per (rule, selected artifact or bench row, budget).

A figure that is missing (no accuracy recorded, a row that did not run) fails its check with
the reason; a rule that selects nothing is an error (exit 2) saying which selector found
nothing. Nothing passes for lack of a number.

Under `at_confidence` a budget with an interval is checked on the interval's pessimistic end
(the lower bound of an accuracy, the upper bound of a drop or a p50): an interval that
straddles the budget fails. A check that cannot be decided at the asked confidence (no
interval recorded, too few images for the rule's `min_eval_samples`) is UNDECIDED, its own
result, and does not pass either.

Output parity budgets (min_cosine, min_snr_db, max_rmse, max_abs_diff) judge every output a
manifest recorded for a file against the float model's; the worst output decides and is
named. A file with no parity recorded is UNDECIDED (the float reference itself passes, as
exact). A model exported without labels has no accuracy: the accuracy budgets skip its files
with a note, and a rule left with nothing else to judge is an error.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import asdict, dataclass
from typing import Any

from edgeconv import stats
from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.gate.evidence import Evidence, Exported, Row
from edgeconv.gate.policy import (
    BUDGETS, LATENCY, ON_IMAGES, ON_LABELS, PARITY, RECORDED_CONFIDENCE, Budget, Policy, Rule,
)
from edgeconv.quant.output_parity import worst

PASS, FAIL, UNDECIDED = "PASS", "FAIL", "UNDECIDED"


@dataclass(frozen=True)
class Check:
    rule: str
    subject: str  # the artifact ("dir/file") or bench row ("dir/file @ target (runtime xN)")
    budget: str  # the policy key, e.g. min_agreement
    limit: Any  # the budget's value: a number, bytes, true, or a target pattern
    value: Any  # what was judged (the bound under at_confidence); None when missing
    passed: bool
    reason: str | None = None  # why it failed beyond the numbers, or a caveat on a pass
    undecided: bool = False  # could not be decided at the asked confidence (never passes)
    # Under at_confidence, for a budget with an interval: which end was judged, the point
    # estimate, the interval [low, high] (in the budget's unit), its confidence and method,
    # and the images it rests on.
    bound: str | None = None  # "lower" | "upper"
    point: Any = None
    interval: list[float] | None = None
    confidence: float | None = None
    method: str | None = None
    samples: int | None = None
    # A parity budget: the output of the file that decided it (the worst one)
    output: str | None = None

    @property
    def result(self) -> str:
        return UNDECIDED if self.undecided else (PASS if self.passed else FAIL)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result}


@dataclass(frozen=True)
class Bound:
    """A budget's figure as an interval at the rule's confidence."""

    value: float  # the end judged, in the budget's unit
    point: float
    interval: tuple[float, float]
    confidence: float
    method: str
    samples: int | None


def evaluate(policy: Policy, evidence: Evidence) -> list[Check]:
    checks: list[Check] = []
    for rule in policy.rules:
        pool: list[Exported] | list[Row] = evidence.rows if rule.on_rows else evidence.artifacts
        subjects = [s for s in pool if _selected(rule, s)]
        if not subjects:
            # The contract: a rule that selects nothing is an error, never a pass.
            raise EdgeconvError(f"rule '{rule.name}' {_nothing(rule, pool)}")
        emulated = [s for s in subjects if isinstance(s, Row) and s.row.timed_on == "emulated"]
        skipped = {id(s) for s in emulated}
        timed = [k for k in rule.budgets if k in LATENCY]
        if timed and emulated:
            # An emulated board's latency (qemu user mode) is not a board time: never judged.
            if len(emulated) == len(subjects):
                raise EdgeconvError(
                    f"rule '{rule.name}' judges latency ({', '.join(timed)}) but selects only"
                    f" rows timed on an emulated board ({len(emulated)}), whose times are not"
                    " board times; bench on the board itself, or drop the latency budget")
            evidence.notes.append(
                f"rule '{rule.name}': {', '.join(timed)} skipped for {len(emulated)} row(s)"
                " timed on an emulated board (not a board time): "
                + ", ".join(s.label for s in emulated[:3]) + (" ..." if len(emulated) > 3 else ""))
        unlabelled = _without_labels(rule, subjects, evidence)
        for subject in subjects:
            for key, limit in rule.budgets.items():
                if key == "must_run_on":
                    checks.extend(_runs_on(rule, subject, pattern, evidence.rows)
                                  for pattern in limit)
                elif key in LATENCY and id(subject) in skipped:
                    continue
                elif key in unlabelled.get(id(subject), ()):
                    continue
                elif key in PARITY:
                    checks.append(_parity(rule, subject, BUDGETS[key], limit))
                else:
                    checks.append(_check(rule, subject, BUDGETS[key], limit))
    return checks


def _without_labels(rule: Rule, subjects: list[Exported] | list[Row], evidence: Evidence
                    ) -> dict[int, tuple[str, ...]]:
    """The accuracy budgets that do not apply, by subject: a model exported without labels
    has no accuracy (nor, unless recorded, agreement), so they skip it with a note. A rule
    left with nothing to judge (only such budgets, selecting only such files) is an error;
    one with other budgets (parity, size) judges those."""
    keys = [k for k in rule.budgets if k in ON_LABELS]
    skips: dict[int, tuple[str, ...]] = {}
    for subject in subjects:
        artifact = subject.artifact if isinstance(subject, Row) else subject
        if artifact.labelled:
            continue
        # agreement may still be recorded for a model without labels: then it is judged
        skips[id(subject)] = tuple(k for k in keys if k != "min_agreement"
                                   or _own(subject, "agreement") is None)
    for key in keys:
        skipped = [s for s in subjects if key in skips.get(id(s), ())]
        if not skipped:
            continue
        names = ", ".join(s.label for s in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        missing = "agreement" if key == "min_agreement" else "accuracy"
        if len(skipped) == len(subjects) and all(k in ON_LABELS for k in rule.budgets):
            raise EdgeconvError(
                f"rule '{rule.name}' judges {key} but selects only files of models exported"
                f" without labels ({len(skipped)}: {names}), which have no {missing};"
                " judge them on output parity (min_cosine, min_snr_db, max_rmse,"
                " max_abs_diff), or export with labelled data (--data)")
        evidence.notes.append(f"rule '{rule.name}': {key} not applicable to {len(skipped)}"
                              f" file(s) of models exported without labels (no {missing}):"
                              f" {names}")
    return skips


def _fields(subject: Exported | Row) -> dict[str, str | None]:
    """What the selectors match against."""
    artifact = subject.artifact if isinstance(subject, Row) else subject
    fields = {"model": artifact.model, "artifact": artifact.file, "format": artifact.format,
              "precision": artifact.precision}
    if isinstance(subject, Row):
        row = subject.row
        fields |= {"target": row.target, "runtime": row.runtime,
                   "threads": None if row.threads is None else str(row.threads)}
    return fields


def _matches(value: str | None, patterns: tuple[str, ...]) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _selected(rule: Rule, subject: Exported | Row) -> bool:
    fields = _fields(subject)
    return all(_matches(fields[key], patterns) for key, patterns in rule.selectors.items())


def _nothing(rule: Rule, pool: list[Exported] | list[Row]) -> str:
    kind = "bench row" if rule.on_rows else "artifact"
    if not pool:
        given = "no results.json was given" if rule.on_rows else "no artifacts were given"
        return f"selects nothing: {given}"
    for key, patterns in rule.selectors.items():
        values = sorted({v for s in pool if (v := _fields(s)[key]) is not None})
        if not any(_matches(v, patterns) for v in values):
            hint = did_you_mean(patterns[0], values) if len(patterns) == 1 else ""
            return (f"selects nothing: no {kind} has {key} {' or '.join(patterns)}"
                    + (hint or f" (given: {', '.join(values) or 'none'})"))
    wanted = ", ".join(f"{k}={'|'.join(p)}" for k, p in rule.selectors.items())
    return f"selects nothing: no {kind} matches all of {wanted} together"


def _compare(op: str, value: Any, limit: Any) -> bool:
    return {">=": lambda: value >= limit, "<=": lambda: value <= limit,
            "is": lambda: value is True}[op]()


def _check(rule: Rule, subject: Exported | Row, budget: Budget, limit: Any) -> Check:
    value, missing = _figure(subject, budget.figure)
    if missing is not None:
        if budget.key == "min_eval_samples" and _ran(subject):
            # how sure a figure is was not recorded: undecided, like a missing interval
            return _undecided(rule, subject, budget, limit, None, missing)
        return Check(rule.name, subject.label, budget.key, limit, None, False, missing)
    notes = []
    if isinstance(subject, Row) and budget.unit == "ms" and subject.row.timed_on == "host":
        notes.append("host time of TFLite Micro on the bench machine, not board time")
    too_few = _too_few_images(rule, subject) if budget.key in ON_IMAGES else None
    if too_few is not None:
        return _undecided(rule, subject, budget, limit, value, too_few)
    if rule.confidence is None or budget.bound is None:
        if rule.confidence is not None and not budget.exact:
            # p90, p99 in an at_confidence rule: noisy, but no interval of them is recorded
            notes.append(f"no interval of {budget.figure} is recorded: judged on the point")
        return Check(rule.name, subject.label, budget.key, limit, value,
                     _compare(budget.op, value, limit), "; ".join(notes) or None)
    bound = _bound(subject, budget, rule.confidence)
    if isinstance(bound, str):
        return _undecided(rule, subject, budget, limit, value, bound)
    return Check(rule.name, subject.label, budget.key, limit, bound.value,
                 _compare(budget.op, bound.value, limit), "; ".join(notes) or None,
                 bound=budget.bound, point=bound.point, interval=list(bound.interval),
                 confidence=bound.confidence, method=bound.method, samples=bound.samples)


def _too_few_images(rule: Rule, subject: Exported | Row) -> str | None:
    """Why a figure measured on images cannot be judged under the rule's min_eval_samples
    (too few images, by the rule's own demand), or None."""
    wanted = rule.budgets.get("min_eval_samples")
    if wanted is None:
        return None
    samples = _own(subject, "eval_samples")
    if samples is None:
        return f"no image count recorded in {subject.source}: {_redo(subject)}"
    if samples < wanted:
        return (f"measured on {samples:,} images, fewer than the rule's min_eval_samples"
                f" {wanted:,}")
    return None


def _undecided(rule: Rule, subject: Exported | Row, budget: Budget, limit: Any, point: Any,
               reason: str) -> Check:
    return Check(rule.name, subject.label, budget.key, limit, None, False, reason,
                 undecided=True, bound=budget.bound if rule.confidence else None, point=point,
                 confidence=rule.confidence)


def _ran(subject: Exported | Row) -> bool:
    return not isinstance(subject, Row) or subject.row.ok


def _own(subject: Exported | Row, name: str) -> Any:
    """A figure of the subject itself: a row's from results.json, an artifact's from its
    manifest."""
    return getattr(subject.row if isinstance(subject, Row) else subject, name, None)


def _redo(subject: Exported | Row) -> str:
    return ("re-bench with this edgeconv" if isinstance(subject, Row)
            else "re-export with this edgeconv")


def _bound(subject: Exported | Row, budget: Budget, confidence: float) -> Bound | str:
    """The budget's figure as an interval at `confidence`, or why it cannot be had."""
    if budget.figure in ("accuracy", "agreement"):
        return _proportion(subject, budget, confidence)
    if budget.figure == "accuracy_drop":
        return _drop(subject, confidence)
    if budget.figure == "p50_ms":
        return _p50(subject)
    raise AssertionError(f"no interval for {budget.figure}")  # policy.BUDGETS says which


def _end(budget: Budget, low: float, high: float) -> float:
    return low if budget.bound == "lower" else high


def _proportion(subject: Exported | Row, budget: Budget, confidence: float) -> Bound | str:
    """An accuracy or agreement: the recorded 95% Wilson interval, or Wilson recomputed from
    the image count at another confidence (the count of right images is accuracy x n)."""
    figure = budget.figure
    point = _own(subject, figure)
    recorded = _own(subject, f"{figure}_interval")
    samples = _own(subject, "eval_samples")
    if recorded is not None and math.isclose(confidence, RECORDED_CONFIDENCE):
        low, high = recorded
        return Bound(_end(budget, low, high), point, (low, high), RECORDED_CONFIDENCE,
                     "Wilson score, as recorded", samples)
    if samples is None or samples <= 0:
        if recorded is None:
            return (f"no {figure} interval recorded in {subject.source}: {_redo(subject)}")
        return (f"only the 95% {figure} interval is recorded in {subject.source}, with no"
                f" image count to recompute it at {confidence:g}: {_redo(subject)}")
    right = round(point * samples)
    if abs(right - point * samples) > 1e-6 * samples:
        return f"{figure} {point!r} is not a whole number of images out of {samples:,}"
    interval = stats.wilson(right, samples, confidence)
    return Bound(_end(budget, interval.low, interval.high), point,
                 (interval.low, interval.high), confidence,
                 f"Wilson score, recomputed from {right:,} of {samples:,}", samples)


def _drop(subject: Exported | Row, confidence: float) -> Bound | str:
    """float accuracy - this file's, in points, on the same images: the recorded paired
    interval, or recomputed from the paired counts at another confidence."""
    if isinstance(subject, Row):  # the policy refuses this; a guard, not a path
        return "a bench row records no paired comparison with the float model"
    versus = subject.versus_float
    if versus is None:
        if subject.format == "keras":  # the float model itself: no drop, exactly
            return Bound(0.0, 0.0, (0.0, 0.0), confidence, "the float model itself",
                         subject.eval_samples)
        return (f"no paired comparison with the float model (versus_float) recorded in"
                f" {subject.source}: {_redo(subject)}")
    recorded = versus.get("confidence")
    recorded = RECORDED_CONFIDENCE if recorded is None else recorded
    n = versus["n"]
    if math.isclose(confidence, recorded):
        low, high = versus["drop_interval"]
        return Bound(100 * high, 100 * versus["drop"], (100 * low, 100 * high), recorded,
                     (versus.get("method") or "Newcombe paired") + ", as recorded", n)
    both, only_ref, only_cand = (versus.get(k) for k in
                                 ("both_right", "reference_only", "candidate_only"))
    if both is None:
        return (f"versus_float in {subject.source} has no both_right count, which the paired"
                f" interval needs to be recomputed at {confidence:g}: {_redo(subject)}")
    neither = n - both - only_ref - only_cand
    if neither < 0:
        return f"versus_float in {subject.source} has counts that add up to more than n = {n:,}"
    paired = stats.paired_counts(both, only_ref, only_cand, neither, confidence)
    low, high = paired.drop_interval.low, paired.drop_interval.high
    return Bound(100 * high, 100 * paired.drop, (100 * low, 100 * high), confidence,
                 f"{paired.drop_interval.method}, recomputed from the counts", n)


# A p50 interval needs this many timed runs (stats.median_interval: none below it at 95%).
_MIN_RUNS = 6


def _p50(subject: Exported | Row) -> Bound | str:
    """The recorded 95% order-statistics interval of the p50 (policy refuses another
    confidence: it cannot be recomputed without the timed runs)."""
    row = subject.row if isinstance(subject, Row) else None
    latency = row.latency_ms if row else None
    if latency is None or latency.p50_low is None or latency.p50_high is None:
        runs = row.runs if row else None
        if runs is not None and runs < _MIN_RUNS:
            return (f"no p50 interval: {runs} timed run(s), fewer than the {_MIN_RUNS} an"
                    f" interval needs; re-bench with --runs {_MIN_RUNS} or more")
        return f"no p50 interval recorded in {subject.source}: re-bench with this edgeconv"
    return Bound(latency.p50_high, latency.p50, (latency.p50_low, latency.p50_high),
                 RECORDED_CONFIDENCE, "order statistics, as recorded", row.runs)


def _figure(subject: Exported | Row, figure: str) -> tuple[Any, str | None]:
    """The measured value, or None and why it is missing."""
    if isinstance(subject, Row) and not subject.row.ok:
        row = subject.row
        return None, f"did not run: {row.status}" + (f": {row.error}" if row.error else "")
    if figure == "accuracy_drop":
        accuracy, missing = _figure(subject, "accuracy")
        if missing is not None:
            return None, missing
        reference = subject.artifact.float_accuracy if isinstance(subject, Row) \
            else subject.float_accuracy
        if reference is None:
            return None, "no float accuracy to compare with: its manifest.json was not given"
        return 100.0 * (reference - accuracy), None
    value = _measured(subject, figure)
    if value is None:
        return None, f"no {figure} recorded in {subject.source}{_why_missing(subject, figure)}"
    if figure == "fits" and not isinstance(value, bool):
        return None, f"fits is {value!r} in {subject.source}, not true/false"
    if figure != "fits" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return None, f"{figure} is {value!r} in {subject.source}, not a number"
    return value, None


_PERCENTILES = {"p50_ms": "p50", "p90_ms": "p90", "p99_ms": "p99"}  # budget figure -> Latency
_NPU_FIGURES = {"npu_estimate_ms": "latency_ms", "cpu_fallback_ops": "cpu_ops"}  # -> row.npu


def _measured(subject: Exported | Row, figure: str) -> Any:
    """A figure as recorded: an artifact's from its manifest, a row's from results.json."""
    if isinstance(subject, Exported):
        return getattr(subject, figure)
    if figure in _PERCENTILES:
        latency = subject.row.latency_ms
        return getattr(latency, _PERCENTILES[figure]) if latency else None
    if figure in _NPU_FIGURES:  # an Ethos-U row's, from its Vela record
        npu = getattr(subject.row, "npu", None)
        return npu.get(_NPU_FIGURES[figure]) if npu else None
    return getattr(subject.row, figure)


def _why_missing(subject: Exported | Row, figure: str) -> str:
    if isinstance(subject, Row) and figure in _NPU_FIGURES:
        return (" (not an Ethos-U row: select runtime \"ethos-u\" on a target with [npu],"
                " edgeconv.bench.npu)")
    if isinstance(subject, Exported) and subject.model is None:
        return " (a bench row; pass the export directory for the manifest's figures)"
    if isinstance(subject, Row) and figure in ("arena_bytes", "flash_bytes", "fits"):
        return " (only bench rows on MCU targets have it)"
    if figure == "eval_samples":
        return f": {_redo(subject)}"
    return ""


# --- output parity: every output of the file, the worst decides ------------------------------


def _parity(rule: Rule, subject: Exported, budget: Budget, limit: Any) -> Check:
    """A parity budget (min_cosine, min_snr_db, max_rmse, max_abs_diff) on every output the
    manifest recorded for the file; the worst output decides, and the check names it."""
    entries = subject.output_parity
    if entries is None:
        if subject.parity_reference:  # what the others are compared with: exact
            return Check(rule.name, subject.label, budget.key, limit, _PERFECT[budget.figure],
                         True, "the float reference itself (the other files are compared"
                         " with its outputs)")
        if subject.model is None:  # known only from a bench row
            return _undecided(rule, subject, budget, limit, None,
                              f"no output parity: a file known only from {subject.source};"
                              " pass its export directory for the manifest's figures")
        why = ("no output parity recorded for this file, though other files of its manifest"
               " have it" if subject.parity_elsewhere else
               "no output parity recorded (a manifest written before edgeconv measured it,"
               " or a file measured as is, with no float model to compare with)")
        return _undecided(rule, subject, budget, limit, None,
                          f"{why}: {subject.source}; re-export with this edgeconv")
    too_few = _too_few_images(rule, subject)
    if too_few is not None:
        return _undecided(rule, subject, budget, limit, None, too_few)
    entry, value, why = worst(entries, budget.figure)
    name = str(entry.get("output"))
    where = f"output '{name}'" + (f" (worst of {len(entries)} outputs)"
                                  if len(entries) > 1 else "")
    if value is None:  # NaN or infinite outputs: no figure, and the check fails on it
        return Check(rule.name, subject.label, budget.key, limit, None, False,
                     f"{where}: {why}", output=name)
    passed = _compare(budget.op, value, limit)
    notes = [where + (f": {why}" if why else "")]
    if rule.confidence is not None:
        notes.append(f"no interval of {budget.figure} is recorded: judged on the point")
    # JSON has no infinity: an SNR of equal outputs (or an all-zero reference) is a string
    shown = value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return Check(rule.name, subject.label, budget.key, limit, shown, passed, "; ".join(notes),
                 output=name)


# The figure of a file compared with itself.
_PERFECT = {"cosine": 1.0, "snr_db": "inf", "rmse": 0.0, "max_abs_diff": 0.0}


def _runs_on(rule: Rule, artifact: Exported, pattern: str, rows: list[Row]) -> Check:
    """must_run_on: some bench row of this very file (sha256) on the target ran (status ok)."""
    mine = [r.row for r in rows if r.artifact.sha256 == artifact.sha256
            and fnmatch.fnmatchcase(r.row.target, pattern)]
    if any(r.ok for r in mine):
        return Check(rule.name, artifact.label, "must_run_on", pattern, "ok", True)
    if not mine:
        return Check(rule.name, artifact.label, "must_run_on", pattern, "not benched", False,
                     f"no results.json row of this file on {pattern} was given")
    worst = mine[0]
    return Check(rule.name, artifact.label, "must_run_on", pattern, worst.status, False,
                 f"{worst.target} ({worst.runtime}): {worst.status}: {worst.error or '?'}")
