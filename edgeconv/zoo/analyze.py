"""The articles' arithmetic, per layer: parameters, MACs, activation and weight memory.

MAC convention (documented in docs/zoo.md): one multiply-accumulate per weight use in
convolutions (regular, grouped, depthwise, separable, transposed) and dense layers; biases,
BatchNorm (folded into the conv by every deployment converter), pooling, activations, adds
and concatenations are listed with 0 MACs. This is the convention of the MobileNet paper's
"Mult-Adds" and of article C's Inception figures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from edgeconv._lazy import keras
from edgeconv.errors import EdgeconvError
from edgeconv.zoo._registry import (
    ModelOptions, ModelSpec, analysis_options, build, get_spec, resolve_options,
)

FP32_BYTES = 4
INT8_BYTES = 1
INT32_BYTES = 4


@dataclass(frozen=True)
class LayerStats:
    name: str
    type: str
    output_shape: list[int | None]  # without the batch dimension
    params: int
    macs: int
    activation_bytes: int  # fp32 output tensor, batch 1


@dataclass(frozen=True)
class ModelStats:
    name: str
    input_shape: list[int | None]  # as built: None for a free H or W
    analysed_shape: list[int]  # concrete H, W, C the MACs and activations are computed at
    params: int  # as Keras counts them (trainable + non-trainable)
    trainable_params: int
    macs: int
    weight_bytes_fp32: int
    weight_bytes_int8: int  # estimate: int8 kernels, int32 biases, BatchNorm folded
    peak_activation_bytes: int  # fp32, batch 1, tensors freed after their last use
    peak_activation_bytes_int8: int
    layers: list[LayerStats]


@dataclass(frozen=True)
class FactCheck:
    quantity: str
    stated: str
    value: int
    measured: int
    matches: bool
    source: str
    note: str


@dataclass(frozen=True)
class InspectReport:
    model: str
    family: str
    description: str
    options: dict[str, Any]
    stats: ModelStats
    facts: list[FactCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the totals are also at the top level (`params`, `macs`, `layers`)."""
        stats = asdict(self.stats)
        return {"model": self.model, "family": self.family, "description": self.description,
                "options": self.options, **stats, "facts": [asdict(f) for f in self.facts]}


def inspect_model(spec: ModelSpec, opts: ModelOptions) -> InspectReport:
    """Build `spec` with `opts` and account for it; MACs at a nominal size if H x W is free."""
    model = build(spec, opts)
    stats = analyze(model)
    concrete = analysis_options(spec, opts)
    if concrete != opts:
        # A free H x W has no MAC count: account at the nominal size, keep the built shape.
        nominal = analyze(build(spec, concrete))
        stats = ModelStats(**{**asdict(nominal), "layers": nominal.layers,
                              "input_shape": stats.input_shape})
    return InspectReport(
        model=spec.name, family=spec.family, description=spec.description,
        options=opts.to_dict(), stats=stats, facts=_check_facts(spec, opts, stats),
    )


def _check_facts(spec: ModelSpec, opts: ModelOptions, stats: ModelStats) -> list[FactCheck]:
    checks = []
    for fact in spec.facts:
        # A fact applies to exactly the configuration the article states it for.
        if resolve_options(spec, **fact.options) != opts:
            continue
        measured = stats.params if fact.quantity == "params" else stats.macs
        checks.append(FactCheck(fact.quantity, fact.stated, fact.value, measured,
                                fact.matches(measured), fact.source, fact.note))
    return checks


def analyze(model) -> ModelStats:
    """Per-layer accounting of a built Keras functional model."""
    input_shape = list(model.inputs[0].shape[1:])
    layers = [_layer_stats(layer) for layer in model.layers]
    concrete = all(d is not None for layer in model.layers for d in _output_shape(layer))
    peak_elements = _peak_live_elements(model) if concrete else 0
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return ModelStats(
        name=model.name,
        input_shape=input_shape,
        analysed_shape=input_shape if concrete else [],
        params=model.count_params(),
        trainable_params=trainable,
        macs=sum(s.macs for s in layers) if concrete else 0,
        weight_bytes_fp32=model.count_params() * FP32_BYTES,
        weight_bytes_int8=sum(_int8_weight_bytes(layer) for layer in model.layers),
        peak_activation_bytes=peak_elements * FP32_BYTES,
        peak_activation_bytes_int8=peak_elements * INT8_BYTES,
        layers=layers,
    )


def _output_shape(layer) -> list[int | None]:
    return list(layer.output.shape[1:])


def _elements(shape: list[int | None]) -> int:
    return 0 if any(d is None for d in shape) else math.prod(shape)


def _layer_stats(layer) -> LayerStats:
    out = _output_shape(layer)
    return LayerStats(
        name=layer.name,
        type=type(layer).__name__,
        output_shape=out,
        params=layer.count_params(),
        macs=layer_macs(layer),
        activation_bytes=_elements(out) * FP32_BYTES,
    )


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer at batch 1 (0 for anything not conv or dense)."""
    L = keras().layers
    out = _output_shape(layer)
    if any(d is None for d in out):
        return 0
    if isinstance(layer, L.SeparableConv2D):
        in_channels = layer.input.shape[-1]
        spatial = math.prod(out[:-1])
        depthwise = spatial * in_channels * layer.depth_multiplier * math.prod(layer.kernel_size)
        pointwise = spatial * in_channels * layer.depth_multiplier * layer.filters
        return depthwise + pointwise
    if isinstance(layer, L.DepthwiseConv2D):
        return math.prod(out) * math.prod(layer.kernel_size)
    if isinstance(layer, (L.Conv2DTranspose, L.Conv1DTranspose, L.Conv3DTranspose)):
        # Every input pixel scatters a full kernel into the output.
        in_shape = layer.input.shape[1:]
        return math.prod(in_shape) * math.prod(layer.kernel_size) * layer.filters
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        in_channels = layer.input.shape[-1]
        return math.prod(out) * math.prod(layer.kernel_size) * (in_channels // layer.groups)
    if isinstance(layer, L.Dense):
        return math.prod(out) * layer.input.shape[-1]
    return 0


def _int8_weight_bytes(layer) -> int:
    """Bytes after full-integer quantisation, as TFLite/ONNX int8 store them.

    Kernels become int8, biases int32; a BatchNorm disappears into the preceding conv, whose
    int32 bias then carries it (one value per channel).
    """
    L = keras().layers
    if isinstance(layer, L.BatchNormalization):
        return layer.gamma.shape[0] * INT32_BYTES if layer.weights else 0
    total = 0
    for weight in layer.weights:
        size = math.prod(weight.shape)
        total += size * (INT8_BYTES if len(weight.shape) >= 2 else INT32_BYTES)
    return total


def _peak_live_elements(model) -> int:
    """Largest sum of tensors alive at once when layers run in order, batch 1.

    A tensor lives from the layer that makes it to its last consumer (model outputs to the
    end). No in-place reuse is assumed, so runtimes that alias (reshape, dropout) need less.
    """
    layers = model.layers
    producer = {id(layer.output): i for i, layer in enumerate(layers)}
    last_use = dict(producer)
    for i, layer in enumerate(layers):
        for tensor in keras().tree.flatten(layer.input) if i else []:
            last_use[id(tensor)] = max(last_use.get(id(tensor), i), i)
    for tensor in model.outputs:
        last_use[id(tensor)] = len(layers)
    sizes = {id(layer.output): _elements(_output_shape(layer)) for layer in layers}
    peak = 0
    for step in range(len(layers)):
        live = sum(size for t, size in sizes.items() if producer[t] <= step <= last_use[t])
        peak = max(peak, live)
    return peak


def inspect_by_name(name: str, **options: Any) -> InspectReport:
    """`edgeconv inspect NAME ...` as a function: options as in `resolve_options`."""
    spec = get_spec(name)
    opts = resolve_options(spec, **options)
    try:
        return inspect_model(spec, opts)
    except ValueError as exc:  # Keras refusing a shape our validation let through
        raise EdgeconvError(f"cannot build '{name}' with {opts.to_dict()}: {exc}") from None
