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
    evidence = load_evidence(paths)
    return GateReport(policy=str(policy), inputs=[str(p) for p in paths],
                      checks=evaluate(parsed, evidence), notes=evidence.notes)


__all__ = ["Check", "GateReport", "run_gate"]
