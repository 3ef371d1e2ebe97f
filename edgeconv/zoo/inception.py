"""Article C's Inception v2/v3 factorisations, each as a pair of one-block models.

- A 5x5 conv costs 25/9 = 2.78x a 3x3 with as many filters: `factor-3x3` vs `factor-5x5`.
  Inception v2 replaces the 5x5 by two stacked 3x3 (same 5x5 receptive field, 18/25 of the
  cost): `factor-5x5` vs `factor-3x3x2`.
- Inception v3 replaces an nxn conv by 1xn then nx1: for 3x3, (3 + 3)/9 = 2/3 of the cost,
  33% cheaper: `factor-3x3` vs `factor-1x3-3x1`.

Every block maps 64 channels to 64 on a 28x28 map at stride 1 ("same" padding), so the
MAC ratios are the kernels' area ratios exactly and come out of the built layers.
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, register

FILTERS = 64


def _block(opts: ModelOptions, kernels: tuple[tuple[int, int], ...], name: str):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = inputs
    for i, kernel in enumerate(kernels, start=1):
        x = L.Conv2D(FILTERS, kernel, padding="same", activation="relu",
                     name=f"conv{i}_{kernel[0]}x{kernel[1]}")(x)
    return k.Model(inputs, x, name=name)


def factor_5x5(opts: ModelOptions):
    return _block(opts, ((5, 5),), "factor_5x5")


def factor_3x3x2(opts: ModelOptions):
    return _block(opts, ((3, 3), (3, 3)), "factor_3x3x2")


def factor_3x3(opts: ModelOptions):
    return _block(opts, ((3, 3),), "factor_3x3")


def factor_1x3_3x1(opts: ModelOptions):
    return _block(opts, ((1, 3), (3, 1)), "factor_1x3_3x1")


for _name, _builder, _what in (
        ("factor-5x5", factor_5x5, "one 5x5 conv (the Inception v1 branch v2 factorises)"),
        ("factor-3x3x2", factor_3x3x2, "Inception v2: two stacked 3x3 convs instead of a 5x5"),
        ("factor-3x3", factor_3x3, "one 3x3 conv (what v3 factorises)"),
        ("factor-1x3-3x1", factor_1x3_3x1, "Inception v3: a 1x3 then a 3x1 instead of a 3x3")):
    register(ModelSpec(
        name=_name, family="blocks", builder=_builder,
        description=f"Article C: {_what}, 64 -> 64 channels",
        default_input_shape=(28, 28, FILTERS), default_classes=None, channels=(FILTERS,),
    ))
