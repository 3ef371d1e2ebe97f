"""`edgeconv report`: tables, plots and a verdict per claim, from results and manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import JsonFlag


def report(
    paths: Annotated[list[Path], typer.Argument(
        metavar="RESULTS_OR_RUNS...",
        help="results.json files, export directories (manifest.json) or folders of them"
             " (e.g. runs/), searched recursively; or `edgeconv fit` study folders"
             " (study.json): their request, pruning, rungs, Pareto front and verdict.",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path("report"),
    arithmetic: Annotated[bool, typer.Option(
        help="Params and MACs from the Keras models (needs the train extra).")] = True,
    plots: Annotated[bool, typer.Option(help="Draw the PNG plots (needs matplotlib).")] = True,
    summary: Annotated[Path | None, typer.Option(
        help="Also write the report's text and tables, without plots or title, to this"
             " Markdown file (scripts/reproduce makes docs/RESULTS.md from it).",
        show_default=False)] = None,
    baselines: Annotated[list[Path] | None, typer.Option(
        "--baselines", metavar="FILE",
        help="Published Fashion-MNIST reference points: the dataset's README (its table of"
             " submitted results, .md or .md.gz) or its benchmark's baselines.json or results;"
             " repeat for several. Default: the files the dataset-fashion-mnist package"
             " installs under /usr/share/doc/dataset-fashion-mnist/, when present.",
        show_default=False)] = None,
    json: JsonFlag = False,
) -> None:
    """Write report.md, report.html and plots: the articles' claims, measured."""
    from edgeconv.report import ReportConfig, build_report

    with render.stderr_console().status("report...") as status:
        result = build_report(ReportConfig(tuple(paths), out, arithmetic, plots, summary,
                                           None if not baselines else tuple(baselines)),
                              progress=lambda what: status.update(f"report: {what}"))
    if json:
        render.print_json(result.to_dict())
        return
    rows = [[v.claim.id, v.verdict, v.measured if v.measured != "-" else v.reason]
            for v in result.verdicts]
    console = render.stdout_console()
    if rows:
        console.print(render.table(f"claims ({out / 'report.md'})",
                                   ["claim", "verdict", "measured"], rows))
    for study in result.studies:  # `edgeconv fit` folders: the recommended point, one line
        console.print(f"study {study['name']}: {study['verdict']}", highlight=False,
                      markup=False, soft_wrap=True)
    for note in result.notes:
        render.stderr_console().print(f"note: {note}", highlight=False, markup=False,
                                      soft_wrap=True)
    console.print(f"wrote {', '.join(str(f) for f in result.files)}", highlight=False,
                  markup=False, soft_wrap=True)
