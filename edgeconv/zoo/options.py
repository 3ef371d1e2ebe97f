"""The family options (alpha, version, groups, blocks, kernel), defined once: type, CLI help and validation.

A model accepts the ones named in its spec's `family_options`, with its defaults;
`resolve_options` validates against this table and the CLI takes its help texts from it.
Adding an option here means adding a field to `ModelOptions` and a Typer alias in
`edgeconv/commands/_options.py` (Typer needs one explicit parameter per option).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeconv.errors import EdgeconvError

if TYPE_CHECKING:
    from edgeconv.zoo._registry import ModelSpec


@dataclass(frozen=True)
class FamilyOption:
    name: str  # the ModelOptions field and, as --name, the CLI flag
    type: type  # what the CLI parses the value as
    help: str  # the CLI's help text
    # Raises EdgeconvError (one line) when the value does not suit the model.
    validate: Callable[[ModelSpec, Any], None]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


MAX_ALPHA = 4.0  # 16x MobileNet's params: far above the paper's 1.0, below exhausting memory


def _check_alpha(spec: ModelSpec, alpha: float) -> None:
    if not (math.isfinite(alpha) and alpha > 0):
        raise EdgeconvError(f"--alpha must be a number > 0 (the paper uses 0.25, 0.5, 0.75, 1.0);"
                            f" got {alpha}")
    if alpha > MAX_ALPHA:
        raise EdgeconvError(f"--alpha must be at most {MAX_ALPHA:g} (the paper uses 0.25 to"
                            f" 1.0); got {alpha}")


def _check_version(spec: ModelSpec, version: str) -> None:
    if version not in spec.version_choices:
        allowed = ", ".join(spec.version_choices)
        raise EdgeconvError(f"--version for '{spec.name}' must be one of {allowed};"
                            f" got '{version}'")


def _check_groups(spec: ModelSpec, groups: int) -> None:
    if groups not in (1, 2):
        raise EdgeconvError(f"--groups for '{spec.name}' must be 1 (dense convs) or 2"
                            f" (the original two-GPU split); got {groups}")


# Article B's VGG network, varied by its depth / kernel sweep (edgeconv.zoo.sweep): 1 to 4
# blocks of two convs (64-128-256-512 filters), square odd kernels.
MAX_BLOCKS = 4
KERNELS = (3, 5, 7)


def _check_blocks(spec: ModelSpec, blocks: int) -> None:
    if not 1 <= blocks <= MAX_BLOCKS:
        raise EdgeconvError(f"--blocks for '{spec.name}' must be 1 to {MAX_BLOCKS} VGG blocks of"
                            f" two convs (article B's network has 3); got {blocks}")


def _check_kernel(spec: ModelSpec, kernel: int) -> None:
    if kernel not in KERNELS:
        allowed = ", ".join(map(str, KERNELS))
        raise EdgeconvError(f"--kernel for '{spec.name}' must be one of {allowed} (an odd"
                            f" square kernel; article B's network uses 3); got {kernel}")


# In the order of ModelOptions' fields: checks run, and errors surface, in this order.
FAMILY_OPTIONS: dict[str, FamilyOption] = {o.name: o for o in (
    FamilyOption("alpha", float, "Width multiplier (MobileNets), > 0 and <= 4.", _check_alpha),
    FamilyOption("version", str, "SqueezeNet version: 1.0 or 1.1.", _check_version),
    FamilyOption("groups", int, "AlexNet conv2/4/5 groups: 2 (original) or 1.", _check_groups),
    FamilyOption("blocks", int, "VGG-CIFAR depth: 1 to 4 blocks of two convs (article B: 3).",
                 _check_blocks),
    FamilyOption("kernel", int, "VGG-CIFAR conv kernel size: 3, 5 or 7 (article B: 3).",
                 _check_kernel),
)}
