"""Figures that must not be silently wrong (issue 26, item 5): preprocessing flags against a
file's own input quantisation, a peak RSS that measures the runtime, an MCU row that says
once why it lacks a figure, a timeout that names its cause, and --eval-samples picking its
images before any is prepared."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from edgeconv.data import user
from edgeconv.data.user import ModelInput, PrepFlags, load_user_data, resolve_preprocessing
from edgeconv.errors import EdgeconvError
from tests.test_own_model import colour_folder, edgeconv, write_png

# Whole commands on real files: out of the quick suite, run by CI (`-m e2e`).
pytestmark = pytest.mark.e2e

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlcommons-tiny"
VWW_INT8 = SHARED / "vww_96_int8.tflite"  # int8 input, scale 1/255, zero-point -128: [0, 1]
RESNET_INT8 = SHARED / "pretrainedResnet_quant.tflite"  # int8 input covering [0, 255]


def _pytorch_int8_input(mean: float, std: float) -> ModelInput:
    """The input of an int8 file converted from a PyTorch model trained on (pixel / 255 -
    mean) / std: its quantisation covers that range (zero-point nudged to an integer)."""
    low, high = (0 - mean) / std, (1 - mean) / std
    scale = (high - low) / 255
    return ModelInput((None, 8, 8, 1), "int8", scale, round(-128 - low / scale))


# --- 1. preprocessing flags against an int8 input's own quantisation -------------------------


def test_mean_and_std_on_an_int8_input_are_applied_once():
    """The issue's case: --mean 0.286 --std 0.353 on a file whose int8 input covers what that
    normalisation gives. Once applied (not on top of the range the quantisation covers),
    pixel 0 and 255 land on the ends of that range, as without the flags."""
    model = _pytorch_int8_input(0.286, 0.353)
    ends = np.array([0, 255], np.uint8).repeat(32).reshape(1, 8, 8, 1)
    flagged = resolve_preprocessing(model, PrepFlags(mean=(0.286,), std=(0.353,)), (8, 8, 1))
    default = resolve_preprocessing(model, PrepFlags(), (8, 8, 1))
    low, high = user.quantised_range(model)
    for prep in (flagged, default):
        x = prep.apply(ends)
        assert abs(x.min() - low) < 0.01 and abs(x.max() - high) < 0.01, (prep, x.min(), x.max())
    recorded = flagged.to_dict()  # the manifest says what was applied: the flags, once
    assert (recorded["scale"], recorded["offset"]) == (1 / 255, 0.0)
    assert recorded["mean"] == [0.286] and recorded["std"] == [0.353]


@pytest.mark.parametrize("flags, shown", [
    (PrepFlags(mean=(0.5,), std=(0.5,)), "[-1, 1]"),  # normalising a [0, 1] input again
    (PrepFlags(scale=1.0), "[0, 255]"),  # raw pixels into a [0, 1] input
])
def test_flags_mapping_off_an_int8_input_range_are_refused(flags, shown):
    model = ModelInput((None, 96, 96, 3), "int8", 1 / 255, -128)
    with pytest.raises(EdgeconvError) as caught:
        resolve_preprocessing(model, flags, (96, 96, 3))
    message = str(caught.value)
    assert shown in message and "covers [0, 1]" in message and "\n" not in message


def test_export_refuses_normalising_an_int8_tflite_twice(tmp_path):
    """A real int8-input .tflite: --mean/--std that normalise its [0, 1] input a second time
    are one line and exit 2, nothing written; --scale 1/255 (what the file says) is taken,
    applied once, and the manifest records where the mapping came from."""
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for c in range(2):
        for i in range(2):
            write_png(images / f"class{c}" / f"{i}.png",
                      rng.integers(0, 256, (24, 24, 3)).astype(np.uint8))
    out = tmp_path / "run"
    done = edgeconv("export", VWW_INT8, "--data", images, "--mean", "0.5", "--std", "0.5",
                    "--out", out)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "[-1, 1]" in lines[0] and "covers [0, 1]" in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())

    done = edgeconv("export", VWW_INT8, "--data", images, "--scale", "0.00392156862745098",
                    "--out", out)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert manifest["input"]["preprocessing"]["offset"] == 0.0
    assert "flags" in manifest["dataset"]["input_range"]["mapping"]
    assert manifest["dataset"]["input_range"]["covers"] == pytest.approx([0.0, 1.0], abs=1e-6)


# --- 2. peak RSS measures the runtime, not the accuracy pass's images ------------------------


def _child(tmp_path: Path, runtime: str, model: Path, data: Path | None, *, timeout: float,
           fit: bool = False):
    from edgeconv._child import run_child
    from edgeconv.bench.child import Job
    from edgeconv.runtimes.registry import get_runtime

    entry = get_runtime(runtime)
    copy = tmp_path / model.name
    shutil.copyfile(model, copy)
    job = Job(path=str(copy), format="tflite", entry=Job.entry_of(entry), options={},
              warmup=2, runs=5, min_time=0.0, data=None if data is None else str(data),
              fit=fit, phase_file=str(tmp_path / "phase.txt"))
    outcome = run_child("edgeconv.bench", what=entry.name, timeout=timeout,
                        stdin=json.dumps(asdict(job)))
    return job, outcome


def _split(path: Path, images: int) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((images, 32, 32, 3), dtype=np.float32) * 255,
             y=rng.integers(0, 10, images).astype(np.int64))
    return path


def test_peak_rss_of_an_int8_row_leaves_out_the_accuracy_images(tmp_path):
    """The same int8 file benched with and without an accuracy pass over ~90 MiB of test
    images (float32, then quantised): the peak is the runtime's either way, within a few
    MiB, and the row says what it covers."""
    split = _split(tmp_path / "split.npz", 8000)  # 94 MiB as float32
    peaks = {}
    for name, data in (("without", None), ("with", split)):
        _, outcome = _child(tmp_path, "litert", RESNET_INT8, data, timeout=300)
        assert outcome.ok and outcome.payload["status"] == "ok", outcome
        assert outcome.payload["peak_rss_of"] == "runtime"
        peaks[name] = outcome.payload["peak_rss_bytes"]
    assert outcome.payload["eval_samples"] == 8000  # the accuracy pass did run
    assert abs(peaks["with"] - peaks["without"]) < 24 << 20, peaks


# --- 3. a timeout names its cause; --eval-samples in bench -------------------------------------


def test_a_timeout_in_the_accuracy_pass_names_its_images_and_the_cap(tmp_path):
    """TFLite Micro's reference kernels on 3000 test images (~14 ms each) run past a 15 s
    timeout: the row's reason names the images, the kernels and --eval-samples, not only
    'timed out after 15 s'."""
    from edgeconv.bench.local import _why_not
    from edgeconv.bench.plan import BenchConfig

    split = _split(tmp_path / "split.npz", 3000)
    job, outcome = _child(tmp_path, "tflite-micro", RESNET_INT8, split, timeout=15, fit=True)
    assert not outcome.ok and "timed out after 15 s" in outcome.error
    reason = _why_not(outcome.error, job, BenchConfig(timeout=15))
    assert reason == ("tflite-micro timed out after 15 s running 3,000 test images through"
                      " TFLite Micro's reference kernels on this machine; cap them with"
                      " --eval-samples N (or raise --timeout)"), reason


@pytest.mark.parametrize("given", ["0", "-3", "1000001", "x"])
def test_bench_eval_samples_is_validated(tmp_path, given):
    done = edgeconv("bench", RESNET_INT8, "--eval-samples", given)
    assert done.returncode == 2, done.stderr
    assert "--eval-samples" in done.stderr and "Traceback" not in done.stderr
    assert "No such option" not in done.stderr


def test_bench_eval_samples_measures_the_images_export_picks(tmp_path):
    """export --eval-samples 5 and bench --eval-samples 5 of the full export measure the
    same five images (the same accuracy); the row and results.json's config say 5."""
    from tests.test_own_model_errors import onnx_model

    images = colour_folder(tmp_path / "images", per_class=6)
    model = onnx_model(tmp_path / "mean.onnx", [1, 16, 16, 3])
    full, cut = tmp_path / "full", tmp_path / "cut"
    for out, extra in ((full, ()), (cut, ("--eval-samples", "5"))):
        done = edgeconv("export", model, "--data", images, "--out", out, *extra)
        assert done.returncode == 0, done.stderr
    cut_manifest = json.loads((cut / "manifest.json").read_text())
    assert cut_manifest["dataset"]["test_subset"] == {"samples": 5, "of": 18, "seed": 0}
    results = {}
    for name, run, extra in (("bench", full, ("--eval-samples", "5")), ("export", cut, ())):
        done = edgeconv("bench", run, "--runtime", "onnxruntime", "--runs", "1", "--warmup",
                        "0", "--min-time", "0", "--json", *extra)
        assert done.returncode == 0, done.stderr
        results[name] = json.loads(done.stdout)
    rows = {name: r["results"][0] for name, r in results.items()}
    assert rows["bench"]["eval_samples"] == rows["export"]["eval_samples"] == 5
    assert rows["bench"]["accuracy"] == rows["export"]["accuracy"]
    assert results["bench"]["config"]["eval_samples"] == 5


# --- 4. --eval-samples picks its images before any is prepared -------------------------------


def test_eval_samples_prepares_only_the_images_it_picks(tmp_path, monkeypatch):
    """A folder whose images, prepared, exceed this machine's memory (as the check is told)
    is refused whole with one line naming --eval-samples; --eval-samples 4 passes, with the
    same four images (and the same calibration draw) a whole read then subset gives."""
    from edgeconv.data import splits

    folder = colour_folder(tmp_path / "images", per_class=10)  # 30 images, 16x16x3
    model = ModelInput((None, 16, 16, 3))
    whole = load_user_data(str(folder), model, PrepFlags(), seed=3)
    expected = whole.subset(4, seed=3)
    assert len(whole.train.x) == 30  # the pool prepared whole, as the check prepares it
    drawn = user.draw_calibration(whole, 5, seed=7)

    one_image = 16 * 16 * 3 * 4
    monkeypatch.setattr(splits, "_physical_memory", lambda: 6 * one_image)
    with pytest.raises(EdgeconvError, match="--eval-samples"):
        load_user_data(str(folder), model, PrepFlags(), seed=3)
    cut = load_user_data(str(folder), model, PrepFlags(), seed=3, eval_samples=4)
    assert cut.full_test == 30 and len(cut.test) == 4
    np.testing.assert_array_equal(cut.test.x, expected.test.x)
    np.testing.assert_array_equal(cut.test.y, expected.test.y)
    again = user.draw_calibration(cut, 5, seed=7)  # 5 of the 30 prepared, not the 30
    np.testing.assert_array_equal(again[0], drawn[0])
    with pytest.raises(EdgeconvError, match="--eval-samples"):
        _ = cut.train.x  # the whole pool, prepared, would not fit either: one line


@pytest.mark.mcu
def test_firmware_row_says_once_why_it_has_no_accuracy(tmp_path):
    """The host TFLite Micro row failed (its accuracy pass timed out) while the parity
    images ran: the firmware row has parity and one caveat naming the cause; no line says
    the host interpreter did not run the file."""
    from edgeconv.bench import firmware
    from edgeconv.bench.local import Workspace
    from edgeconv.bench.plan import BenchConfig, collect, make_plan
    from edgeconv.progress import Progress
    from edgeconv.records import NO_FIGURE
    from edgeconv.targets import get_target

    target = get_target("stm32h7")  # cortex-m7, cmsis-nn
    plan = make_plan(collect([RESNET_INT8], tmp_path / "files"), target, BenchConfig())
    planned = plan.rows[0]
    host = planned.row(target)
    host.status, host.error = "failed", ("tflite-micro timed out after 600 s running 10,000"
                                         " test images through TFLite Micro's reference kernels")
    tree = str(SHARED.parents[1] / "third_party")
    (work := tmp_path / "work").mkdir()
    rows = firmware._rows_of(planned, host, target, BenchConfig(tflm_tree=tree),
                             Workspace(work, {}), tree, Progress())
    row = rows[0]
    assert row.parity is not None, (row.notes, row.caveats)
    missing = row.caveats_of(NO_FIGURE)
    assert [n.text for n in missing] == [("no accuracy: the host TFLite Micro interpreter's"
                                          f" pass failed ({host.error})")]
    assert not any("did not run" in text for text in row.notes + [n.text for n in row.caveats])
