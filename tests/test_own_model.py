"""Bring your own model (issue 13, checks a-d): a user's .keras, SavedModel, .onnx and
.tflite exported, measured, benched and gated; the ONNX path in a process where TensorFlow
cannot be imported. Errors are in test_own_model_errors.py.

Models are tiny (2 cores); the third-party files come from ../shared/models (skipped when
that folder is not there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeconv.manifest import load_manifest

# End to end with TensorFlow conversions: out of the quick suite, run by CI (`-m own`).
pytestmark = pytest.mark.own

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
MNIST_ONNX = SHARED / "onnx" / "mnist.onnx"
RESNET_INT8 = SHARED / "mlcommons-tiny" / "pretrainedResnet_quant.tflite"

# Run edgeconv with TensorFlow, Keras and tf2onnx unimportable; every attempt is logged to
# the file in EDGECONV_BLOCK_LOG, so a caught ImportError cannot hide one.
BLOCK_TF = """
import os, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "tf_keras"):
            with open(os.environ["EDGECONV_BLOCK_LOG"], "a") as log:
                log.write(name + "\\n")
            raise ImportError("blocked for this test: " + name)
        return None
sys.meta_path.insert(0, Block())
"""
NO_TF = BLOCK_TF + """
from edgeconv.cli import app
app(args=sys.argv[1:], prog_name="edgeconv")
"""


def edgeconv(*args, blocked_log: Path | None = None, timeout: int = 300):
    env = dict(os.environ)
    if blocked_log is not None:
        env["EDGECONV_BLOCK_LOG"] = str(blocked_log)
        command = [sys.executable, "-c", NO_TF]
    else:
        command = [sys.executable, "-m", "edgeconv"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def mnist_way_digits(root: Path, limit: int | None = None) -> Path:
    """scikit-learn's 8x8 digits prepared the MNIST way: each digit scaled to 20x20 and
    centred in a 28x28 black image, one sub-folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        if limit is not None and i >= limit:
            break
        small = Image.fromarray(np.uint8(np.rint(image * 255 / 16)))
        digit = np.asarray(small.resize((20, 20), Image.Resampling.BILINEAR))
        canvas = np.zeros((28, 28), np.uint8)
        canvas[4:24, 4:24] = digit
        write_png(root / str(label) / f"{i:04d}.png", canvas)
    return root


def colour_folder(root: Path, per_class: int = 12, labelled: bool = True) -> Path:
    """16x16 RGB PNGs of three classes (the dominant channel is the class)."""
    rng = np.random.default_rng(0)
    for c in range(3):
        for i in range(per_class):
            image = rng.integers(0, 100, (16, 16, 3)).astype(np.uint8)
            image[..., c] = rng.integers(150, 256, (16, 16))
            where = root / f"class{c}" / f"{i}.png" if labelled else root / f"{c}_{i}.png"
            write_png(where, image)
    return root


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory):
    """A trained Sequential classifier saved as .keras and as a SavedModel, its image
    folder, and a two-output model with no labels (built and saved by the test)."""
    import keras

    root = tmp_path_factory.mktemp("own-keras")
    images = colour_folder(root / "images")
    unlabelled = colour_folder(root / "unlabelled", per_class=6, labelled=False)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)),
                              # 1,296 weights: over the 1,024 dynamic range quantises
                              keras.layers.Conv2D(48, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    from edgeconv.data.sources import _load_image_folder

    raw = _load_image_folder(images, label=str(images))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(raw.x_train.astype("float32") / 255, raw.y_train, epochs=40, verbose=0)
    model.save(root / "tiny.keras")
    model.export(root / "tiny_saved", verbose=False)
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    two = keras.Model(inputs, [keras.layers.Dense(2, name="box")(features),
                               keras.layers.Dense(5, name="embedding")(features)])
    two.save(root / "two.keras")

    @keras.saving.register_keras_serializable(package="mine")
    class Erf(keras.layers.Layer):  # registered in this process only; no int8 TFLite kernel
        def call(self, x):
            return keras.ops.erf(x)

    lambda_layer = keras.layers.Lambda(lambda t: t * 2.0, name="double")
    for name, layer in (("lam", lambda_layer), ("custom", Erf())):
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.GlobalAveragePooling2D()(layer(inputs))
        keras.Model(inputs, keras.layers.Dense(3)(x)).save(root / f"{name}.keras")
    return root, images, unlabelled


def _artifact(manifest, path_suffix: str):
    return next(a for a in manifest.artifacts if a.path.endswith(path_suffix))


# --- (a) a .keras and a SavedModel of the user's, with a folder of PNGs ---------------------


@pytest.fixture(scope="module")
def keras_export(keras_models, tmp_path_factory) -> Path:
    """tiny.keras exported with its image folder, int8 included (read-only for tests)."""
    root, images, _ = keras_models
    out = tmp_path_factory.mktemp("own-keras-export") / "run"
    done = edgeconv("export", root / "tiny.keras", "--data", images, "--int8", "--fp16",
                    "--dynamic", "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    return out


def test_keras_file_exports_every_format_with_the_users_images(keras_models, keras_export):
    root, _, _ = keras_models
    manifest = load_manifest(keras_export)
    source = manifest.model_info.source
    assert source["kind"] == "keras" and source["file"] == "tiny.keras"
    import hashlib

    assert source["sha256"] == hashlib.sha256((root / "tiny.keras").read_bytes()).hexdigest()
    kinds = {(a.format, a.precision) for a in manifest.artifacts}
    assert kinds == {("keras", "fp32"), ("tflite", "fp32"), ("tflite", "fp16"),
                     ("tflite", "dynamic"), ("tflite", "int8"), ("onnx", "fp32"),
                     ("onnx", "int8")}  # ONNX of a Sequential too
    prep = manifest.input.preprocessing
    assert prep["input_shape"] == [16, 16, 3] and prep["scale"] == pytest.approx(1 / 255)
    assert manifest.data["labels"] == ["class0", "class1", "class2"]
    assert manifest.dataset.user["kind"] == "folder"
    reference = _artifact(manifest, ".keras")
    assert reference.eval_samples == 36 and reference.accuracy > 0.6  # it learned something
    for entry in manifest.artifacts[1:]:
        assert entry.eval_samples == 36
        assert len(entry.output_parity) == 1 and entry.output_parity[0]["values"] == 36 * 3
        if entry.precision in ("fp32", "fp16", "dynamic"):
            assert entry.agreement == 1.0
            assert entry.output_parity[0]["cosine"] > 0.9999
        else:
            assert entry.agreement >= 0.9 and entry.output_parity[0]["cosine"] > 0.99


def test_saved_model_exports_inference_only(keras_models, tmp_path):
    root, images, _ = keras_models
    out = tmp_path / "saved"
    done = edgeconv("export", root / "tiny_saved", "--data", images, "--int8",
                    "--formats", "tflite", "--wide", "--out", out)
    assert done.returncode == 0, done.stderr
    manifest = load_manifest(out)
    assert manifest.model_info.source["kind"] == "savedmodel"
    assert [a.path for a in manifest.artifacts] == ["tiny_saved_fp32.tflite",
                                                    "tiny_saved_int8.tflite"]
    fp32 = manifest.artifacts[0]
    assert fp32.agreement == 1.0 and fp32.max_abs_diff < 1e-4
    assert "not one of the export's files" in done.stderr  # the reference is said
    # a classifier's table (--wide) has its accuracy and, next to it, the worst output's parity
    header = next(line for line in done.stdout.splitlines() if "accuracy % [95% CI]" in line)
    assert "min cosine" in header and "min SNR dB" in header
    int8 = manifest.artifacts[1]
    line = next(line for line in done.stdout.splitlines() if f" {int8.path} " in line)
    assert f"{int8.output_parity[0]['snr_db']:.1f}" in line


def test_bench_on_cpu_measures_a_keras_export_as_export_did(keras_export, tmp_path):
    out = tmp_path / "bench-me"
    import shutil

    shutil.copytree(keras_export, out)  # the fixture's export stays as it was
    done = edgeconv("bench", out, "--target", "cpu", "--runtime", "litert", "--runs", "5",
                    "--warmup", "1", "--min-time", "0", "--json")
    assert done.returncode == 0, done.stderr
    rows = {Path(r["artifact"]).name: r for r in json.loads(done.stdout)["results"]}
    manifest = load_manifest(out)
    for entry in manifest.artifacts:
        if entry.format == "tflite":
            assert rows[entry.path]["accuracy"] == pytest.approx(entry.accuracy)


# --- (b) a PyTorch-style NCHW ONNX file, without TensorFlow ---------------------------------


@pytest.mark.skipif(not MNIST_ONNX.is_file(), reason="../shared/models not here")
def test_onnx_nchw_int8_without_tensorflow(tmp_path):
    digits = mnist_way_digits(tmp_path / "digits")
    out, log = tmp_path / "mnist", tmp_path / "blocked.log"
    done = edgeconv("export", MNIST_ONNX, "--data", digits, "--int8", "--out", out, "--json",
                    blocked_log=log)
    assert done.returncode == 0, done.stderr
    assert not log.exists(), f"TensorFlow was imported: {log.read_text()}"
    manifest = load_manifest(out)
    assert manifest.input.layout == "NCHW" and manifest.input.shape == [None, 1, 28, 28]
    assert manifest.model_info.source["kind"] == "onnx"
    fp32, int8 = manifest.find("onnx", "fp32"), manifest.find("onnx", "int8")
    assert fp32.path == "mnist_fp32.onnx" and fp32.eval_samples == 1797
    assert manifest.float_accuracy == fp32.accuracy >= 0.85
    assert abs(fp32.accuracy - int8.accuracy) <= 0.01
    assert int8.options["calibration"]["samples"] == 200 and int8.output_parity
    # bench on cpu prepares the same NCHW images from the manifest and gets the same figures
    bench = edgeconv("bench", out, "--target", "cpu", "--runs", "5", "--warmup", "1",
                     "--min-time", "0", "--json", "--out", out / "results.json",
                     blocked_log=log)
    assert bench.returncode == 0, bench.stderr
    assert not log.exists()
    rows = {Path(r["artifact"]).name: r for r in json.loads(bench.stdout)["results"]}
    assert rows["mnist_fp32.onnx"]["accuracy"] == pytest.approx(fp32.accuracy)
    assert rows["mnist_int8.onnx"]["accuracy"] == pytest.approx(int8.accuracy)
    # the gate judges a user export's figures as a zoo export's
    policy = tmp_path / "gate.toml"
    policy.write_text('[[rule]]\nname = "int8 holds"\nmodel = "mnist"\nprecision = "int8"\n'
                      'max_accuracy_drop = 1.0\n\n[[rule]]\nname = "learned"\nmodel = "mnist"\n'
                      'precision = "fp32"\nmin_accuracy = 0.85\n')
    assert edgeconv("gate", out, "--policy", policy, blocked_log=log).returncode == 0
    policy.write_text('[[rule]]\nname = "too strict"\nmodel = "mnist"\nprecision = "fp32"\n'
                      'min_accuracy = 0.99\n')
    assert edgeconv("gate", out, "--policy", policy, blocked_log=log).returncode == 1


# --- (c) two outputs, no labels -------------------------------------------------------------


def test_two_output_model_without_labels_gets_parity_only(keras_models, tmp_path):
    root, _, unlabelled = keras_models
    out = tmp_path / "two"
    done = edgeconv("export", root / "two.keras", "--data", unlabelled, "--int8", "--out", out)
    assert done.returncode == 0, done.stderr
    manifest = load_manifest(out)
    assert manifest.float_accuracy is None and manifest.data["labels"] == []
    made = [a for a in manifest.artifacts if a.format != "keras"]
    assert {(a.format, a.precision) for a in made} == {("tflite", "fp32"), ("tflite", "int8"),
                                                       ("onnx", "fp32"), ("onnx", "int8")}
    for entry in made:
        assert entry.accuracy is None and entry.agreement is None
        # both outputs, in the Keras model's order (TFLite reorders them), all images,
        # named as the Keras model names them in every format
        assert [p["values"] for p in entry.output_parity] == [18 * 2, 18 * 5]
        assert [p["output"] for p in entry.output_parity] == ["box", "embedding"]
        assert min(p["cosine"] for p in entry.output_parity) > 0.99
    assert "min cosine" in done.stdout
    assert next(line for line in done.stdout.splitlines()
                if "two.keras" in line).count("(reference)") == 2


# --- (d) a .tflite made elsewhere, measured as it is ---------------------------------------


@pytest.mark.skipif(not RESNET_INT8.is_file(), reason="../shared/models not here")
def test_tflite_made_elsewhere_is_measured_as_it_is(tmp_path):
    rng = np.random.default_rng(1)
    data = tmp_path / "cifar-like.npz"
    np.savez(data, x=rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8),
             y=np.arange(30) % 10)
    out = tmp_path / "resnet"
    done = edgeconv("export", RESNET_INT8, "--data", data, "--out", out,
                    blocked_log=tmp_path / "blocked.log")
    assert done.returncode == 0, done.stderr
    manifest = load_manifest(out)
    assert [(a.path, a.format, a.precision) for a in manifest.artifacts] == [
        ("pretrainedResnet_quant_int8.tflite", "tflite", "int8")]  # precision from the file
    entry = manifest.artifacts[0]
    assert entry.eval_samples == 30 and entry.accuracy is not None
    assert entry.micro["ok"] and entry.micro["arena_bytes"] > 0
    assert manifest.float_accuracy is None  # not a float model's figure
    # an int8 input: 0..255 pixels onto the real range its scale and zero-point cover
    quant = entry.inputs[0]
    low = (-128 - quant["zero_point"]) * quant["scale"]
    assert manifest.input.preprocessing["offset"] == pytest.approx(low)


def test_precision_is_read_from_a_file_made_elsewhere(keras_export, tmp_path):
    """The rule `edgeconv export FILE.tflite` reads a file's precision by, on files whose
    precision is known (the export's own), and on ONNX."""
    from edgeconv.export.probe import precision_of

    manifest = load_manifest(keras_export)
    for entry in manifest.artifacts:
        if entry.format in ("tflite", "onnx"):
            path = keras_export / entry.path
            assert precision_of(path, entry.format) == entry.precision, entry.path


@pytest.mark.skipif(not MNIST_ONNX.is_file(), reason="../shared/models not here")
def test_onnx_with_calibration_images_a_subset_and_a_dataset_name(tmp_path):
    digits = mnist_way_digits(tmp_path / "digits")
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for png in sorted(digits.rglob("*.png"))[::7]:  # unlabelled: straight in the folder
        (calibration / f"{png.parent.name}_{png.name}").write_bytes(png.read_bytes())
    out, log = tmp_path / "subset", tmp_path / "blocked.log"
    done = edgeconv("export", MNIST_ONNX, "--data", digits, "--int8", "--eval-samples", 300,
                    "--calibration-data", calibration, "--calibration-samples", 100,
                    "--out", out, blocked_log=log)
    assert done.returncode == 0, done.stderr
    assert "drawn from the measured images" not in done.stderr
    manifest = load_manifest(out)
    assert manifest.dataset.test_subset == {"samples": 300, "of": 1797, "seed": 0}
    int8 = manifest.find("onnx", "int8")
    assert int8.options["calibration"] == {"samples": 100, "split": "calibration-data",
                                           "seed": 0, "method": "minmax"}
    assert manifest.dataset.user["calibration"] == str(calibration.resolve())
    bench = edgeconv("bench", out, "--target", "cpu", "--runs", "3", "--warmup", "1",
                     "--min-time", "0", "--json", blocked_log=log)
    assert bench.returncode == 0, bench.stderr
    for row in json.loads(bench.stdout)["results"]:
        entry = manifest.find("onnx", row["precision"])
        assert row["eval_samples"] == 300 and row["accuracy"] == pytest.approx(entry.accuracy)
    # a dataset name: its test split (scikit-learn's 8x8 digits resized to 28x28)
    named = edgeconv("export", MNIST_ONNX, "--data", "digits", "--out", tmp_path / "named",
                     "--json", blocked_log=log)
    assert named.returncode == 0, named.stderr
    manifest = load_manifest(tmp_path / "named")
    assert manifest.artifacts[0].eval_samples == 359  # the zoo's digits test split
    assert manifest.input.preprocessing["resize"] == "bilinear"
    assert not log.exists()


def test_preprocessing_of_a_user_model_in_order():
    """resize -> channels -> colour order -> scale/offset -> (x - mean) / std -> layout."""
    from edgeconv.data import Preprocessing

    pixels = np.array([[[[10, 20, 30]]]], np.uint8)  # one 1x1 RGB image
    prep = Preprocessing(input_shape=(1, 1, 3), source_shape=(1, 1, 3), resize="none",
                         channels="none", scale=1.0, offset=-5.0, layout="NCHW", color="bgr",
                         mean=(1.0, 2.0, 3.0), std=(5.0, 2.0, 1.0))
    x = prep.apply(pixels)
    assert x.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(x[0, :, 0, 0], [(30 - 5 - 1) / 5, (20 - 5 - 2) / 2,
                                               (10 - 5 - 3) / 1])
    again = Preprocessing.from_dict(prep.to_dict())
    assert again == prep and again.to_dict()["layout"] == "NCHW"
    plain = Preprocessing((1, 1, 3), (1, 1, 3), "none", "none", 1.0, 0.0)
    assert set(plain.to_dict()) == {"input_shape", "source_shape", "resize", "channels",
                                    "scale", "offset", "input_dtype"}  # old records equal


@pytest.mark.parametrize("shape, layout", [
    ((1, 224, 224, 3), "NHWC"), ((None, 3, None, None), "NCHW"), ((1, 1, 28, 28), "NCHW"),
    ((None, None, None, 1), "NHWC"), ((1, 3, 3, 3), None), ((1, 5, 5, 4), None),
    ((1, 1, 1, 1), None),
])
def test_layout_guess(shape, layout):
    from edgeconv.data.user import guess_layout
    from edgeconv.errors import EdgeconvError

    if layout is None:
        with pytest.raises(EdgeconvError, match="pass --layout"):
            guess_layout(shape)
        assert guess_layout(shape, "nchw") == "NCHW"  # the flag decides
    else:
        assert guess_layout(shape) == layout


def test_keras_lambda_and_unregistered_layers_are_refused_and_the_way_out_works(
        keras_models, tmp_path):
    """Check e, for Keras: one line naming the layer and the way out, exit 2, nothing
    written; then the way out (--custom-objects) exports."""
    from tests.test_own_model_errors import refused

    root, images, _ = keras_models
    line = refused(tmp_path, root / "lam.keras", "--data", images)  # not even TensorFlow
    assert "Lambda layer 'double'" in line and "--custom-objects" in line
    line = refused(tmp_path, root / "custom.keras", "--data", images, blocked=False)
    assert "layer 'Erf'" in line and "--custom-objects" in line
    layers = tmp_path / "my_layers.py"
    layers.write_text("import keras\n\n\n@keras.saving.register_keras_serializable("
                      "package='mine')\nclass Erf(keras.layers.Layer):\n"
                      "    def call(self, x):\n        return keras.ops.erf(x)\n")
    # TFLite has no builtin Erf: with TFLite alone nothing can be made, which is one line
    # naming the op; with ONNX too, the ONNX files export and the TFLite ones are notes
    line = refused(tmp_path, root / "custom.keras", "--data", images, "--formats", "tflite",
                   "--custom-objects", layers, blocked=False)
    assert "no file of custom.keras could be made" in line and "Erf" in line
    out = tmp_path / "ok"
    done = edgeconv("export", root / "custom.keras", "--data", images, "--int8",
                    "--custom-objects", layers, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "custom_int8.tflite not made" in done.stderr and "Erf" in done.stderr
    assert [a.path for a in load_manifest(out).artifacts] == [
        "custom.keras", "custom_fp32.onnx", "custom_int8.onnx"]
    assert not (out / "custom_fp32.tflite").exists()
    # bench: the .keras reference row loads only with the same file named again
    fast = ("--target", "cpu", "--runs", "5", "--warmup", "1", "--min-time", "0", "--json")
    done = edgeconv("bench", out, "--runtime", "keras", *fast)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["results"]
    assert row["status"] == "unsupported" and "cannot load" in row["error"]
    done = edgeconv("bench", out, "--custom-objects", layers, *fast)
    assert done.returncode == 0, done.stderr
    rows = {Path(r["artifact"]).name: r for r in json.loads(done.stdout)["results"]}
    assert rows["custom.keras"]["status"] == "ok" and rows["custom.keras"]["accuracy"] > 0
    assert rows["custom_fp32.onnx"]["agreement"] == 1.0  # against the reference row's top-1
    done = edgeconv("bench", out, "--custom-objects", tmp_path / "missing.py", *fast)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--custom-objects" in done.stderr and "not a Python file" in done.stderr


def test_zoo_exports_get_output_parity_too(benched_fcn):
    """Every measured file of a zoo export carries per-output parity with the Keras model."""
    manifest = load_manifest(benched_fcn)
    for entry in manifest.artifacts:
        if entry.format == "keras":
            assert entry.output_parity is None  # the reference itself
        else:
            assert [p["values"] for p in entry.output_parity] == [entry.eval_samples * 10]
            assert entry.output_parity[0]["cosine"] > 0.9
