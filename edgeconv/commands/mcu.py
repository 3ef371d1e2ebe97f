"""`edgeconv mcu fetch`: the TFLite Micro source trees the Cortex-M targets build from
(edgeconv.mcu.fetch), cached where `edgeconv bench` finds them without a flag."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import JsonFlag

app = typer.Typer(
    name="mcu", no_args_is_help=True, add_completion=False,
    help="TFLite Micro for the emulated Cortex-M targets (stm32h7, ...; docs/mcu.md).")


@app.command()
def fetch(
    source: Annotated[str | None, typer.Option(
        "--source", metavar="URL|PATH", show_default=False,
        help="Where the tree comes from: a git URL (file:// too) or TFLite Micro checkout,"
             " cloned at the pinned commit; or, offline, a tree .tgz, a tree folder or a"
             " folder holding tflm-tree-<kernels>.tgz. Default: the upstream repository.")
    ] = None,
    kernels: Annotated[str | None, typer.Option(
        "--kernels", metavar="SETS", show_default=False,
        help="Kernel sets, comma-separated: cmsis-nn, reference. Default: both from git;"
             " what the tree holds offline.")] = None,
    json: JsonFlag = False,
) -> None:
    """Make the pinned TFLite Micro source trees (git clone at the pinned commit, TFLM's
    create_tflm_tree.py; the network once), verify their content hash and cache them."""
    from edgeconv.commands._progress import RichProgress
    from edgeconv.mcu.fetch import fetch as fetch_trees
    from edgeconv.mcu.fetch import parse_kernels

    asked = parse_kernels(kernels)
    with RichProgress(render.stderr_console()) as progress:
        trees = fetch_trees(asked, source, progress=progress)
    if json:
        render.print_json({"trees": [t.to_dict() for t in trees]})
        return
    for tree in trees:
        how = "fetched" if tree.fetched_now else "already cached"
        typer.echo(f"{tree.kernels}: {tree.label}, tree sha256:{tree.content_hash[:12]}"
                   f" ({how}) in {tree.tree}")
    typer.echo("edgeconv bench and python -m edgeconv.mcu use it without --tflm-tree")
