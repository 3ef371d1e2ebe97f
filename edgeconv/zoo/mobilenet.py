"""MobileNet v1 (depthwise separable everywhere) and v2 (inverted residuals, linear bottlenecks).

Layer structure and names follow `keras.applications` so that every (alpha, shape, classes)
gives exactly the same parameter count as `keras.applications.MobileNet[V2](weights=None)`;
a test holds us to it. The blocks are written as loops over a table instead of unrolled calls.
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register
from edgeconv.zoo.recipe import Recipe

# MobileNet v1 body after conv1: (pointwise filters, stride) for blocks 1..13.
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1(opts: ModelOptions):
    k = keras()
    L = k.layers
    alpha = opts.alpha
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False,
                 name="conv1")(inputs)
    x = L.BatchNormalization(name="conv1_bn")(x)
    x = L.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, stride) in enumerate(V1_BLOCKS, start=1):
        x = _v1_separable_block(L, x, int(filters * alpha), stride, block_id)
    x = L.GlobalAveragePooling2D(keepdims=True, name="global_pool")(x)
    x = L.Dropout(1e-3, name="dropout")(x)
    # A 1x1 conv, not a Dense layer, is the classifier: the network stays fully convolutional.
    x = L.Conv2D(opts.classes, 1, padding="same", name="conv_preds")(x)
    x = L.Reshape((opts.classes,), name="reshape")(x)
    outputs = L.Activation("softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name=f"mobilenet_{alpha:g}")


def _v1_separable_block(L, x, filters: int, stride: int, block_id: int):
    if stride == 2:
        # Pad bottom/right only, then a valid conv: TF-"same" output size without asymmetry
        # surprises between runtimes.
        x = L.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    x = L.DepthwiseConv2D(3, strides=stride, padding="same" if stride == 1 else "valid",
                          use_bias=False, name=f"conv_dw_{block_id}")(x)
    x = L.BatchNormalization(name=f"conv_dw_{block_id}_bn")(x)
    x = L.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = L.Conv2D(filters, 1, padding="same", use_bias=False, name=f"conv_pw_{block_id}")(x)
    x = L.BatchNormalization(name=f"conv_pw_{block_id}_bn")(x)
    return L.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


# MobileNet v2 inverted residual stages: (expansion t, output channels c, repeats n, stride s).
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8 without losing more than 10% (the v2 paper's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def mobilenet_v2(opts: ModelOptions):
    k = keras()
    L = k.layers
    alpha = opts.alpha
    bn = {"epsilon": 1e-3, "momentum": 0.999}
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False,
                 name="Conv1")(inputs)
    x = L.BatchNormalization(name="bn_Conv1", **bn)(x)
    x = L.ReLU(6.0, name="Conv1_relu")(x)
    block_id = 0
    for expansion, channels, repeats, first_stride in V2_STAGES:
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            x = _inverted_residual(L, x, expansion, stride, int(channels * alpha), block_id, bn)
            block_id += 1
    # The paper keeps 1280 channels for alpha <= 1 and only widens them for alpha > 1.
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = L.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = L.BatchNormalization(name="Conv_1_bn", **bn)(x)
    x = L.ReLU(6.0, name="out_relu")(x)
    x = L.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name=f"mobilenetv2_{alpha:g}")


def _inverted_residual(L, inputs, expansion: int, stride: int, channels: int, block_id: int,
                       bn: dict):
    in_channels = inputs.shape[-1]
    out_channels = make_divisible(channels)
    x = inputs
    if block_id:
        prefix = f"block_{block_id}_"
        x = L.Conv2D(expansion * in_channels, 1, padding="same", use_bias=False,
                     name=f"{prefix}expand")(x)
        x = L.BatchNormalization(name=f"{prefix}expand_BN", **bn)(x)
        x = L.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    else:
        prefix = "expanded_conv_"  # the first block has no expansion (t = 1)
    if stride == 2:
        x = L.ZeroPadding2D(_correct_pad(x.shape), name=f"{prefix}pad")(x)
    x = L.DepthwiseConv2D(3, strides=stride, padding="same" if stride == 1 else "valid",
                          use_bias=False, name=f"{prefix}depthwise")(x)
    x = L.BatchNormalization(name=f"{prefix}depthwise_BN", **bn)(x)
    x = L.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    # Linear bottleneck: no activation after the projection.
    x = L.Conv2D(out_channels, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = L.BatchNormalization(name=f"{prefix}project_BN", **bn)(x)
    if in_channels == out_channels and stride == 1:
        return L.Add(name=f"{prefix}add")([inputs, x])
    return x


def _correct_pad(shape) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding before a 3x3 stride-2 valid conv that matches TF "same" (keras' correct_pad)."""
    h, w = shape[1], shape[2]
    adjust = (1, 1) if h is None else (1 - h % 2, 1 - w % 2)
    return ((1 - adjust[0], 1), (1 - adjust[1], 1))


register(ModelSpec(
    name="mobilenet", family="mobilenet", builder=mobilenet_v1,
    description="MobileNet v1: depthwise separable convs, width multiplier --alpha",
    default_input_shape=(224, 224, 3), default_classes=1000, min_size=32,
    family_options={"alpha": 1.0},
    facts=(
        PaperFact("params", 4_253_864, "C", "keras.applications.MobileNet count; paper: 4.2M"),
        PaperFact("macs", 569_000_000, "C", "MobileNet v1 paper, Table 6", digits=3),
        PaperFact("macs", 325_000_000, "C", "MobileNet v1 paper, Table 6", digits=3,
                  options={"alpha": 0.75}),
        PaperFact("macs", 149_000_000, "C", "MobileNet v1 paper, Table 6", digits=3,
                  options={"alpha": 0.5}),
        PaperFact("macs", 41_000_000, "C", "MobileNet v1 paper, Table 6", digits=2,
                  options={"alpha": 0.25}),
        PaperFact("macs", 418_000_000, "C", "MobileNet v1 paper, Table 7", digits=3,
                  options={"input_shape": (192, 192, 3)}),
        PaperFact("macs", 290_000_000, "C", "MobileNet v1 paper, Table 7 (we count 290.7M)",
                  digits=2,
                  options={"input_shape": (160, 160, 3)}),
        PaperFact("macs", 186_000_000, "C", "MobileNet v1 paper, Table 7", digits=3,
                  options={"input_shape": (128, 128, 3)}),
    ),
    recipe=Recipe(48, epochs=30, batch_size=64, lr=2e-3, warmup_epochs=2, shift=0.125),
))
register(ModelSpec(
    name="mobilenetv2", family="mobilenet", builder=mobilenet_v2,
    description="MobileNet v2: inverted residuals with linear bottlenecks, --alpha",
    default_input_shape=(224, 224, 3), default_classes=1000, min_size=32,
    family_options={"alpha": 1.0},
    facts=(
        PaperFact("params", 3_538_984, "C", "keras.applications.MobileNetV2 count; paper: 3.4M"),
        PaperFact("macs", 300_000_000, "C", "MobileNet v2 paper, Table 3", digits=1),
    ),
    recipe=Recipe(48, epochs=30, batch_size=64, lr=2e-3, warmup_epochs=2, shift=0.125),
))
