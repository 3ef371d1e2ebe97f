"""The model registry: name -> builder, defaults, paper facts, and default training recipe.

Importing the registry (and every family module) must stay cheap: builders import Keras inside
their body, so `edgeconv models` can list the zoo without TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.zoo.options import FAMILY_OPTIONS
from edgeconv.zoo.recipe import Recipe, generic_recipe

Shape = tuple[int | None, int | None, int]

# Upper bounds on what a model may be asked to be, wherever a size is parsed or read back
# (the CLI, resolve_options, manifest.json, train.json): far above any edge model (the zoo's
# largest input is 224x224x3, ImageNet-21k has 21,841 classes), far below what would
# exhaust memory while building one. (Whether a dataset's images fit in memory at a size is
# checked where they are prepared: edgeconv.data.splits.)
MAX_SIDE = 4096  # input height and width
MAX_CHANNELS = 1024  # input channels: a block's input is a feature map (inception: 192)
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class PaperFact:
    """A number an article prints about a model's default configuration."""

    quantity: str  # "params" or "macs"
    value: int
    source: str  # article letter (docs/claims.md), e.g. "A"
    note: str = ""  # e.g. how the article's own arithmetic differs
    # None: the article prints the exact figure. N: it prints "~value" to N significant digits.
    digits: int | None = None
    # Options (besides the defaults) the figure is stated for, e.g. {"version": "1.1"}.
    options: dict[str, Any] = field(default_factory=dict)

    def matches(self, measured: int) -> bool:
        if self.digits is None:
            return measured == self.value
        return _round_significant(measured, self.digits) == self.value

    @property
    def stated(self) -> str:
        return f"{self.value:,}" if self.digits is None else f"~{self.value:,}"


def _round_significant(value: int, digits: int) -> int:
    if value == 0:
        return 0
    return int(round(value, digits - len(str(abs(value)))))


@dataclass(frozen=True)
class ModelOptions:
    """Validated options a builder receives. `alpha`/`version`/`groups`/`blocks`/`kernel` only
    for their families."""

    input_shape: Shape
    classes: int | None
    # One field per entry of FAMILY_OPTIONS, in its order (tests/test_zoo.py holds them equal).
    alpha: float | None = None
    version: str | None = None
    groups: int | None = None
    blocks: int | None = None  # vgg-cifar pair: depth (VGG blocks of two convs)
    kernel: int | None = None  # vgg-cifar pair: conv kernel size

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()
                if v is not None}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    description: str
    builder: Callable[[ModelOptions], Any]
    default_input_shape: Shape
    default_classes: int | None  # None: a block with no classifier, `--classes` not accepted
    facts: tuple[PaperFact, ...] = ()
    # Family options (names from FAMILY_OPTIONS) this model accepts, with defaults:
    # {"alpha": 1.0}, {"version": "1.0"}.
    family_options: dict[str, Any] = field(default_factory=dict)
    version_choices: tuple[str, ...] = ()
    # Smallest H and W the architecture can take (stride-2 stages and valid convs need room).
    min_size: int = 1
    # Exact H, W the architecture needs (a valid conv that must end at 1x1), or None.
    fixed_size: tuple[int, int] | None = None
    # Channel counts accepted; None means any.
    channels: tuple[int, ...] | None = None
    # Spatial size used for MACs and activation memory when the model takes any H x W.
    nominal_size: tuple[int, int] | None = None
    # How `edgeconv train` fits it by default; None: `generic_recipe` (see training_recipe).
    recipe: Recipe | None = None
    # The dataset `train` and `export` use when --data is not given; None: the default
    # (digits). Article D's char-CNN reads text, not images.
    dataset: str | None = None
    # Why `fixed_size` is fixed, for the refusal of another size.
    fixed_size_why: str = "its last conv must end at 1x1; use gap-mnist for any size"

    @property
    def variable_input(self) -> bool:
        return self.default_input_shape[0] is None

    @property
    def options(self) -> tuple[str, ...]:
        common = ("input_shape",) + (("classes",) if self.default_classes is not None else ())
        return common + tuple(self.family_options)

    @property
    def training_recipe(self) -> Recipe:
        """The model's own recipe, else the generic one at a size the model can take."""
        return self.recipe if self.recipe is not None else generic_recipe(self.min_size)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model '{spec.name}' registered twice")  # a programming error
    _REGISTRY[spec.name] = spec
    return spec


def list_models(family: str | None = None) -> list[ModelSpec]:
    _load_families()
    return [s for s in _REGISTRY.values() if family is None or s.family == family]


def get_spec(name: str) -> ModelSpec:
    _load_families()
    if name not in _REGISTRY:
        hint = did_you_mean(name, _REGISTRY) or " (see `edgeconv models` for the zoo)"
        raise EdgeconvError(f"unknown model '{name}'{hint}")
    return _REGISTRY[name]


def dataset_for(target: str) -> str:
    """The dataset a command uses without --data: the model's own (char-CNN: text), else
    digits. `target` may be anything a command takes (a run, a file): only a zoo name with
    a dataset of its own changes the default."""
    _load_families()
    spec = _REGISTRY.get(target)
    return spec.dataset if spec is not None and spec.dataset else "digits"


# In the order the articles discuss them, which is the order `edgeconv models` lists them.
FAMILY_MODULES = ("mnist", "mlp", "blocks", "sweep", "vgg", "alexnet", "squeezenet", "googlenet",
                  "inception", "xception", "mobilenet", "resnet", "charcnn")


def _load_families() -> None:
    # Importing the family modules registers their models; they import Keras lazily.
    for module in FAMILY_MODULES:
        importlib.import_module(f"edgeconv.zoo.{module}")


def resolve_options(
    spec: ModelSpec,
    *,
    input_shape: Shape | None = None,
    classes: int | None = None,
    **family: Any,
) -> ModelOptions:
    """Fill defaults and check every option against what `spec` accepts.

    `family` takes the options of FAMILY_OPTIONS (alpha=0.5, version="1.1", groups=1,
    blocks=4, kernel=7); None
    means the model's default.
    """
    for key in family:
        if key not in FAMILY_OPTIONS:  # a programming error, as for any unknown keyword
            raise TypeError(f"resolve_options() got an unexpected keyword argument '{key}'")
    for key in FAMILY_OPTIONS:
        if family.get(key) is not None and key not in spec.family_options:
            raise EdgeconvError(_not_accepted(spec, key))
    if classes is not None and spec.default_classes is None:
        raise EdgeconvError(_not_accepted(spec, "classes"))

    opts = ModelOptions(
        input_shape=spec.default_input_shape if input_shape is None else tuple(input_shape),
        classes=spec.default_classes if classes is None else classes,
        **{k: (family[k] if family.get(k) is not None else d)
           for k, d in spec.family_options.items()},
    )
    _check_classes(spec, opts.classes)
    _check_input_shape(spec, opts.input_shape)
    for key, option in FAMILY_OPTIONS.items():
        value = getattr(opts, key)
        if value is not None:
            option.validate(spec, value)
    return opts


def analysis_options(spec: ModelSpec, opts: ModelOptions) -> ModelOptions:
    """The options to build with when MACs and activation sizes need a concrete H x W."""
    h, w, c = opts.input_shape
    if h is not None and w is not None:
        return opts
    nominal_h, nominal_w = spec.nominal_size or (224, 224)
    return replace(opts, input_shape=(h or nominal_h, w or nominal_w, c))


def build(spec: ModelSpec, opts: ModelOptions):
    """Build the Keras model for validated options."""
    return spec.builder(opts)


def _not_accepted(spec: ModelSpec, option: str) -> str:
    accepted = ", ".join("--" + o.replace("_", "-") for o in spec.options)
    return (f"model '{spec.name}' does not take --{option.replace('_', '-')}"
            f" (it accepts: {accepted})")


def _check_classes(spec: ModelSpec, classes: int | None) -> None:
    if spec.default_classes is None:
        return
    if classes is None or classes < 2:
        raise EdgeconvError(f"--classes must be an integer >= 2; got {classes}")
    if classes > MAX_CLASSES:
        raise EdgeconvError(f"--classes must be at most {MAX_CLASSES:,} (edgeconv's bound on a"
                            f" classifier); got {classes}")


def _check_input_shape(spec: ModelSpec, shape: Shape) -> None:
    if len(shape) != 3:
        raise EdgeconvError(f"--input-shape must be H,W,C (3 values); got {_fmt(shape)}")
    h, w, c = shape
    if c is None or c < 1:
        raise EdgeconvError(f"--input-shape needs a channel count >= 1; got {_fmt(shape)}")
    check_shape_bounds(shape)
    if spec.channels is not None and c not in spec.channels:
        allowed = " or ".join(str(x) for x in spec.channels)
        raise EdgeconvError(f"model '{spec.name}' takes {allowed} input channel(s);"
                            f" got {_fmt(shape)}")
    if (h is None) != (w is None):
        raise EdgeconvError(f"--input-shape must give both H and W or neither; got {_fmt(shape)}")
    if h is None:
        if not spec.variable_input:
            raise EdgeconvError(
                f"model '{spec.name}' needs a fixed input size (its classifier depends on it);"
                f" got {_fmt(shape)}")
        return
    if spec.fixed_size is not None and (h, w) != spec.fixed_size:
        fh, fw = spec.fixed_size
        raise EdgeconvError(
            f"model '{spec.name}' takes only {fh}x{fw} inputs ({spec.fixed_size_why});"
            f" got {_fmt(shape)}")
    if h < spec.min_size or w < spec.min_size:
        raise EdgeconvError(f"model '{spec.name}' needs H and W >= {spec.min_size};"
                            f" got {_fmt(shape)}")


def check_shape_bounds(shape: tuple[int | None, ...]) -> None:
    """H and W up to MAX_SIDE, channels up to MAX_CHANNELS (an H,W,C shape, None: free)."""
    *sides, channels = shape
    if any(v is not None and v > MAX_SIDE for v in sides) \
            or (channels is not None and channels > MAX_CHANNELS):
        raise EdgeconvError(f"--input-shape takes H and W up to {MAX_SIDE} and up to"
                            f" {MAX_CHANNELS} channels; got {_fmt(shape)}")


def _fmt(shape: Shape) -> str:
    return ",".join("None" if v is None else str(v) for v in shape)
