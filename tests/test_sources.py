"""One export pipeline for every source (issue 20): the source-kind table, and every kind
walked through the same `export()` to every format and precision it can become.

The table tests are quick; the walk converts real files (TensorFlow, onnxruntime) and runs
with the own-model set (`-m own`, which CI runs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgeconv.formats import (
    FORMATS, PRECISIONS, SOURCE_KINDS, USER_FILE_KINDS, resolve, source_kind_of,
)
from tests.test_own_model import MNIST_ONNX, colour_folder, edgeconv

def test_every_source_kind_row_names_what_exists():
    for kind in SOURCE_KINDS.values():
        assert callable(resolve(kind.opener)), kind.name
        assert kind.reference in FORMATS, kind.name
        if kind.loader:
            assert callable(resolve(kind.loader)), kind.name
        for fmt, precisions in kind.becomes.items():
            assert FORMATS[fmt].exported and FORMATS[fmt].converter, (kind.name, fmt)
            assert set(precisions) <= set(FORMATS[fmt].precisions) <= set(PRECISIONS)
        # a kind chosen by a path says how it is recognised; the others are named
        assert kind.user_file == bool(kind.suffixes or kind.marker) or kind.name == "run"
    # what a manifest may record as a user file's kind is read off the same table
    from edgeconv.manifest import MODEL_SOURCE

    assert set(MODEL_SOURCE.fields["kind"].choices) == set(USER_FILE_KINDS)


def test_a_path_is_classified_by_the_table(tmp_path):
    for kind in SOURCE_KINDS.values():
        for suffix in kind.suffixes:
            assert source_kind_of(tmp_path / f"model{suffix.upper()}") is kind
        if kind.marker:
            folder = tmp_path / kind.name
            folder.mkdir()
            (folder / kind.marker).write_text("{}")
            assert source_kind_of(folder) is kind
    assert source_kind_of("mobilenet").name == "zoo"
    assert source_kind_of("mobilenet", untrained=True).name == "untrained"
    assert source_kind_of(tmp_path / "model.pt").name == "zoo"  # refused by the zoo's opener


# --- every kind through the one loop --------------------------------------------------------


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, ...]]]:
    """A path of each source kind and the export arguments it takes, all of one tiny model:
    a run (trained here for one epoch), a zoo name resolving to that run, fresh weights, and
    the user's .keras, .h5, SavedModel, .onnx and .tflite (the last two exported here)."""
    import keras

    root = tmp_path_factory.mktemp("kinds")
    images = colour_folder(root / "images", per_class=6)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)),
                              keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.save(root / "tiny.keras")
    model.save(root / "tiny.h5")
    model.export(root / "tiny_saved", verbose=False)
    done = edgeconv("export", root / "tiny.keras", "--data", images, "--out", root / "fp32")
    assert done.returncode == 0, done.stderr
    shutil.copy(root / "fp32" / "tiny_fp32.onnx", root / "tiny.onnx")
    shutil.copy(root / "fp32" / "tiny_fp32.tflite", root / "tiny.tflite")
    run = root / "runs" / "fcn-mnist"
    done = edgeconv("train", "fcn-mnist", "--epochs", "1", "--out", run, timeout=600)
    assert done.returncode == 0, done.stderr
    data = ("--data", str(images))
    return root, {
        "run": (str(run),),
        "zoo": ("fcn-mnist", "--out", str(run)),  # a zoo name whose run exists at --out
        "untrained": ("fcn-mnist", "--untrained"),
        "keras": (str(root / "tiny.keras"), *data),
        "h5": (str(root / "tiny.h5"), *data),
        "savedmodel": (str(root / "tiny_saved"), *data),
        "onnx": (str(root / "tiny.onnx"), *data),
        "tflite": (str(root / "tiny.tflite"), *data),
    }


@pytest.mark.own
@pytest.mark.parametrize("kind", list(SOURCE_KINDS))
def test_every_kind_becomes_every_format_and_precision_it_can(every_kind, kind, tmp_path):
    root, arguments = every_kind
    args = arguments[kind]
    row = SOURCE_KINDS[kind]
    asked = [f"--{p}" for p in PRECISIONS if p != "fp32"
             and any(p in precisions for precisions in row.becomes.values())]
    out = [] if "--out" in args else ["--out", tmp_path / "export"]
    done = edgeconv("export", *args, *asked, "--eval-samples", "12", *out, "--json",
                    timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    manifest = json.loads((Path(result["run_dir"]) / "manifest.json").read_text())
    made = {(a["format"], a["precision"]) for a in manifest["artifacts"]}
    # what the table says this kind becomes, and nothing else; the reference as well
    expected = {(fmt, p) for fmt, precisions in row.becomes.items() for p in precisions}
    if row.copied or not row.user_file:  # the float reference is one of the export's files
        expected.add((row.reference, "fp32"))
    assert made == expected, (made, expected)
    # one manifest builder: every source's manifest has the same top-level blocks
    assert set(manifest) == {"schema_version", "created", "model", "input", "labels", "dataset",
                             "float_accuracy", "versions", "calibration", "artifacts"} - (
        set() if asked else {"calibration"})
    assert (manifest["model"].get("source") is not None) == row.user_file
    assert result["refusals"] == []


@pytest.mark.own
def test_max_drop_holds_an_onnx_sources_budget_or_names_the_layers(tmp_path):
    if not MNIST_ONNX.is_file():
        pytest.skip("../shared/models is not beside the checkout")
    out = tmp_path / "run"
    done = edgeconv("export", MNIST_ONNX, "--data", "digits", "--int8", "--max-drop", "0",
                    "--calibration-samples", "2", "--out", out, "--json")
    assert done.returncode in (0, 1), done.stderr
    int8 = next(a for a in json.loads(done.stdout)["artifacts"] if a["precision"] == "int8")
    budget = int8["options"]["accuracy_budget"]
    # ranges from 2 calibration images cost this model accuracy: the search has work to do
    assert budget["plain_int8"]["accuracy"] < json.loads(done.stdout)["float_accuracy"]
    assert budget["int16x8_layers"] or budget["kept_float"], budget
    if done.returncode == 0:
        assert budget["met"] and 100 * int8["versus_float"]["drop"] <= 0 + 1e-9
    else:
        assert not budget["met"] and "budget" in done.stderr


def test_a_second_export_into_a_folder_being_written_is_refused(tmp_path):
    """Two exports into one folder at once: the second is one line, exit 2, and leaves the
    first one's folder as it was (here: held by this process, as a running export holds it)."""
    import fcntl
    import os

    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("the running export's\n")
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = edgeconv("export", "fcn-mnist", "--untrained", "--out", out)
    finally:
        os.close(fd)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"error: another edgeconv export is writing to {out}; wait for it to"
                     " finish, or give another --out"], done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
