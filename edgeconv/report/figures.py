"""How sure the report's figures are, as text: an accuracy with its 95% interval, the images
and the dataset it was measured on; an int8 drop with its paired interval; a speed-up as the
ratio of two p50s with its interval. Standard library only (edgeconv.stats).

Every figure says how it was obtained: a missing interval (a file written before edgeconv
recorded them, a bench of fewer than 6 runs) is said, never filled in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgeconv import stats
from edgeconv.manifest import Artifact
from edgeconv.report.collect import BenchRecord, ExportRecord

# Dataset names as manifests record them -> as the report names them. An image folder is
# recorded by its path and shown as it is.
DATASETS = {
    "digits": "digits",
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "imagenet": "ImageNet",
    "synthetic_text": "synthetic text",
}
# What each is, for a verdict that measured a claim on other data than the article's.
DESCRIBED = {
    "digits": "scikit-learn's 8x8 digits, upscaled (1,797 images)",
    "mnist": "MNIST (28x28 grey handwritten digits)",
    "fashion_mnist": "Fashion-MNIST (28x28 grey clothing images)",
    "cifar10": "CIFAR-10 (32x32 colour photos)",
    "imagenet": "ImageNet",
    "synthetic_text": "synthetic text (generated 128-character strings, 4 made-up languages;"
                      " not real text)",
}


def dataset_name(name: str | None) -> str:
    return "unknown data" if name is None else DATASETS.get(name, name)


def described(name: str | None, preprocessing: dict[str, Any] | None = None) -> str:
    """The dataset in words, with how its images were adapted to the model (a grey image
    replicated to 3 channels, resized), as the export recorded it."""
    text = "unknown data" if name is None else DESCRIBED.get(name, name)
    prep = preprocessing or {}
    how = []
    shape = prep.get("input_shape")
    if prep.get("resize") not in (None, "none") and shape:
        how.append(f"resized to {shape[0]}x{shape[1]}")
    if prep.get("channels") == "gray_to_rgb":
        how.append("grey replicated to 3 channels")
    elif prep.get("channels") == "rgb_to_gray":
        how.append("colour turned grey")
    return f"{text}, {' and '.join(how)}" if how else text


def accuracy(value: float | None, interval: list[float] | None, samples: int | None,
             dataset: str | None) -> str:
    """'94.7% [92.0, 96.4] (digits, 359 images)': top-1 with its 95% Wilson interval, the
    data and the number of images; '' when there is no figure."""
    if value is None:
        return ""
    text = f"{value:.1%}"
    if interval is not None:
        text += f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
    where = [dataset_name(dataset)]
    if samples is not None:
        where.append(f"{samples:,} images")
    if interval is None:
        where.append("no interval recorded")
    return f"{text} ({', '.join(where)})"


def float_figures(export: ExportRecord) -> tuple[float | None, list[float] | None, int | None]:
    """The float (Keras) model's accuracy, its 95% interval and images: from its own manifest
    entry, else from the paired counts any converted file recorded against it."""
    keras = export.file("keras", "fp32")
    if keras is not None and keras.accuracy_interval is not None:
        return export.float_accuracy, keras.accuracy_interval, keras.eval_samples
    for artifact in export.files:
        versus = artifact.versus_float or {}
        if versus.get("both_right") is not None and versus.get("n"):
            right, n = versus["both_right"] + versus["reference_only"], versus["n"]
            # the float model's right images, on the same n
            return export.float_accuracy, stats.pair(stats.wilson(right, n)), n
    samples = keras.eval_samples if keras is not None else None
    return export.float_accuracy, None, samples


def float_accuracy(export: ExportRecord) -> str:
    value, interval, samples = float_figures(export)
    return accuracy(value, interval, samples, export.dataset)


def file_accuracy(export: ExportRecord, artifact: Artifact | None) -> str:
    if artifact is None:
        return ""
    return accuracy(artifact.accuracy, artifact.accuracy_interval, artifact.eval_samples,
                    export.dataset)


def drop(export: ExportRecord, artifact: Artifact | None) -> str:
    """'+0.80 pt [-0.02, 1.66]; 12 only float, 4 only int8, of 1,000; McNemar p 0.077': float
    minus this file's accuracy on the same images, with the paired 95% interval; a file
    without the paired comparison shows the difference of the two points and says so."""
    if artifact is None:
        return ""
    versus = artifact.versus_float
    if versus is None:
        if artifact.accuracy is None or export.float_accuracy is None:
            return ""
        return (f"{100 * (export.float_accuracy - artifact.accuracy):+.2f} pt (points only:"
                " no paired comparison recorded)")
    low, high = versus["drop_interval"]
    return (f"{100 * versus['drop']:+.2f} pt [{100 * low:+.2f}, {100 * high:+.2f}];"
            f" {versus['reference_only']:,} only float, {versus['candidate_only']:,} only"
            f" {artifact.precision}, of {versus['n']:,}; McNemar p {versus['mcnemar_p']:.2g}")


def p50(record: BenchRecord) -> str:
    """'0.031 [0.030, 0.033]': the p50 with its 95% interval when recorded."""
    latency = record.row.latency_ms
    if latency is None:
        return ""
    if latency.p50_low is None or latency.p50_high is None:
        return f"{latency.p50:.3f}"
    return f"{latency.p50:.3f} [{latency.p50_low:.3f}, {latency.p50_high:.3f}]"


# --- speed: the ratio of two p50s -------------------------------------------------------

FASTER, SLOWER, NOISE = "faster", "slower", "within noise"


@dataclass(frozen=True)
class Speedup:
    """How many times faster `candidate` is than `reference`: reference p50 / candidate p50,
    with the 95% interval of that ratio when both p50s have one (stats.ratio_interval)."""

    ratio: float
    interval: stats.Interval | None

    @property
    def outcome(self) -> str:
        """faster / slower when the interval excludes 1 (or, without one, by the point);
        within noise when it includes 1."""
        if self.interval is None:  # equal points: no difference either way
            return FASTER if self.ratio > 1 else SLOWER if self.ratio < 1 else NOISE
        if self.interval.low > 1:
            return FASTER
        if self.interval.high < 1:
            return SLOWER
        return NOISE

    def text(self) -> str:
        if self.interval is None:
            return f"{self.ratio:.2f}x, {self.outcome} (no interval: point comparison)"
        return (f"{self.ratio:.2f}x [{self.interval.low:.2f}, {self.interval.high:.2f}],"
                f" {self.outcome}")


def _median_interval(record: BenchRecord) -> stats.Interval | None:
    latency = record.row.latency_ms
    if latency is None or latency.p50_low is None or latency.p50_high is None \
            or not latency.p50_low > 0 or not latency.p50_high >= latency.p50_low:
        return None
    return stats.Interval(latency.p50_low, latency.p50_high, stats.CONFIDENCE,
                          "order statistics")


def speedup(reference: BenchRecord, candidate: BenchRecord) -> Speedup | None:
    """None when either has no positive p50."""
    ref, cand = reference.p50_ms, candidate.p50_ms
    if not ref or not cand or ref <= 0 or cand <= 0:
        return None
    return ratio(ref, _median_interval(reference), cand, _median_interval(candidate))


def ratio(reference: float, reference_interval: stats.Interval | None, candidate: float,
          candidate_interval: stats.Interval | None) -> Speedup:
    """reference / candidate (two medians: times), with an interval when both have one."""
    interval = None
    if reference_interval is not None and candidate_interval is not None:
        try:
            interval = stats.ratio_interval(reference, reference_interval, candidate,
                                            candidate_interval)
        except ValueError:  # an interval touching 0: no log-scale width to read
            interval = None
        if interval is not None and not (math.isfinite(interval.low)
                                         and math.isfinite(interval.high)):
            interval = None
    return Speedup(reference / candidate, interval)
