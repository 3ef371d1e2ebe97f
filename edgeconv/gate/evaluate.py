"""Rules against evidence: one `Check` per (rule, selected artifact or bench row, budget).

A figure that is missing (no accuracy recorded, a row that did not run) fails its check with
the reason; a rule that selects nothing is an error (exit 2) saying which selector found
nothing. Nothing passes for lack of a number.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.gate.evidence import Evidence, Exported, Row
from edgeconv.gate.policy import BUDGETS, Budget, Policy, Rule


@dataclass(frozen=True)
class Check:
    rule: str
    subject: str  # the artifact ("dir/file") or bench row ("dir/file @ target (runtime xN)")
    budget: str  # the policy key, e.g. min_agreement
    limit: Any  # the budget's value: a number, bytes, true, or a target pattern
    value: Any  # what was measured; None when it is missing
    passed: bool
    reason: str | None = None  # why it failed beyond the numbers, or a caveat on a pass

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(policy: Policy, evidence: Evidence) -> list[Check]:
    checks: list[Check] = []
    for rule in policy.rules:
        pool: list[Exported] | list[Row] = evidence.rows if rule.on_rows else evidence.artifacts
        subjects = [s for s in pool if _selected(rule, s)]
        if not subjects:
            # The contract: a rule that selects nothing is an error, never a pass.
            raise EdgeconvError(f"rule '{rule.name}' {_nothing(rule, pool)}")
        for subject in subjects:
            for key, limit in rule.budgets.items():
                if key == "must_run_on":
                    checks.extend(_runs_on(rule, subject, pattern, evidence.rows)
                                  for pattern in limit)
                else:
                    checks.append(_check(rule, subject, BUDGETS[key], limit))
    return checks


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


def _check(rule: Rule, subject: Exported | Row, budget: Budget, limit: Any) -> Check:
    value, missing = _figure(subject, budget.figure)
    if missing is not None:
        return Check(rule.name, subject.label, budget.key, limit, None, False, missing)
    passed = {">=": lambda: value >= limit, "<=": lambda: value <= limit,
              "is": lambda: value is True}[budget.op]()
    caveat = None
    if isinstance(subject, Row) and budget.unit == "ms" and subject.row.timed_on == "host":
        caveat = "host time of TFLite Micro on the bench machine, not board time"
    return Check(rule.name, subject.label, budget.key, limit, value, passed, caveat)


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


def _measured(subject: Exported | Row, figure: str) -> Any:
    """A figure as recorded: an artifact's from its manifest, a row's from results.json."""
    if isinstance(subject, Exported):
        return getattr(subject, figure)
    if figure in _PERCENTILES:
        latency = subject.row.latency_ms
        return getattr(latency, _PERCENTILES[figure]) if latency else None
    return getattr(subject.row, figure)


def _why_missing(subject: Exported | Row, figure: str) -> str:
    if isinstance(subject, Exported) and subject.model is None:
        return " (a bench row; pass the export directory for the manifest's figures)"
    if isinstance(subject, Row) and figure in ("arena_bytes", "flash_bytes", "fits"):
        return " (only bench rows on MCU targets have it)"
    return ""


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
