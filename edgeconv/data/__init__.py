"""Datasets: load them offline from standard files, split them, preprocess them.

Pipeline: `load_dataset` -> `RawDataset` (uint8 NHWC images as stored, int64 labels; see
`sources`); `prepare` -> `PreparedDataset` (deterministic stratified train/val/test splits, see
`splits`, of float32 NHWC images after the recorded `Preprocessing`, see `preprocess`).

Everything a user can get wrong (a name, a path, a corrupt file) raises `EdgeconvError` with a
one-line message. Only the stdlib and numpy are imported at module level; scikit-learn, Pillow
and Keras are imported inside the functions that need them (see `edgeconv._lazy`).
"""

from __future__ import annotations

from edgeconv.data.preprocess import NORMALISATIONS, Preprocessing
from edgeconv.data.sources import (
    CIFAR_CACHE_LAYOUTS as CIFAR_CACHE_LAYOUTS,  # not in __all__; the tests parametrise on it
)
from edgeconv.data.sources import (
    DATASETS,
    DEFAULT_DATASET,
    IMAGE_EXTENSIONS,
    RawDataset,
    keras_cache_dirs,
    load_dataset,
)
from edgeconv.data.splits import (
    PreparedDataset,
    Split,
    calibration_indices,
    calibration_sample,
    evaluation_subset,
    load,
    load_recorded,
    prepare,
)

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "IMAGE_EXTENSIONS",
    "NORMALISATIONS",
    "PreparedDataset",
    "Preprocessing",
    "RawDataset",
    "Split",
    "calibration_indices",
    "calibration_sample",
    "evaluation_subset",
    "keras_cache_dirs",
    "load",
    "load_dataset",
    "load_recorded",
    "prepare",
]
