"""Article A's MNIST models (dense head -> FCN -> global-pool FCN) and article E's LeNet-5."""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._heads import conv_classifier
from edgeconv.zoo._registry import ModelOptions, ModelSpec, PaperFact, register
from edgeconv.zoo.recipe import Recipe


def dense_mnist(opts: ModelOptions):
    """DENSE_MNIST_MODEL: one conv, then a fully-connected head that holds ~99.9% of the params."""
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(32, 3, padding="valid", activation="relu", name="conv1")(inputs)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(128, activation="relu", name="fc1")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name="dense_mnist")


def fcn_mnist(opts: ModelOptions):
    """FCN_MNIST_MODEL: a 7x7 valid conv replaces the FC layer, a 1x1 conv sets the classes."""
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)
    x = L.Conv2D(32, 7, padding="valid", activation="relu", name="conv3")(x)
    outputs = conv_classifier(L, x, opts.classes)
    return k.Model(inputs, outputs, name="fcn_mnist")


def gap_mnist(opts: ModelOptions):
    """ARBITRARY_MNIST_MODEL: global max pool over the whole map, so any H x W is accepted."""
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.GlobalMaxPooling2D(keepdims=True, name="global_pool")(x)
    outputs = conv_classifier(L, x, opts.classes)
    return k.Model(inputs, outputs, name="gap_mnist")


def lenet5(opts: ModelOptions):
    """Article E's TF2 LeNet-5: conv -> pool -> relu twice, then three dense layers."""
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    x = L.Conv2D(6, 3, name="conv1")(inputs)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.Conv2D(16, 3, name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(120, activation="relu", name="fc1")(x)
    x = L.Dense(84, activation="relu", name="fc2")(x)
    outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    return k.Model(inputs, outputs, name="lenet5")


MNIST = (28, 28, 1)

register(ModelSpec(
    name="dense-mnist", family="fcn", builder=dense_mnist,
    description="Article A baseline: conv + fully-connected head (fixed input size)",
    default_input_shape=MNIST, default_classes=10, min_size=3,
    facts=(PaperFact("params", 2_770_634, "A"),),
    recipe=Recipe(28, epochs=15),
))
register(ModelSpec(
    name="fcn-mnist", family="fcn", builder=fcn_mnist,
    description="Article A: fully convolutional, 7x7 conv + 1x1 conv replace the FC head",
    default_input_shape=MNIST, default_classes=10, fixed_size=(28, 28),
    facts=(PaperFact("params", 55_338, "A"),),
    recipe=Recipe(28, epochs=60, lr=2e-3, patience=15, shift=0.125),
))
register(ModelSpec(
    name="gap-mnist", family="fcn", builder=gap_mnist,
    description="Article A: global max pool + 1x1 conv head, accepts any input H x W",
    default_input_shape=(None, None, 1), default_classes=10, nominal_size=(28, 28),
    facts=(PaperFact("params", 5_130, "A"),),
    recipe=Recipe(28, epochs=40, lr=3e-3),
))
register(ModelSpec(
    name="lenet5", family="fcn", builder=lenet5,
    description="Article E: LeNet-5 (TF2 tutorial version) on 28x28x1",
    default_input_shape=MNIST, default_classes=10, min_size=10,
    recipe=Recipe(28),
))
