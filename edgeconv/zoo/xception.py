"""Article C's Xception: Inception taken to the limit, one spatial conv per channel.

Every Inception module becomes a depthwise separable conv (a 3x3 per channel, then a 1x1
across channels) inside residual blocks. The layers follow `keras.applications.Xception`
one for one (entry flow, 8 middle blocks, exit flow), so the parameter count equals Keras'
exactly (22,910,480 at 1,000 classes); a test holds us to it. The article notes it aims at
accuracy, not compression: it has more parameters than Inception v3.
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, register

ENTRY_FILTERS = (128, 256, 728)  # blocks 2, 3, 4
MIDDLE_BLOCKS = 8  # blocks 5..12, 728 channels each


def _sep(L, x, filters: int, name: str):
    x = L.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return L.BatchNormalization(name=f"{name}_bn")(x)


def _projection(L, x, filters: int, name: str):
    """The residual path of a downsampling block: a strided 1x1 conv."""
    r = L.Conv2D(filters, 1, strides=2, padding="same", use_bias=False, name=f"{name}_res")(x)
    return L.BatchNormalization(name=f"{name}_res_bn")(r)


def xception(opts: ModelOptions):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(32, 3, strides=2, use_bias=False, name="block1_conv1")(inputs)
    x = L.BatchNormalization(name="block1_conv1_bn")(x)
    x = L.Activation("relu", name="block1_conv1_act")(x)
    x = L.Conv2D(64, 3, use_bias=False, name="block1_conv2")(x)
    x = L.BatchNormalization(name="block1_conv2_bn")(x)
    x = L.Activation("relu", name="block1_conv2_act")(x)
    # Entry flow: two separable convs and a strided max pool, a 1x1 conv on the skip.
    for block, filters in enumerate(ENTRY_FILTERS, start=2):
        name = f"block{block}"
        residual = _projection(L, x, filters, name)
        if block > 2:  # block 2 follows block1's ReLU directly
            x = L.Activation("relu", name=f"{name}_sepconv1_act")(x)
        x = _sep(L, x, filters, f"{name}_sepconv1")
        x = L.Activation("relu", name=f"{name}_sepconv2_act")(x)
        x = _sep(L, x, filters, f"{name}_sepconv2")
        x = L.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
        x = L.Add(name=f"{name}_add")([x, residual])
    # Middle flow: three ReLU + separable conv, identity skip.
    for block in range(5, 5 + MIDDLE_BLOCKS):
        name = f"block{block}"
        residual = x
        for conv in (1, 2, 3):
            x = L.Activation("relu", name=f"{name}_sepconv{conv}_act")(x)
            x = _sep(L, x, 728, f"{name}_sepconv{conv}")
        x = L.Add(name=f"{name}_add")([x, residual])
    # Exit flow.
    residual = _projection(L, x, 1024, "block13")
    x = L.Activation("relu", name="block13_sepconv1_act")(x)
    x = _sep(L, x, 728, "block13_sepconv1")
    x = L.Activation("relu", name="block13_sepconv2_act")(x)
    x = _sep(L, x, 1024, "block13_sepconv2")
    x = L.MaxPooling2D(3, strides=2, padding="same", name="block13_pool")(x)
    x = L.Add(name="block13_add")([x, residual])
    for conv, filters in ((1, 1536), (2, 2048)):
        x = _sep(L, x, filters, f"block14_sepconv{conv}")
        x = L.Activation("relu", name=f"block14_sepconv{conv}_act")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name="xception")


register(ModelSpec(
    name="xception", family="xception", builder=xception,
    description="Article C: Xception, depthwise separable convs in residual blocks (299x299x3)",
    # Two valid 3x3 convs (one strided) then four stride-2 stages: keras.applications'
    # minimum of 71 keeps every map at least 1x1.
    default_input_shape=(299, 299, 3), default_classes=1000, min_size=71,
))
