"""Tests for edgeconv.data: real files in each format, written into tmp_path; no mocks."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from edgeconv import data
from edgeconv.data import (
    DATASETS,
    NORMALISATIONS,
    Preprocessing,
    RawDataset,
    calibration_sample,
    load,
    load_dataset,
    prepare,
)
from edgeconv.errors import EdgeconvError

# ----------------------------------------------------------------------------- file writers


def write_mnist_npz(folder: Path, n_train: int = 60, n_test: int = 20) -> dict[str, np.ndarray]:
    """A Keras-style mnist.npz: uint8 (N, 28, 28) images, uint8 labels."""
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "mnist.npz", **arrays)
    return arrays


def idx_bytes(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    """The IDX format: 0, 0, type code, ndim, big-endian uint32 dims, then the data."""
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1").tobytes()


def write_gz(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(payload)


def write_fashion(folder: Path, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    write_gz(folder / "train-labels-idx1-ubyte.gz", idx_bytes(arrays["y_train"]))
    write_gz(folder / "train-images-idx3-ubyte.gz", idx_bytes(arrays["x_train"]))
    write_gz(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(arrays["y_test"]))
    write_gz(folder / "t10k-images-idx3-ubyte.gz", idx_bytes(arrays["x_test"]))
    return arrays


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]


class Py2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 str opcodes and numpy.core names, like the original files."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "")
        if module == "numpy._core.multiarray":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n" + obj.__name__.encode() + b"\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump(path: Path, obj: object, py2_style: bool = False) -> None:
    with path.open("wb") as f:
        if py2_style:
            Py2StylePickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=2)


def write_cifar(folder: Path, per_batch: int = 4, py2_style: bool = False) -> dict:
    """CIFAR-10 python batches: dict with b"data" (N, 3072) channel-major, b"labels" list."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        d = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int((b * per_batch + i) % 10) for i in range(per_batch)]
        batches[name] = (d, labels)
        dump(folder / name, {
            b"batch_label": f"batch {name}".encode(),
            b"labels": labels,
            b"data": d,
            b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
        }, py2_style)
    dump(folder / "batches.meta", {
        b"num_cases_per_batch": per_batch,
        b"label_names": [n.encode() for n in CIFAR_NAMES],
        b"num_vis": 3072,
    }, py2_style)
    return batches


def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_image_folder(root: Path, classes=("cat", "ant", "bee"), per_class: int = 4) -> Path:
    rng = np.random.default_rng(4)
    for c in classes:
        for i in range(per_class):
            write_png(root / c / f"{i}.png", rng.integers(0, 256, (10, 12), dtype=np.uint8))
    return root


def unique_raw(n_per_class: tuple[int, ...] = (30, 50, 20), with_test: bool = False):
    """A dataset whose images encode their index, so splits can be checked for overlap."""
    y = np.repeat(np.arange(len(n_per_class)), n_per_class).astype(np.int64)
    idx = np.arange(len(y))
    x = np.zeros((len(y), 4, 4, 1), np.uint8)
    x[:, 0, 0, 0] = idx // 256
    x[:, 0, 1, 0] = idx % 256
    names = tuple(f"c{i}" for i in range(len(n_per_class)))
    if with_test:
        return RawDataset("u", "mem", names, x, y, x[:9].copy(), y[:9].copy())
    return RawDataset("u", "mem", names, x, y)


def decode_index(x_float: np.ndarray) -> np.ndarray:
    """Invert unique_raw's encoding after the 'unit' normalisation."""
    px = np.rint(x_float * 255).astype(np.int64)
    return px[:, 0, 0, 0] * 256 + px[:, 0, 1, 0]


@pytest.fixture(scope="module")
def digits() -> RawDataset:
    return load_dataset("digits")


# ----------------------------------------------------------------------------- loading


def test_digits_offline(digits: RawDataset) -> None:
    from sklearn.datasets import load_digits

    assert digits.name == "digits" and digits.source == "scikit-learn bundled"
    assert digits.x_train.shape == (1797, 8, 8, 1) and digits.x_train.dtype == np.uint8
    assert digits.y_train.dtype == np.int64 and len(digits.class_names) == 10
    assert digits.x_test is None and digits.y_test is None
    ref = load_digits()
    expected = np.rint(ref.images[5] * 255 / 16).astype(np.uint8)
    assert np.array_equal(digits.x_train[5, :, :, 0], expected)
    assert digits.x_train.max() == 255 and digits.x_train.min() == 0


def test_mnist_from_data_dir_round_trips(tmp_path: Path) -> None:
    arrays = write_mnist_npz(tmp_path)
    raw = load_dataset("mnist", data_dir=tmp_path)
    assert raw.source == str(tmp_path / "mnist.npz")
    assert raw.x_train.shape == (60, 28, 28, 1) and raw.x_train.dtype == np.uint8
    assert np.array_equal(raw.x_train[..., 0], arrays["x_train"])
    assert np.array_equal(raw.x_test[..., 0], arrays["x_test"])
    assert raw.y_train.dtype == np.int64 and np.array_equal(raw.y_test, arrays["y_test"])
    assert raw.class_names == tuple("0123456789")


def test_mnist_from_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    write_mnist_npz(tmp_path / "kh" / "datasets")
    raw = load_dataset("mnist")
    assert raw.source == str(tmp_path / "kh" / "datasets" / "mnist.npz")
    assert len(raw.x_train) == 60


def test_download_not_needed_when_files_present(tmp_path: Path) -> None:
    # download=True only calls Keras when the files are missing: no network, no TensorFlow.
    write_mnist_npz(tmp_path)
    assert len(load_dataset("mnist", data_dir=tmp_path, download=True).x_test) == 20


@pytest.mark.parametrize("sub", ["fashion-mnist", ""])
def test_fashion_mnist_idx_round_trips(tmp_path: Path, sub: str) -> None:
    arrays = write_fashion(tmp_path / sub if sub else tmp_path)
    raw = load_dataset("fashion_mnist", data_dir=tmp_path)
    assert raw.x_train.shape == (30, 28, 28, 1) and raw.x_test.shape == (10, 28, 28, 1)
    assert np.array_equal(raw.x_train[..., 0], arrays["x_train"])
    assert np.array_equal(raw.y_test, arrays["y_test"].astype(np.int64))
    assert raw.class_names[0] == "T-shirt/top" and raw.class_names[9] == "Ankle boot"


def test_fashion_mnist_from_keras_cache_and_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_fashion(tmp_path / "datasets" / "fashion-mnist")
    raw = load_dataset("fashion-mnist")
    assert raw.name == "fashion_mnist" and len(raw.y_train) == 30


def test_fashion_mnist_search_path_ends_in_the_system_dataset_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --data-dir, then the Keras cache, then the system folders (Debian's dataset package)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    system = tmp_path / "usr-share-datasets"
    monkeypatch.setenv("EDGECONV_SYSTEM_DATASETS", f"{tmp_path / 'empty'}{os.pathsep}{system}")
    with pytest.raises(EdgeconvError, match="apt-get install dataset-fashion-mnist") as err:
        load_dataset("fashion_mnist")
    assert str(system / "fashion-mnist") in str(err.value) and "\n" not in str(err.value)
    write_fashion(system / "fashion-mnist", n_train=20)
    assert load_dataset("fashion_mnist").source == str(system / "fashion-mnist")
    write_fashion(tmp_path / "keras" / "datasets" / "fashion-mnist", n_train=30)
    assert len(load_dataset("fashion_mnist").y_train) == 30  # the Keras cache comes first
    given = tmp_path / "given"
    write_fashion(given, n_train=40)
    assert len(load_dataset("fashion_mnist", data_dir=given).y_train) == 40
    (tmp_path / "empty-given").mkdir()
    with pytest.raises(EdgeconvError, match="not found"):  # --data-dir alone when given
        load_dataset("fashion_mnist", data_dir=tmp_path / "empty-given")


def test_cifar10_chw_to_hwc(tmp_path: Path) -> None:
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    d, labels = batches["data_batch_2"]
    d[1, 5 * 32 + 7] = 11  # R plane, row 5, col 7 of image 1 of batch 2
    d[1, 1024 + 5 * 32 + 7] = 22
    d[1, 2048 + 5 * 32 + 7] = 33
    dump(tmp_path / "cifar-10-batches-py" / "data_batch_2",
         {b"batch_label": b"b2", b"labels": labels, b"data": d, b"filenames": []})
    raw = load_dataset("cifar10", data_dir=tmp_path)
    assert raw.x_train.shape == (20, 32, 32, 3) and raw.x_test.shape == (4, 32, 32, 3)
    assert raw.x_train[4 + 1, 5, 7].tolist() == [11, 22, 33]
    expected = batches["test_batch"][0].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert np.array_equal(raw.x_test, expected)
    assert raw.y_train.tolist() == [i % 10 for i in range(20)]
    assert raw.class_names == tuple(CIFAR_NAMES)


def test_cifar10_python2_style_pickles(tmp_path: Path) -> None:
    batches = write_cifar(tmp_path / "cifar-10-batches-py", py2_style=True)
    raw = load_dataset("cifar10", data_dir=tmp_path)
    assert np.array_equal(raw.x_test.transpose(0, 3, 1, 2).reshape(-1, 3072),
                          batches["test_batch"][0])
    assert raw.class_names[1] == "automobile"


@pytest.mark.parametrize("layout", data.CIFAR_CACHE_LAYOUTS)
def test_cifar10_keras_cache_layouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_cifar(tmp_path / "datasets" / layout, per_batch=2)
    raw = load_dataset("cifar10")
    assert raw.source == str(tmp_path / "datasets" / layout) and len(raw.y_train) == 10


def test_image_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs")
    (root / "notes.txt").write_text("ignored")
    (root / "bee" / "readme.md").write_text("ignored")
    raw = load_dataset(str(root))
    assert raw.name == f"folder:{root}" and raw.class_names == ("ant", "bee", "cat")
    assert raw.x_train.shape == (12, 10, 12, 1) and raw.x_test is None
    assert raw.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_image_folder_mixed_modes_and_sizes(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=2)
    write_png(root / "b" / "rgb.png", np.full((20, 20, 3), (255, 0, 0), np.uint8))
    raw = load_dataset(str(root))
    assert raw.x_train.shape == (5, 10, 12, 3)  # RGB because one is colour; commonest size
    assert raw.x_train[-1, 3, 3].tolist() == [255, 0, 0]
    gray = raw.x_train[0]
    assert np.array_equal(gray[..., 0], gray[..., 2])


# ----------------------------------------------------------------------------- load errors


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(EdgeconvError, match="did you mean 'mnist'") as err:
        load_dataset("mnst")
    assert all(name in str(err.value) for name in DATASETS)
    assert "\n" not in str(err.value)


def test_missing_file_names_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EdgeconvError, match="--download") as err:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(tmp_path / "mnist.npz") in str(err.value) and "--data-dir" in str(err.value)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setenv("EDGECONV_SYSTEM_DATASETS", str(tmp_path / "no-system-datasets"))
    (tmp_path / "kh").mkdir()
    for name in ("mnist", "fashion_mnist", "cifar10"):
        with pytest.raises(EdgeconvError, match="not found") as err:
            load_dataset(name)
        assert str(tmp_path / "kh" / "datasets") in str(err.value)
        assert "\n" not in str(err.value)


def test_empty_name_and_path_object(tmp_path: Path) -> None:
    with pytest.raises(EdgeconvError, match="dataset name must be one of"):
        load_dataset("  ")
    root = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=1)
    assert load_dataset(root).class_names == ("a", "b")


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(EdgeconvError, match="not a directory"):
        load_dataset("mnist", data_dir=tmp_path / "nope")


def test_corrupt_npz(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"this is not a zip file" * 10)
    with pytest.raises(EdgeconvError, match="mnist.npz: cannot read it"):
        load_dataset("mnist", data_dir=tmp_path)


def test_truncated_npz(tmp_path: Path) -> None:
    write_mnist_npz(tmp_path)
    blob = (tmp_path / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(EdgeconvError, match="mnist.npz"):
        load_dataset("mnist", data_dir=tmp_path)


def test_npz_missing_key_and_bad_shapes(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(EdgeconvError, match="no array 'y_train'"):
        load_dataset("mnist", data_dir=tmp_path)
    arrays = write_mnist_npz(tmp_path)
    np.savez_compressed(tmp_path / "mnist.npz", **{**arrays, "y_train": arrays["y_train"][:5]})
    with pytest.raises(EdgeconvError, match="60 images but 5 labels"):
        load_dataset("mnist", data_dir=tmp_path)
    np.savez_compressed(tmp_path / "mnist.npz", **{**arrays, "x_test": np.zeros((20, 28))})
    with pytest.raises(EdgeconvError, match=r"test images must be uint8"):
        load_dataset("mnist", data_dir=tmp_path)


def test_truncated_idx(tmp_path: Path) -> None:
    write_fashion(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])  # cut gzip stream
    with pytest.raises(EdgeconvError, match="train-images-idx3-ubyte.gz: cannot read it"):
        load_dataset("fashion_mnist", data_dir=tmp_path)
    images = np.zeros((30, 28, 28), np.uint8)
    write_gz(path, idx_bytes(images)[:-100])  # valid gzip, short payload
    with pytest.raises(EdgeconvError, match="truncated or padded IDX data"):
        load_dataset("fashion_mnist", data_dir=tmp_path)


def test_wrong_idx_magic_and_count_mismatch(tmp_path: Path) -> None:
    write_fashion(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_gz(labels, b"\x12\x34\x08\x01" + bytes(14))
    with pytest.raises(EdgeconvError, match="t10k-labels-idx1-ubyte.gz: not an IDX file"):
        load_dataset("fashion_mnist", data_dir=tmp_path)
    write_gz(labels, idx_bytes(np.zeros((3, 28, 28), np.uint8)))  # 3 dims where 1 expected
    with pytest.raises(EdgeconvError, match="expected an IDX file with 1 dims"):
        load_dataset("fashion_mnist", data_dir=tmp_path)
    write_gz(labels, idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(EdgeconvError, match="10 images .* but 7 labels"):
        load_dataset("fashion_mnist", data_dir=tmp_path)


def test_fashion_partial_folder_names_missing_file(tmp_path: Path) -> None:
    write_fashion(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(EdgeconvError, match="lacks t10k-images-idx3-ubyte.gz"):
        load_dataset("fashion_mnist", data_dir=tmp_path)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    marker = tmp_path / "pwned"
    dump(folder / "data_batch_3", {b"data": _Evil(marker), b"labels": []})
    with pytest.raises(EdgeconvError, match=r"data_batch_3.*refusing to load .*system") as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert not marker.exists()
    assert "\n" not in str(err.value)


def test_codecs_encode_only_latin1(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    import _codecs

    class Odd:
        def __reduce__(self):
            return (_codecs.encode, ("x", "rot13"))

    dump(folder / "batches.meta", {b"label_names": Odd()})
    with pytest.raises(EdgeconvError, match="batches.meta.*refusing _codecs.encode"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_corrupt_cifar_batches(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(EdgeconvError, match="test_batch: cannot read it"):
        load_dataset("cifar10", data_dir=tmp_path)
    dump(folder / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(EdgeconvError, match=r"test_batch: 'data' must be a uint8 array"):
        load_dataset("cifar10", data_dir=tmp_path)
    dump(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(EdgeconvError, match="2 images but 1 labels"):
        load_dataset("cifar10", data_dir=tmp_path)
    dump(folder / "test_batch", [1, 2, 3])
    with pytest.raises(EdgeconvError, match="expected a pickled dict"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(EdgeconvError, match="does not exist"):
        load_dataset(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EdgeconvError, match="has 0 class sub-folder"):
        load_dataset(str(empty))
    one = write_image_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(EdgeconvError, match="has 1 class sub-folder.*need at least 2"):
        load_dataset(str(one))
    hollow = write_image_folder(tmp_path / "hollow", classes=("a", "b"))
    (hollow / "c").mkdir()
    with pytest.raises(EdgeconvError, match="sub-folder 'c' holds no image files"):
        load_dataset(str(hollow))
    broken = write_image_folder(tmp_path / "broken", classes=("a", "b"))
    (broken / "b" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(EdgeconvError, match="cannot read image .*bad.png"):
        load_dataset(str(broken))


# ----------------------------------------------------------------------------- splitting


def test_split_sizes_and_no_overlap() -> None:
    raw = unique_raw()
    prep = prepare(raw, seed=7)
    parts = [decode_index(s.x) for s in (prep.train, prep.val, prep.test)]
    assert [len(p) for p in parts] == [70, 10, 20]
    everything = np.concatenate(parts)
    assert sorted(everything.tolist()) == list(range(100))
    for split, idx in zip((prep.train, prep.val, prep.test), parts):
        assert np.array_equal(split.y, raw.y_train[idx])  # labels travel with their images


def test_split_is_deterministic_and_seed_dependent(digits: RawDataset) -> None:
    a, b = prepare(digits, seed=3), prepare(digits, seed=3)
    c = prepare(digits, seed=4)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(a, name).x, getattr(b, name).x)
        assert np.array_equal(getattr(a, name).y, getattr(b, name).y)
    assert not np.array_equal(a.test.x, c.test.x)


def test_split_is_stratified(digits: RawDataset) -> None:
    prep = prepare(digits, seed=0)
    total = np.bincount(digits.y_train, minlength=10)
    for split, frac in ((prep.test, 0.2), (prep.val, 0.1)):
        counts = np.bincount(split.y, minlength=10)
        assert np.all(np.abs(counts - total * frac) <= 1)
    assert len(prep.test.y) == round(0.2 * 1797) and len(prep.val.y) == round(0.1 * 1797)


def test_official_test_split_is_kept(tmp_path: Path) -> None:
    arrays = write_mnist_npz(tmp_path)
    prep = load("mnist", data_dir=tmp_path, seed=1)
    assert np.array_equal(prep.test.y, arrays["y_test"])
    assert np.allclose(prep.test.x[..., 0], arrays["x_test"] / 255.0)
    assert len(prep.val.y) == 6 and len(prep.train.y) == 54
    assert np.bincount(prep.val.y, minlength=10).max() == 1  # stratified: no class twice


def test_limit_caps_train_stratified() -> None:
    raw = unique_raw((40, 40, 20))
    full = prepare(raw, seed=2)
    small = prepare(raw, seed=2, limit=20)
    assert len(small.train.y) == 20
    assert np.bincount(small.train.y).tolist() == [8, 8, 4]
    assert set(decode_index(small.train.x)) <= set(decode_index(full.train.x))
    assert np.array_equal(small.test.x, full.test.x)


def test_tiny_classes_keep_a_training_image() -> None:
    prep = prepare(unique_raw((1, 2, 30)), val_fraction=0.4, test_fraction=0.5)
    assert np.all(np.bincount(prep.train.y, minlength=3) >= 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"val_fraction": -0.1}, "val_fraction must be a number in"),
        ({"test_fraction": 1.0}, "test_fraction must be a number in"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "must be below 1"),
        ({"normalisation": "unti"}, "did you mean 'unit'"),
        ({"limit": 0}, "limit must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"input_shape": (8, 8, 2)}, "cannot convert 1-channel images to 2 channels"),
        ({"input_shape": (8, 8)}, "input shape must be"),
        ({"input_shape": (0, 8, 1)}, "positive integers"),
    ],
)
def test_prepare_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(EdgeconvError, match=message):
        prepare(unique_raw(), **kwargs)


# ----------------------------------------------------------------------------- preprocessing


def test_resize_and_gray_to_rgb(digits: RawDataset) -> None:
    prep = prepare(digits, (32, 32, 3), seed=0)
    p = prep.preprocessing
    assert prep.train.x.shape[1:] == (32, 32, 3) and prep.train.x.dtype == np.float32
    assert p.resize == "bilinear" and p.channels == "gray_to_rgb"
    assert p.source_shape == (8, 8, 1) and p.input_shape == (32, 32, 3)
    assert np.array_equal(prep.train.x[..., 0], prep.train.x[..., 2])
    same = prepare(digits, (None, None, None))
    assert same.preprocessing.resize == "none" and same.preprocessing.channels == "none"
    assert same.preprocessing.input_shape == (8, 8, 1)


def test_rgb_to_gray_luma(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", per_batch=2)
    raw = load_dataset("cifar10", data_dir=tmp_path)
    prep = prepare(raw, (None, None, 1))
    assert prep.test.x.shape == (2, 32, 32, 1) and prep.preprocessing.channels == "rgb_to_gray"
    r, g, b = raw.x_test[0, 4, 9].astype(float)
    assert prep.test.x[0, 4, 9, 0] == pytest.approx(round(0.299 * r + 0.587 * g + 0.114 * b)
                                                    / 255, abs=1e-6)


@pytest.mark.parametrize("norm, low, high", [("unit", 0.0, 1.0), ("symmetric", -1.0, 1.0)])
def test_normalisation_ranges(digits: RawDataset, norm: str, low: float, high: float) -> None:
    x = prepare(digits, normalisation=norm).train.x
    assert (x.min(), x.max()) == (low, high) and x.dtype == np.float32
    scale, offset = NORMALISATIONS[norm]
    pre = Preprocessing((8, 8, 1), (8, 8, 1), "none", "none", scale, offset)
    got = pre.apply(digits.x_train[:3])
    assert np.allclose(got, digits.x_train[:3] * scale + offset, atol=1e-6)


def test_preprocessing_dict_round_trip(digits: RawDataset) -> None:
    p = prepare(digits, (16, 16, 3), normalisation="symmetric").preprocessing
    d = json.loads(json.dumps(p.to_dict()))
    assert Preprocessing.from_dict(d) == p
    assert d["input_shape"] == [16, 16, 3] and d["scale"] == 2 / 255 and d["offset"] == -1.0


def test_preprocessing_apply_matches_prepare(digits: RawDataset) -> None:
    prep = prepare(digits, (12, 12, 1))
    again = Preprocessing.from_dict(prep.preprocessing.to_dict()).apply(digits.x_train[:5])
    assert again.shape == (5, 12, 12, 1) and again.dtype == np.float32
    with pytest.raises(EdgeconvError, match="uint8 array"):
        prep.preprocessing.apply(digits.x_train[:5].astype(np.float32))
    with pytest.raises(EdgeconvError, match="3 channels; this preprocessing expects 1"):
        prep.preprocessing.apply(np.zeros((1, 8, 8, 3), np.uint8))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"channels": "gray_to_rgb"}, "does not match 1 -> 1 channels"),
        ({"resize": "sinc"}, "resize must be one of"),
        ({"scale": "x"}, "scale must be a finite number"),
        ({"input_shape": [4, 4, 1]}, "resize is 'none'"),
        ({"input_dtype": "int8"}, "input_dtype must be 'float32'"),
        ({"colour": 1}, "unknown key 'colour'"),
    ],
)
def test_preprocessing_from_dict_rejects_bad_dicts(change: dict, message: str) -> None:
    good = {"input_shape": [8, 8, 1], "source_shape": [8, 8, 1], "resize": "none",
            "channels": "none", "scale": 1 / 255, "offset": 0.0}
    with pytest.raises(EdgeconvError, match=message):
        Preprocessing.from_dict({**good, **change})
    with pytest.raises(EdgeconvError, match="lacks scale"):
        Preprocessing.from_dict({k: v for k, v in good.items() if k != "scale"})


def test_summary_is_json_ready(digits: RawDataset) -> None:
    summary = prepare(digits, seed=5).summary()
    text = json.dumps(summary)
    assert json.loads(text) == summary
    assert summary["seed"] == 5 and summary["classes"] == list("0123456789")
    splits = summary["splits"]
    assert sum(s["count"] for s in splits.values()) == 1797
    assert sum(splits["test"]["per_class"].values()) == splits["test"]["count"]
    assert summary["preprocessing"]["input_shape"] == [8, 8, 1]


# ----------------------------------------------------------------------------- calibration


def test_calibration_sample() -> None:
    prep = prepare(unique_raw((30, 50, 20)), seed=1)
    a, b = calibration_sample(prep, 10, seed=0), calibration_sample(prep, 10, seed=0)
    assert a.shape == (10, 4, 4, 1) and np.array_equal(a, b)
    assert not np.array_equal(a, calibration_sample(prep, 10, seed=1))
    train_ids = decode_index(prep.train.x)
    picked = decode_index(a)
    assert set(picked) <= set(train_ids) and len(set(picked)) == 10
    labels = prep.train.y[[int(np.flatnonzero(train_ids == i)[0]) for i in picked]]
    assert set(labels.tolist()) == {0, 1, 2}
    assert len(calibration_sample(prep, 3)) == 3
    assert len(set(prep.train.y[[int(np.flatnonzero(train_ids == i)[0])
                                 for i in decode_index(calibration_sample(prep, 3))]])) == 3
    assert len(calibration_sample(prep, 10_000)) == len(prep.train.y)
    with pytest.raises(EdgeconvError, match="positive integer"):
        calibration_sample(prep, 0)


def test_calibration_covers_rare_class() -> None:
    prep = prepare(unique_raw((200, 200, 3)), val_fraction=0.0, test_fraction=0.0)
    ids = decode_index(calibration_sample(prep, 5))
    assert 2 in set(unique_raw((200, 200, 3)).y_train[ids].tolist())


def test_evaluation_subset_is_a_stratified_seeded_part_of_the_test_split() -> None:
    from edgeconv.data import evaluation_subset

    prep = prepare(unique_raw((60, 100, 40)), seed=1)
    part = evaluation_subset(prep, 10, seed=0)
    assert len(part.test) == 10 and part.train is prep.train and part.val is prep.val
    assert np.array_equal(part.test.x, evaluation_subset(prep, 10, seed=0).test.x)
    assert not np.array_equal(part.test.x, evaluation_subset(prep, 10, seed=1).test.x)
    test_ids, ids = decode_index(prep.test.x), decode_index(part.test.x)
    assert set(ids) <= set(test_ids) and len(set(ids)) == 10
    positions = [int(np.flatnonzero(test_ids == i)[0]) for i in ids]
    assert np.array_equal(part.test.y, prep.test.y[positions])  # labels travel with images
    assert np.bincount(part.test.y).tolist() == [3, 5, 2]  # the split's 3:5:2, kept
    assert evaluation_subset(prep, 10_000) is prep
    with pytest.raises(EdgeconvError, match="positive integer"):
        evaluation_subset(prep, 0)


def test_module_import_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys, edgeconv.data; "
            "print([m for m in ('sklearn', 'PIL', 'keras', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_load_recorded_gives_the_recorded_preparation_or_refuses():
    from edgeconv.data import load_recorded

    recorded = load("digits", input_shape=(28, 28, 1), seed=3).preprocessing.to_dict()
    again = load_recorded("digits", recorded, seed=3)
    assert again.preprocessing.to_dict() == recorded
    changed = {**recorded, "scale": recorded["scale"] * 2}
    with pytest.raises(EdgeconvError, match="digits now prepares differently from when the"
                                            " model was made .*; check --data-dir"):
        load_recorded("digits", changed, seed=3)
