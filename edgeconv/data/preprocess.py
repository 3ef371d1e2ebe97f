"""Preprocessing: what turns stored uint8 images into float32 model input.

`Preprocessing` records it (resize, channel conversion, x * scale + offset) for the export
manifest and applies it; `NORMALISATIONS` names the scale/offset pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv._lazy import require
from edgeconv.errors import EdgeconvError, did_you_mean

# x_float = x_uint8 * scale + offset
NORMALISATIONS: dict[str, tuple[float, float]] = {
    "unit": (1 / 255, 0.0),  # [0, 1]
    "symmetric": (2 / 255, -1.0),  # [-1, 1]
}

RESIZE_METHODS: tuple[str, ...] = ("none", "bilinear", "nearest", "bicubic", "area", "lanczos")
CHANNEL_CONVERSIONS: tuple[str, ...] = ("none", "gray_to_rgb", "rgb_to_gray")
LAYOUTS: tuple[str, ...] = ("NHWC", "NCHW")
COLOR_ORDERS: tuple[str, ...] = ("rgb", "bgr", "gray")
# Pillow's name for each resize method ("area" is Pillow's BOX filter: the mean of the pixels
# each output pixel covers, what OpenCV calls INTER_AREA).
_PIL_RESIZE = {"bilinear": "BILINEAR", "nearest": "NEAREST", "bicubic": "BICUBIC",
               "area": "BOX", "lanczos": "LANCZOS"}


@dataclass(frozen=True)
class Preprocessing:
    """What turns stored uint8 images into model input; goes into the export manifest.

    Order of `apply`: resize (Pillow, per image, on uint8) -> channel conversion on uint8
    (gray_to_rgb replicates; rgb_to_gray is rounded ITU-R 601 luma 0.299R+0.587G+0.114B)
    -> channel order (`color` "bgr" reverses RGB) -> x_float = x_uint8 * scale + offset
    -> per channel (x - mean) / std -> layout (NCHW transposes).

    `layout`, `color`, `mean` and `std` are a user model's (edgeconv export PATH); at their
    defaults they are left out of `to_dict`, so records written before them compare equal.
    """

    input_shape: tuple[int | None, int | None, int]  # model input H, W, C; None = keep size
    source_shape: tuple[int, int, int]
    resize: str  # "none" or "bilinear"
    channels: str  # "none", "gray_to_rgb", "rgb_to_gray"
    scale: float
    offset: float
    input_dtype: str = "float32"
    layout: str = "NHWC"  # of the tensor `apply` returns (input_shape stays H, W, C)
    color: str | None = None  # None: as the channel count says (gray or rgb); "bgr"
    mean: tuple[float, ...] | None = None  # per channel (one value: all), after scale
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        self._check_user_fields()
        object.__setattr__(self, "input_shape", _check_input_shape(self.input_shape))
        object.__setattr__(self, "source_shape", _check_source_shape(self.source_shape))
        object.__setattr__(self, "scale", _finite("scale", self.scale))
        object.__setattr__(self, "offset", _finite("offset", self.offset))
        if self.resize not in RESIZE_METHODS:
            raise EdgeconvError(
                f"preprocessing resize must be one of {', '.join(RESIZE_METHODS)}; "
                f"got {self.resize!r}"
            )
        expected = _channel_conversion(self.source_shape[2], self.input_shape[2])
        if self.channels != expected:
            raise EdgeconvError(
                f"preprocessing channels {self.channels!r} does not match "
                f"{self.source_shape[2]} -> {self.input_shape[2]} channels "
                f"(expected {expected!r})"
            )
        if self.resize == "none" and self._resizes(self.source_shape[:2]):
            raise EdgeconvError(
                f"preprocessing resizes {self.source_shape[:2]} to {self.input_shape[:2]} but "
                "resize is 'none'"
            )
        if self.scale == 0.0:
            raise EdgeconvError("preprocessing scale must not be 0")
        self._check_float32_range()
        if self.input_dtype != "float32":
            raise EdgeconvError(f"preprocessing input_dtype must be 'float32'; got "
                                f"{self.input_dtype!r}")

    def _check_user_fields(self) -> None:
        if self.layout not in LAYOUTS:
            raise EdgeconvError(f"preprocessing layout must be one of {', '.join(LAYOUTS)};"
                                f" got {self.layout!r}")
        if self.color is not None and self.color not in COLOR_ORDERS:
            raise EdgeconvError(f"preprocessing color must be one of {', '.join(COLOR_ORDERS)};"
                                f" got {self.color!r}")
        channels = self.input_shape[2] if _is_int(self.input_shape[2]) else None
        if self.color is not None and channels is not None \
                and (self.color == "gray") != (channels == 1):
            raise EdgeconvError(f"--color {self.color} does not fit a {channels}-channel input")
        for what in ("mean", "std"):
            values = getattr(self, what)
            if values is None:
                continue
            if isinstance(values, (int, float)):
                values = (values,)
            values = tuple(_finite(what, v) for v in values)
            if len(values) not in (1, channels):
                raise EdgeconvError(f"--{what} takes 1 or {channels} values (one per channel);"
                                    f" got {len(values)}")
            if what == "std" and any(v == 0 for v in values):
                raise EdgeconvError("--std values must not be 0")
            object.__setattr__(self, what, values)

    def _check_float32_range(self) -> None:
        """Every pixel value, through x * scale + offset and (x - mean) / std, stays a finite
        float32: a scale of -1e308 or a std float32 holds as 0 (1e-320), finite as Python
        floats, would feed the model inf or NaN (a manifest may hold them too)."""
        ends = (self.offset, 255 * self.scale + self.offset)
        spread = max(abs(end - m) for end in ends for m in (self.mean or (0.0,)))
        with np.errstate(over="ignore", under="ignore"):
            smallest = min(abs(float(np.float32(s))) for s in (self.std or (1.0,)))
        largest = spread / smallest if smallest else math.inf
        if not largest <= float(np.finfo(np.float32).max):
            raise EdgeconvError(
                "preprocessing scale, offset, mean and std would make model input values"
                f" overflow float32 (|x| up to {largest:.3g}); check --scale, --offset, --mean"
                " and --std")

    def _resizes(self, hw: tuple[int, int]) -> bool:
        return any(t is not None and t != s for t, s in zip(self.input_shape[:2], hw))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (lists for shapes)."""
        return {
            "input_shape": list(self.input_shape),
            "source_shape": list(self.source_shape),
            "resize": self.resize,
            "channels": self.channels,
            "scale": self.scale,
            "offset": self.offset,
            "input_dtype": self.input_dtype,
            **({"layout": self.layout} if self.layout != "NHWC" else {}),
            **({"color": self.color} if self.color is not None else {}),
            **({"mean": list(self.mean)} if self.mean is not None else {}),
            **({"std": list(self.std)} if self.std is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        """Inverse of `to_dict`; a bad or incomplete dict raises EdgeconvError."""
        if not isinstance(d, dict):
            raise EdgeconvError(f"preprocessing must be a mapping; got {type(d).__name__}")
        required = ("input_shape", "source_shape", "resize", "channels", "scale", "offset")
        missing = [k for k in required if k not in d]
        if missing:
            raise EdgeconvError(f"preprocessing lacks {', '.join(missing)}")
        known = (*required, "input_dtype", "layout", "color", "mean", "std")
        unknown = [k for k in d if k not in known]
        if unknown:
            raise EdgeconvError(
                f"preprocessing has unknown key '{unknown[0]}'{did_you_mean(unknown[0], known)}"
            )
        values = {k: d[k] for k in known if k in d}
        for key in ("mean", "std"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)

    def apply(self, images_uint8: np.ndarray) -> np.ndarray:
        """Resize, convert channels and normalise uint8 NHWC images -> float32 NHWC."""
        x = images_uint8
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise EdgeconvError(f"images must be a uint8 array (N, H, W, C); got {got}")
        if x.shape[3] != self.source_shape[2]:
            raise EdgeconvError(
                f"images have {x.shape[3]} channels; this preprocessing expects "
                f"{self.source_shape[2]}"
            )
        x = self._resize(x)
        if self.channels == "gray_to_rgb":
            x = np.repeat(x, 3, axis=3)
        elif self.channels == "rgb_to_gray":
            luma = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            x = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., np.newaxis]
        if self.color == "bgr":
            x = x[..., ::-1]
        # A 256-entry table gives every pixel the correctly rounded float32 of x*scale+offset.
        table = (np.arange(256, dtype=np.float64) * self.scale + self.offset).astype(np.float32)
        out = table[x]
        if self.mean is not None:
            out -= np.asarray(self.mean, dtype=np.float32)
        if self.std is not None:
            out /= np.asarray(self.std, dtype=np.float32)
        if self.layout == "NCHW":
            out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
        return out

    def _resize(self, x: np.ndarray) -> np.ndarray:
        if not self._resizes(x.shape[1:3]):
            return x
        target_h = self.input_shape[0] or x.shape[1]
        target_w = self.input_shape[1] or x.shape[2]
        if self.resize == "none":
            raise EdgeconvError(
                f"images are {x.shape[1]}x{x.shape[2]} but the model input is "
                f"{target_h}x{target_w} and this preprocessing does not resize"
            )
        return _resize_bilinear(x, target_h, target_w, self.resize)


def _make_preprocessing(
    source_shape: tuple[int, ...], input_shape: Sequence[int | None], normalisation: str
) -> Preprocessing:
    if normalisation not in NORMALISATIONS:
        raise EdgeconvError(
            f"unknown normalisation '{normalisation}' (known: {', '.join(NORMALISATIONS)})"
            f"{did_you_mean(str(normalisation), NORMALISATIONS)}"
        )
    source = _check_source_shape(tuple(int(v) for v in source_shape))
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise EdgeconvError(f"input shape must be (height, width, channels); got {input_shape!r}")
    # None keeps the source value, so the recorded input shape is always concrete.
    target = tuple(s if t is None else t for t, s in zip(input_shape, source))
    target = _check_input_shape(target)
    resize = "bilinear" if target[:2] != source[:2] else "none"
    scale, offset = NORMALISATIONS[normalisation]
    return Preprocessing(
        input_shape=target,
        source_shape=source,
        resize=resize,
        channels=_channel_conversion(source[2], target[2]),
        scale=scale,
        offset=offset,
    )



def _resize_bilinear(x: np.ndarray, height: int, width: int,
                     method: str = "bilinear") -> np.ndarray:
    image_mod = require("PIL.Image", extra="data")
    bilinear = getattr(image_mod.Resampling, _PIL_RESIZE[method])
    out = np.empty((len(x), height, width, x.shape[3]), dtype=np.uint8)
    for i, img in enumerate(x):
        # Pillow resizes 1- or 3-channel uint8 images ("L"/"RGB"); other counts per channel.
        planes = [img] if img.shape[2] == 3 else [img[:, :, c] for c in range(img.shape[2])]
        for c, plane in enumerate(planes):
            resized = np.asarray(image_mod.fromarray(np.ascontiguousarray(plane))
                                 .resize((width, height), bilinear))
            if resized.ndim == 3:
                out[i] = resized
            else:
                out[i, :, :, c] = resized
    return out


def _channel_conversion(source_c: int, target_c: int) -> str:
    if source_c == target_c:
        return "none"
    if (source_c, target_c) == (1, 3):
        return "gray_to_rgb"
    if (source_c, target_c) == (3, 1):
        return "rgb_to_gray"
    raise EdgeconvError(
        f"cannot convert {source_c}-channel images to {target_c} channels; allowed: same "
        "count, 1 -> 3 (gray to RGB) or 3 -> 1 (RGB to gray)"
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_input_shape(shape: Any) -> tuple[int | None, int | None, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise EdgeconvError(f"input shape must be (height, width, channels); got {shape!r}")
    for v in shape:
        if not (v is None or (_is_int(v) and v > 0)):
            raise EdgeconvError(
                f"input shape entries must be positive integers (or None for height/width); "
                f"got {tuple(shape)!r}"
            )
    if shape[2] is None:
        raise EdgeconvError(f"input shape channels must be given; got {tuple(shape)!r}")
    h, w, c = (None if v is None else int(v) for v in shape)
    return (h, w, c)  # type: ignore[return-value]


def _check_source_shape(shape: Any) -> tuple[int, int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 3 \
            or not all(_is_int(v) and v > 0 for v in shape):
        raise EdgeconvError(f"source shape must be 3 positive integers (H, W, C); got {shape!r}")
    h, w, c = (int(v) for v in shape)
    return (h, w, c)


def _finite(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value):
        raise EdgeconvError(f"preprocessing {what} must be a finite number; got {value!r}")
    return float(value)
