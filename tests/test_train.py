"""Training: real fits on the embedded digits, checkpoints, resume after a real interruption."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from edgeconv.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "fcn"
    result = run("train", "fcn-mnist", "--epochs", "6", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_train_writes_a_complete_run(trained):
    out, result = trained
    assert {p.name for p in out.iterdir()} == {"model.keras", "last.keras", "state.json",
                                               "train.json"}
    saved = json.loads((out / "train.json").read_text())
    assert saved["test_accuracy"] == result["test_accuracy"]
    assert saved["labels"] == [str(i) for i in range(10)]
    assert saved["preprocessing"]["input_shape"] == [28, 28, 1]
    assert saved["model_options"] == {"input_shape": [28, 28, 1], "classes": 10}
    assert saved["versions"]["tensorflow"]
    assert len(saved["history"]) == saved["epochs_run"] == 6
    assert sum(saved["dataset"]["splits"][s]["count"] for s in ("train", "val", "test")) == 1797


def test_trained_model_learned_and_the_checkpoint_is_the_best_epoch(trained):
    import keras
    import numpy as np

    from edgeconv.data import load

    out, result = trained
    # Chance is 10%; six epochs of fcn-mnist on digits are far above it.
    assert result["test_accuracy"] > 0.8
    best = max(result["history"], key=lambda h: (h["val_accuracy"], -h["val_loss"]))
    assert result["best_epoch"] == best["epoch"]
    # The saved file gives the reported test accuracy on the same split.
    model = keras.saving.load_model(out / "model.keras")
    data = load("digits", input_shape=(28, 28, 1), seed=0)
    accuracy = float(np.mean(model.predict(data.test.x, verbose=0).argmax(1) == data.test.y))
    assert accuracy == pytest.approx(result["test_accuracy"], abs=1e-6)


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "edgeconv", "train", "fcn-mnist",
                             "--epochs", "200", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not (out / "state.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    # Only complete files: no temporary leftovers, no finished-run marker.
    names = {p.name for p in out.iterdir()}
    assert "train.json" not in names and not [n for n in names if "partial" in n]
    done = json.loads((out / "state.json").read_text())["epoch"]
    assert done >= 1

    result = run("train", "fcn-mnist", "--epochs", done + 2, "--out", out, "--resume", "--json")
    assert result.exit_code == 0, result.output
    history = json.loads(result.stdout)["history"]
    assert [h["epoch"] for h in history] == list(range(1, done + 3))
    assert "resuming fcn-mnist from epoch" in result.stderr


@pytest.mark.parametrize("args,message", [
    (["train", "conv3x3-rgb64"], "single block with no classifier"),
    (["train", "lenet"], "did you mean 'lenet5'?"),
    (["train", "lenet5", "--classes", "3"], "--classes is set by the dataset"),
    (["train", "lenet5", "--epochs", "0"], "--epochs must be > 0; got 0"),
    (["train", "lenet5", "--data", "mnst"], "unknown dataset 'mnst'"),
])
def test_train_user_errors(args, message, tmp_path):
    result = run(*args, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "train.json").exists()


def test_resume_with_nothing_to_resume(tmp_path):
    result = run("train", "lenet5", "--resume", "--out", tmp_path)
    assert result.exit_code == 2
    assert f"nothing to resume in {tmp_path}" in result.stderr


def test_resume_refuses_a_corrupt_or_unsafe_checkpoint(tmp_path, trained):
    import keras

    out, _ = trained
    state = (out / "state.json").read_text()
    # Garbage where the checkpoint should be.
    bad = tmp_path / "garbage"
    bad.mkdir()
    (bad / "state.json").write_text(state)
    (bad / "last.keras").write_bytes(b"PK\x03\x04 not really a zip")
    result = run("train", "fcn-mnist", "--resume", "--out", bad)
    assert result.exit_code == 2
    assert "last.keras with Keras:" in result.stderr
    # A .keras holding a Lambda layer: safe mode must refuse to deserialise its code.
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    (unsafe / "state.json").write_text(state)
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(unsafe / "last.keras")
    result = run("train", "fcn-mnist", "--resume", "--out", unsafe)
    assert result.exit_code == 2
    assert "with Keras: it contains Python code (a Lambda layer)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_rerun_without_resume_starts_afresh_and_never_vouches_for_new_weights(tmp_path):
    out = tmp_path / "run"
    assert run("train", "lenet5", "--epochs", "1", "--out", out).exit_code == 0
    first = json.loads((out / "train.json").read_text())
    result = run("train", "lenet5", "--epochs", "2", "--out", out)
    assert result.exit_code == 0
    assert "starting afresh" in result.stderr
    second = json.loads((out / "train.json").read_text())
    assert first["epochs_run"] == 1 and second["epochs_run"] == 2
    # Resuming beyond the planned schedule would train at a zero learning rate: refused.
    result = run("train", "lenet5", "--epochs", "5", "--out", out, "--resume")
    assert result.exit_code == 2
    assert "its learning-rate schedule was planned for 2" in result.stderr


def test_resume_refuses_another_models_run(trained):
    out, _ = trained
    result = run("train", "lenet5", "--resume", "--out", out)
    assert result.exit_code == 2
    assert "it was trained with model='fcn-mnist'" in result.stderr


def test_training_batches_are_shifted_reproducibly_and_cover_every_image():
    from dataclasses import replace

    import numpy as np

    from edgeconv.train import _batches
    from edgeconv.zoo import get_spec

    x = np.zeros((70, 16, 16, 1), np.float32)
    x[:, 6:10, 6:10] = 1.0
    y = np.arange(70)
    recipe = replace(get_spec("fcn-mnist").recipe, batch_size=32, shift=0.125)
    batches = _batches(x, y, recipe, seed=0)
    assert len(batches) == 3
    first = [batches[i] for i in range(3)]
    assert sorted(np.concatenate([yb for _, yb in first])) == list(range(70))
    # A 2-pixel shift at most, zero fill: the square moves but stays whole.
    assert all(xb.shape[1:] == (16, 16, 1) and (xb.sum((1, 2, 3)) == 16).all()
               for xb, _ in first)
    assert not all((xb == x[:len(xb)]).all() for xb, _ in first)
    # A function of (seed, epoch, batch) only: what a resumed run relies on.
    again = _batches(x, y, recipe, seed=0)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all()
               for a, b in zip(first, (again[i] for i in range(3))))
    again.epoch = 1
    assert not (again[0][1] == first[0][1]).all()
    unshifted = _batches(x, y, replace(recipe, shift=0.0), seed=0)
    assert (unshifted[0][0] == x[unshifted[0][1]]).all()


def test_squeezenet_starts_with_a_live_signal():
    """Glorot init left conv10 at ~1e-5 (no gradient through 18 ReLU convs); He keeps it."""
    import keras
    import numpy as np

    from edgeconv.zoo import build, get_spec, resolve_options

    spec = get_spec("squeezenet")
    keras.utils.set_random_seed(0)
    model = build(spec, resolve_options(spec, input_shape=(48, 48, 1), classes=10))
    probe = keras.Model(model.input, model.get_layer("conv10").output)
    images = np.random.default_rng(0).uniform(size=(8, 48, 48, 1)).astype("float32")
    assert probe.predict(images, verbose=0).std() > 0.01
