"""Article B's "the gains grow with depth and kernel size", measured: a sweep of its VGG pair.

`vgg-cifar` and `separable-vgg-cifar` are built at 2, 4, 6 and 8 convs (1 to 4 VGG blocks of
two convs, 64-128-256-512 filters) and 3x3, 5x5 and 7x7 kernels, all else equal (32x32x3,
BatchNorm, the same head). Each point gives the params and MACs of the conv layers alone
(the layers the article's formula is about) and of the whole network, for both variants.

Regular conv params n*k*k*c vs separable c*k*k + n*c: the ratio n*k^2 / (k^2 + n) grows with
k, and with depth only because deeper layers are wider (n from 64 to 512). The built models
say by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from edgeconv._lazy import keras

DEPTHS = (2, 4, 6, 8)  # conv layers: two per VGG block
KERNELS = (3, 5, 7)
WIDTHS = (64, 128, 256, 512)  # filters of blocks 1..4 (article B's network is depth 6)
INPUT = (32, 32, 3)
CLASSES = 10


@dataclass(frozen=True)
class SweepPoint:
    depth: int
    kernel: int
    conv_params: tuple[int, int]  # (regular, separable), conv layers only
    conv_macs: tuple[int, int]
    params: tuple[int, int]  # whole networks
    macs: tuple[int, int]

    @property
    def param_ratio(self) -> float:
        return self.conv_params[0] / self.conv_params[1]

    @property
    def mac_ratio(self) -> float:
        return self.conv_macs[0] / self.conv_macs[1]

    @property
    def params_saved(self) -> int:
        return self.conv_params[0] - self.conv_params[1]


def build_pair(depth: int, kernel: int):
    """(regular, separable) Keras models of the sweep point."""
    from edgeconv.zoo._registry import ModelOptions
    from edgeconv.zoo.vgg import _vgg_cifar

    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {DEPTHS}")  # a programming error
    opts = ModelOptions(input_shape=INPUT, classes=CLASSES)
    blocks = WIDTHS[:depth // 2]
    return tuple(_vgg_cifar(opts, separable, f"sweep_{'sep' if separable else 'conv'}"
                            f"_d{depth}_k{kernel}", blocks=blocks, kernel=kernel)
                 for separable in (False, True))


@lru_cache(maxsize=4)  # the report's verdict and its figure ask for the same points
def separable_sweep(depths: tuple[int, ...] = DEPTHS,
                    kernels: tuple[int, ...] = KERNELS) -> list[SweepPoint]:
    """Every (depth, kernel) point, from the built models' own layer accounting."""
    from edgeconv.zoo.analyze import analyze

    points = []
    for depth in depths:
        for kernel in kernels:
            stats = [analyze(m) for m in build_pair(depth, kernel)]
            conv = [[l for l in s.layers if l.type in ("Conv2D", "SeparableConv2D")]
                    for s in stats]
            points.append(SweepPoint(
                depth, kernel,
                conv_params=tuple(sum(l.params for l in c) for c in conv),
                conv_macs=tuple(sum(l.macs for l in c) for c in conv),
                params=tuple(s.params for s in stats), macs=tuple(s.macs for s in stats)))
            keras().backend.clear_session()
    return points


def grows(points: list[SweepPoint], ratio: str) -> bool:
    """Whether `ratio` (a SweepPoint property) rises with the kernel at every depth and with
    the depth at every kernel."""
    value = {(p.depth, p.kernel): getattr(p, ratio) for p in points}
    depths = sorted({p.depth for p in points})
    kernels = sorted({p.kernel for p in points})
    by_kernel = all(value[d, a] < value[d, b]
                    for d in depths for a, b in pairwise(kernels))
    by_depth = all(value[a, k] < value[b, k]
                   for k in kernels for a, b in pairwise(depths))
    return by_kernel and by_depth
