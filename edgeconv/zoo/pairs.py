"""The articles' comparisons as data: each a baseline followed by the compact models it argues for.

`edgeconv compare` tabulates them now; the report (bench issue) measures the same sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean


@dataclass(frozen=True)
class Entry:
    model: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.options:
            return self.model
        opts = ", ".join(f"{k}={_fmt(v)}" for k, v in self.options.items())
        return f"{self.model} ({opts})"


@dataclass(frozen=True)
class Comparison:
    id: str
    title: str
    source: str  # article letter (docs/claims.md)
    claim: str
    entries: tuple[Entry, ...]


def _fmt(value: Any) -> str:
    return "x".join(str(v) for v in value[:2]) if isinstance(value, tuple) else str(value)


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("A-fcn", "Dense head -> FCN -> global-pool FCN (MNIST 28x28x1)", "A",
               "removing the FC head removes most parameters and frees the input size",
               (Entry("dense-mnist"), Entry("fcn-mnist"), Entry("gap-mnist"))),
    Comparison("B-block", "3x3 conv vs depthwise separable, 64 filters on RGB", "B",
               "a separable conv needs over 6x fewer parameters",
               (Entry("conv3x3-rgb64"), Entry("separable3x3-rgb64"))),
    Comparison("B-vgg", "VGG vs separable VGG (CIFAR 32x32x3)", "B",
               "~1.2M params with Conv2D vs ~200k with SeparableConv2D",
               (Entry("vgg-cifar"), Entry("separable-vgg-cifar"))),
    Comparison("C-inception", "Inception 5x5 branch: naive vs 1x1 bottleneck (28x28x192)", "C",
               "a 1x1 bottleneck cuts the branch's multiplications about 10x",
               (Entry("inception5x5-naive"), Entry("inception5x5-bottleneck"))),
    Comparison("C-squeezenet", "AlexNet -> SqueezeNet (224x224x3)", "C",
               "AlexNet-level accuracy with 50x fewer parameters",
               (Entry("alexnet"), Entry("squeezenet"), Entry("squeezenet", {"version": "1.1"}))),
    Comparison("C-mobilenet-alpha", "MobileNet v1 width multiplier (224x224x3)", "C",
               "cost falls roughly with alpha squared",
               tuple(Entry("mobilenet", {"alpha": a}) for a in (1.0, 0.75, 0.5, 0.25))),
    Comparison("C-mobilenet-resolution", "MobileNet v1 resolution multiplier (alpha 1)", "C",
               "cost falls roughly with rho squared",
               tuple(Entry("mobilenet", {"input_shape": (r, r, 3)})
                     for r in (224, 192, 160, 128))),
    Comparison("C-imagenet", "ImageNet-shaped classics vs compact nets (224x224x3)", "C",
               "compact architectures cut parameters and MACs by one to two orders of magnitude",
               (Entry("vgg16"), Entry("alexnet"), Entry("squeezenet"), Entry("mobilenet"),
                Entry("mobilenetv2"))),
)


def get_comparisons(ids: list[str] | None = None) -> list[Comparison]:
    by_id = {c.id: c for c in COMPARISONS}
    if not ids:
        return list(COMPARISONS)
    for cid in ids:
        if cid not in by_id:
            raise EdgeconvError(f"unknown comparison '{cid}'{did_you_mean(cid, by_id)}"
                                f" (known: {', '.join(by_id)})")
    return [by_id[cid] for cid in ids]
