"""Datasets as stored: names, where their files are, the format readers, `load_dataset`.

Files are found in a `--data-dir`, else the Keras cache (and, for Fashion-MNIST, the system's
dataset folders: `system_dataset_dirs()`); each format (Keras mnist.npz, fashion-mnist
IDX files, CIFAR-10 pickles, scikit-learn's bundled digits, a folder of images per class) is
read into a `RawDataset` of uint8 NHWC images and int64 labels. Everything a user can get wrong
(a name, a path, a corrupt file) raises `EdgeconvError` with a one-line message.
"""

from __future__ import annotations

import gzip
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv._lazy import keras as _import_keras
from edgeconv._lazy import require
from edgeconv.data.safe_pickle import _RestrictedUnpickler
from edgeconv.errors import EdgeconvError, did_you_mean, one_line
from edgeconv.files import open_regular, read_upto, walk_files

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion_mnist", "cifar10", "synthetic_text")
DEFAULT_DATASET = "digits"

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

DIGIT_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

MNIST_FILE = "mnist.npz"
FASHION_DIR = "fashion-mnist"
FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN_BATCHES, "test_batch", "batches.meta")
# Where Keras versions extract cifar-10-python.tar.gz, relative to the cache's datasets/ dir:
# 3.15 uses get_file(fname="cifar-10-batches-py-target", extract=True); Keras 3 versions whose
# get_file extracts into "<fname>/" used fname="cifar-10-batches-py"; get_file with a dotted
# fname extracts into "<stem>_extracted/"; Keras 2 / tf.keras untarred straight into datasets/.
CIFAR_CACHE_LAYOUTS = (
    f"cifar-10-batches-py-target/{CIFAR_DIR}",
    f"{CIFAR_DIR}/{CIFAR_DIR}",
    f"cifar-10-python_extracted/{CIFAR_DIR}",
    CIFAR_DIR,
)


# ----------------------------------------------------------------------------- raw datasets


@dataclass(frozen=True, eq=False)
class RawDataset:
    """A dataset as stored: uint8 NHWC images, int64 labels, official test split if any."""

    name: str  # "digits", "mnist", ... or "folder:<path>"
    source: str  # where it was read from (path, or "scikit-learn bundled")
    class_names: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def has_test_split(self) -> bool:
        return self.x_test is not None and self.y_test is not None


def load_dataset(
    name: str | os.PathLike[str] = DEFAULT_DATASET,
    data_dir: str | Path | None = None,
    download: bool = False,
) -> RawDataset:
    """Load a named dataset (see `DATASETS`) or an image folder (a path) as stored.

    Files are looked for in `data_dir` when given, else in the Keras cache
    (`$KERAS_HOME/datasets`, default `~/.keras/datasets`). `download=True` lets Keras fetch
    missing files into its cache first. `digits` is bundled with scikit-learn: always offline.
    """
    name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise EdgeconvError(
            f"dataset name must be one of {', '.join(DATASETS)} or an image folder path; "
            f"got {name!r}"
        )
    if _is_folder_name(name):
        return _load_image_folder(Path(name).expanduser(), label=name)
    key = name.strip().lower().replace("-", "_")
    if key == "digits":
        return _load_digits()
    if key == "synthetic_text":  # generated, always offline (article D's char-CNN)
        return _load_synthetic_text()
    if key not in _FILE_LOADERS:
        raise EdgeconvError(
            f"unknown dataset '{name}' (known: {', '.join(DATASETS)}, "
            f"or a path to a folder with one sub-folder of images per class)"
            f"{did_you_mean(key, DATASETS)}"
        )
    find, read = _FILE_LOADERS[key]
    data_base = Path(data_dir).expanduser() if data_dir is not None else None
    if data_base is not None and not data_base.is_dir():
        raise EdgeconvError(f"--data-dir {data_base} is not a directory")
    try:
        where = find(data_base)
    except _MissingFiles:
        if not download:
            raise
        _download_with_keras(key)
        where = find(None)  # Keras always downloads into its cache
    return read(where)


def _is_folder_name(name: str) -> bool:
    # A known dataset name wins over a same-named directory in the cwd; use ./name for that.
    if "/" in name or os.sep in name:
        return True
    return name.strip().lower().replace("-", "_") not in DATASETS and Path(name).is_dir()


def keras_cache_dirs() -> list[Path]:
    """The `datasets/` folders Keras downloads into, as Keras 3 computes them."""
    home_env = os.environ.get("KERAS_HOME")
    if home_env:
        home = Path(home_env).expanduser()
    else:
        base = Path("~").expanduser()
        home = (base if os.access(base, os.W_OK) else Path("/tmp")) / ".keras"
    dirs = [home / "datasets"]
    # get_file falls back to /tmp/.keras when the Keras home is not writable.
    fallback = Path("/tmp/.keras/datasets")
    if not os.access(home, os.W_OK) and fallback not in dirs:
        dirs.append(fallback)
    return dirs


class _MissingFiles(EdgeconvError):
    """The dataset's files are not where we looked (download may fix it)."""


def _find_files(
    dataset: str, candidates: Sequence[Path], files: Sequence[str], how: str
) -> Path:
    """Return the first candidate folder holding `files`; fail naming every path looked at."""
    for folder in candidates:
        present = [f for f in files if (folder / f).is_file()]
        if not present:
            continue
        missing = [f for f in files if f not in present]
        if missing:  # e.g. an interrupted download: --download can still complete it
            raise _MissingFiles(
                f"{dataset}: {folder} holds {', '.join(present)} but lacks {', '.join(missing)}; "
                f"{how}"
            )
        return folder
    if len(files) == 1:
        looked = "looked for " + ", ".join(str(c / files[0]) for c in candidates)
    else:
        looked = f"looked for its {len(files)} files in " + ", ".join(map(str, candidates))
    raise _MissingFiles(f"{dataset} not found: {looked}; {how}")


def _cache_or(data_dir: Path | None, in_data_dir: Callable[[Path], list[Path]],
              in_cache: Callable[[Path], list[Path]]) -> list[Path]:
    if data_dir is not None:
        return in_data_dir(data_dir)
    return [p for base in keras_cache_dirs() for p in in_cache(base)]


def _find_mnist(data_dir: Path | None) -> Path:
    folders = _cache_or(data_dir, lambda d: [d], lambda c: [c])
    how = (f"pass --data-dir DIR with DIR holding the Keras file {MNIST_FILE}, "
           "or --download to fetch it into the Keras cache")
    return _find_files("mnist", folders, (MNIST_FILE,), how) / MNIST_FILE


def system_dataset_dirs() -> list[Path]:
    """Folders where the system's package manager puts datasets (Debian's dataset-* packages
    install under /usr/share/datasets/); EDGECONV_SYSTEM_DATASETS (os.pathsep-separated)
    replaces the list."""
    given = os.environ.get("EDGECONV_SYSTEM_DATASETS")
    if given is not None:
        return [Path(p).expanduser() for p in given.split(os.pathsep) if p]
    return [Path("/usr/local/share/datasets"), Path("/usr/share/datasets")]


def _find_fashion(data_dir: Path | None) -> Path:
    # --data-dir alone when given; else the Keras cache, then the system's dataset folders
    # (apt-get install dataset-fashion-mnist puts the same IDX files in
    # /usr/share/datasets/fashion-mnist/).
    folders = _cache_or(data_dir, lambda d: [d / FASHION_DIR, d], lambda c: [c / FASHION_DIR])
    if data_dir is None:
        folders += [base / FASHION_DIR for base in system_dataset_dirs()]
    how = (f"pass --data-dir DIR with DIR (or DIR/{FASHION_DIR}) holding the files "
           f"{', '.join(FASHION_FILES)}; on Debian or Ubuntu `apt-get install"
           f" dataset-fashion-mnist` installs them where edgeconv looks; or --download to fetch"
           " them into the Keras cache")
    return _find_files("fashion_mnist", folders, FASHION_FILES, how)


def _find_cifar10(data_dir: Path | None) -> Path:
    folders = _cache_or(
        data_dir,
        lambda d: [d / CIFAR_DIR, d, *(d / lay for lay in CIFAR_CACHE_LAYOUTS[:-1])],
        lambda c: [c / lay for lay in CIFAR_CACHE_LAYOUTS],
    )
    how = (f"extract cifar-10-python.tar.gz and pass --data-dir DIR with DIR holding its "
           f"{CIFAR_DIR}/ folder ({', '.join(CIFAR_FILES)}), or --download to fetch it into "
           "the Keras cache")
    return _find_files("cifar10", folders, CIFAR_FILES, how)


def _download_with_keras(key: str) -> None:
    """Let the Keras loader fetch the files into its cache (needs network)."""
    keras = _import_keras()
    try:
        getattr(keras.datasets, key).load_data()  # keras.datasets.mnist, .fashion_mnist, ...
    except Exception as exc:  # network, HTTP, hash or extraction errors alike
        cache = keras_cache_dirs()[0]
        raise EdgeconvError(
            f"downloading {key} with Keras failed ({one_line(exc)}); without network, "
            f"place the files by hand: {_HAND_PLACEMENT[key]} in {cache} or in a folder "
            "passed as --data-dir DIR"
        ) from None


_HAND_PLACEMENT = {
    "mnist": MNIST_FILE,
    "fashion_mnist": f"{FASHION_DIR}/ holding {', '.join(FASHION_FILES)}",
    "cifar10": f"the {CIFAR_DIR}/ folder extracted from cifar-10-python.tar.gz",
}


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure while parsing a user's file into one EdgeconvError naming it."""
    try:
        yield
    except EdgeconvError:
        raise
    except MemoryError:
        raise EdgeconvError(f"{path}: corrupt file (declares more data than fits in memory)")
    except Exception as exc:  # zlib, zipfile, pickle, OSError...: all mean "bad file"
        raise EdgeconvError(f"{path}: cannot read it, corrupt or truncated ({one_line(exc)})")


# ----------------------------------------------------------------------------- format readers

# What a dataset file may unpack to: far above any dataset edgeconv reads (CIFAR-10's
# batches are 180 MB, an image archive a few GB), so a small file declaring more (a zip or
# gzip bomb, an .npy header promising 10**12 elements) is refused before it is unpacked.
MAX_UNPACKED_BYTES = 8 * 1024**3
MAX_NPZ_MEMBERS = 1_000  # arrays in an .npz: a dataset holds a handful
MAX_IDX_BYTES = 2 * 1024**3  # an IDX file unpacked: Fashion-MNIST's largest is 47 MB


def read_npz_arrays(path: Path, keys: Sequence[str], *, limit: int = MAX_UNPACKED_BYTES,
                    what: str = "archive") -> tuple[dict[str, np.ndarray], set[str]]:
    """The arrays named `keys` that an .npz holds, and every name it holds. The file is a
    regular one of at most `limit` bytes; what its members unpack to is bounded by `limit`
    too (all together), from the sizes the zip declares and each .npy header's shape before
    an array is made, and while unpacking (zipfile stops a member at its declared size).
    Pickled objects are never loaded. Any failure is one EdgeconvError naming `path`."""
    import zipfile

    arrays: dict[str, np.ndarray] = {}
    with open_regular(path, limit, what=what, allow_empty=False) as (fh, _), _reading(path):
        _check_zip_count(path, fh)
        with zipfile.ZipFile(fh) as archive:
            members = {info.filename.removesuffix(".npy"): info
                       for info in archive.infolist() if not info.is_dir()}
            declared = sum(members[k].file_size for k in keys if k in members)
            if declared > limit:
                raise EdgeconvError(f"{path}: its arrays unpack to {declared:,} bytes; edgeconv"
                                    f" reads at most {limit:,}")
            for key in keys:
                if key in members:
                    arrays[key] = _npy_member(path, archive, members[key])
    return arrays, set(members)


def _check_zip_count(path: Path, fh) -> None:
    """Refuse an archive listing more than MAX_NPZ_MEMBERS entries before zipfile builds an
    object per entry (its end record says how many)."""
    import zipfile

    end_record = getattr(zipfile, "_EndRecData", None)  # zipfile's own reader of it
    record = end_record(fh) if end_record is not None else None
    if record and record[4] > MAX_NPZ_MEMBERS:  # _ECD_ENTRIES_TOTAL
        raise EdgeconvError(f"{path}: lists {record[4]:,} entries; an .npz edgeconv reads"
                            f" holds at most {MAX_NPZ_MEMBERS:,} arrays")
    fh.seek(0)


def _npy_member(path: Path, archive, info) -> np.ndarray:
    """One .npy member, its header checked against the member's declared size first."""
    fmt = np.lib.format
    with archive.open(info) as member:
        version = fmt.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise EdgeconvError(f"{path}: {info.filename} is .npy format {version}; edgeconv"
                                " reads 1.0 and 2.0 (what numpy writes for numbers)")
        header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = header(member)
        header_bytes = member.tell()
    if dtype.hasobject:
        raise EdgeconvError(f"{path}: {info.filename} holds Python objects (pickles), which"
                            " edgeconv never loads")
    promised = math.prod(shape) * dtype.itemsize
    if promised > info.file_size - header_bytes:
        raise EdgeconvError(f"{path}: {info.filename} declares {shape} {dtype}"
                            f" ({promised:,} bytes) but holds {info.file_size - header_bytes:,}")
    with archive.open(info) as member:
        return fmt.read_array(member, allow_pickle=False)



def _load_digits() -> RawDataset:
    datasets = require("sklearn.datasets", extra="data")
    bunch = datasets.load_digits()
    # Values are 0..16; map to the full uint8 range like every other dataset.
    images = np.rint(np.asarray(bunch.images, dtype=np.float64) * 255.0 / 16.0)
    x = images.astype(np.uint8)[..., np.newaxis]
    y = np.asarray(bunch.target, dtype=np.int64)
    return RawDataset("digits", "scikit-learn bundled", DIGIT_CLASSES, x, y)


def _load_synthetic_text() -> RawDataset:
    from edgeconv.data import synthetic_text as text

    x_train, y_train, x_test, y_test = text.generate()
    return RawDataset("synthetic_text", text.SOURCE, text.LANGUAGES, x_train, y_train,
                      x_test, y_test)


def _read_mnist(path: Path) -> RawDataset:
    arrays: dict[str, np.ndarray] = {}
    with _reading(path):
        keys = ("x_train", "y_train", "x_test", "y_test")
        arrays, names = read_npz_arrays(path, keys, what="Keras mnist.npz")
        for key in keys:
            if key not in arrays:
                raise EdgeconvError(
                    f"{path}: not a Keras mnist.npz: no array '{key}' "
                    f"(it holds: {', '.join(sorted(names)) or 'nothing'})"
                )
    x_train, y_train = _gray_split(path, "train", arrays["x_train"], arrays["y_train"], 10)
    x_test, y_test = _gray_split(path, "test", arrays["x_test"], arrays["y_test"], 10)
    _same_image_shape(path, x_train, x_test)
    return RawDataset("mnist", str(path), DIGIT_CLASSES, x_train, y_train, x_test, y_test)


def _gray_split(
    path: Path, split: str, x: np.ndarray, y: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Check (N,H,W) uint8 images against (N,) labels; return (N,H,W,1) and int64 labels."""
    if x.dtype != np.uint8 or x.ndim != 3 or min(x.shape[1:], default=0) < 1:
        raise EdgeconvError(
            f"{path}: {split} images must be uint8 with shape (N, H, W); "
            f"got {x.dtype} {x.shape}"
        )
    return x[..., np.newaxis], _labels(path, split, y, len(x), n_classes)


def _labels(path: Path, split: str, y: Any, count: int, n_classes: int) -> np.ndarray:
    try:
        y = np.asarray(y)
    except (ValueError, TypeError) as exc:  # ragged or odd objects
        raise EdgeconvError(f"{path}: {split} labels are not an array ({one_line(exc)})")
    if y.ndim == 2 and y.shape[1] == 1:  # Keras-style (N, 1) labels
        y = y[:, 0]
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise EdgeconvError(
            f"{path}: {split} labels must be integers with shape (N,); got {y.dtype} {y.shape}"
        )
    if len(y) != count:
        raise EdgeconvError(f"{path}: {split} has {count} images but {len(y)} labels")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise EdgeconvError(
            f"{path}: {split} labels must lie in 0..{n_classes - 1}; "
            f"found {y.min()}..{y.max()}"
        )
    return y


def _same_image_shape(source: Path, x_train: np.ndarray, x_test: np.ndarray) -> None:
    if x_train.shape[1:] != x_test.shape[1:]:
        raise EdgeconvError(
            f"{source}: train images are {x_train.shape[1:]} but test images are "
            f"{x_test.shape[1:]}"
        )


# IDX type codes (http://yann.lecun.com/exdb/mnist/): all values big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse a gzip-compressed IDX file, checking its magic number, dims and size."""
    with _reading(path), open_regular(path, MAX_IDX_BYTES, what="IDX file") as (fh, _):
        with gzip.GzipFile(fileobj=fh, mode="rb") as f:
            blob = read_upto(f, MAX_IDX_BYTES)  # unpacked in chunks, never past the bound
    if len(blob) > MAX_IDX_BYTES:
        raise EdgeconvError(f"{path}: unpacks to more than {MAX_IDX_BYTES:,} bytes; not an"
                            " IDX file edgeconv reads")
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in _IDX_DTYPES:
        magic = blob[:4].hex() or "empty file"
        raise EdgeconvError(f"{path}: not an IDX file (bad magic number {magic})")
    if blob[3] != ndim:
        raise EdgeconvError(f"{path}: expected an IDX file with {ndim} dims, got {blob[3]}")
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise EdgeconvError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(blob, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[blob[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(blob) - header != expected:
        raise EdgeconvError(
            f"{path}: truncated or padded IDX data: header {dims} promises {expected} bytes, "
            f"file holds {len(blob) - header}"
        )
    return np.frombuffer(blob, dtype, offset=header).reshape(dims)


def _read_fashion(folder: Path) -> RawDataset:
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        label_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
        image_path = folder / f"{prefix}-images-idx3-ubyte.gz"
        y = _read_idx(label_path, ndim=1)
        x = _read_idx(image_path, ndim=3)
        if x.dtype != np.uint8:
            raise EdgeconvError(f"{image_path}: images must be unsigned bytes, got {x.dtype}")
        if len(x) != len(y):
            raise EdgeconvError(
                f"{folder}: {split} has {len(x)} images ({image_path.name}) but {len(y)} "
                f"labels ({label_path.name})"
            )
        parts[split] = _gray_split(label_path, split, x, y, len(FASHION_CLASSES))
    (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
    _same_image_shape(folder, x_train, x_test)
    return RawDataset(
        "fashion_mnist", str(folder), FASHION_CLASSES, x_train, y_train, x_test, y_test
    )


def _unpickle_dict(path: Path) -> dict[str, Any]:
    """Load a CIFAR pickle safely; keys come back as str whatever Python wrote them."""
    with _reading(path):
        with path.open("rb") as f:
            obj = _RestrictedUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise EdgeconvError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle_dict(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise EdgeconvError(f"{path}: not a CIFAR-10 batch: no '{key}' entry")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise EdgeconvError(f"{path}: 'data' must be a uint8 array (N, 3072); got {got}")
    labels = _labels(path, "batch", batch["labels"], len(data), 10)
    # Rows are stored channel-major (1024 R, 1024 G, 1024 B); the models want NHWC.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_cifar10(folder: Path) -> RawDataset:
    meta_path = folder / "batches.meta"
    names = _unpickle_dict(meta_path).get("label_names")
    if not isinstance(names, list) or len(names) != 10 \
            or not all(isinstance(n, (bytes, str)) for n in names):
        raise EdgeconvError(f"{meta_path}: 'label_names' must be a list of 10 names")
    class_names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n
                        for n in names)
    train = [_read_cifar_batch(folder / b) for b in CIFAR_TRAIN_BATCHES]
    x_test, y_test = _read_cifar_batch(folder / "test_batch")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return RawDataset("cifar10", str(folder), class_names, x_train, y_train, x_test, y_test)


_FILE_LOADERS: dict[str, tuple[Callable[[Path | None], Path], Callable[[Path], RawDataset]]] = {
    "mnist": (_find_mnist, _read_mnist),
    "fashion_mnist": (_find_fashion, _read_fashion),
    "cifar10": (_find_cifar10, _read_cifar10),
}


# ----------------------------------------------------------------------------- image folders

_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def _load_image_folder(root: Path, label: str) -> RawDataset:
    """One sub-folder per class (sorted names = label order), images inside it (recursively)."""
    if not root.is_dir():
        raise EdgeconvError(f"image folder {root} does not exist or is not a directory")
    try:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not _hidden(p))
        files = {c: _image_files(root / c) for c in classes}
    except OSError as exc:  # unreadable sub-folder, permission denied
        raise EdgeconvError(f"cannot list image folder {root} ({one_line(exc)})") from None
    if len(classes) < 2:
        raise EdgeconvError(
            f"image folder {root} has {len(classes)} class sub-folder(s); need at least 2 "
            f"(one sub-folder per class holding {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} "
            "files)"
        )
    for c in classes:
        if not files[c]:
            raise EdgeconvError(
                f"image folder {root}: class sub-folder '{c}' holds no image files "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
    paths = [p for c in classes for p in files[c]]
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(files[c]) for c in classes])
    x = _decode_images(paths)
    name = f"folder:{Path(label)}"
    return RawDataset(name, str(root.resolve()), tuple(classes), x, labels)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    # walk_files: no recursion (a folder 1,100 deep is one line), no /proc
    found = [p for p in walk_files(folder, skip_hidden=True, what="image folder")
             if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _decode_images(paths: list[Path]) -> np.ndarray:
    """Decode all images to one uint8 NHWC array: RGB if any is colour, most common size."""
    image_mod = require("PIL.Image", extra="data")
    decoded = []
    for path in paths:
        try:
            with image_mod.open(path) as im:
                im.load()
                gray = im.mode in _GRAY_MODES
                decoded.append(im.convert("L" if gray else "RGB"))
        except Exception as exc:  # UnidentifiedImageError, truncated data, decompression bomb
            raise EdgeconvError(f"cannot read image {path} ({one_line(exc)})") from None
    mode = "RGB" if any(im.mode == "RGB" for im in decoded) else "L"
    # Folders may mix sizes; one array needs one size: use the commonest (first seen on ties).
    size = Counter(im.size for im in decoded).most_common(1)[0][0]
    bilinear = image_mod.Resampling.BILINEAR
    arrays = []
    for im in decoded:
        im = im.convert(mode) if im.mode != mode else im
        im = im.resize(size, bilinear) if im.size != size else im
        arrays.append(np.asarray(im, dtype=np.uint8))
    x = np.stack(arrays)
    return x[..., np.newaxis] if mode == "L" else x
