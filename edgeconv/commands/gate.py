"""`edgeconv gate`: exit 0 when every budget of the policy holds, 1 when one breaks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import JsonFlag


def gate(
    paths: Annotated[list[Path], typer.Argument(
        metavar="RUN_OR_RESULTS...",
        help="Run/export directories (manifest.json, and results.json if there) and"
             " results.json files from `edgeconv bench --out`; an `edgeconv fit` study"
             " folder stands for its recommended model's trial folder.",
        show_default=False)],
    policy: Annotated[Path, typer.Option(help="The policy file: TOML rules (docs/gate.md).")
                      ] = Path("gate.toml"),
    junit: Annotated[Path | None, typer.Option(
        help="Write JUnit XML here: one testcase per check.", show_default=False)] = None,
    markdown: Annotated[Path | None, typer.Option(
        help="Write a Markdown summary here (e.g. \"$GITHUB_STEP_SUMMARY\").",
        show_default=False)] = None,
    json: JsonFlag = False,
) -> None:
    """Check exports and bench results against a policy's budgets; exit 1 if one breaks."""
    from edgeconv import _atomic
    from edgeconv.gate import report as gate_report
    from edgeconv.gate import run_gate

    # Before anything is judged: a report path that cannot be written fails now, not after.
    if junit is not None:
        _atomic.check_output_file(junit, "--junit")
    if markdown is not None:
        _atomic.check_output_file(markdown, "--markdown")
    report = run_gate(policy, paths)
    if junit is not None:
        gate_report.write_junit(report, junit)
    if markdown is not None:
        gate_report.write_markdown(report, markdown)
    if json:
        render.print_json(report.to_dict())
    else:
        console = render.stdout_console()
        console.print(render.table(f"gate: {policy}", gate_report.COLUMNS,
                                   gate_report.rows(report), right={"measured", "limit"}))
        console.print(gate_report.summary(report), highlight=False, markup=False)
        for note in report.notes:
            render.stderr_console().print(f"note: {note}", highlight=False, soft_wrap=True,
                                          markup=False)
    if not report.passed:
        raise typer.Exit(1)
