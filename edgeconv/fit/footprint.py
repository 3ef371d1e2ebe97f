"""What a point (candidate, precision) needs on the target, known before a single epoch.

Cheapest first, so a point the cheap figures already rule out costs no conversion:

1. build the untrained Keras model (seeded) and account for it (edgeconv.zoo.analyze):
   parameters, MACs, peak live activations at the precision's element size, int8 weights;
2. on an MCU target with a calibrated core, the latency estimated from the MACs
   (edgeconv.mcu.calibration.estimate_from_macs: a wide band, never a measurement);
3. unless the latency band's low end is already above the ceiling, or the int8 weights alone
   already overflow the flash: the untrained export at the precision (the same conversion an
   export makes, on 16 seeded random calibration images, its BatchNorm statistics settled on
   them: the arena depends on the shapes, not on the weights or ranges), the kernel table's
   check of its operators (edgeconv.kernels) and TFLite Micro's planner on it, in a child
   process (edgeconv.runtimes.micro.probe): the arena.

`footprint()` is a plain function of picklable arguments, so the study can run many of them
in worker processes (edgeconv.fit.executors). TensorFlow is imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError

# The weights a footprint's untrained model gets: fixed, so a rerun converts the same model
# and the conversion cache (edgeconv.export.conversion_cache) can answer.
SEED = 0
CALIBRATION_IMAGES = 16  # enough for the converter; ranges do not change shapes or bytes
BYTES_PER_ACTIVATION = {"int8": 1, "int16x8": 2}
PRECISIONS = tuple(BYTES_PER_ACTIVATION)

# The least flash TFLite Micro itself takes besides the model, for pruning only (a point is
# pruned when the model plus this does not fit: certainly too large). Measured: the smallest
# firmware edgeconv links for a Cortex-M4 (MLPerf Tiny ad01_int8: FULLY_CONNECTED only,
# CMSIS-NN) has 53,212 B of runtime flash, of which 25,886 B are TFLite Micro's and
# CMSIS-NN's own code and data (`arm-none-eabi-nm --size-sort -S -C fw.elf`, symbols in
# tflite::, flatbuffers::, arm_*); the rest is newlib, soft-float and the semihosting I/O,
# which a board's firmware replaces with its own. Firmwares of convolutional models take
# 59-84 KB (docs/mcu.md). 24 KiB is below all of them.
RUNTIME_FLASH_LOW_BYTES = 24 * 1024


@dataclass(frozen=True)
class Footprint:
    """A point's needs, known before a single epoch."""

    params: int
    macs: int
    activation_bytes: int   # peak live activations at this precision (analysis, batch 1)
    model_bytes: int | None  # the untrained export at this precision; None: not converted
    arena_bytes: int | None  # TFLite Micro's planner (host interpreter) on that file
    # estimated board latency {"low", "mid", "high", "basis"} in ms, from MACs (MCU targets
    # with a calibrated core); None otherwise
    latency: dict[str, Any] | None
    # at least this much flash: (model_bytes, or the int8 weights when not converted) +
    # RUNTIME_FLASH_LOW_BYTES. A lower bound, made to prune with; the firmware measures it.
    flash_bytes: int | None
    # why the export or the planner gave no figure (a converter refusal, the planner failing
    # on the untrained file); None when they did, or were skipped as the cheap figures sufficed
    error: str | None = None
    # True when `error` holds whatever the weights: an operator the target's TFLite Micro has
    # no kernel for at this width (edgeconv.kernels), so the point cannot run there
    unsupported: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {"params": self.params, "macs": self.macs,
                "activation_bytes": self.activation_bytes, "model_bytes": self.model_bytes,
                "arena_bytes": self.arena_bytes, "flash_bytes": self.flash_bytes,
                "latency": self.latency}
        if self.error is not None:  # the study records them only where there is one
            data["error"] = self.error
        if self.unsupported:
            data["unsupported"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Footprint:
        return cls(**{key: data.get(key) for key in (
            "params", "macs", "activation_bytes", "model_bytes", "arena_bytes", "latency",
            "flash_bytes", "error")}, unsupported=bool(data.get("unsupported")))


def footprint(candidate, precision: str, classes: int, channels: int, workdir: Path,
              target, *, max_latency_ms: float | None = None) -> Footprint:
    """The footprint of (candidate, precision) for `classes` classes and `channels` input
    channels on `target` (a Target or its name); the untrained export is written under
    `workdir` as `<candidate key>-<precision>.tflite`. With `max_latency_ms`, a point whose
    estimated latency cannot be below it skips the conversion."""
    from edgeconv._lazy import keras
    from edgeconv.fit.space import build_candidate

    check_precision(precision)
    keras().utils.set_random_seed(SEED)  # the same weights on every rerun: cache hits
    model = build_candidate(candidate, classes, channels)
    return footprint_of_model(model, candidate.key, precision, Path(workdir), target,
                              max_latency_ms=max_latency_ms)


def check_precision(precision: str) -> None:
    if precision not in BYTES_PER_ACTIVATION:
        raise EdgeconvError(f"unknown precision '{precision}' for a footprint; choose one of"
                            f" {', '.join(PRECISIONS)}")


def footprint_of_model(model, name: str, precision: str, workdir: Path, target, *,
                       max_latency_ms: float | None = None) -> Footprint:
    """`footprint` of a built Keras model: `name` names its file in `workdir`."""
    from edgeconv.zoo.analyze import analyze

    check_precision(precision)
    target = resolve_target(target)
    stats = analyze(model)
    if not stats.analysed_shape:
        raise EdgeconvError(f"{name}: the model's input size is free, so it has no footprint;"
                            " build it at a fixed size")
    activation = stats.peak_activation_bytes_int8 * BYTES_PER_ACTIVATION[precision]
    latency = latency_from_macs(stats.macs, target, precision)
    # int8 and int16x8 files both hold int8 weights: a floor under the file's bytes
    weights_floor = stats.weight_bytes_int8 + RUNTIME_FLASH_LOW_BYTES
    cheap = {"params": stats.params, "macs": stats.macs, "activation_bytes": activation,
             "latency": latency}
    too_slow = (latency is not None and max_latency_ms is not None
                and latency["low"] > max_latency_ms)
    too_big = target.flash_bytes is not None and weights_floor > target.flash_bytes
    if too_slow or too_big:  # already certain: the conversion would change nothing
        return Footprint(**cheap, model_bytes=None, arena_bytes=None, flash_bytes=weights_floor)
    path = workdir / f"{name}-{precision}.tflite"
    try:
        content = untrained_export(model, precision, path)
    except EdgeconvError as exc:
        return Footprint(**cheap, model_bytes=None, arena_bytes=None, flash_bytes=weights_floor,
                         error=f"export failed: {exc}")
    flash = len(content) + RUNTIME_FLASH_LOW_BYTES
    missing = missing_kernels(path, content, target)
    if missing:  # the planner would refuse it too, whatever the weights
        return Footprint(**cheap, model_bytes=len(content), arena_bytes=None, flash_bytes=flash,
                         error=f"TFLite Micro has no kernel for {', '.join(missing)}",
                         unsupported=True)
    arena, error = planned_arena(path, activation, len(content))
    return Footprint(**cheap, model_bytes=len(content), arena_bytes=arena, flash_bytes=flash,
                     error=error)


def resolve_target(target):
    """A Target, from itself or its name."""
    if isinstance(target, str):
        from edgeconv.targets import get_target

        return get_target(target)
    return target


def latency_from_macs(macs: int, target, precision: str) -> dict[str, Any] | None:
    """The estimated board latency of `macs` MACs on an MCU target with a calibrated core
    (its first kernel set, the one it runs by default); None elsewhere."""
    from edgeconv.mcu.calibration import estimate_from_macs

    if target.kind != "mcu" or not target.core or not target.kernels:
        return None
    found = estimate_from_macs(macs, target.core, target.kernels[0], target.clock_mhz)
    if found is None:
        return None
    latency = found.to_dict()
    if precision != "int8":  # the calibration's models are int8; wider kernels run slower
        latency["basis"] += "; int8 kernels' figures: an int16x8 model runs slower"
    return latency


def untrained_export(model, precision: str, path: Path) -> bytes:
    """The TFLite file an export makes of `model` at `precision`, calibrated on seeded
    uniform random images in [0, 1]; written to `path` atomically."""
    import numpy as np

    from edgeconv import _atomic
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.calibration import CalibrationSet
    from edgeconv.quant.settings import Int8Settings

    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    rng = np.random.default_rng(SEED)
    images = rng.uniform(0.0, 1.0, size=(CALIBRATION_IMAGES, *shape)).astype(np.float32)
    settle_batchnorm(model, images)
    calibration = CalibrationSet(images, np.zeros(CALIBRATION_IMAGES, dtype=np.int64), SEED)
    session = ConversionSession(model, calibration, Int8Settings())
    content = session.make("tflite", precision).content
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_bytes(path, content)
    return content


def settle_batchnorm(model, images) -> None:
    """Give each top-level BatchNormalization the mean and variance of its input on `images`.

    Fresh BatchNorm layers hold mean 0 and variance 1, so an untrained MobileNet's
    activations shrink layer after layer (to ~1e-22 at its end): an int16x8 file then has
    ReLU6 bounds that overflow int32 at those scales and TFLite Micro refuses it, which says
    nothing about the trained model. With the statistics one training step would start
    from, the ranges stay those of a working network; shapes, and so the arena and the file
    size, do not change."""
    import numpy as np

    from edgeconv._lazy import keras

    norms = [layer for layer in model.layers
             if isinstance(layer, keras().layers.BatchNormalization)]
    if not norms:
        return
    # In training mode each BatchNorm normalises by its batch's statistics, so one pass
    # gives every layer's input as the settled network sees it.
    inputs_of = keras().Model(model.inputs, [layer.input for layer in norms])
    found = inputs_of([images], training=True)
    for layer, x in zip(norms, found if isinstance(found, (list, tuple)) else [found]):
        x = np.asarray(x)
        axes = tuple(range(x.ndim - 1))  # all but the channels (the zoo's layers are NHWC)
        layer.moving_mean.assign(x.mean(axis=axes))
        layer.moving_variance.assign(x.var(axis=axes))


def missing_kernels(path: Path, content: bytes, target) -> list[str]:
    """The operators (with their width) TFLite Micro has no kernel for, as the kernel table
    (edgeconv.kernels) says: no kernel at all, none at int16, or CMSIS-NN's int16
    FULLY_CONNECTED with per-channel weights on a target that runs CMSIS-NN."""
    from edgeconv.kernels import MICRO_KERNELS, per_channel_int16_fc, tflite_ops
    from edgeconv.mcu.ops import RESOLVER_CALLS

    missing = []
    for op, dtype in dict.fromkeys(tflite_ops(path)):
        kernels = MICRO_KERNELS.get(op)
        if op not in RESOLVER_CALLS:
            missing.append(op)
        elif dtype == "int16" and kernels is not None and not kernels.tflm_int16:
            missing.append(f"{op} at int16")
    if (target.kind_info.fit and target.kernels and target.kernels[0] == "cmsis-nn"
            and per_channel_int16_fc(content)):
        missing.append("FULLY_CONNECTED at int16 with per-channel weights (CMSIS-NN)")
    return missing


def planned_arena(path: Path, activation_bytes: int, model_bytes: int
                  ) -> tuple[int | None, str | None]:
    """TFLite Micro's arena for the file (host interpreter, in a child process), or the
    reason there is none."""
    from edgeconv.runtimes.micro import probe

    # TFLM's default arena (10x the file) is too small for a small model with large
    # activations; the size given is an upper limit, the figure read back is what was used.
    capacity = max(32 << 20, 4 * activation_bytes + 2 * model_bytes)
    found = probe(path, arena_size=capacity)
    if not found.ok:
        return None, f"TFLite Micro cannot run it: {found.error}"
    return found.arena_bytes, None
