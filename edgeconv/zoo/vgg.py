"""VGG: article B's CIFAR network (Conv2D vs SeparableConv2D) and article C's VGG16."""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.errors import EdgeconvError
from edgeconv.zoo._heads import fc4096_classifier
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register
from edgeconv.zoo.recipe import Recipe

# Article B: six 3x3 convs in three VGG blocks on 32x32x3, each block closed by a 2x2 max pool.
CIFAR_BLOCKS = (64, 128, 256)
# Filters of blocks 1..4: --blocks N takes the first N (the depth / kernel sweep's depths).
CIFAR_WIDTHS = (64, 128, 256, 512)
# The family options of the pair: article B's network by default, the sweep's points on request.
CIFAR_OPTIONS = {"blocks": len(CIFAR_BLOCKS), "kernel": 3}


def _vgg_cifar(opts: ModelOptions, separable: bool, name: str,
               blocks: tuple[int, ...] = CIFAR_BLOCKS, kernel: int = 3):
    """`blocks` and `kernel` vary only in the depth / kernel sweep (edgeconv.zoo.sweep)."""
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = inputs
    for block, filters in enumerate(blocks, start=1):
        for conv in (1, 2):
            prefix = f"block{block}_conv{conv}"
            # Article B counts a bias on the pointwise conv (n*1*1*c + n); SeparableConv2D has it.
            if separable:
                x = L.SeparableConv2D(filters, kernel, padding="same", name=prefix)(x)
            else:
                x = L.Conv2D(filters, kernel, padding="same", name=prefix)(x)
            # BatchNorm lets the separable variant train on small datasets without collapsing.
            x = L.BatchNormalization(name=f"{prefix}_bn")(x)
            x = L.ReLU(name=f"{prefix}_relu")(x)
        x = L.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dropout(0.3, name="dropout")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name=name)


def _from_options(opts: ModelOptions, separable: bool, name: str):
    """The pair at `--blocks` and `--kernel` (article B's network when left out)."""
    blocks = opts.blocks or CIFAR_OPTIONS["blocks"]
    h, w, _ = opts.input_shape
    # Each block halves H and W (a 2x2 max pool): the spec's min_size is for 3 blocks only.
    if min(h, w) < 2 ** blocks:
        raise EdgeconvError(f"model '{name.replace('_', '-')}' with --blocks {blocks} needs H and"
                            f" W >= {2 ** blocks} (each block halves them); got"
                            f" {h}x{w}")
    return _vgg_cifar(opts, separable, name, blocks=CIFAR_WIDTHS[:blocks],
                      kernel=opts.kernel or CIFAR_OPTIONS["kernel"])


def vgg_cifar(opts: ModelOptions):
    """Article B baseline: six regular 3x3 convs (~1.2M params)."""
    return _from_options(opts, separable=False, name="vgg_cifar")


def separable_vgg_cifar(opts: ModelOptions):
    """Article B: the same network with every conv depthwise separable (~200k params)."""
    return _from_options(opts, separable=True, name="separable_vgg_cifar")


# VGG16 stages: (convs per stage, filters).
VGG16_STAGES = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def vgg16(opts: ModelOptions):
    """Article C: VGG16, 3x3 convs, 2x2 pools, three FC layers (~138M params)."""
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = inputs
    for block, (convs, filters) in enumerate(VGG16_STAGES, start=1):
        for conv in range(1, convs + 1):
            x = L.Conv2D(filters, 3, padding="same", activation="relu",
                         name=f"block{block}_conv{conv}")(x)
        x = L.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    outputs = fc4096_classifier(L, x, opts.classes, first=1)
    return k.Model(inputs, outputs, name="vgg16")


register(ModelSpec(
    name="vgg-cifar", family="vgg", builder=vgg_cifar,
    description="Article B baseline: 6-conv VGG network on 32x32x3 with regular Conv2D",
    default_input_shape=(32, 32, 3), default_classes=10, min_size=8,
    family_options=dict(CIFAR_OPTIONS),
    facts=(PaperFact("params", 1_200_000, "B", digits=2),),
    recipe=Recipe(32, epochs=20),
))
register(ModelSpec(
    name="separable-vgg-cifar", family="vgg", builder=separable_vgg_cifar,
    description="Article B: the same VGG network with SeparableConv2D everywhere",
    default_input_shape=(32, 32, 3), default_classes=10, min_size=8,
    family_options=dict(CIFAR_OPTIONS),
    facts=(PaperFact("params", 200_000, "B", digits=1),),
    recipe=Recipe(32, epochs=30),
))
register(ModelSpec(
    name="vgg16", family="vgg", builder=vgg16,
    description="Article C: VGG16 (ImageNet-shaped, 224x224x3, ~138M params)",
    default_input_shape=(224, 224, 3), default_classes=1000, min_size=32,
    facts=(PaperFact("params", 138_357_544, "C", "the article rounds it to ~138M"),),
    recipe=Recipe(32, epochs=20, lr=1e-4),
))
