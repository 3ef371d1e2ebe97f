"""Article C's SqueezeNet v1.0 / v1.1: Fire modules, no FC layer, late downsampling."""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register
from edgeconv.zoo.recipe import Recipe

# (squeeze 1x1, expand 1x1, expand 3x3) for fire2..fire9.
FIRES = ((16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
         (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))
# Max pools (3x3, stride 2) follow conv1 and these fire modules.
POOL_AFTER = {"1.0": (4, 8), "1.1": (3, 5)}


# 18 ReLU convs and no BatchNorm: Keras' default Glorot init halves the signal's variance at
# each one, so conv10 starts at ~1e-5 and nothing trains; He init keeps the variance.
INIT = "he_uniform"


def _fire(L, x, index: int, squeeze: int, expand1: int, expand3: int):
    name = f"fire{index}"
    s = L.Conv2D(squeeze, 1, activation="relu", kernel_initializer=INIT,
                 name=f"{name}_squeeze1x1")(x)
    e1 = L.Conv2D(expand1, 1, activation="relu", kernel_initializer=INIT,
                  name=f"{name}_expand1x1")(s)
    e3 = L.Conv2D(expand3, 3, padding="same", activation="relu", kernel_initializer=INIT,
                  name=f"{name}_expand3x3")(s)
    return L.Concatenate(name=f"{name}_concat")([e1, e3])


def squeezenet(opts: ModelOptions):
    """v1.0: conv1 7x7/2 96; v1.1: conv1 3x3/2 64 and earlier pools (2.4x fewer MACs)."""
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    if opts.version == "1.0":
        x = L.Conv2D(96, 7, strides=2, activation="relu", kernel_initializer=INIT,
                     name="conv1")(inputs)
    else:
        x = L.Conv2D(64, 3, strides=2, activation="relu", kernel_initializer=INIT,
                     name="conv1")(inputs)
    x = L.MaxPooling2D(3, strides=2, name="pool1")(x)
    for index, (squeeze, expand1, expand3) in enumerate(FIRES, start=2):
        x = _fire(L, x, index, squeeze, expand1, expand3)
        if index in POOL_AFTER[opts.version]:
            x = L.MaxPooling2D(3, strides=2, name=f"pool{index}")(x)
    x = L.Dropout(0.5, name="fire9_dropout")(x)
    # conv10 sets the class count; global average pooling replaces any FC layer.
    x = L.Conv2D(opts.classes, 1, activation="relu", kernel_initializer=INIT, name="conv10")(x)
    x = L.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = L.Softmax(name="predictions")(x)
    return k.Model(inputs, outputs, name="squeezenet_v" + opts.version.replace(".", "_"))


register(ModelSpec(
    name="squeezenet", family="squeezenet", builder=squeezenet,
    description="Article C: SqueezeNet Fire modules, AlexNet accuracy with 50x fewer params",
    default_input_shape=(224, 224, 3), default_classes=1000, min_size=35,
    family_options={"version": "1.0"}, version_choices=("1.0", "1.1"),
    facts=(PaperFact("params", 1_248_424, "C"),
           PaperFact("params", 1_235_496, "C", options={"version": "1.1"})),
    recipe=Recipe(48, epochs=30, warmup_epochs=3),
))
