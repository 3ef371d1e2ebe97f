"""CI gates: budgets from a policy file checked against exports and bench results.

`run_gate(policy, paths)` -> `GateReport` (one `Check` per rule, selected artifact or bench
row, and budget). Standard library only: a CI job gates without any runtime. See
docs/gate.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.gate.evaluate import Check, evaluate
from edgeconv.gate.evidence import load_evidence
from edgeconv.gate.policy import load_policy


@dataclass(frozen=True)
class GateReport:
    policy: str
    inputs: list[str]
    checks: list[Check]
    notes: list[str]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        # failed counts every check that did not pass, the undecided ones among them
        return {"passed": self.passed, "policy": self.policy, "inputs": self.inputs,
                "checks": [c.to_dict() for c in self.checks],
                "failed": sum(not c.passed for c in self.checks),
                "undecided": sum(c.undecided for c in self.checks), "notes": self.notes}


def run_gate(policy: str | Path, paths: list[Path]) -> GateReport:
    """Check every rule of the policy file against the runs and results.json files given.

    Raises EdgeconvError for a bad policy or input (exit 2); a broken budget is a failed
    Check, not an exception.
    """
    parsed = load_policy(policy)  # first: a bad policy fails before any input is read
    runs, study_notes = _studies_to_runs(paths)
    evidence = load_evidence(runs)
    evidence.notes[:0] = study_notes
    return GateReport(policy=str(policy), inputs=[str(p) for p in paths],
                      checks=evaluate(parsed, evidence), notes=evidence.notes)


def _studies_to_runs(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """An `edgeconv fit` study folder stands for its recommended model's trial folder (an
    ordinary run folder); a note names it. A study without a recommendation: one line."""
    from edgeconv.fit.record import is_study, load_study

    runs: list[Path] = []
    notes: list[str] = []
    for path in paths:
        if not is_study(path):
            runs.append(path)
            continue
        doc = load_study(path)
        run, point = _winner_run(Path(path), doc)
        runs.append(run)
        # the folder holds the trial's every file (each precision exported): the policy's
        # selectors pick among them, as for any run
        notes.append(f"{path}: gating study {doc['name']}'s recommended model,"
                     f" {point['label']}, {point['precision']} ({run})")
    return runs, notes


def _winner_run(path: Path, doc: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    from edgeconv.errors import EdgeconvError
    from edgeconv.fit.front import study_answer
    from edgeconv.fit.record import inside

    folder = path if path.is_dir() else path.parent
    point = next((p for p in doc["finalists"] if p["id"] == doc["winner"]), None)
    if point is None:
        raise EdgeconvError(f"{path}: study {doc['name']} ({doc['status']}) recommends no"
                            f" model: {study_answer(doc)}; nothing to gate"[:500])
    trial = doc["trials"].get(point["candidate"])
    relative = trial["dir"] if trial else str(Path(point.get("file") or point.get(
        "results") or "").parent)
    if relative in ("", "."):
        raise EdgeconvError(f"{path}: study {doc['name']} records no trial folder for its"
                            f" recommended model {point['id']}")
    return inside(folder, relative, f"the trial folder of {point['id']}"), point


__all__ = ["Check", "GateReport", "run_gate"]
