"""The accuracy-budget search: how many of the ranked layers it changes, and when; and the
integer-first search on a model whose int8 file truly loses accuracy."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeconv.quant.budget import keep_float_until_within

LAYERS = [f"layer{i}" for i in range(20)]


def search(accuracy_by_kept, max_drop=1.0, float_accuracy=0.95):
    tried = []
    result = keep_float_until_within(
        LAYERS, float_accuracy=float_accuracy, max_drop_points=max_drop,
        convert=lambda kept: b"x" * (100 + len(kept)),  # float layers make a bigger file
        accuracy_of=lambda content: accuracy_by_kept(len(content) - 100),
        on_try=lambda k, n: tried.append(k))
    return result, tried


def test_stops_at_the_first_candidate_within_budget():
    result, tried = search(lambda kept: 0.90 if kept < 9 else 0.945)
    assert result.met and tried == [3, 6, 9]  # 20 layers: 3 at a time
    assert result.best.layers == tuple(LAYERS[:9])
    assert result.best.size_bytes == 109


def test_without_a_solution_keeps_the_most_accurate_and_says_so():
    result, tried = search(lambda kept: 0.90 + (0.01 if kept == 6 else 0.0))
    assert not result.met
    assert tried[-1] == len(LAYERS)  # every layer float was tried last
    assert result.best.layers == tuple(LAYERS[:6]) and result.best.accuracy == 0.91
    assert len(result.made) == 106


# --- the integer-first search on a model that truly loses accuracy at int8 ------------------

OUTLIER = 1000.0  # the outlier channels' constant activation, ~1e3-1e4 x the others


def outlier_model(path):
    """A digits classifier with one outlier layer, saved as .keras: a trained hidden layer
    h (ReLU, values ~0.1..10), then a layer that passes h on and adds 4 channels held at
    OUTLIER, which the classifier ignores (zero weights). Its activations span four orders
    of magnitude: int8's one scale per tensor (~OUTLIER / 255 per step) rounds every h to a
    few levels, int16's (~OUTLIER / 65535) keeps them. What an attention logit or an
    unnormalised feature does to a real model, made plain."""
    from sklearn.datasets import load_digits

    from edgeconv._lazy import keras

    k = keras()
    k.utils.set_random_seed(0)
    digits = load_digits()
    # the export's preprocessing of digits: 0..16 -> 0..255 uint8, then / 255
    x = (np.rint(digits.images * 255.0 / 16.0) / 255.0).astype(np.float32)[..., None]
    inputs = k.Input((8, 8, 1), name="input")
    flat = k.layers.Flatten()(inputs)
    hidden = k.layers.Dense(32, activation="relu", name="hidden")
    logits = k.layers.Dense(10, name="logits")
    trained = k.Model(inputs, logits(hidden(flat)))
    trained.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
    trained.fit(x, digits.target, epochs=40, batch_size=64, verbose=0)
    wide = k.layers.Dense(36, activation="relu", name="outlier")
    classify = k.layers.Dense(10, name="classify")
    model = k.Model(inputs, classify(wide(hidden(flat))), name="outlier")
    wide.set_weights([np.hstack([np.eye(32), np.zeros((32, 4))]).astype(np.float32),
                      np.r_[np.zeros(32), np.full(4, OUTLIER)].astype(np.float32)])
    kernel, bias = logits.get_weights()
    classify.set_weights([np.vstack([kernel, np.zeros((4, 10))]).astype(np.float32), bias])
    model.save(path)
    return path


@pytest.mark.own  # ~40 s each: a user's .keras file exported end to end
@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_max_drop_holds_an_outlier_models_budget_with_integer_layers_only(tmp_path, fmt):
    """More than 2 points lost at int8; --max-drop 1 gives the blamed layers int16
    activations until the file is within 1 point, keeps no layer float, and the manifest
    names the int16x8 layers and every step's accuracy."""
    if fmt == "tflite":
        pytest.importorskip("ai_edge_quantizer", reason="the mixed TFLite quantiser")
    source = outlier_model(tmp_path / "outlier.keras")
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "edgeconv", "export", str(source), "--data", "digits",
         "--int8", "--max-drop", "1", "--formats", fmt, "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["precision"] == "int8")
    budget = int8["options"]["accuracy_budget"]
    drop = 100 * (manifest["float_accuracy"] - budget["plain_int8"]["accuracy"])
    assert drop > 2, f"plain int8 lost only {drop:.2f} points"
    assert budget["met"] is True
    assert 100 * (manifest["float_accuracy"] - int8["accuracy"]) <= 1
    assert budget["kept_float"] == [] and budget["int16x8_layers"], budget
    assert set(budget["layer_precisions"].values()) <= {"int8", "int16x8"}
    assert [n for n, p in budget["layer_precisions"].items() if p == "int16x8"] \
        == budget["int16x8_layers"]
    assert budget["steps"][0]["int16x8_layers"] == 0  # plain int8 first
    assert budget["steps"][-1]["accuracy"] == int8["accuracy"]


def outlier_weight_model(path):
    """The outlier model's classifier with the outlier in its weights instead: the hidden
    layer's kernel row for pixel (0, 0), which is 0 in every digits image, set to OUTLIER.
    Float ignores it (it multiplies 0); int8 weights, one scale per output channel, round
    every other weight of each channel to zero, at int8 and at int16x8 alike (both keep
    int8 weights). Only a float layer holds this model's accuracy."""
    outlier_model(path)
    from edgeconv._lazy import keras

    model = keras().models.load_model(path)
    hidden = model.get_layer("hidden")
    kernel, bias = hidden.get_weights()
    kernel[0, :] = OUTLIER
    hidden.set_weights([kernel, bias])
    model.save(path)
    return path


@pytest.mark.own  # two searches on a whole export: ~1 min
def test_float_layers_only_with_allow_float_and_only_after_int16x8_is_not_enough(tmp_path):
    """An outlier in the weights: int16x8 activations cannot help, so --max-drop 1 alone
    is not met (exit 1, no float layer), and --allow-float keeps the blamed layers float
    after every int16x8 step missed; the steps record the integer search first."""
    source = outlier_weight_model(tmp_path / "weights.keras")
    budgets = {}
    for extra in ((), ("--allow-float",)):
        out = tmp_path / f"run{len(extra)}"
        done = subprocess.run(
            [sys.executable, "-m", "edgeconv", "export", str(source), "--data", "digits",
             "--int8", "--max-drop", "1", *extra, "--formats", "onnx", "--out", str(out),
             "--json"], capture_output=True, text=True, timeout=600, check=False)
        manifest = json.loads((out / "manifest.json").read_text())
        int8 = next(a for a in manifest["artifacts"] if a["precision"] == "int8")
        budgets[extra] = (done.returncode, int8["options"]["accuracy_budget"], int8,
                          manifest["float_accuracy"])
    code, budget, _, float_accuracy = budgets[()]
    assert code == 1 and budget["met"] is False and budget["kept_float"] == []
    assert 100 * (float_accuracy - budget["plain_int8"]["accuracy"]) > 2
    assert all(s["float_layers"] == 0 for s in budget["steps"])
    code, budget, int8, float_accuracy = budgets[("--allow-float",)]
    assert code == 0 and budget["met"] is True and budget["allow_float"] is True
    assert budget["kept_float"] and budget["int16x8_layers"] == []
    assert "fp32" in budget["layer_precisions"].values()
    steps = budget["steps"][1:]
    integer = [s for s in steps if s["float_layers"] == 0]
    assert integer and steps[:len(integer)] == integer  # every int16x8 step first
    assert all(100 * (float_accuracy - s["accuracy"]) > 1 for s in integer)
    assert 100 * (float_accuracy - int8["accuracy"]) <= 1
