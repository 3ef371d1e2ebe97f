"""Article C's GoogLeNet (Inception v1), built from the paper's Table 1 (Szegedy et al. 2014).

Each Inception module runs four branches side by side and concatenates them: a 1x1 conv; a
1x1 reduce then 3x3; a 1x1 reduce then 5x5; a 3x3 max pool then a 1x1 projection. The 1x1
reductions are article C's bottleneck (`inception5x5-bottleneck` is one branch of 3a).
keras.applications has no GoogLeNet, so the reference is the paper's table: each module's
output depth and each column (#1x1, #3x3 reduce, ...) are the table's, and each module's
multiply-adds equal the table's "ops" column (a test; inception 5a is the exception the
table itself gets wrong, see docs/zoo.md).

Left out, with reasons: the local response normalisation after conv1 and conv2 (no
parameters; the paper's later versions drop it) and the two auxiliary classifiers (training
only; the paper discards them at inference). Convs use ReLU and a bias as in the paper.
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, register

# Table 1: module -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
POOL_AFTER = ("3b", "4e")  # 3x3/2 max pools between the stages
# The table's "ops" column (millions of multiply-adds) per module at 224x224.
TABLE_OPS_M = {"3a": 128, "3b": 304, "4a": 73, "4b": 88, "4c": 100, "4d": 119, "4e": 170,
               "5a": 54, "5b": 71}


def _conv(L, x, filters: int, size: int, name: str, strides: int = 1):
    return L.Conv2D(filters, size, strides=strides, padding="same", activation="relu",
                    name=name)(x)


def inception_module(L, x, name: str, columns: tuple[int, ...]):
    c1, r3, c3, r5, c5, proj = columns
    b1 = _conv(L, x, c1, 1, f"inception{name}_1x1")
    b3 = _conv(L, _conv(L, x, r3, 1, f"inception{name}_3x3_reduce"), c3, 3,
               f"inception{name}_3x3")
    b5 = _conv(L, _conv(L, x, r5, 1, f"inception{name}_5x5_reduce"), c5, 5,
               f"inception{name}_5x5")
    bp = L.MaxPooling2D(3, strides=1, padding="same", name=f"inception{name}_pool")(x)
    bp = _conv(L, bp, proj, 1, f"inception{name}_pool_proj")
    return L.Concatenate(name=f"inception{name}_concat")([b1, b3, b5, bp])


def googlenet(opts: ModelOptions):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = _conv(L, inputs, 64, 7, "conv1_7x7", strides=2)
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv(L, x, 64, 1, "conv2_3x3_reduce")
    x = _conv(L, x, 192, 3, "conv2_3x3")
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    for name, columns in MODULES.items():
        x = inception_module(L, x, name, columns)
        if name in POOL_AFTER:
            x = L.MaxPooling2D(3, strides=2, padding="same", name=f"pool_{name}")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)  # the table's 7x7/1 average pool
    x = L.Dropout(0.4, name="dropout")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name="googlenet")


register(ModelSpec(
    name="googlenet", family="googlenet", builder=googlenet,
    description="Article C: GoogLeNet / Inception v1 (22 layers, 1x1 bottlenecks, 224x224x3)",
    # Five stride-2 steps ("same" padding): 32 keeps whole pixels to the 7x7 stage's end.
    default_input_shape=(224, 224, 3), default_classes=1000, min_size=32,
))
