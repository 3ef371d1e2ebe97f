"""Article E's 4-layer MLP on 28x28 images: three hidden Dense(256) layers and the classifier.

Its Dense layers hold 784*256+256 = 200,960, 256*256+256 = 65,792 (twice) and 256*10+10 =
2,570 parameters: 335,114 in all, 1.34 MB in float32, the article's "~340k, ~1.3 MB".
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register
from edgeconv.zoo.recipe import Recipe

HIDDEN = (256, 256, 256)


def mlp_mnist(opts: ModelOptions):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Flatten(name="flatten")(inputs)
    for i, units in enumerate(HIDDEN, start=1):
        x = L.Dense(units, activation="relu", name=f"fc{i}")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name="mlp_mnist")


register(ModelSpec(
    name="mlp-mnist", family="mlp", builder=mlp_mnist,
    description="Article E: 4-layer MLP on 28x28x1 (three Dense 256 + classifier)",
    default_input_shape=(28, 28, 1), default_classes=10,
    facts=(PaperFact("params", 340_000, "E", "200,960 + 65,792 + 65,792 + 2,570 = 335,114",
                     digits=2),),
    recipe=Recipe(28, epochs=20),
))
