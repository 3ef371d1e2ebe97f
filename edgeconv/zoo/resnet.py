"""Article C's deeper nets: ResNet-18 (basic blocks) and ResNet-50/101/152 (bottleneck blocks).

Residual H(x) = x + F(x); when a block changes the shape (stride 2 or more channels) the skip
path is a 1x1 conv (+ BatchNorm), as the article says. ResNet-50/101/152 follow
`keras.applications.ResNet50/101/152` layer for layer (the original v1: the stride sits on
the block's first 1x1 conv, convs carry a bias before BatchNorm), so their parameter counts
equal Keras' exactly; a test holds us to it. ResNet-18 has no keras.applications
counterpart: it follows the paper's Table 1 (two 3x3 convs per block, no conv bias) and
torchvision's reference implementation, whose 11,689,512 trainable params it reproduces.
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register

EPSILON = 1.001e-5  # keras.applications' BatchNorm epsilon
# Blocks per stage (conv2_x .. conv5_x), the paper's Table 1.
BOTTLENECK_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
BASIC_DEPTHS = {18: (2, 2, 2, 2)}
STAGE_FILTERS = (64, 128, 256, 512)


def _stem(L, inputs, bias: bool):
    x = L.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = L.Conv2D(64, 7, strides=2, use_bias=bias, name="conv1_conv")(x)
    x = L.BatchNormalization(epsilon=EPSILON, name="conv1_bn")(x)
    x = L.Activation("relu", name="conv1_relu")(x)
    x = L.ZeroPadding2D(1, name="pool1_pad")(x)
    return L.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def _bottleneck(L, x, filters: int, stride: int, project: bool, name: str):
    """1x1 (stride) -> 3x3 -> 1x1 x4; a 1x1 conv on the skip when the shape changes."""
    if project:
        shortcut = L.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = L.BatchNormalization(epsilon=EPSILON, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = L.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = L.BatchNormalization(epsilon=EPSILON, name=f"{name}_1_bn")(x)
    x = L.Activation("relu", name=f"{name}_1_relu")(x)
    x = L.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = L.BatchNormalization(epsilon=EPSILON, name=f"{name}_2_bn")(x)
    x = L.Activation("relu", name=f"{name}_2_relu")(x)
    x = L.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = L.BatchNormalization(epsilon=EPSILON, name=f"{name}_3_bn")(x)
    x = L.Add(name=f"{name}_add")([shortcut, x])
    return L.Activation("relu", name=f"{name}_out")(x)


def _basic(L, x, filters: int, stride: int, project: bool, name: str):
    """3x3 (stride) -> 3x3; a 1x1 conv on the skip when the shape changes."""
    if project:
        shortcut = L.Conv2D(filters, 1, strides=stride, use_bias=False,
                            name=f"{name}_0_conv")(x)
        shortcut = L.BatchNormalization(epsilon=EPSILON, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    if stride > 1:  # torchvision's padding=1 on a stride-2 3x3: symmetric, unlike TF "same"
        x = L.ZeroPadding2D(1, name=f"{name}_1_pad")(x)
    x = L.Conv2D(filters, 3, strides=stride, padding="valid" if stride > 1 else "same",
                 use_bias=False, name=f"{name}_1_conv")(x)
    x = L.BatchNormalization(epsilon=EPSILON, name=f"{name}_1_bn")(x)
    x = L.Activation("relu", name=f"{name}_1_relu")(x)
    x = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
    x = L.BatchNormalization(epsilon=EPSILON, name=f"{name}_2_bn")(x)
    x = L.Add(name=f"{name}_add")([shortcut, x])
    return L.Activation("relu", name=f"{name}_out")(x)


def _resnet(opts: ModelOptions, depth: int):
    k = keras()
    L = k.layers
    bottleneck = depth in BOTTLENECK_DEPTHS
    blocks = BOTTLENECK_DEPTHS[depth] if bottleneck else BASIC_DEPTHS[depth]
    block = _bottleneck if bottleneck else _basic
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = _stem(L, inputs, bias=bottleneck)
    for stage, (count, filters) in enumerate(zip(blocks, STAGE_FILTERS), start=2):
        for index in range(1, count + 1):
            stride = 2 if index == 1 and stage > 2 else 1
            # The first block of a stage changes the shape (more channels, or stride 2),
            # except conv2_x of ResNet-18, whose 64 channels stay 64 at stride 1.
            project = index == 1 and (bottleneck or stage > 2)
            x = block(L, x, filters, stride, project, f"conv{stage}_block{index}")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name=f"resnet{depth}")


def resnet18(opts: ModelOptions):
    return _resnet(opts, 18)


def resnet50(opts: ModelOptions):
    return _resnet(opts, 50)


def resnet101(opts: ModelOptions):
    return _resnet(opts, 101)


def resnet152(opts: ModelOptions):
    return _resnet(opts, 152)


def skip_paths(model) -> list[tuple[str, str, bool]]:
    """(block, skip path, whether the block changes its input's shape) for every residual Add:
    the skip path is "1x1 conv" or "identity". Article C: a 1x1 conv exactly when shapes
    differ."""
    found = []
    for layer in model.layers:
        if type(layer).__name__ != "Add":
            continue
        block = layer.name.removesuffix("_add")
        projected = any(l.name == f"{block}_0_conv" for l in model.layers)
        conv = model.get_layer(f"{block}_0_conv") if projected else None
        block_in = (conv.input if conv is not None else layer.input[0])
        changes = tuple(block_in.shape[1:]) != tuple(layer.output.shape[1:])
        skip = ("1x1 conv" if conv is not None and tuple(conv.kernel_size) == (1, 1)
                else "identity" if conv is None else "other")
        found.append((block, skip, changes))
    return found


# The paper's Table 1 prints FLOPs (multiply-adds) per network: 1.8, 3.8, 7.6, 11.3 x 10^9.
# ResNet-50 counts 3.86 x 10^9 here (docs/zoo.md): the fact is left to the other three.
_TABLE1 = {18: PaperFact("macs", 1_800_000_000, "C", "the ResNet paper's Table 1", digits=2),
           101: PaperFact("macs", 7_600_000_000, "C", "the ResNet paper's Table 1", digits=2),
           152: PaperFact("macs", 11_300_000_000, "C", "the ResNet paper's Table 1", digits=3)}
for _depth, _builder in ((18, resnet18), (50, resnet50), (101, resnet101), (152, resnet152)):
    register(ModelSpec(
        name=f"resnet{_depth}", family="resnet", builder=_builder,
        description=(f"Article C: ResNet-{_depth}, residual "
                     f"{'bottleneck' if _depth >= 50 else 'basic'} blocks, 1x1 conv on the"
                     " skip when shapes differ"),
        # Five stride-2 stages: 32 is the smallest side that keeps a whole pixel at the end
        # (keras.applications' own minimum).
        default_input_shape=(224, 224, 3), default_classes=1000, min_size=32,
        facts=(_TABLE1[_depth],) if _depth in _TABLE1 else (),
    ))
