"""Options shared by several commands (model options now; train and export reuse them)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgeconv.errors import EdgeconvError
from edgeconv.zoo._registry import check_shape_bounds
from edgeconv.zoo.options import FAMILY_OPTIONS

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
Classes = Annotated[int | None, typer.Option(help="Number of classes (>= 2).", show_default=False)]
InputShape = Annotated[
    str | None,
    typer.Option(help="Input shape H,W,C, e.g. 96,96,3; 'None,None,1' for a free size"
                      " (H, W <= 4096, C <= 1024).", show_default=False),
]


def _family_option(name: str):
    """The Typer annotation of a family option: its type and help text from the zoo's table."""
    option = FAMILY_OPTIONS[name]
    return Annotated[option.type | None, typer.Option(help=option.help, show_default=False)]


# Typer needs one explicit parameter per option: every command that builds a model declares
# `alpha: Alpha = None, version: Version = None, groups: Groups = None`, in FAMILY_OPTIONS order.
Alpha = _family_option("alpha")
Version = _family_option("version")
Groups = _family_option("groups")


def parse_shape(text: str | None) -> tuple[int | None, ...] | None:
    """'224,224,3' -> (224, 224, 3); 'None' (or '?') for a free dimension."""
    if text is None:
        return None
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    try:
        dims = tuple(None if p.lower() in ("none", "?") else int(p) for p in parts)
    except ValueError:
        raise EdgeconvError(f"--input-shape must be H,W,C integers (e.g. 96,96,3); got '{text}'")
    if any(d is not None and d < 1 for d in dims):
        raise EdgeconvError(f"--input-shape values must be >= 1; got '{text}'")
    if len(dims) == 3:  # other lengths get their own message where the shape is used
        check_shape_bounds(dims)  # before anything is built or allocated at that size
    return dims


def model_options(classes: int | None, input_shape: str | None, *family: Any) -> dict[str, Any]:
    """The keyword arguments of `edgeconv.zoo.resolve_options`, from the CLI's strings.

    `family`: the family options' values in FAMILY_OPTIONS order (alpha, version, groups).
    """
    if len(family) != len(FAMILY_OPTIONS):  # a command missing one of the aliases above
        raise TypeError(f"model_options() takes the {len(FAMILY_OPTIONS)} family options"
                        f" {', '.join(FAMILY_OPTIONS)}; got {len(family)} values")
    return {"classes": classes, "input_shape": parse_shape(input_shape),
            **dict(zip(FAMILY_OPTIONS, family))}
