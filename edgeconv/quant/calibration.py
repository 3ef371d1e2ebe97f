"""The int8 calibration images, and whether they match training: the checks behind users'
silent int8 collapses.

A quantised model is only as good as its calibration images: normalised twice (values in
[0, 1/255]) or not at all (values in [0, 255]), the activation ranges are wrong by a factor
of 255 and accuracy collapses while every file converts without complaint. These checks are
cheap statistics over arrays the exporter already holds; each returns plain sentences.

Export and `edgeconv quant-report` draw the images with `draw_calibration`, so the report
re-draws exactly the images the export calibrated on (same split, seed and count).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

CALIBRATION_SPLIT = "train"  # calibration images come from it, never from the test split
MIN_SAMPLES = 100  # below this, TFLite's guide and onnxruntime's examples warn of noisy ranges
DOMINANCE = 2.0  # a class holding more than twice its fair share of the calibration set


@dataclass(frozen=True)
class CalibrationSet:
    """The images int8 is calibrated on (preprocessed as in training), and how they were drawn."""

    images: np.ndarray
    labels: np.ndarray
    seed: int
    split: str = CALIBRATION_SPLIT

    def record(self, method: str) -> dict[str, Any]:
        """What a manifest artifact's options.calibration says about them."""
        return {"samples": len(self.images), "split": self.split, "seed": self.seed,
                "method": method}


def draw_calibration(data, samples: int, seed: int) -> CalibrationSet:
    """`samples` training images, stratified by class and seeded (edgeconv.data)."""
    from edgeconv.data import calibration_indices

    picked = calibration_indices(data, samples, seed=seed)
    return CalibrationSet(data.train.x[picked], data.train.y[picked], seed)


@dataclass(frozen=True)
class CalibrationCheck:
    samples: int
    calibration_range: tuple[float, float]
    expected_range: tuple[float, float]  # what the recorded preprocessing produces
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expected_range(preprocessing: dict[str, Any]) -> tuple[float, float]:
    """The input values the recorded preprocessing yields: uint8 0..255 * scale + offset."""
    ends = sorted((preprocessing["offset"], 255 * preprocessing["scale"] + preprocessing["offset"]))
    return float(ends[0]), float(ends[1])


def check_calibration(calibration: np.ndarray, labels: np.ndarray | None, train: np.ndarray,
                      preprocessing: dict[str, Any], num_classes: int) -> CalibrationCheck:
    """Compare the calibration images with the training images and the preprocessing."""
    low, high = expected_range(preprocessing)
    span = high - low
    cal_low, cal_high = float(calibration.min()), float(calibration.max())
    warnings = []
    cal_span = cal_high - cal_low
    if cal_span > 0 and span > 0:
        ratio = cal_span / span
        if ratio < 1 / 16:
            warnings.append(
                f"calibration values span {cal_low:.3g}..{cal_high:.3g}, {1 / ratio:.0f}x"
                f" narrower than the preprocessing's {low:.3g}..{high:.3g}: normalisation"
                " looks applied twice")
        elif ratio > 16:
            warnings.append(
                f"calibration values span {cal_low:.3g}..{cal_high:.3g}, {ratio:.0f}x wider"
                f" than the preprocessing's {low:.3g}..{high:.3g}: normalisation looks not"
                " applied")
    # The same pipeline on both sides should give close statistics; a shift of several
    # training standard deviations means the calibration images went through another one.
    std = float(train.std()) or 1.0
    shift = abs(float(calibration.mean()) - float(train.mean())) / std
    if shift > 1.0:
        warnings.append(f"calibration mean {calibration.mean():.3g} is {shift:.1f} standard"
                        f" deviations from the training images' {train.mean():.3g}")
    if len(calibration) < MIN_SAMPLES:
        warnings.append(f"only {len(calibration)} calibration images (fewer than"
                        f" {MIN_SAMPLES}): activation ranges may be noisy")
    if labels is not None and len(labels):
        counts = np.bincount(labels, minlength=num_classes)
        share = counts.max() / len(labels)
        if share > DOMINANCE / num_classes:
            warnings.append(f"class {int(counts.argmax())} is {share:.0%} of the calibration"
                            f" images (a fair share is {1 / num_classes:.0%})")
        missing = int(np.sum(counts == 0))
        if missing and len(labels) >= num_classes:
            warnings.append(f"{missing} class(es) have no calibration image")
    return CalibrationCheck(samples=len(calibration), calibration_range=(cal_low, cal_high),
                            expected_range=(low, high), warnings=warnings)


def check_input_quantization(quantization: dict[str, Any] | None,
                             preprocessing: dict[str, Any]) -> list[str]:
    """Does the int8 input's scale and zero-point cover the range the preprocessing makes?"""
    params = (quantization or {}).get("input")
    if not params:
        return []
    low, high = expected_range(preprocessing)
    scale, zero = params["scale"], params["zero_point"]
    try:  # int8, uint8 or int16 (int16x8); older manifests give no dtype: int8
        limits = np.iinfo(params.get("dtype") or "int8")
    except (TypeError, ValueError):
        return []
    qmin, qmax = int(limits.min), int(limits.max)
    covered = ((qmin - zero) * scale, (qmax - zero) * scale)
    span = high - low
    if span <= 0:
        return []
    # int8 calibration may clip a little of the range, or widen it to include 0: allow that.
    tolerance = 0.1 * span
    if covered[0] > low + tolerance or covered[1] < high - tolerance \
            or (covered[1] - covered[0]) > 4 * span:
        return [(f"{params.get('dtype') or 'int8'} input scale {scale:.4g} / zero-point"
                 f" {zero} covers"
                 f" {covered[0]:.3g}..{covered[1]:.3g}, but the preprocessing yields"
                 f" {low:.3g}..{high:.3g}: the input quantisation does not match training")]
    return []
