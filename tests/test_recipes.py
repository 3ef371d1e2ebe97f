"""The default recipes train real models, and int8 keeps their accuracy (opt-in):

    scripts/test -m recipes -k digits     # ~10 min: the embedded digits, recipe epochs
    scripts/test -m recipes -k fashion    # ~1 h on a 2-core machine: Fashion-MNIST
    scripts/test -m recipes               # both

Digits: for each reference model, `edgeconv export NAME --int8` on the embedded digits (it
trains the default recipe first), then the issue's targets on the manifest's figures, which
tests/test_export.py checks against the runtimes directly. With 359 test images one image
is 0.28 points, so "within 1 point" there is three or four images.

Fashion-MNIST (skipped when edgeconv does not find it: `apt-get install
dataset-fashion-mnist`): each model trains its recipe with fewer epochs (FASHION_EPOCHS: an
epoch is 54,000 images, 43 of digits'), is exported with `--int8`, and the manifest's
paired comparison of each int8 file with the Keras model on the 10,000 test images
(`versus_float`: the drop with its 95% interval, exact McNemar p) is checked for
consistency with the files' own accuracies, then held to a budget on the interval's upper
bound: int8 loses at most 1 point with 95% confidence. Each model's figures are printed
(`-s`) as a table row and, with EDGECONV_FASHION_TABLE=FILE, appended to FILE as JSON lines
(the table in docs/training.md comes from there).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TARGETS = {"fcn-mnist": 0.95, "mobilenet": 0.95, "separable-vgg-cifar": 0.95,
           "squeezenet": 0.90}

# Fashion-MNIST: epochs per model (the recipe's warm-up is counted in epochs, tuned for
# digits' 40 steps an epoch: after mobilenet's 2 and squeezenet's 3 warm-up epochs the
# cosine decay gets 2 and 1; mobilenet with 3 epochs, one of decay, reached 0.844, below
# its 0.85), the input shape when not the recipe's (separable-vgg-cifar
# as article B's CIFAR-10 network, grey replicated to 3 channels, as scripts/reproduce
# trains it), and the float accuracy each must reach (published small CNNs reach 0.90-0.93
# on Fashion-MNIST with tens of epochs; these are a few).
FASHION_EPOCHS = {"fcn-mnist": 3, "separable-vgg-cifar": 2, "mobilenet": 4, "squeezenet": 4}
FASHION_SHAPES = {"separable-vgg-cifar": "32,32,3"}
FASHION_TARGETS = {"fcn-mnist": 0.85, "separable-vgg-cifar": 0.85, "mobilenet": 0.85,
                   "squeezenet": 0.80}
FASHION_TEST_IMAGES = 10_000
MAX_DROP_AT_95 = 0.01  # int8's drop vs float: the 95% interval's upper bound, a fraction


@pytest.mark.recipes
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("model", list(TARGETS))
def test_digits_default_recipe_reaches_its_target_and_int8_keeps_it(model, tmp_path):
    out = tmp_path / model
    proc = subprocess.run([sys.executable, "-m", "edgeconv", "export", model, "--int8",
                           "--out", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    float_accuracy = manifest["float_accuracy"]
    figures = {f"{a['format']} {a['precision']}": (a["accuracy"], a["agreement"])
               for a in manifest["artifacts"]}
    print(model, f"float {float_accuracy:.4f}", figures)
    assert float_accuracy >= TARGETS[model]
    for fmt in ("tflite", "onnx"):
        accuracy, agreement = figures[f"{fmt} int8"]
        assert agreement >= 0.97, fmt
        assert accuracy >= float_accuracy - 0.01, fmt


def _fashion_folder() -> str | None:
    """Where edgeconv finds Fashion-MNIST (its own search path), or None."""
    proc = subprocess.run([sys.executable, "-m", "edgeconv", "data", "fashion_mnist", "--json"],
                          capture_output=True, text=True, check=False)
    return json.loads(proc.stdout)["source"] if proc.returncode == 0 else None


def _edgeconv(*args: str) -> float:
    """Run an edgeconv command; its wall time in seconds."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "edgeconv", *args], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"edgeconv {' '.join(args)}: {proc.stderr[-2000:]}"
    return time.monotonic() - start


def check_versus_float(manifest: dict, fmt: str) -> dict:
    """The int8 file of `fmt` against the Keras model, as the manifest records it, checked
    against the files' own accuracies; the figures of one table row."""
    artifacts = {(a["format"], a["precision"]): a for a in manifest["artifacts"]}
    reference, int8 = artifacts[("keras", "fp32")], artifacts[(fmt, "int8")]
    versus = int8["versus_float"]
    n = versus["n"]
    assert n == int8["eval_samples"] == reference["eval_samples"] == FASHION_TEST_IMAGES
    # the 2x2 table adds up to each file's accuracy on the same images
    assert versus["both_right"] + versus["reference_only"] == round(reference["accuracy"] * n)
    assert versus["both_right"] + versus["candidate_only"] == round(int8["accuracy"] * n)
    drop = versus["drop"]
    assert drop == pytest.approx(reference["accuracy"] - int8["accuracy"], abs=1e-9)
    low, high = versus["drop_interval"]
    assert low <= drop <= high and versus["confidence"] == 0.95
    assert 0.0 <= versus["mcnemar_p"] <= 1.0
    return {"format": fmt, "float": reference["accuracy"], "int8": int8["accuracy"],
            "drop": drop, "drop_interval": [low, high], "mcnemar_p": versus["mcnemar_p"],
            "only_float": versus["reference_only"], "only_int8": versus["candidate_only"],
            "agreement": int8["agreement"], "images": n}


def table_row(model: str, epochs: int, row: dict) -> str:
    """One row of docs/training.md's Fashion-MNIST table (points, not fractions)."""
    low, high = (100 * v for v in row["drop_interval"])
    return (f"| `{model}` | {epochs} | {row['format']} | {100 * row['float']:.2f} |"
            f" {100 * row['int8']:.2f} | {100 * row['drop']:+.2f} [{low:+.2f}, {high:+.2f}] |"
            f" {row['mcnemar_p']:.2g} ({row['only_float']}/{row['only_int8']}) |"
            f" {row['images']:,} |")


@pytest.mark.recipes
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("model", list(FASHION_EPOCHS))
def test_fashion_mnist_int8_drop_on_10000_images(model, tmp_path):
    if _fashion_folder() is None:
        pytest.skip("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)")
    out, epochs = tmp_path / model, FASHION_EPOCHS[model]
    shape = ["--input-shape", FASHION_SHAPES[model]] if model in FASHION_SHAPES else []
    train_s = _edgeconv("train", model, "--data", "fashion_mnist", "--epochs", str(epochs),
                        *shape, "--out", str(out))
    export_s = _edgeconv("export", str(out), "--int8")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "fashion_mnist"
    rows = [check_versus_float(manifest, fmt) for fmt in ("tflite", "onnx")]
    record = {"model": model, "epochs": epochs,
              "input_shape": manifest["input"]["preprocessing"]["input_shape"],
              "train_s": round(train_s), "export_s": round(export_s), "rows": rows}
    for row in rows:
        print(table_row(model, epochs, row))
    if os.environ.get("EDGECONV_FASHION_TABLE"):
        with Path(os.environ["EDGECONV_FASHION_TABLE"]).open("a") as table:
            table.write(json.dumps(record) + "\n")
    assert manifest["float_accuracy"] >= FASHION_TARGETS[model]
    for row in rows:
        assert row["drop_interval"][1] <= MAX_DROP_AT_95, \
            f"{row['format']} int8 may lose more than 1 point: {table_row(model, epochs, row)}"


def test_versus_float_check_catches_a_record_that_does_not_add_up():
    """The consistency check above can fail: a drop that is not the two accuracies'
    difference, and a 2x2 table that does not add up to them, are caught."""
    interval = [-0.001, 0.004]
    versus = {"n": 10_000, "both_right": 8_900, "reference_only": 60, "candidate_only": 45,
              "drop": 0.0015, "drop_interval": interval, "mcnemar_p": 0.17,
              "confidence": 0.95}
    manifest = {"artifacts": [
        {"format": "keras", "precision": "fp32", "accuracy": 0.896, "eval_samples": 10_000},
        {"format": "tflite", "precision": "int8", "accuracy": 0.8945, "eval_samples": 10_000,
         "agreement": 0.98, "versus_float": versus}]}
    row = check_versus_float(manifest, "tflite")
    assert row["drop"] == 0.0015 and row["images"] == 10_000
    assert table_row("fcn-mnist", 3, row) == ("| `fcn-mnist` | 3 | tflite | 89.60 | 89.45 |"
                                              " +0.15 [-0.10, +0.40] | 0.17 (60/45) |"
                                              " 10,000 |")
    for broken in ({"drop": 0.0025}, {"candidate_only": 46}, {"n": 359},
                   {"drop_interval": [0.002, 0.004]}):
        manifest["artifacts"][1]["versus_float"] = {**versus, **broken}
        with pytest.raises(AssertionError):
            check_versus_float(manifest, "tflite")
