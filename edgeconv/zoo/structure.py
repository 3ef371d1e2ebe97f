"""Structural facts the articles state without a figure, read off the built Keras graphs.

- ResNet: a 1x1 conv on the skip path exactly where a block changes the shape (article C).
- MobileNet v2: inverted residuals (the 1x1 expands), linear bottlenecks (no activation after
  the projecting 1x1), a residual Add exactly when stride is 1 and the shapes match.
- Xception: every spatial conv after the stem is depthwise separable (one per channel).

Each check returns counts and the blocks that break the rule, so a verdict can say what it saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeconv._lazy import keras


@dataclass(frozen=True)
class Structure:
    model: str
    summary: str  # what was counted, in words
    broken: list[str] = field(default_factory=list)  # blocks or layers against the rule

    @property
    def holds(self) -> bool:
        return not self.broken


def _build(name: str):
    from edgeconv.zoo import build, get_spec, resolve_options

    spec = get_spec(name)
    return build(spec, resolve_options(spec))


def _consumers(model) -> dict[int, list]:
    """id(tensor) -> the layers that take it as input."""
    found: dict[int, list] = {}
    for layer in model.layers[1:]:
        for tensor in keras().tree.flatten(layer.input):
            found.setdefault(id(tensor), []).append(layer)
    return found


def resnet_skips(name: str = "resnet152") -> Structure:
    from edgeconv.zoo.resnet import skip_paths

    paths = skip_paths(_build(name))
    broken = [block for block, skip, changes in paths
              if (skip == "1x1 conv") != changes]
    projected = sum(skip == "1x1 conv" for _, skip, _ in paths)
    changing = sum(changes for _, _, changes in paths)
    return Structure(name, f"{len(paths)} residual blocks (H(x) = x + F(x), an Add each):"
                           f" {projected} with a 1x1 conv on the skip, {changing} that change"
                           f" the shape, {len(paths) - projected} identity skips", broken)


def mobilenetv2_blocks(name: str = "mobilenetv2") -> Structure:
    model = _build(name)
    consumers = _consumers(model)
    by_name = {l.name: l for l in model.layers}
    blocks = sorted({l.name.split("_")[1] for l in model.layers
                     if l.name.startswith("block_") and l.name.endswith("_project")}, key=int)
    broken, residuals, inverted = [], 0, 0
    for b in blocks:
        prefix = f"block_{b}_"
        project_bn = by_name[f"{prefix}project_BN"]
        after = [type(l).__name__ for l in consumers.get(id(project_bn.output), [])]
        if any(t in ("ReLU", "Activation") for t in after):
            broken.append(f"block {b}: an activation after the projection")
        expand = by_name[f"{prefix}expand"]
        if expand.filters > expand.input.shape[-1]:
            inverted += 1
        else:
            broken.append(f"block {b}: its 1x1 does not expand")
        depthwise = by_name[f"{prefix}depthwise"]
        same = (depthwise.strides == (1, 1)
                and expand.input.shape[-1] == project_bn.output.shape[-1])
        has_add = f"{prefix}add" in by_name
        residuals += has_add
        if has_add != same:
            broken.append(f"block {b}: residual {'present' if has_add else 'missing'} with"
                          f" stride {depthwise.strides[0]}")
    return Structure(name, f"{len(blocks)} inverted residual blocks after the first:"
                           f" {inverted} expand with a 1x1, every projection is linear"
                           f" (no activation after it) unless listed, {residuals} residual Adds"
                           " (stride 1 and equal shapes)", broken)


def xception_separable(name: str = "xception") -> Structure:
    model = _build(name)
    L = keras().layers
    spatial = [l for l in model.layers
               if isinstance(l, (L.Conv2D, L.SeparableConv2D, L.DepthwiseConv2D))
               and max(l.kernel_size) > 1]
    separable = [l for l in spatial if isinstance(l, L.SeparableConv2D)]
    stem = [l for l in spatial if l.name.startswith("block1_")]
    broken = [l.name for l in spatial if l not in separable and l not in stem]
    return Structure(name, f"{len(separable)} of {len(spatial)} spatial convs are depthwise"
                           f" separable (a 3x3 per channel, then a 1x1); the other"
                           f" {len(spatial) - len(separable)} are the stem's"
                           f" ({', '.join(l.name for l in stem)});"
                           f" {model.count_params():,} params", broken)
