"""Splits: deterministic stratified train/val/test splits of a `RawDataset`, preprocessed.

`prepare` turns a `RawDataset` into a `PreparedDataset`; `load` is `load_dataset` + `prepare`;
`calibration_sample` draws the stratified images that calibrate int8 quantisation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv.data.preprocess import (
    NORMALISATIONS,
    Preprocessing,
    _is_int,
    _make_preprocessing,
)
from edgeconv.data.sources import (
    DEFAULT_DATASET,
    RawDataset,
    _labels,
    _same_image_shape,
    load_dataset,
)
from edgeconv.errors import EdgeconvError


@dataclass(frozen=True, eq=False)
class Split:
    """Preprocessed float32 NHWC images and their int64 labels."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, eq=False)
class PreparedDataset:
    """Deterministic train/val/test splits, preprocessed for one model input shape."""

    name: str
    source: str
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    train: Split
    val: Split
    test: Split
    seed: int

    # Images int8 is calibrated on come from the train split, never from the measured ones.
    calibration_from_test = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # The measured-data protocol (edgeconv.data.measured), which a user's images satisfy too.
    def subset(self, n: int, seed: int = 0) -> PreparedDataset:
        return evaluation_subset(self, n, seed)

    def draw_calibration(self, samples: int, seed: int):
        from edgeconv.quant.calibration import draw_calibration

        return draw_calibration(self, samples, seed)

    def recorded(self) -> dict[str, Any]:
        """What the manifest's dataset block adds to `summary()` to read them again: the
        name and seed are enough for a named dataset."""
        return {}

    def summary(self) -> dict[str, Any]:
        """JSON-ready: name, source, classes, per-split (and per-class) counts, preprocessing."""
        k = len(self.class_names)
        splits = {}
        for split_name, split in (("train", self.train), ("val", self.val), ("test", self.test)):
            counts = np.bincount(split.y, minlength=k) if len(split.y) else np.zeros(k, int)
            splits[split_name] = {
                "count": int(len(split.y)),
                "per_class": {n: int(c) for n, c in zip(self.class_names, counts)},
            }
        return {
            "name": self.name,
            "source": self.source,
            "classes": list(self.class_names),
            "num_classes": k,
            "splits": splits,
            "preprocessing": self.preprocessing.to_dict(),
            "seed": self.seed,
        }


def prepare(
    raw: RawDataset,
    input_shape: Sequence[int | None] = (None, None, None),
    *,
    normalisation: str = "unit",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    limit: int | None = None,
) -> PreparedDataset:
    """Split `raw` deterministically (stratified) and preprocess it for `input_shape`.

    A dataset with an official test split keeps it and carves val from train
    (`test_fraction` unused); others are split train/val/test. `limit` caps the train split
    only (stratified), so val/test stay comparable between quick and full runs.
    """
    _check_raw(raw)
    _check_fractions(val_fraction, test_fraction)
    seed = _check_seed(seed)
    if limit is not None and not (_is_int(limit) and limit >= 1):
        raise EdgeconvError(f"limit must be a positive integer or None; got {limit!r}")
    preprocessing = _make_preprocessing(raw.x_train.shape[1:], input_shape, normalisation)
    rng = np.random.default_rng(seed)
    n_classes = len(raw.class_names)
    if raw.has_test_split:
        train_idx, val_idx, _ = _stratified_split(raw.y_train, n_classes, val_fraction, 0.0, rng)
        x_test, y_test = raw.x_test, raw.y_test
    else:
        train_idx, val_idx, test_idx = _stratified_split(
            raw.y_train, n_classes, val_fraction, test_fraction, rng
        )
        x_test, y_test = raw.x_train[test_idx], raw.y_train[test_idx]
    if limit is not None and limit < len(train_idx):
        keep = _stratified_pick(raw.y_train[train_idx], n_classes, int(limit), rng)
        train_idx = train_idx[keep]
    _check_memory(preprocessing, len(train_idx) + len(val_idx) + len(y_test))

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(preprocessing.apply(x), np.asarray(y, dtype=np.int64))

    return PreparedDataset(
        name=raw.name,
        source=raw.source,
        class_names=tuple(raw.class_names),
        preprocessing=preprocessing,
        train=split(raw.x_train[train_idx], raw.y_train[train_idx]),
        val=split(raw.x_train[val_idx], raw.y_train[val_idx]),
        test=split(x_test, y_test),  # type: ignore[arg-type]
        seed=seed,
    )


def _check_raw(raw: RawDataset) -> None:
    k = len(raw.class_names)
    if k < 2:
        raise EdgeconvError(f"dataset {raw.name} needs at least 2 classes; has {k}")
    pairs = [("train", raw.x_train, raw.y_train)]
    if raw.x_test is not None or raw.y_test is not None:
        pairs.append(("test", raw.x_test, raw.y_test))
    for split, x, y in pairs:
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise EdgeconvError(
                f"dataset {raw.name}: {split} images must be uint8 (N, H, W, C); got {got}"
            )
        _labels(Path(raw.source), split, y, len(x), k)
    if len(raw.x_train) == 0:
        raise EdgeconvError(f"dataset {raw.name} has no training images")
    if raw.x_test is not None and raw.x_test.shape[1:] != raw.x_train.shape[1:]:
        _same_image_shape(Path(raw.source), raw.x_train, raw.x_test)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for what, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f < 1.0:
            raise EdgeconvError(f"{what} must be a number in [0, 1); got {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise EdgeconvError(
            f"val_fraction + test_fraction must be below 1 to leave training images; got "
            f"{val_fraction} + {test_fraction}"
        )


def _check_memory(preprocessing: Preprocessing, images: int,
                  hint: str = "choose a smaller --input-shape") -> None:
    """Refuse, before allocating, images that as float32 would not fit in this machine's
    memory (a 20000x20000 --input-shape, or 4096x4096 for a whole dataset; a user's model
    with a 100000x100000 input). `hint`: what the user can change."""
    h, w, c = preprocessing.input_shape
    needed = images * h * w * c * 4
    total = _physical_memory()
    if total is not None and needed > total:
        raise EdgeconvError(
            f"{images:,} images at {h}x{w}x{c} need {needed / 2**30:,.1f} GiB as float32; this"
            f" machine has {total / 2**30:,.1f} GiB: {hint}")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows)
        return None


def _check_seed(seed: Any) -> int:
    if not _is_int(seed) or seed < 0:
        raise EdgeconvError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def _allocate(
    counts: np.ndarray, total: int, caps: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Share `total` over classes in proportion to `counts` (largest remainder), within caps.

    Equal remainders are ordered by `rng`, so ties do not always favour low class numbers.
    """
    alloc = np.zeros(len(counts), dtype=np.int64)
    if total <= 0 or counts.sum() == 0:
        return alloc
    ideal = counts * (total / counts.sum())
    alloc = np.minimum(np.floor(ideal).astype(np.int64), caps)
    order = np.lexsort((rng.permutation(len(counts)), -(ideal - alloc)))
    left = total - int(alloc.sum())
    while left > 0:
        grew = False
        for i in order:
            if left > 0 and alloc[i] < caps[i]:
                alloc[i] += 1
                left -= 1
                grew = True
        if not grew:
            break
    return alloc


def _class_perms(y: np.ndarray, n_classes: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of each class, shuffled; drawn in class order so results depend on seed only."""
    return [rng.permutation(np.flatnonzero(y == c)) for c in range(n_classes)]


def _stratified_split(
    y: np.ndarray, n_classes: int, val_fraction: float, test_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test index arrays with class proportions kept; every class keeps >= 1 train."""
    perms = _class_perms(y, n_classes, rng)
    counts = np.array([len(p) for p in perms], dtype=np.int64)
    room = np.maximum(counts - 1, 0)
    n_test = _allocate(counts, round(test_fraction * len(y)), room, rng)
    n_val = _allocate(counts, round(val_fraction * len(y)), room - n_test, rng)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for perm, t, v in zip(perms, n_test, n_val):
        parts[2].append(perm[:t])
        parts[1].append(perm[t:t + v])
        parts[0].append(perm[t + v:])
    train, val, test = (rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)
    return train, val, test


def _stratified_pick(
    y: np.ndarray, n_classes: int, n: int, rng: np.random.Generator, cover: bool = False
) -> np.ndarray:
    """Positions of `n` items of `y`, proportional per class (>= 1 each when `cover`)."""
    perms = _class_perms(y, n_classes, rng)
    counts = np.array([len(p) for p in perms], dtype=np.int64)
    base = np.zeros(n_classes, dtype=np.int64)
    if cover and n >= int((counts > 0).sum()):
        base = np.minimum(counts, 1)
    take = base + _allocate(counts, n - int(base.sum()), counts - base, rng)
    picked = np.concatenate([p[:k] for p, k in zip(perms, take)])
    return rng.permutation(picked).astype(np.int64)


def calibration_sample(data: PreparedDataset, n: int = 100, seed: int = 0) -> np.ndarray:
    """`n` preprocessed train images, stratified, covering every class when n allows.

    Used to calibrate quantisation; deterministic for a given `seed`. Asking for more images
    than the train split holds returns all of them.
    """
    return data.train.x[calibration_indices(data, n, seed)]


def calibration_indices(data: PreparedDataset, n: int = 100, seed: int = 0) -> np.ndarray:
    """Indices into the train split of `calibration_sample`'s images (for their labels)."""
    if not _is_int(n) or n < 1:
        raise EdgeconvError(f"calibration sample size must be a positive integer; got {n!r}")
    rng = np.random.default_rng(_check_seed(seed))
    y = data.train.y
    n = min(int(n), len(y))
    return _stratified_pick(y, len(data.class_names), n, rng, cover=True)


def evaluation_subset(data: PreparedDataset, n: int, seed: int = 0) -> PreparedDataset:
    """The same dataset with its test split cut to `n` images, stratified and seeded.

    For measurements that need only a few images (untrained weights, whose accuracy means
    nothing, at 224x224 where each image costs GMACs); `n` >= the split returns it whole.
    """
    if not _is_int(n) or n < 1:
        raise EdgeconvError(f"evaluation sample size must be a positive integer; got {n!r}")
    if n >= len(data.test.y):
        return data
    rng = np.random.default_rng(_check_seed(seed))
    picked = np.sort(_stratified_pick(data.test.y, len(data.class_names), int(n), rng,
                                      cover=True))
    return replace(data, test=Split(x=data.test.x[picked], y=data.test.y[picked]))


def load(
    name: str | os.PathLike[str] = DEFAULT_DATASET,
    input_shape: Sequence[int | None] = (None, None, None),
    data_dir: str | Path | None = None,
    download: bool = False,
    normalisation: str = "unit",
    seed: int = 0,
    limit: int | None = None,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> PreparedDataset:
    """`load_dataset` + `prepare` in one call."""
    raw = load_dataset(name, data_dir=data_dir, download=download)
    return prepare(
        raw, input_shape, normalisation=normalisation, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction, limit=limit,
    )


def load_recorded(name: str | os.PathLike[str], preprocessing: dict[str, Any], *,
                  data_dir: str | Path | None = None, seed: int = 0,
                  made: str = "the model was made") -> PreparedDataset:
    """The dataset prepared exactly as a run or export recorded it (`Preprocessing.to_dict()`).

    Export, quant-report and bench score and calibrate on the images training saw; dataset
    files that now prepare differently (another --data-dir, another version) are refused.
    """
    pair = (preprocessing.get("scale"), preprocessing.get("offset"))
    normalisation = next((n for n, known in NORMALISATIONS.items() if known == pair), "unit")
    data = load(name, input_shape=tuple(preprocessing["input_shape"]), data_dir=data_dir,
                seed=seed, normalisation=normalisation)
    if data.preprocessing.to_dict() != preprocessing:
        raise EdgeconvError(f"{name} now prepares differently from when {made}"
                            f" ({data.preprocessing.to_dict()} vs {preprocessing});"
                            " check --data-dir")
    return data
