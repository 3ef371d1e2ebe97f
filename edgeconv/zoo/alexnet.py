"""Article C's AlexNet, the heavy baseline SqueezeNet is compared with."""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._heads import fc4096_classifier
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register
from edgeconv.zoo.recipe import Recipe


def alexnet(opts: ModelOptions):
    """AlexNet on 224x224x3 with the article's feature maps (55, 27, 13, 6).

    `groups=2` (default) splits conv2, conv4 and conv5 into two halves as the original two-GPU
    model (and the seed's PyTorch listing) did: 60,965,224 params, the paper's "60M".
    `groups=1` gives the single-tower variant (torchvision's channel counts): 62,378,344.
    """
    k = keras()
    L = k.layers
    g = opts.groups
    inputs = L.Input(shape=opts.input_shape, name="input")
    # conv1 11x11/4 with 2 pixels of padding: (224 + 4 - 11) // 4 + 1 = 55.
    x = L.ZeroPadding2D(2, name="conv1_pad")(inputs)
    x = L.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(x)
    x = L.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = L.Conv2D(256, 5, padding="same", groups=g, activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = L.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = L.Conv2D(384, 3, padding="same", groups=g, activation="relu", name="conv4")(x)
    x = L.Conv2D(256, 3, padding="same", groups=g, activation="relu", name="conv5")(x)
    x = L.MaxPooling2D(3, strides=2, name="pool5")(x)
    outputs = fc4096_classifier(L, x, opts.classes, first=6)
    return k.Model(inputs, outputs, name="alexnet")


register(ModelSpec(
    name="alexnet", family="alexnet", builder=alexnet,
    description="Article C: AlexNet (224x224x3, ~60M params; --groups 2 as the original)",
    default_input_shape=(224, 224, 3), default_classes=1000, min_size=63,
    family_options={"groups": 2},
    facts=(PaperFact("params", 60_000_000, "C", digits=1),),
    recipe=Recipe(64, epochs=20, lr=3e-4),
))
