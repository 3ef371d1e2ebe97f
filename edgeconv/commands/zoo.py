"""`edgeconv models`, `edgeconv inspect`, `edgeconv compare`: the zoo and its arithmetic."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import (
    Alpha, Blocks, Classes, Groups, InputShape, JsonFlag, Kernel, Version, model_options,
)


def models(json: JsonFlag = False) -> None:
    """List the zoo: name, family, default input, what the articles say about each model."""
    from edgeconv.zoo import list_models

    specs = list_models()
    if json:
        render.print_json([{
            "name": s.name, "family": s.family, "description": s.description,
            "default_input_shape": list(s.default_input_shape), "classes": s.default_classes,
            "options": list(s.options),
            "facts": [{"quantity": f.quantity, "value": f.value, "stated": f.stated,
                       "source": f.source, "options": {k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in f.options.items()}}
                      for f in s.facts],
        } for s in specs])
        return
    rows = [[s.name, s.family, render.shape(s.default_input_shape),
             "" if s.default_classes is None else s.default_classes,
             "; ".join(f"{f.quantity} {f.stated} ({f.source})" for f in s.facts
                       if not f.options),
             s.description] for s in specs]
    render.stdout_console().print(render.table(
        None, ["model", "family", "input", "classes", "article figure", "description"], rows,
        right={"classes"}))


def inspect(
    name: Annotated[str, typer.Argument(help="Model name (see `edgeconv models`).")],
    classes: Classes = None,
    input_shape: InputShape = None,
    alpha: Alpha = None,
    version: Version = None,
    groups: Groups = None,
    blocks: Blocks = None,
    kernel: Kernel = None,
    json: JsonFlag = False,
) -> None:
    """Per-layer params, MACs and activation memory of one model, with totals."""
    from edgeconv.zoo.analyze import inspect_by_name

    with render.stderr_console().status(f"building {name}..."):
        report = inspect_by_name(name, **model_options(classes, input_shape, alpha, version,
                                                       groups, blocks, kernel))
    if json:
        render.print_json(report.to_dict())
        return
    s = report.stats
    console = render.stdout_console()
    rows = [[l.name, l.type, render.shape(l.output_shape), render.count(l.params),
             render.count(l.macs), render.nbytes(l.activation_bytes)] for l in s.layers]
    opts = ", ".join(f"{k}={render.shape(v) if isinstance(v, list) else v}"
                     for k, v in report.options.items())
    console.print(render.table(
        f"{report.model} ({opts})", ["layer", "type", "output", "params", "MACs", "activation"],
        rows, right={"params", "MACs", "activation"}))
    free = s.input_shape != s.analysed_shape
    totals = [
        ["params", render.count(s.params)],
        ["trainable params", render.count(s.trainable_params)],
        ["MACs" + (f" at {render.shape(s.analysed_shape)}" if free else ""),
         f"{render.count(s.macs)} ({render.macs(s.macs)})"],
        ["weights fp32", render.nbytes(s.weight_bytes_fp32)],
        ["weights int8 (estimate)", render.nbytes(s.weight_bytes_int8)],
        ["peak activations fp32 / int8",
         f"{render.nbytes(s.peak_activation_bytes)} / "
         f"{render.nbytes(s.peak_activation_bytes_int8)}"],
    ]
    for f in report.facts:
        verdict = "[green]matches[/]" if f.matches else "[red]differs[/]"
        totals.append([f"article {f.source}: {f.quantity} {f.stated}", verdict])
    console.print(render.table("totals", ["", "value"], totals, right={"value"}))


def compare(
    ids: Annotated[list[str] | None, typer.Argument(
        help="Comparison ids (default: all): A-fcn, B-block, B-vgg, C-inception, C-squeezenet, "
             "C-mobilenet-alpha, C-mobilenet-resolution, C-imagenet.",
        show_default=False)] = None,
    json: JsonFlag = False,
) -> None:
    """The articles' model pairs side by side: params, MACs, weights, peak activations."""
    from edgeconv.zoo.compare import run_comparisons

    progress_console = render.stderr_console()
    with progress_console.status("building models...") as status:
        tables = run_comparisons(ids, on_build=lambda label: status.update(f"building {label}"))
    if json:
        render.print_json([t.to_dict() for t in tables])
        return
    console = render.stdout_console()
    for t in tables:
        rows = [[r.label, render.count(r.params), render.ratio(t.rows[0].params, r.params),
                 render.macs(r.macs), render.ratio(t.rows[0].macs, r.macs),
                 render.nbytes(r.weight_bytes_fp32), render.nbytes(r.weight_bytes_int8),
                 render.nbytes(r.peak_activation_bytes), r.article] for r in t.rows]
        console.print(render.table(
            f"[{t.id}] {t.title} — article {t.source}: {t.claim}",
            ["model", "params", "fewer", "MACs", "fewer", "fp32", "int8 est.", "peak act.",
             "article figure"],
            rows, right={"params", "fewer", "MACs", "fp32", "int8 est.", "peak act."}))
