"""A model's default training recipe, declared beside its builder in the family module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How a model trains by default: small enough for 2 CPU cores in a few minutes."""

    input_size: int  # H = W the images are resized to; channels follow the dataset
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    warmup_epochs: int = 0  # linear learning-rate warm-up from 0 before the cosine decay
    # Training batches only: each image moved by up to this fraction of the input size in x
    # and y (zero fill); the saved model has no augmentation layer.
    shift: float = 0.0
    patience: int = 10  # epochs without a better validation accuracy before stopping
    # BatchNorm moving statistics need many steps to settle: with momentum 0.99 (0.999 in
    # MobileNet v2) and ~40 steps an epoch on digits, inference-mode accuracy sits at chance
    # while training accuracy looks perfect. A faster momentum fixes that on small data.
    bn_momentum: float = 0.9


def generic_recipe(min_size: int) -> Recipe:
    """The recipe of a model that declares none: the defaults at 32x32, or its minimum size."""
    return Recipe(max(32, min_size))
