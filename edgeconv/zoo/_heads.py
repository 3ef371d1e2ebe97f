"""Classifier heads more than one family shares."""

from __future__ import annotations


def conv_classifier(L, x, classes: int):
    """Article A's head: a 1x1 conv sets the class count, then squeeze and softmax.

    `x` must already be 1x1 spatially (a valid conv or a global pool brought it there).
    """
    x = L.Conv2D(classes, 1, name="conv_classes")(x)
    x = L.Reshape((classes,), name="squeeze")(x)
    return L.Softmax(name="predictions")(x)


def fc4096_classifier(L, x, classes: int, first: int):
    """AlexNet's and VGG's head: two 4096-unit ReLU layers with dropout 0.5, then softmax.

    Layers are named fc{first}, fc{first + 1} as each paper numbers them (fc6/fc7, fc1/fc2).
    """
    x = L.Flatten(name="flatten")(x)
    for n in (first, first + 1):
        x = L.Dense(4096, activation="relu", name=f"fc{n}")(x)
        x = L.Dropout(0.5, name=f"fc{n}_dropout")(x)
    return L.Dense(classes, activation="softmax", name="predictions")(x)
