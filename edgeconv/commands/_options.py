"""Options shared by several commands (model options now; train and export reuse them), and
the bounds of every option that takes a count, a seed or a number (`bounded`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from edgeconv.errors import EdgeconvError
from edgeconv.records import SEED
from edgeconv.zoo._registry import MAX_CLASSES, check_shape_bounds
from edgeconv.zoo.options import FAMILY_OPTIONS, KERNELS, MAX_ALPHA, MAX_BLOCKS

# --- numbers: checked while the command line is parsed, before anything is loaded -------------


@dataclass(frozen=True)
class Bounds:
    """What an option's number may be: from `low` (above it when `low_open`) to `high`,
    finite. `magnitude`: the bounds hold for its absolute value and 0 is refused (a sign is
    allowed: --scale)."""

    low: float
    high: float
    magnitude: bool = False
    low_open: bool = False


MAX_SAMPLES = 1_000_000  # images drawn for calibration or measurement (far above any split)
SEEDS = Bounds(0, SEED.max)  # what a manifest, results.json and train.json accept
SAMPLES = Bounds(1, MAX_SAMPLES)
LAYERS_SHOWN = Bounds(0, 100_000)  # quant-report --top (0: all)
EPOCHS = Bounds(1, 100_000)
BATCH_SIZE = Bounds(1, 65_536)
LEARNING_RATE = Bounds(1e-12, 10.0)  # above 10 every optimiser diverges; below, nothing moves
MAX_DROP = Bounds(0, 100)  # accuracy points
HELD_OUT = Bounds(0, 0.99)  # --val-fraction, --test-fraction: a share of the images
# `edgeconv fit`: a latency ceiling (ms), an accuracy floor (a fraction), successive halving's
# eta, brackets and workers
LATENCY_MS = Bounds(0, 1e7, low_open=True)
ACCURACY = Bounds(0, 1)
REDUCTION = Bounds(2, 1000)
BRACKETS = Bounds(1, 100)
WORKERS = Bounds(1, 4096)
# The family options and --classes, before the zoo checks them against the model (which
# needs TensorFlow): the bounds no model goes beyond.
ALPHA = Bounds(0, MAX_ALPHA, low_open=True)
GROUPS = Bounds(1, 2)
BLOCKS = Bounds(1, MAX_BLOCKS)
KERNEL = Bounds(min(KERNELS), max(KERNELS))  # odd only: the zoo's check says so
FAMILY_BOUNDS = {"alpha": ALPHA, "groups": GROUPS, "blocks": BLOCKS, "kernel": KERNEL}
CLASSES = Bounds(2, MAX_CLASSES)
# Preprocessing numbers: far outside what any model uses, yet small enough that
# (255 * scale + offset - mean) / std stays finite in float32 (no inf in the model's input).
PIXEL_SCALE = Bounds(1e-6, 1e6, magnitude=True)
PIXEL_SHIFT = Bounds(-1e6, 1e6)  # --offset, --mean
PIXEL_STD = Bounds(1e-6, 1e6)


def out_of_bounds(flag: str, value: int | float, bounds: Bounds) -> str | None:
    """Why `value` does not fit `bounds` (one line naming `flag`), or None when it does."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{flag} must be a finite number; got {value}"
    size = abs(value) if bounds.magnitude else value
    if bounds.magnitude and value == 0:
        return f"{flag} must not be 0"
    if bounds.low_open and size <= bounds.low:
        return f"{flag} must be a number > {bounds.low:g}; got {_number(value)}"
    if size < bounds.low:
        if bounds.magnitude:
            return f"{flag} must be at least {bounds.low:g} in magnitude; got {_number(value)}"
        if value <= 0 < bounds.low:
            return f"{flag} must be > 0; got {_number(value)}"
        if isinstance(value, int):
            return f"{flag} must be an integer >= {bounds.low:g}; got {_number(value)}"
        return f"{flag} must be >= {bounds.low:g}; got {_number(value)}"
    if size > bounds.high:
        high = f"{int(bounds.high):,}" if float(bounds.high).is_integer() else f"{bounds.high:g}"
        return (f"{flag} must be at most {high}{' in magnitude' if bounds.magnitude else ''};"
                f" got {_number(value)}")
    return None


def bounded(bounds: Bounds) -> Callable[..., Any]:
    """A Typer option callback refusing a number outside `bounds` with one line
    (`typer.Option(callback=bounded(SEEDS))`); None (an option left out) passes."""

    def check(param: typer.CallbackParam, value: Any) -> Any:
        if value is not None:
            problem = out_of_bounds(param.opts[0], value, bounds)
            if problem:
                raise EdgeconvError(problem)
        return value

    return check


def bounded_list(bounds: Bounds) -> Callable[..., Any]:
    """As `bounded`, for an option of numbers separated by commas (--mean, --std); the text
    itself is returned, for the command to split."""

    def check(param: typer.CallbackParam, value: str | None) -> str | None:
        if value is None:
            return None
        flag = param.opts[0]
        try:
            numbers = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise EdgeconvError(f"{flag} takes numbers separated by commas; got"
                                f" '{value}'") from None
        for number in numbers:
            problem = out_of_bounds(flag, number, bounds)
            if problem:
                raise EdgeconvError(problem)
        return value

    return check


def known_calibration_method(value: str) -> str:
    """--calibration-method: one of the methods some format has (edgeconv.formats), in any
    case; export's plan refuses one a chosen format lacks."""
    from edgeconv.formats import CALIBRATION_METHODS

    if value.lower() not in CALIBRATION_METHODS:
        raise EdgeconvError(f"--calibration-method: unknown calibration method '{value}'; use"
                            f" one of {', '.join(CALIBRATION_METHODS)}")
    return value


def _number(value: int | float) -> str:
    """A value for a one-line message: a 400-digit integer is cut, not printed whole."""
    text = repr(value) if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- the options themselves ----------------------------------------------------------------

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
Classes = Annotated[int | None, typer.Option(help="Number of classes (>= 2).", show_default=False,
                                             callback=bounded(CLASSES))]
InputShape = Annotated[
    str | None,
    typer.Option(help="Input shape H,W,C, e.g. 96,96,3; 'None,None,1' for a free size"
                      " (H, W <= 4096, C <= 1024).", show_default=False),
]


def _family_option(name: str):
    """The Typer annotation of a family option: its type and help text from the zoo's table."""
    option = FAMILY_OPTIONS[name]
    bounds = FAMILY_BOUNDS.get(name)
    return Annotated[option.type | None, typer.Option(
        help=option.help, show_default=False, callback=None if bounds is None
        else bounded(bounds))]


# Typer needs one explicit parameter per option: every command that builds a model declares
# `alpha: Alpha = None, version: Version = None, groups: Groups = None, blocks: Blocks = None,
# kernel: Kernel = None`, in FAMILY_OPTIONS order.
Alpha = _family_option("alpha")
Version = _family_option("version")
Groups = _family_option("groups")
Blocks = _family_option("blocks")
Kernel = _family_option("kernel")


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

    `family`: the family options' values in FAMILY_OPTIONS order (alpha, version, groups,
    blocks, kernel).
    """
    if len(family) != len(FAMILY_OPTIONS):  # a command missing one of the aliases above
        raise TypeError(f"model_options() takes the {len(FAMILY_OPTIONS)} family options"
                        f" {', '.join(FAMILY_OPTIONS)}; got {len(family)} values")
    return {"classes": classes, "input_shape": parse_shape(input_shape),
            **dict(zip(FAMILY_OPTIONS, family))}
