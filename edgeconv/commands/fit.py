"""`edgeconv fit`: which model of a space fits my board best (docs/fit.md)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import (
    ACCURACY,
    BRACKETS,
    EPOCHS,
    LATENCY_MS,
    REDUCTION,
    SAMPLES,
    SEEDS,
    WORKERS,
    JsonFlag,
    bounded,
)
from edgeconv.errors import EdgeconvError

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?\s*", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def parse_duration(text: str) -> float:
    """'30m', '1.5h', '90s' or '90' (seconds) as seconds."""
    match = _DURATION.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise EdgeconvError(f"--time-budget must be a duration like 30m, 2h or 600s; got"
                            f" '{text}'")
    seconds = float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()]
    if seconds > 30 * 86400:
        raise EdgeconvError(f"--time-budget must be at most 30 days; got '{text}'")
    return seconds


def fit(
    target: Annotated[str, typer.Option(help="The board to fit (see `edgeconv targets`).",
                                        show_default=False)],
    data: Annotated[str, typer.Option(
        help="digits (embedded), mnist, fashion_mnist, cifar10 or an image folder.")] = "digits",
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding the dataset's standard files (on every node with --ray).",
        show_default=False)] = None,
    max_latency_ms: Annotated[float | None, typer.Option(
        help="Latency ceiling in ms (the target's estimate or measurement).",
        show_default=False, callback=bounded(LATENCY_MS))] = None,
    min_accuracy: Annotated[float | None, typer.Option(
        help="Accuracy floor, a fraction of the test images (0.85).",
        show_default=False, callback=bounded(ACCURACY))] = None,
    space: Annotated[list[str] | None, typer.Option(
        "--space", metavar="ENTRY",
        help="What to search, repeatable: MODEL[:knob=v1,v2...] (mobilenet:alpha=0.25,0.5:"
             "size=32,48), FILE.py:FUNCTION[:knob=...] for your own Keras builder, or a"
             " .toml file. Default: the zoo's compact families (docs/fit.md).",
        show_default=False)] = None,
    precisions: Annotated[str, typer.Option(
        help="Precisions each candidate is exported at: int8, int16x8, or both.")] = "int8",
    time_budget: Annotated[str | None, typer.Option(
        help="Stop training new rungs after this long (30m, 2h, 600s); the finalists"
             " are then exported and benched.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        help="Study folder (default studies/TARGET-DATA).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted study without redoing finished work.")] = False,
    workers: Annotated[int | None, typer.Option(
        help="Trials trained at once (default: this machine's cores; with --ray, the"
             " cluster's task slots to use).", show_default=False,
        callback=bounded(WORKERS))] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS",
        help="Train on an existing Ray cluster (auto, HOST:PORT, ray://HOST:10001) or"
             " 'local' (a Ray instance on this machine).", show_default=False)] = None,
    train_samples: Annotated[int | None, typer.Option(
        help="Train each candidate on this many training images (stratified, seeded).",
        show_default=False, callback=bounded(SAMPLES))] = None,
    eval_samples: Annotated[int | None, typer.Option(
        help="Measure finalists on this many test images (default: the whole split).",
        show_default=False, callback=bounded(SAMPLES))] = None,
    min_epochs: Annotated[int, typer.Option(help="Epochs of the first rung.",
                                            callback=bounded(EPOCHS))] = 1,
    max_epochs: Annotated[int, typer.Option(help="Epochs of the last rung.",
                                            callback=bounded(EPOCHS))] = 9,
    reduction_factor: Annotated[int, typer.Option(
        help="Successive halving's eta: 1/eta of a rung goes on to the next.",
        callback=bounded(REDUCTION))] = 3,
    brackets: Annotated[int, typer.Option(
        help="Halve within this many brackets of similar MACs (keeps small models in the"
             " front).", callback=bounded(BRACKETS))] = 3,
    seed: Annotated[int, typer.Option(help="Seed of splits, initialisation, shuffling.",
                                      callback=bounded(SEEDS))] = 0,
    tflm_tree: Annotated[str | None, typer.Option(
        help="TFLite Micro source tree for the finalists' firmware (see `edgeconv bench`).",
        show_default=False)] = None,
    tflm_subset: Annotated[str | None, typer.Option(hidden=True)] = None,
    json: JsonFlag = False,
) -> None:
    """Search width, resolution, family and precision for the best model that fits a board."""
    from edgeconv.commands._progress import RichProgress
    from edgeconv.fit.study import FitRequest, run_study

    request = FitRequest(
        target=target, out=out or Path("studies") / _folder_name(target, data), data=data,
        data_dir=None if data_dir is None else str(data_dir), max_latency_ms=max_latency_ms,
        min_accuracy=min_accuracy, space=tuple(space or ()),
        precisions=tuple(p.strip() for p in precisions.split(",") if p.strip()),
        time_budget_s=None if time_budget is None else parse_duration(time_budget),
        seed=seed, train_samples=train_samples, eval_samples=eval_samples,
        min_epochs=min_epochs, max_epochs=max_epochs, reduction_factor=reduction_factor,
        brackets=brackets, workers=workers or os.cpu_count() or 1, ray_address=ray,
        resume=resume, tflm_tree=tflm_tree, tflm_subset=tflm_subset)
    with RichProgress(render.stderr_console()) as progress:
        doc = run_study(request, progress)
    if json:
        render.print_json(doc)
        return
    _print(doc, request.out)


def _folder_name(target: str, data: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{target}-{Path(data).name}").strip("-")


def _print(doc: dict, folder: Path) -> None:
    from edgeconv.fit.front import accuracy_text, latency_text
    from edgeconv.fit.study import summary_rows

    console = render.stdout_console()
    pruned = [v for v in doc["pruning"] if not v["kept"]]
    trained = [t for t in doc["trials"].values() if t["state"] != "pending"]
    front, winner = set(doc["front"]), doc.get("winner")
    rows = []
    for point in summary_rows(doc):
        mark = "recommended" if point["id"] == winner else "front" if point["id"] in front \
            else ""
        rows.append([point["label"], point["precision"], accuracy_text(point),
                     latency_text(point), _kib(point.get("ram_bytes")),
                     _kib(point.get("flash_bytes")), _kib(point.get("predicted_arena_bytes")),
                     _kib(point.get("arena_bytes")), mark])
    console.print(render.table(
        f"{doc['request']['target']}: {len(doc['pruning'])} points, {len(pruned)} pruned,"
        f" {len(trained)} trained, {len(doc['finalists'])} benched",
        ["candidate", "precision", "accuracy [95%]", "latency", "RAM", "flash",
         "arena predicted", "arena measured", ""],
        rows, right={"RAM", "flash", "arena predicted", "arena measured"},
        no_wrap={"accuracy [95%]", "latency"}))
    if doc.get("verdict"):
        console.print(f"recommended: {doc['verdict']}", highlight=False, markup=False)
    else:
        from edgeconv.fit.front import why_none

        console.print(f"no finalist meets the request: {why_none(doc['finalists'], doc['request'])}",
                      highlight=False, markup=False)
    console.print(f"study: {folder}/study.json (edgeconv report {folder})", highlight=False,
                  markup=False)


def _kib(n: int | None) -> str:
    return "" if n is None else f"{n / 1024:,.0f} KiB"
