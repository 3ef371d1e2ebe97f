"""How checks read to people and CI systems: value and budget as text, JUnit XML, Markdown."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeconv import _atomic, render
from edgeconv.gate.evaluate import Check
from edgeconv.gate.policy import BUDGETS

if TYPE_CHECKING:
    from edgeconv.gate import GateReport


def measured(check: Check) -> str:
    """The figure judged: the bound under at_confidence (the point is in `judged`)."""
    if check.undecided:
        return "undecided"
    if check.value is None:
        return "missing"
    return _text(check.budget, check.value)


def _confidence(value: float) -> str:
    return f"{100 * value:g}%"


def judged(check: Check) -> str:
    """What the check was judged on: the point, or which bound of which interval."""
    point = "" if check.point is None else f"point {_text(check.budget, check.point)}"
    if check.undecided:
        at = f" at {_confidence(check.confidence)}" if check.confidence else ""
        return f"undecided{at}" + (f" ({point})" if point else "")
    if check.bound is None or check.interval is None:
        return "point"
    unit = "runs" if BUDGETS[check.budget].unit == "ms" else "images"
    samples = f"; {check.samples:,} {unit}" if check.samples is not None else ""
    return (f"{check.bound} {_confidence(check.confidence)} bound of"
            f" {_interval(check.budget, check.interval)}; {point}{samples} ({check.method})")


def _interval(key: str, interval: list[float]) -> str:
    low, high = interval
    unit = BUDGETS[key].unit
    if unit == "fraction":
        return f"[{100 * low:.2f}%, {100 * high:.2f}%]"
    if unit == "points":
        return f"[{low:.2f}, {high:.2f}] pt"
    return f"[{low:.3f}, {high:.3f}] ms"


def budget(check: Check) -> str:
    op = BUDGETS[check.budget].op
    if op in ("is", "on"):  # must_fit = true, must_run_on = "target"
        return _text(check.budget, check.limit)
    return f"{op} {_text(check.budget, check.limit)}"


def name(check: Check) -> str:
    """Unique within a rule: what was checked, the budget and its limit (and the bound it
    is judged on under at_confidence)."""
    on = (f" (on the {check.bound} {_confidence(check.confidence)} bound)"
          if check.bound and check.confidence else "")
    return f"{check.subject}: {check.budget} {budget(check)}{on}"


def _text(key: str, value: Any) -> str:
    if isinstance(value, str):  # must_run_on's status; an SNR of "inf" (equal outputs)
        return {"inf": "inf dB (equal)", "-inf": "-inf dB"}.get(value, value)
    unit = BUDGETS[key].unit
    if unit == "fraction":
        return f"{100 * value:.2f}%"
    if unit == "points":
        return f"{value:.2f} pt"
    if unit == "bytes":
        return render.nbytes(value) if value < 1024 else f"{render.nbytes(value)} ({value:,} B)"
    if unit == "ms":
        return f"{value:.3f} ms" if value >= 0.001 or value == 0 else f"{value:.3g} ms"
    if unit == "count":
        return f"{value:,} images"
    if unit == "operators":
        return f"{value:,} operator{'' if value == 1 else 's'}"
    if unit == "cosine":
        return f"{value:.6f}"
    if unit == "db":
        return f"{value:.2f} dB"
    if unit == "output":  # in the output's own unit (logits, pixels...): significant digits
        return f"{value:.4g}"
    return "yes" if value else "no"  # must_fit


def summary(report: GateReport) -> str:
    failed = [c for c in report.checks if not c.passed]
    if not failed:
        return f"gate passed: all {len(report.checks)} checks of {report.policy} hold"
    rules = list(dict.fromkeys(c.rule for c in failed))
    undecided = sum(c.undecided for c in failed)
    return (f"gate FAILED: {len(failed)} of {len(report.checks)} checks fail"
            + (f" ({undecided} undecided)" if undecided else "") + ", in rule(s) "
            + ", ".join(f"'{r}'" for r in rules))


def rows(report: GateReport) -> list[list[str]]:
    """Table rows, as the terminal and the Markdown summary show them."""
    return [[c.result, c.rule, c.subject, c.budget, measured(c), budget(c), judged(c),
             c.reason or ""] for c in report.checks]


COLUMNS = ["result", "rule", "checked", "budget", "measured", "limit", "judged on",
           "reason / note"]


def write_junit(report: GateReport, path: str | Path) -> None:
    """One <testsuite> per rule, one <testcase> per check, a <failure> for each failed one."""
    suites = ET.Element("testsuites", name="edgeconv gate", tests=str(len(report.checks)),
                        failures=str(sum(not c.passed for c in report.checks)), errors="0")
    by_rule: dict[str, list[Check]] = {}
    for check in report.checks:
        by_rule.setdefault(check.rule, []).append(check)
    for rule, checks in by_rule.items():
        suite = ET.SubElement(suites, "testsuite", name=rule, tests=str(len(checks)),
                              failures=str(sum(not c.passed for c in checks)), errors="0",
                              skipped="0")
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname=f"gate.{rule}",
                                 name=name(check), time="0")
            on = judged(check)
            if not check.passed:
                message = (f"{on}: {check.reason}" if check.undecided else
                           f"measured {measured(check)}, budget {budget(check)}"
                           + (f", judged on the {on}" if on != "point" else ""))
                failure = ET.SubElement(case, "failure",
                                        type="undecided" if check.undecided else "budget",
                                        message=message + (f": {check.reason}"
                                                           if check.reason and not
                                                           check.undecided else ""))
                failure.text = f"policy {report.policy}, rule '{rule}'\n{message}\n" \
                               + (check.reason or "")
            elif on != "point":  # a pass on a bound: say which
                ET.SubElement(case, "system-out").text = f"judged on the {on}"
    ET.indent(suites)
    _atomic.write_bytes(path, ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def markdown(report: GateReport) -> str:
    lines = [f"### edgeconv gate: {'passed' if report.passed else 'FAILED'}", "",
             summary(report), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows(report):
        row[0] = {"PASS": "✅ pass", "FAIL": "❌ **FAIL**"}.get(row[0], "❔ **UNDECIDED**")
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    lines += [""] + [f"- note: {_cell(n)}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(report: GateReport, path: str | Path) -> None:
    _atomic.write_bytes(path, markdown(report).encode())


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
