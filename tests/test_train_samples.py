"""`edgeconv train --train-samples`: a stratified part of the training images, recorded in
train.json with the test split image by image; and article C's SqueezeNet-vs-AlexNet verdict,
which pairs two such runs on the same test images and names the data and input size."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeconv.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _fashion_mnist() -> str | None:
    """Where edgeconv finds Fashion-MNIST here; None when it does not."""
    found = run("data", "fashion_mnist", "--json")
    return json.loads(found.stdout)["source"] if found.exit_code == 0 else None


def test_train_samples_limits_the_train_split_and_records_it(tmp_path):
    out = tmp_path / "run"
    result = run("train", "fcn-mnist", "--train-samples", 300, "--epochs", 1, "--out", out,
                 "--json")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "train.json").read_text())
    assert saved["config"]["train_samples"] == 300
    splits = saved["dataset"]["splits"]
    assert splits["train"]["count"] == 300
    # val and test stay whole: the splits of a run on every image (`edgeconv data` prints them)
    full = run("data", "digits", "--json")
    assert full.exit_code == 0, full.output
    whole = json.loads(full.stdout)["splits"]
    assert whole["train"]["count"] > 300
    for split in ("val", "test"):
        assert splits[split] == whole[split]
    # the misses, image by image, give the recorded accuracy back
    n = splits["test"]["count"]
    wrong = saved["test_wrong"]
    assert wrong == sorted(set(wrong)) and all(0 <= i < n for i in wrong)
    assert 1 - len(wrong) / n == pytest.approx(saved["test_accuracy"], abs=1e-9)


@pytest.mark.e2e
def test_squeezenet_trains_on_part_of_fashion_mnist(tmp_path):
    if _fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "squeezenet"
    result = run("train", "squeezenet", "--data", "fashion_mnist", "--train-samples", 300,
                 "--epochs", 1, "--input-shape", "36,36,1", "--out", out)
    assert result.exit_code == 0, result.output
    assert "300 (--train-samples)" in result.stdout
    saved = json.loads((out / "train.json").read_text())
    assert saved["config"] == {"model": "squeezenet", "dataset": "fashion_mnist", "seed": 0,
                               "train_samples": 300}
    assert saved["dataset"]["splits"]["train"]["count"] == 300
    # 30 of each class: the pick is stratified
    assert set(saved["dataset"]["splits"]["train"]["per_class"].values()) == {30}
    assert saved["dataset"]["splits"]["test"]["count"] == 10_000
    assert saved["preprocessing"]["input_shape"] == [36, 36, 1]
    assert len(saved["test_wrong"]) == round((1 - saved["test_accuracy"]) * 10_000)


@pytest.mark.parametrize("value,message", [
    ("0", "--train-samples must be > 0; got 0"),
    ("-5", "--train-samples must be > 0; got -5"),
    ("2000000", "--train-samples must be at most 1,000,000; got 2000000"),
])
def test_a_bad_train_samples_is_one_line_and_exit_2(tmp_path, value, message):
    result = run("train", "fcn-mnist", "--train-samples", value, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


# --- the verdict: records as export and train write them, read by `edgeconv report` --------

N = 10_000  # Fashion-MNIST's test images


def _wilson(right: int) -> list[float]:
    from edgeconv import stats

    interval = stats.wilson(right, N)
    return [interval.low, interval.high]


def _trained_pair(root: Path, wrong: dict[str, list[int]], size: int = 64,
                  test_images: dict[str, int] | None = None) -> None:
    """alexnet and squeezenet trained on 2,000 Fashion-MNIST images at SIZExSIZEx1 and
    exported: each manifest's float accuracy, and train.json's misses image by image."""
    for model, missed in wrong.items():
        right = N - len(missed)
        prep = {"input_shape": [size, size, 1], "scale": 1 / 255, "offset": 0.0,
                "resize": "bilinear", "channels": "none"}
        options = {"input_shape": [size, size, 1], "classes": 10}
        (root / model).mkdir(parents=True)
        (root / model / "manifest.json").write_text(json.dumps({
            "schema_version": 1, "model": {"name": model, "trained": True, "options": options},
            "input": {"preprocessing": prep}, "dataset": {"name": "fashion_mnist"},
            "float_accuracy": right / N,
            "artifacts": [{"path": f"{model}.keras", "format": "keras", "precision": "fp32",
                           "size_bytes": 1000, "sha256": "0" * 63 + str(len(model) % 10),
                           "accuracy": right / N, "eval_samples": N,
                           "accuracy_interval": _wilson(right),
                           "outputs": [{"shape": [1, 10]}]}]}))
        tested = (test_images or {}).get(model, N)
        (root / model / "train.json").write_text(json.dumps({
            "schema_version": 1, "model": model, "model_options": options,
            "config": {"model": model, "dataset": "fashion_mnist", "seed": 0,
                       "train_samples": 2000},
            "dataset": {"name": "fashion_mnist", "splits": {
                "train": {"count": 2000}, "val": {"count": 6000}, "test": {"count": tested}}},
            "preprocessing": prep, "epochs_run": 1, "best_epoch": 1, "test_accuracy": right / N,
            "history": [{"epoch": 1, "loss": 1.0, "accuracy": 0.8, "val_loss": 1.0,
                         "val_accuracy": 0.8, "seconds": 10.0}],
            "test_wrong": sorted(missed)}))


def _verdict(root: Path) -> str:
    out = root / "out"
    done = run("report", root / "runs", "-o", out, "--no-arithmetic", "--no-plots")
    assert done.exit_code == 0, done.output
    [line] = [line for line in (out / "report.md").read_text().splitlines()
              if line.startswith("| C-squeezenet-accuracy |")]
    return line


def test_the_verdict_pairs_the_runs_and_names_dataset_and_input_size(tmp_path):
    # 1,000 images both miss; 300 only SqueezeNet misses, 250 only AlexNet
    both = list(range(1000))
    _trained_pair(tmp_path / "runs", {"alexnet": both + list(range(1000, 1300)),
                                      "squeezenet": both + list(range(2000, 2250))})
    line = _verdict(tmp_path)
    assert "**partly**" in line  # 0.5 points apart, but not on ImageNet
    assert "alexnet 87.0% [86.3, 87.6] (Fashion-MNIST, 10,000 images)" in line
    assert "squeezenet 87.5%" in line
    # the paired interval, from the discordant images train.json recorded
    assert "Newcombe, paired on the same 10,000 test images: 250 right only for alexnet," \
        " 300 only for squeezenet" in line
    # 0.5 points apart: inside both Wilson intervals, yet the pairing sees a difference
    # (Wald on the discordant pairs: -0.50 +- 1.96 * sqrt(550 - 50**2 / N) / N * 100 = +-0.46)
    assert "-0.50 points, 95% interval [-0.96, -0.04]" in line
    assert "exact McNemar p 0.0366; a difference: 0 is outside it" in line
    # what was measured, and how it differs from the claim
    assert "Fashion-MNIST (28x28 grey clothing images), resized to 64x64" in line
    assert "alexnet at 64x64x1, 1 epoch on 2,000 training images (--train-samples)" in line
    assert "not ImageNet" in line and "1,000 classes" in line
    assert "test_wrong" in line


def test_runs_on_different_test_images_fall_back_to_the_unpaired_interval(tmp_path):
    _trained_pair(tmp_path / "runs", {"alexnet": list(range(1300)),
                                      "squeezenet": list(range(1250))},
                  test_images={"squeezenet": 9_000})
    line = _verdict(tmp_path)
    assert "paired on the same" not in line
    assert "-0.5 points, 95% interval [-1.4, +0.4] (Newcombe, unpaired, 10000 and 10000" in line
