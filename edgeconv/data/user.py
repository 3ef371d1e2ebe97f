"""A user model's images (`edgeconv export PATH --data ...`): read, split and prepared for
the model's input, and recorded so that `edgeconv bench` prepares them again exactly.

What `--data` takes:

- a dataset name (`digits`, `mnist`, ...): its test split is measured (the split a zoo
  model is measured on), its train split calibrates;
- an image folder: one sub-folder per class (labels = sorted sub-folder names), or images
  straight inside it (no labels: parity figures only); every image is measured;
- an `.npz` with `x` (uint8 images, (N, H, W) or (N, H, W, C)) and optionally `y` (integer
  labels), or `x_test` / `y_test` (measured) with `x_train` / `y_train` (calibration).

`--calibration-data DIR` (images, any labels ignored) calibrates int8 instead; without it
and without a train split, calibration images are drawn from the measured ones (a note
says so: they are unlabelled use of the same images, never their labels).

Preprocessing (edgeconv.data.Preprocessing) comes from the flags, with defaults read from
the model's input (`ModelInput`): size, channel count, dtype, and the layout guessed from
which axis holds 1 or 3 channels (refused when both or neither do: 3x3x3, 1x1x1).
Standard library and numpy only at module level.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv.data.preprocess import (
    COLOR_ORDERS, LAYOUTS, RESIZE_METHODS, Preprocessing, _channel_conversion,
)
from edgeconv.data.sources import (
    DATASETS, IMAGE_EXTENSIONS, _decode_images, _hidden, _image_files, _load_image_folder,
    load_dataset, read_npz_arrays,
)
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.files import MAX_MODEL_BYTES
from edgeconv.zoo._registry import MAX_CLASSES

MAX_NPZ_BYTES = 4 * MAX_MODEL_BYTES  # a user's image archive, read whole
MEASURED_SPLIT = "test"  # of a named dataset: the split a zoo export is measured on


@dataclass(frozen=True)
class ModelInput:
    """What a model file says about its (first) input: shape with the batch first (None:
    free), dtype, and the scale / zero-point of a quantised input."""

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    scale: float | None = None
    zero_point: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class PrepFlags:
    """The preprocessing flags as given (None: from the model)."""

    input_shape: tuple[int | None, ...] | None = None  # H, W, C
    layout: str | None = None
    scale: float | None = None
    offset: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    color: str | None = None
    resize: str | None = None


@dataclass(frozen=True, eq=False)
class Images:
    """Prepared model input (float32, in the model's layout) and labels (None: unlabelled)."""

    x: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return len(self.x)

    def take(self, picked: np.ndarray) -> np.ndarray:
        return self.x[picked]


@dataclass(frozen=True, eq=False)
class Pool:
    """The calibration pool as stored (uint8) with the preparation it gets: prepared whole
    only when read whole (`x`: the calibration check of an int8 export); a draw (`take`)
    prepares just the images it picks, the same values (preparation is per image). A file
    measured as it is never prepares it."""

    stored: _Stored
    preprocessing: Preprocessing
    alongside: int = 0  # measured images prepared too, counted in the memory check

    @property
    def y(self) -> np.ndarray | None:
        return self.stored.y

    def __len__(self) -> int:
        return len(self.stored.x)

    @cached_property
    def x(self) -> np.ndarray:
        from edgeconv.data.splits import _check_memory as check

        check(self.preprocessing, len(self) + self.alongside, hint=_MEMORY_HINT)
        return self.preprocessing.apply(self.stored.x)

    def take(self, picked: np.ndarray) -> np.ndarray:
        if "x" in self.__dict__:  # prepared whole already
            return self.x[picked]
        return self.preprocessing.apply(self.stored.x[picked])


@dataclass(frozen=True, eq=False)
class UserData:
    """The measured images, the calibration pool and how both were made."""

    name: str  # as given (a dataset name or a path)
    source: str  # where it was read
    class_names: tuple[str, ...]  # () when unlabelled
    preprocessing: Preprocessing
    test: Images  # what every file is measured on
    train: Images | Pool  # the calibration pool
    calibration_from_test: bool  # no separate calibration images were given
    spec: dict[str, Any] = field(default_factory=dict)  # how to read them again (manifest)
    seed: int = 0
    # the measured images before an --eval-samples subset was picked from them (None: no
    # subset was picked while reading): what the manifest's test_subset says it is "of"
    full_test: int | None = None
    # an int8 / uint8 input's quantisation and where the pixel mapping came from (manifest)
    input_range: dict[str, Any] | None = None

    @property
    def labelled(self) -> bool:
        return self.test.y is not None

    # The measured-data protocol (edgeconv.data.measured), as a named dataset's.
    def subset(self, n: int, seed: int = 0) -> UserData:
        return evaluation_subset(self, n, seed)

    def draw_calibration(self, samples: int, seed: int):
        split = ("calibration-data" if self.spec.get("calibration") else
                 "test" if self.calibration_from_test else "train")
        return calibration_set(self, samples, seed, split)

    def recorded(self) -> dict[str, Any]:
        """Where the images were read and how (bench and quant-report read them again)."""
        return {"user": self.spec}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "classes": list(self.class_names),
                "num_classes": self.num_classes, "labelled": self.labelled,
                "splits": {"test": {"count": len(self.test)},
                           "calibration": {"count": len(self.train)}},
                "preprocessing": self.preprocessing.to_dict(), "seed": self.seed,
                **({"input_range": self.input_range} if self.input_range else {})}


# --- layout and preprocessing from the model ---------------------------------------------


def guess_layout(shape: Sequence[int | None], given: str | None = None) -> str:
    """NHWC or NCHW for a 4-d image input: `given`, else the axis with 1 or 3 channels."""
    if given is not None:
        layout = given.upper()
        if layout not in LAYOUTS:
            raise EdgeconvError(f"--layout must be NHWC or NCHW; got {given!r}")
        return layout
    if len(shape) != 4:
        raise EdgeconvError(f"the model's input has shape {_shown(shape)}; edgeconv prepares"
                            " images for 4-d inputs only (N, H, W, C or N, C, H, W)")
    last, first = shape[3] in (1, 3), shape[1] in (1, 3)
    if last != first:
        return "NHWC" if last else "NCHW"
    raise EdgeconvError(f"cannot tell whether the input {_shown(shape)} is NHWC or NCHW"
                        f" ({'both' if last else 'neither'} axis 1 and axis 3 hold 1 or 3"
                        " channels); pass --layout NHWC or --layout NCHW")


def resolve_preprocessing(model: ModelInput, flags: PrepFlags,
                          source_shape: tuple[int, int, int]) -> Preprocessing:
    """The Preprocessing from the flags, the model's input and the stored images' shape."""
    layout = guess_layout(model.shape, flags.layout)
    if len(model.shape) != 4:
        raise EdgeconvError(f"the model's input has shape {_shown(model.shape)}; edgeconv"
                            " prepares images for 4-d inputs only")
    dims = model.shape[1:]
    h, w, c = (dims[1], dims[2], dims[0]) if layout == "NCHW" else tuple(dims)
    if flags.input_shape is not None:
        if len(flags.input_shape) != 3:
            raise EdgeconvError("--input-shape takes H,W,C")
        for name, have, want in zip(("height", "width", "channels"), (h, w, c),
                                    flags.input_shape):
            if have is not None and want is not None and have != want:
                raise EdgeconvError(f"--input-shape {name} {want} does not fit the model's"
                                    f" input {_shown(model.shape)} ({layout}, {name} {have})")
        h, w, c = (have if have is not None else want
                   for have, want in zip((h, w, c), flags.input_shape))
    h = h if h is not None else source_shape[0]  # a free size: the images' own
    w = w if w is not None else source_shape[1]
    if c is None:
        raise EdgeconvError(f"the model's input {_shown(model.shape)} leaves the channel"
                            " count free; pass --input-shape H,W,C")
    try:
        channels = _channel_conversion(source_shape[2], c)
    except EdgeconvError:
        raise EdgeconvError(f"the images have {source_shape[2]} channels and the model takes"
                            f" {c} ({_shown(model.shape)}, {layout}); edgeconv converts 1 <->"
                            " 3 only") from None
    color = flags.color.lower() if flags.color else None
    if color is not None and color not in COLOR_ORDERS:
        raise EdgeconvError(f"--color must be one of {', '.join(COLOR_ORDERS)}; got"
                            f" {flags.color!r}")
    if color == "gray" and c != 1 or color in ("rgb", "bgr") and c != 3:
        raise EdgeconvError(f"--color {color} does not fit the model's {c}-channel input"
                            f" {_shown(model.shape)}")
    resize = (flags.resize or "bilinear").lower()
    if resize not in RESIZE_METHODS:
        raise EdgeconvError(f"--resize must be one of {', '.join(RESIZE_METHODS)}; got"
                            f" {flags.resize!r}")
    if (h, w) == tuple(source_shape[:2]):
        resize = "none"
    elif resize == "none":
        raise EdgeconvError(f"the images are {source_shape[0]}x{source_shape[1]} and the model"
                            f" takes {h}x{w}; --resize none cannot feed it (give a method)")
    scale, offset = _default_range(model)
    given = (flags.scale, flags.offset, flags.mean, flags.std) != (None,) * 4
    if given and quantised_range(model) is not None:
        # the file's input quantisation already says what range the pixels map onto: the
        # flags are the whole mapping (applied once, never on top of that range), and must
        # map onto that range
        scale = flags.scale if flags.scale is not None else 1 / 255
        offset = flags.offset if flags.offset is not None else 0.0
        _check_against_quantisation(model, scale, offset, flags)
    elif flags.scale is not None or flags.offset is not None:  # pixel * scale + offset
        scale = flags.scale if flags.scale is not None else 1 / 255
        offset = flags.offset if flags.offset is not None else 0.0
    return Preprocessing(input_shape=(h, w, c), source_shape=source_shape, resize=resize,
                         channels=channels, scale=scale, offset=offset, layout=layout,
                         color=color if color in ("bgr",) else None,
                         mean=flags.mean, std=flags.std)


# How far either end of the range the preprocessing flags map pixels onto may lie from the
# range a quantised input covers, as a share of that range: calibration and zero-point
# nudging move its ends by a few steps, normalising twice moves them by most of the range.
RANGE_TOLERANCE = 0.1


def quantised_range(model: ModelInput) -> tuple[float, float] | None:
    """The real values an int8 / uint8 input with a scale and zero-point can hold (None:
    not such an input)."""
    if not (model.scale and model.dtype in ("int8", "uint8") and model.zero_point is not None):
        return None
    qmin, qmax = (-128, 127) if model.dtype == "int8" else (0, 255)
    return (qmin - model.zero_point) * model.scale, (qmax - model.zero_point) * model.scale


def _check_against_quantisation(model: ModelInput, scale: float, offset: float,
                                flags: PrepFlags) -> None:
    """Refuse preprocessing flags that map pixels 0..255 onto another range than the one
    the file's input quantisation covers (each channel's range within it, their union
    spanning it): the model would see values it was never quantised for."""
    low, high = quantised_range(model)  # type: ignore[misc]
    means, stds = flags.mean or (0.0,), flags.std or (1.0,)
    channels = max(len(means), len(stds))
    ends = []
    for k in range(channels):
        m, s = means[k % len(means)], stds[k % len(stds)]
        a, b = (offset - m) / s, (255 * scale + offset - m) / s
        ends.append((min(a, b), max(a, b)))
    given_low, given_high = min(e[0] for e in ends), max(e[1] for e in ends)
    slack = RANGE_TOLERANCE * (high - low)
    if abs(given_low - low) <= slack and abs(given_high - high) <= slack:
        return
    shown = ", ".join(f"--{name} {_numbers(value)}" for name, value in (
        ("scale", flags.scale), ("offset", flags.offset), ("mean", flags.mean),
        ("std", flags.std)) if value is not None)
    raise EdgeconvError(
        f"{shown} map pixels onto [{given_low:.3g}, {given_high:.3g}], but the model's"
        f" {model.dtype} input (scale {model.scale:.3g}, zero-point {model.zero_point})"
        f" covers [{low:.3g}, {high:.3g}]: the file carries its own input quantisation;"
        " drop the flags (edgeconv maps pixels onto that range itself) or give ones that map"
        " onto it")


def _numbers(value: float | tuple[float, ...]) -> str:
    values = value if isinstance(value, tuple) else (value,)
    return ",".join(f"{v:g}" for v in values)


def _default_range(model: ModelInput) -> tuple[float, float]:
    """x = pixel * scale + offset: [0, 1] for a float input; for a quantised one, 0..255
    onto the real range its scale and zero-point cover (a uint8 input with scale 1/255 and
    zero-point 0 gets the pixel itself back); for an integer one without a scale, the
    pixel values."""
    covered = quantised_range(model)
    if covered is not None:
        low, high = covered
        return (high - low) / 255, low
    if model.dtype in ("uint8", "int8", "int16", "int32", "int64"):
        return 1.0, 0.0  # an integer input with no scale takes the pixel values themselves
    return 1 / 255, 0.0


def _shown(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


# --- reading what --data names -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Stored:
    """Images as stored (uint8 NHWC) with labels or None, for one role."""

    x: np.ndarray
    y: np.ndarray | None


def _read(given: str, *, data_dir: str | None, seed: int, need_labels: bool
          ) -> tuple[dict[str, Any], tuple[str, ...], _Stored, _Stored | None, str]:
    """(spec, class names, measured images, calibration images or None, source)."""
    path = Path(given).expanduser()
    key = given.strip().lower().replace("-", "_")
    if key in DATASETS and not (os.sep in given or "/" in given):
        raw = load_dataset(key, data_dir=data_dir)
        if raw.has_test_split:
            test, train = _Stored(raw.x_test, raw.y_test), _Stored(raw.x_train, raw.y_train)
        else:  # the zoo's split: the same test images a zoo model is measured on
            from edgeconv.data.splits import _stratified_split

            rng = np.random.default_rng(seed)
            train_idx, _, test_idx = _stratified_split(raw.y_train, len(raw.class_names),
                                                       0.1, 0.2, rng)
            test = _Stored(raw.x_train[test_idx], raw.y_train[test_idx])
            train = _Stored(raw.x_train[train_idx], raw.y_train[train_idx])
        spec = {"kind": "dataset", "name": key, "data_dir": data_dir}
        return spec, tuple(raw.class_names), test, train, raw.source
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    if path.is_dir():
        return _read_folder(path, need_labels)
    raise EdgeconvError(f"--data {given}: not a dataset name ({', '.join(DATASETS)}), an image"
                        " folder or an .npz file")


def has_labels(given: str) -> bool:
    """Whether --data names labelled images, judged without decoding any: a dataset name,
    a folder with class sub-folders, an .npz holding y or y_test."""
    path = Path(given).expanduser()
    if path.suffix.lower() == ".npz" and path.is_file():
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = {n.removesuffix(".npy") for n in archive.namelist()}
        except (zipfile.BadZipFile, OSError):
            return True  # unreadable: the reader says why, with its own message
        return bool(names & {"y", "y_test"})
    if path.is_dir():
        return any(p.is_dir() and not _hidden(p) for p in path.iterdir())
    return True


def _read_folder(path: Path, need_labels: bool):
    try:
        subdirs = [p for p in path.iterdir() if p.is_dir() and not _hidden(p)]
        loose = [p for p in path.iterdir() if p.is_file() and not _hidden(p)
                 and p.suffix.lower() in IMAGE_EXTENSIONS]
    except OSError as exc:
        raise EdgeconvError(f"cannot list image folder {path} ({one_line(exc)})") from None
    spec = {"kind": "folder", "path": str(path.resolve())}
    if subdirs:
        raw = _load_image_folder(path, label=str(path))  # >= 2 classes, none empty
        return spec, tuple(raw.class_names), _Stored(raw.x_train, raw.y_train), None, \
            str(path.resolve())
    if need_labels:
        raise EdgeconvError(f"{path} holds images but no class sub-folders, so no labels; this"
                            " needs labelled images (one sub-folder per class)")
    if not loose:
        raise EdgeconvError(f"image folder {path} holds no images"
                            f" ({', '.join(IMAGE_EXTENSIONS)}) and no class sub-folders")
    x = _decode_images(sorted(loose, key=lambda p: p.name))
    return spec, (), _Stored(x, None), None, str(path.resolve())


def _read_npz(path: Path):
    if not path.is_file():
        raise EdgeconvError(f"--data {path} does not exist")
    # bounded in what it unpacks to as well as in size; read from the file, not a copy
    arrays, names = read_npz_arrays(path, ("x", "y", "x_test", "y_test", "x_train", "y_train"),
                                    limit=MAX_NPZ_BYTES, what="image archive")
    if "x" in arrays:
        test = _stored(path, "x", arrays["x"], arrays.get("y"))
        train = None
    elif "x_test" in arrays:
        test = _stored(path, "x_test", arrays["x_test"], arrays.get("y_test"))
        train = (_stored(path, "x_train", arrays["x_train"], arrays.get("y_train"))
                 if "x_train" in arrays else None)
    else:
        raise EdgeconvError(f"{path}: an .npz for --data holds x (and y), or x_test (and"
                            f" y_test, x_train, y_train); it holds {', '.join(sorted(names))}")
    classes: tuple[str, ...] = ()
    if test.y is not None:
        top = int(max(test.y.max(initial=0), train.y.max(initial=0)
                      if train is not None and train.y is not None else 0))
        if top >= MAX_CLASSES:  # before a name is made for each class up to it
            raise EdgeconvError(f"{path}: a label is {top:,}; labels name classes 0 to"
                                f" {MAX_CLASSES - 1:,} at most")
        classes = tuple(str(i) for i in range(top + 1))
    return {"kind": "npz", "path": str(path.resolve())}, classes, test, train, \
        str(path.resolve())


def _stored(path: Path, key: str, x: np.ndarray, y: np.ndarray | None) -> _Stored:
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or not len(x):
        raise EdgeconvError(f"{path}: {key} must be uint8 images (N, H, W) or (N, H, W, C);"
                            f" got {x.dtype} {x.shape} (edgeconv applies the preprocessing"
                            " flags itself)")
    x = x[..., np.newaxis] if x.ndim == 3 else x
    if y is None:
        return _Stored(x, None)
    y = np.asarray(y)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x) or (len(y) and y.min() < 0):
        raise EdgeconvError(f"{path}: labels for {key} must be N non-negative integers; got"
                            f" {y.dtype} {y.shape} for {len(x)} images")
    return _Stored(x, y.astype(np.int64))


def _read_calibration(given: str) -> _Stored:
    """Unlabelled images for calibration: a folder (sub-folders too), or an .npz's x."""
    path = Path(given).expanduser()
    if path.suffix.lower() == ".npz":
        _, _, test, train, _ = _read_npz(path)
        return _Stored((train or test).x, None)
    if not path.is_dir():
        raise EdgeconvError(f"--calibration-data {given} is not a folder of images or an .npz")
    files = _image_files(path)
    if not files:
        raise EdgeconvError(f"--calibration-data {path} holds no images"
                            f" ({', '.join(IMAGE_EXTENSIONS)})")
    return _Stored(_decode_images(files), None)


# --- the whole job ---------------------------------------------------------------------------


def load_user_data(given: str, model: ModelInput, flags: PrepFlags, *,
                   calibration: str | None = None, data_dir: str | None = None,
                   seed: int = 0, need_labels: bool = False,
                   output_width: int | None = None,
                   eval_samples: int | None = None) -> UserData:
    """The user's images, checked against the model and prepared for it.

    `output_width`: the single output's width when the model looks like a classifier; a
    labelled set with another class count is refused (labels would mean other classes).
    `eval_samples`: export's --eval-samples; only the images `evaluation_subset` would pick
    (the same ones) are prepared, so a folder too large to prepare whole can be sampled.
    """
    guess_layout(model.shape, flags.layout)  # an ambiguous input fails before any image
    spec, classes, test, train, source = _read(given, data_dir=data_dir, seed=seed,
                                               need_labels=need_labels)
    if test.y is not None and output_width is not None and len(classes) != output_width:
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise EdgeconvError(f"--data {given} has {len(classes)} classes ({shown}) but the model"
                            f" outputs {output_width} values: labels would name other classes")
    if calibration is not None:
        spec = {**spec, "calibration": str(Path(calibration).expanduser().resolve())}
    # the pool is read before a subset is picked: calibration draws from every image
    train, calibration_from_test = _calibration_pool(test, train, spec.get("calibration"))
    source_shape = tuple(int(v) for v in test.x.shape[1:])
    prep = resolve_preprocessing(model, flags, source_shape)  # type: ignore[arg-type]
    full_test = None
    if eval_samples is not None and eval_samples < len(test.x):
        full_test = len(test.x)
        picked = subset_indices(test.y, len(classes), full_test, eval_samples, seed)
        test = _Stored(test.x[picked], None if test.y is None else test.y[picked])
    _check_memory(prep, test)
    spec = {**spec, "seed": seed}
    return UserData(name=given, source=source, class_names=classes, preprocessing=prep,
                    test=Images(prep.apply(test.x), test.y),
                    train=Pool(train, prep, alongside=len(test.x)),
                    calibration_from_test=calibration_from_test, spec=spec, seed=seed,
                    full_test=full_test, input_range=_input_range(model, flags))


_MEMORY_HINT = ("give fewer or smaller images (or --eval-samples N), or a smaller"
                " --input-shape for a free-size model")


def _check_memory(prep: Preprocessing, test: _Stored) -> None:
    """The measured images as the model's float32 input must fit in this machine's memory:
    one line before a byte is allocated (a 100000x100000 input, --input-shape 4096,4096,1 on
    a free-size model, thousands of large photos), never a MemoryError. (The calibration
    pool is checked, with them, when it is prepared whole: `Pool.x`.)"""
    from edgeconv.data.splits import _check_memory as check

    check(prep, len(test.x), hint=_MEMORY_HINT)


def _input_range(model: ModelInput, flags: PrepFlags) -> dict[str, Any] | None:
    """For an int8 / uint8 input with its own quantisation: the range it covers and where
    the pixel mapping came from (the flags, checked against that range and applied once;
    or the range itself)."""
    covered = quantised_range(model)
    if covered is None:
        return None
    given = (flags.scale, flags.offset, flags.mean, flags.std) != (None,) * 4
    return {"dtype": model.dtype, "scale": model.scale, "zero_point": model.zero_point,
            "covers": [covered[0], covered[1]],
            "mapping": "the preprocessing flags (checked against the range, applied once)"
                       if given else "the range the input's quantisation covers"}


def _calibration_pool(test: _Stored, train: _Stored | None, calibration: str | None
                      ) -> tuple[_Stored, bool]:
    """The images int8 is calibrated on (at the measured images' size and channels), and
    whether they are the measured images themselves."""
    from_test = False
    if calibration is not None:
        train = _read_calibration(calibration)
    elif train is None:
        train, from_test = _Stored(test.x, None), True
    if train.x.shape[1:] != test.x.shape[1:]:
        from edgeconv.data.preprocess import _resize_bilinear

        h, w = test.x.shape[1:3]
        cx = _resize_bilinear(train.x, h, w) if train.x.shape[1:3] != (h, w) else train.x
        if cx.shape[3] != test.x.shape[3]:
            cx = (np.repeat(cx, 3, axis=3) if cx.shape[3] == 1
                  else np.rint(cx.astype(np.float32) @ np.array([0.299, 0.587, 0.114],
                                                                 np.float32)
                               ).clip(0, 255).astype(np.uint8)[..., np.newaxis])
        train = _Stored(cx, train.y)
    return train, from_test


def load_recorded_user(spec: dict[str, Any], preprocessing: dict[str, Any]) -> UserData:
    """A user export's measured images and calibration pool read again as the manifest
    recorded them (bench, quant-report)."""
    prep = Preprocessing.from_dict(preprocessing)
    kind = spec.get("kind")
    seed = int(spec.get("seed") or 0)
    given = spec.get("name") if kind == "dataset" else spec.get("path")
    if kind not in ("dataset", "folder", "npz") or not isinstance(given, str):
        raise EdgeconvError(f"the manifest's dataset.user is not one edgeconv wrote:"
                            f" {spec!r}"[:300])
    _, classes, test, train, source = _read(given, data_dir=spec.get("data_dir"), seed=seed,
                                            need_labels=False)
    if tuple(test.x.shape[1:]) != tuple(prep.source_shape):
        raise EdgeconvError(f"{given} now holds {test.x.shape[1:]} images, not the"
                            f" {tuple(prep.source_shape)} the export measured")
    calibration = spec.get("calibration")
    train, from_test = _calibration_pool(test, train, calibration if isinstance(
        calibration, str) else None)
    _check_memory(prep, test)
    return UserData(name=given, source=source, class_names=classes, preprocessing=prep,
                    test=Images(prep.apply(test.x), test.y),
                    train=Pool(train, prep, alongside=len(test.x)),
                    calibration_from_test=from_test, spec=spec, seed=seed)


def evaluation_subset(data: UserData, n: int, seed: int = 0) -> UserData:
    """The first-come seeded choice of `n` measured images (stratified when labelled)."""
    if n >= len(data.test):
        return data
    picked = subset_indices(data.test.y, data.num_classes, len(data.test), n, seed)
    y = None if data.test.y is None else data.test.y[picked]
    return replace(data, test=Images(data.test.x[picked], y))


def subset_indices(y: np.ndarray | None, num_classes: int, count: int, n: int,
                   seed: int) -> np.ndarray:
    """Which `n` of `count` measured images a seeded subset takes, in order (stratified by
    `y` when labelled): read from the labels alone, so it is picked before any image is
    prepared (load_user_data) or after (evaluation_subset), the same images either way."""
    rng = np.random.default_rng(seed)
    if y is not None:
        from edgeconv.data.splits import _stratified_pick

        return np.sort(_stratified_pick(y, max(num_classes, 1), n, rng, cover=True))
    return np.sort(rng.permutation(count)[:n])


def draw_calibration(data: UserData, samples: int, seed: int) -> tuple[np.ndarray,
                                                                         np.ndarray | None]:
    """`samples` images of the calibration pool (stratified when labelled), seeded."""
    n = min(samples, len(data.train))
    rng = np.random.default_rng(seed)
    if data.train.y is not None and data.num_classes:
        from edgeconv.data.splits import _stratified_pick

        picked = _stratified_pick(data.train.y, data.num_classes, n, rng, cover=True)
        return data.train.take(picked), data.train.y[picked]
    picked = rng.permutation(len(data.train))[:n]
    return data.train.take(picked), None


def calibration_set(data: UserData, samples: int, seed: int, split: str):
    """draw_calibration as edgeconv.quant.calibration.CalibrationSet (labels empty when
    the pool has none): what export calibrated on, and quant-report re-draws."""
    from edgeconv.quant.calibration import CalibrationSet

    images, labels = draw_calibration(data, samples, seed)
    return CalibrationSet(images, labels if labels is not None else np.zeros(0, np.int64),
                          seed, split=split)
