"""Options shared by several commands (model options now; train and export reuse them)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgeconv.errors import EdgeconvError

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
Classes = Annotated[int | None, typer.Option(help="Number of classes (>= 2).", show_default=False)]
InputShape = Annotated[
    str | None,
    typer.Option(help="Input shape H,W,C, e.g. 96,96,3; 'None,None,1' for a free size.",
                 show_default=False),
]
Alpha = Annotated[float | None, typer.Option(help="Width multiplier (MobileNets), > 0.",
                                             show_default=False)]
Version = Annotated[str | None, typer.Option(help="SqueezeNet version: 1.0 or 1.1.",
                                             show_default=False)]
Groups = Annotated[int | None, typer.Option(help="AlexNet conv2/4/5 groups: 2 (original) or 1.",
                                            show_default=False)]


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
    return dims


def model_options(classes: int | None, input_shape: str | None, alpha: float | None,
                  version: str | None, groups: int | None) -> dict[str, Any]:
    """The keyword arguments of `edgeconv.zoo.resolve_options`, from the CLI's strings."""
    return {"classes": classes, "input_shape": parse_shape(input_shape), "alpha": alpha,
            "version": version, "groups": groups}
