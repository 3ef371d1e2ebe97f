"""The articles' micro-examples as one-block models: what one layer choice costs.

Article B: 64 filters 3x3 on RGB, regular (1,792 params) vs depthwise separable (286).
Article C: the Inception 5x5 branch on 28x28x192 -> 32 channels, naive (120,422,400 MACs)
vs with a 1x1 -> 16 bottleneck first (12,443,648 MACs).
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register


def conv3x3_rgb64(opts: ModelOptions):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    outputs = L.Conv2D(64, 3, padding="same", name="conv3x3")(inputs)
    return k.Model(inputs, outputs, name="conv3x3_rgb64")


def separable3x3_rgb64(opts: ModelOptions):
    # Depthwise and pointwise as two layers, each with its bias, as the article counts them
    # (3x3x1x3+3 = 30 and 1x1x3x64+64 = 256); Keras' SeparableConv2D has one bias (283).
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.DepthwiseConv2D(3, padding="same", name="depthwise3x3")(inputs)
    outputs = L.Conv2D(64, 1, name="pointwise1x1")(x)
    return k.Model(inputs, outputs, name="separable3x3_rgb64")


def inception5x5_naive(opts: ModelOptions):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    outputs = L.Conv2D(32, 5, padding="same", activation="relu", name="conv5x5")(inputs)
    return k.Model(inputs, outputs, name="inception5x5_naive")


def inception5x5_bottleneck(opts: ModelOptions):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(16, 1, activation="relu", name="bottleneck1x1")(inputs)
    outputs = L.Conv2D(32, 5, padding="same", activation="relu", name="conv5x5")(x)
    return k.Model(inputs, outputs, name="inception5x5_bottleneck")


register(ModelSpec(
    name="conv3x3-rgb64", family="blocks", builder=conv3x3_rgb64,
    description="Article B: one regular 3x3 conv, 64 filters on RGB",
    default_input_shape=(32, 32, 3), default_classes=None, channels=(3,),
    facts=(PaperFact("params", 1_792, "B"),),
))
register(ModelSpec(
    name="separable3x3-rgb64", family="blocks", builder=separable3x3_rgb64,
    description="Article B: the same as depthwise 3x3 + pointwise 1x1 (6x fewer params)",
    default_input_shape=(32, 32, 3), default_classes=None, channels=(3,),
    facts=(PaperFact("params", 286, "B",
                     "the article writes the pointwise term as 1x1x64+64; 1x1x3x64+64 = 256"),),
))
register(ModelSpec(
    name="inception5x5-naive", family="blocks", builder=inception5x5_naive,
    description="Article C: Inception 5x5 branch on 28x28x192 -> 32, no bottleneck",
    default_input_shape=(28, 28, 192), default_classes=None,
    facts=(PaperFact("macs", 120_422_400, "C"),),
))
register(ModelSpec(
    name="inception5x5-bottleneck", family="blocks", builder=inception5x5_bottleneck,
    description="Article C: the same branch with a 1x1 -> 16 bottleneck first (~1/10 MACs)",
    default_input_shape=(28, 28, 192), default_classes=None,
    facts=(PaperFact("macs", 12_443_648, "C", "2,408,448 + 10,035,200"),),
))
