"""Issue 12, the records, export and output-path parts: every record edgeconv reads back
(manifest.json, results.json, train.json, train state) is validated on load, export deletes
only what it wrote, artifact paths stay inside their folder, sizes are bounded, and output
paths are checked before any work. Each case is one line on stderr and exit 2 (or the right
result), and no file outside the run changes (`sentinel`).

Hostile runs are copies of the session's untrained fcn-mnist export (`benched_fcn`), edited."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeconv.cli import app

runner = CliRunner()
EDGECONV = [sys.executable, "-m", "edgeconv"]


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *messages: str) -> str:
    """Exit 2, one line on stderr holding every message, no traceback (a CliRunner result
    or a finished subprocess)."""
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    stderr = result.stderr
    assert code == 2, (code, getattr(result, "output", stderr), getattr(result, "exception", None))
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    for message in messages:
        assert message in stderr, (message, stderr)
    return stderr


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


@pytest.fixture
def run(benched_fcn, tmp_path) -> Path:
    """A writable copy of the export, beside the sentinel tree (tmp_path/outside)."""
    copy = tmp_path / "run"
    shutil.copytree(benched_fcn, copy)
    return copy


def edit(path: Path, change) -> Path:
    """Apply `change(document)` to a JSON file in place."""
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def entry(run: Path, precision: str) -> dict:
    manifest = json.loads((run / "manifest.json").read_text())
    return next(a for a in manifest["artifacts"]
                if a["format"] == "tflite" and a["precision"] == precision)


def foreign_entry(run: Path, target: Path, path: str, fmt: str = "tflite",
                  precision: str = "fp16") -> dict:
    """An entry naming `path` that vouches for `target` exactly (its size and sha256)."""
    return {**entry(run, "fp32"), "path": path, "format": fmt, "precision": precision,
            "size_bytes": target.stat().st_size, "sha256": sha256(target)}


def finished_run(directory: Path, model: str = "fcn-mnist", **overrides) -> Path:
    """A run directory as `edgeconv train` leaves it (train.json), with `model.keras` to be
    written by the test."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.json").write_text(json.dumps({
        "schema_version": 1, "model": model,
        "model_options": {"input_shape": [28, 28, 1], "classes": 10},
        "config": {"model": model, "dataset": "digits", "seed": 0},
        "epochs_run": 1, "best_epoch": 1,
        "preprocessing": {"input_shape": [28, 28, 1], "source_shape": [8, 8, 1],
                          "resize": "bilinear", "channels": "none", "scale": 1 / 255,
                          "offset": 0.0, "input_dtype": "float32"}, **overrides}))
    return directory


# --- defect 1: export deletes only the files it wrote, inside the run ----------------------

def test_export_never_deletes_files_a_hostile_manifest_lists_outside_the_run(run, sentinel):
    victim, absolute = sentinel.root / "victim.txt", sentinel.root / "victim.tflite"
    edit(run / "manifest.json", lambda m: m["artifacts"].extend([
        foreign_entry(run, victim, "../outside/victim.txt"),
        foreign_entry(run, absolute, str(absolute), fmt="onnx", precision="int8")]))
    result = cli("export", "fcn-mnist", "--untrained", "--formats", "tflite", "--out", run)
    assert result.exit_code == 0, result.output
    assert sentinel.unchanged()
    # It vouched for nothing: removed alone, and said so.
    assert "previous manifest.json was unreadable" in " ".join(result.stderr.split())
    assert (run / "fcn-mnist_int8.onnx").exists()


def test_export_removes_only_unchanged_listed_files_never_a_directory(run):
    from edgeconv.export.manifest_data import drop_previous_export

    changed = run / "fcn-mnist_int8.tflite"
    data = bytearray(changed.read_bytes())
    data[-1] ^= 0xFF
    changed.write_bytes(bytes(data))  # no longer the file the manifest listed
    shutil.move(run / "fcn-mnist_int8.onnx", run / "gone.onnx")
    (run / "fcn-mnist_int8.onnx").mkdir()  # a directory where a listed file was
    notes = drop_previous_export(run)
    assert not (run / "manifest.json").exists()
    assert not (run / "fcn-mnist_fp32.tflite").exists()  # listed and unchanged: the tool's
    assert not (run / "fcn-mnist_fp32.onnx").exists()
    assert changed.exists() and (run / "fcn-mnist_int8.onnx").is_dir()
    assert (run / "model.keras").exists() and (run / "gone.onnx").exists()
    assert len(notes) == 2 and all(n.startswith("left fcn-mnist_int8.") for n in notes)


def test_a_symlink_leaving_the_run_is_neither_deleted_through_nor_benched(run, sentinel):
    from edgeconv.export.manifest_data import drop_previous_export

    victim = sentinel.root / "victim.tflite"
    (run / "evil.tflite").symlink_to(victim)
    edit(run / "manifest.json",
         lambda m: m["artifacts"].append(foreign_entry(run, victim, "evil.tflite")))
    one_line_error(cli("bench", run, "--target", "cpu"),
                   "artifacts[5].path must stay inside", "once symbolic links are followed")
    drop_previous_export(run)
    assert sentinel.unchanged() and (run / "evil.tflite").is_symlink()


# --- defect 2 (local): artifact paths stay inside the export folder ------------------------

@pytest.mark.parametrize("where", ["../outside/victim.tflite", "absolute"])
def test_an_artifact_path_outside_the_folder_is_refused(run, sentinel, where):
    victim = sentinel.root / "victim.tflite"
    path = str(victim) if where == "absolute" else where
    edit(run / "manifest.json",
         lambda m: m["artifacts"].append(foreign_entry(run, victim, path)))
    one_line_error(cli("bench", run, "--target", "cpu"),
                   "artifacts[5].path must be a relative path inside the folder; got '")
    assert sentinel.unchanged()


def test_a_keras_entry_naming_etc_passwd_is_refused(run):
    # Refused by the path alone, before anything is read (the file need not even exist).
    edit(run / "manifest.json", lambda m: m["artifacts"][0].update(path="/etc/passwd"))
    one_line_error(cli("bench", run, "--target", "cpu", "--runtime", "keras"),
                   "artifacts[0].path must be a relative path inside the folder; got '/etc/passwd'")


# --- defect 6: size_bytes is checked, before the file is read ------------------------------

def test_a_wrong_size_bytes_is_refused(run):
    size = (run / "fcn-mnist_fp32.tflite").stat().st_size
    edit(run / "manifest.json", lambda m: next(
        a for a in m["artifacts"] if a["path"] == "fcn-mnist_fp32.tflite").update(size_bytes=1))
    one_line_error(cli("bench", run, "--target", "cpu"),
                   f"fcn-mnist_fp32.tflite is {size:,} bytes, not the 1 the manifest lists")


def test_a_huge_file_listed_as_small_is_refused_unread(run):
    listed = run / "fcn-mnist_fp32.tflite"
    with open(listed, "r+b") as fh:
        fh.truncate(40 << 30)  # sparse: 40 GB that would take minutes to hash
    started = time.monotonic()
    one_line_error(cli("bench", run, "--target", "cpu"),
                   "is 42,949,672,960 bytes, not the")
    assert time.monotonic() - started < 30


def test_a_fifo_in_place_of_a_listed_file_does_not_hang(run):
    listed = run / "fcn-mnist_fp32.tflite"
    listed.unlink()
    os.mkfifo(listed)
    done = subprocess.run([*EDGECONV, "bench", str(run), "--target", "cpu"],
                          capture_output=True, text=True, timeout=120)
    one_line_error(done, "fcn-mnist_fp32.tflite is a FIFO, not a regular file")


# --- defect 8 and 11: wrong types, booleans, duplicates, huge shapes in records ------------

def _artifact(m: dict, i: int) -> dict:
    return m["artifacts"][i]


@pytest.mark.parametrize("change, message", [
    (lambda m: _artifact(m, 1).update(sha256=5),
     "artifacts[1].sha256 must be a sha256 (64 lowercase hex digits); got 5"),
    (lambda m: _artifact(m, 1).update(path=5),
     "artifacts[1].path must be a relative path inside the folder; got 5"),
    (lambda m: m.update(artifacts={"model.keras": {}}), "artifacts must be a list"),
    (lambda m: m.update(schema_version=True), "schema_version must be the integer 1; got True"),
    (lambda m: m["artifacts"].append({**_artifact(m, 1), "precision": "fp16"}),
     "artifacts[5] repeats the path 'fcn-mnist_fp32.tflite' of artifacts[1]"),
    (lambda m: m["artifacts"].append({**_artifact(m, 1), "path": "copy.tflite"}),
     "artifacts[5] repeats tflite fp32 of artifacts[1]"),
    (lambda m: _artifact(m, 3).update(precision="fp16"),
     "artifacts[3].precision must be one of fp32, int8, int16x8 for ONNX; got 'fp16'"),
    (lambda m: _artifact(m, 1).update(accuracy=float("nan")),
     "artifacts[1].accuracy must be a finite number from 0 to 1; got nan"),
    (lambda m: m["input"]["preprocessing"].update(input_shape=[20000, 20000, 1]),
     "input.preprocessing.input_shape[0] must be an image side from 1 to 4096; got 20000"),
    (lambda m: m["input"].update(shape=[None, 20000, 20000, 1]),
     "input.shape[1] must be a dimension from 1 to 4096; got 20000"),
    (lambda m: m["model"].update(name=["fcn-mnist"]), "model.name must be a string"),
])
def test_a_malformed_manifest_is_one_line(run, tmp_path, change, message):
    edit(run / "manifest.json", change)
    out = tmp_path / "report"
    one_line_error(cli("report", run, "-o", out, "--no-arithmetic", "--no-plots"),
                   f"{run / 'manifest.json'}: {message}")
    assert not out.exists()


@pytest.mark.parametrize("change, message", [
    (lambda r: r["results"][0].update(latency_ms=[0.1, 0.2]),
     "results[0].latency_ms must be an object; got a list of 2"),
    (lambda r: r["results"][0].update(sha256=1), "results[0].sha256 must be a sha256"),
    (lambda r: r["results"][0]["latency_ms"].update(p50=-1),
     "results[0].latency_ms.p50 must be a finite number >= 0; got -1"),
    (lambda r: r["results"][0]["latency_ms"].update(p90=float("inf")),
     "results[0].latency_ms.p90 must be a finite number >= 0; got inf"),
    (lambda r: r["results"][0].update(threads="12"), "results[0].threads must be an integer"),
    (lambda r: r.update(environment=[]), "environment must be an object"),
    (lambda r: r["environment"]["target"].update(sram_bytes="1 MiB"),
     "environment.target.sram_bytes must be an integer"),
    (lambda r: r.update(schema_version=True), "schema_version must be the integer 1; got True"),
])
def test_a_malformed_results_json_is_one_line(run, tmp_path, change, message):
    results = edit(run / "results.json", change)
    one_line_error(cli("report", results, "-o", tmp_path / "report", "--no-arithmetic"),
                   f"{results}: {message}")


def test_multi_line_free_text_in_a_results_row_is_read_as_one_line(run, tmp_path):
    from edgeconv.records import load_results

    results = edit(run / "results.json", lambda r: r["results"][0].update(
        status="failed", error="first\nsecond", notes=["a\nb"]))
    row = load_results(results).results[0]
    assert (row.error, row.notes) == ("first second", ["a b"])


def test_a_record_that_is_not_a_regular_file_is_one_line(run, tmp_path):
    (run / "manifest.json").unlink()
    (run / "manifest.json").symlink_to("/proc/self/mem")
    # (the report names the file the link resolves to)
    one_line_error(cli("report", run, "-o", tmp_path / "report"),
                   "is a kernel or device file")
    (run / "manifest.json").unlink()
    os.mkfifo(run / "manifest.json")  # opening it to read would wait for a writer
    done = subprocess.run([*EDGECONV, "report", str(run), "-o", str(tmp_path / "report")],
                          capture_output=True, text=True, timeout=120)
    one_line_error(done, "manifest.json is a FIFO, not a regular file")


def test_a_record_over_the_size_limit_is_refused_unread(run, tmp_path):
    with open(run / "results.json", "r+b") as fh:
        fh.truncate(65 << 20)  # sparse
    one_line_error(cli("report", run / "results.json", "-o", tmp_path / "report"),
                   "results.json is 65 MiB (68,157,440 bytes); edgeconv reads a file of at most 64 MiB")


def test_a_malformed_train_json_is_one_line(tmp_path):
    run = finished_run(tmp_path / "run", epochs_run="3")
    one_line_error(cli("export", run), "train.json: epochs_run must be an integer")


def test_a_resume_state_of_the_wrong_shape_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.keras").write_bytes(b"not read")
    (run / "state.json").write_text(json.dumps({
        "epoch": 1, "planned_epochs": 3, "best_val_accuracy": 0.5, "best_epoch": 1,
        "wait": 0, "history": "x"}))
    one_line_error(cli("train", "fcn-mnist", "--resume", "--out", run),
                   "state.json: history must be a list; got 'x'",
                   "run without --resume to start afresh")


def test_a_checkpoint_symlinked_to_proc_is_one_line(tmp_path):
    run = finished_run(tmp_path / "run")
    (run / "model.keras").symlink_to("/proc/self/mem")
    one_line_error(cli("export", run), "model.keras is a kernel or device file")


def test_a_keras_archive_that_would_inflate_past_the_bound_is_refused(benched_fcn, tmp_path):
    """An 800 MB config.json was decompressed without limit; 100 MB (over the 64 MiB bound)
    compressed to a few hundred KB shows the same."""
    run = finished_run(tmp_path / "run")
    with zipfile.ZipFile(benched_fcn / "model.keras") as source, \
            zipfile.ZipFile(run / "model.keras", "w", zipfile.ZIP_DEFLATED) as bomb:
        for member in source.infolist():
            if member.filename != "config.json":
                bomb.writestr(member, source.read(member))
        with bomb.open("config.json", "w", force_zip64=True) as fh:
            for _ in range(100):
                fh.write(b" " * (1 << 20))
    assert (run / "model.keras").stat().st_size < 2 << 20
    one_line_error(cli("export", run), "model.keras with Keras: config.json would decompress"
                   " to 104,857,600 bytes, over the 67,108,864")


# --- defect 8: huge sizes are refused where they are parsed ---------------------------------

@pytest.mark.parametrize("args, message", [
    (["data", "--input-shape", "20000,20000,3"],
     "--input-shape takes H and W up to 4096 and up to 1024 channels; got 20000,20000,3"),
    (["export", "gap-mnist", "--untrained", "--input-shape", "100000,100000,1"],
     "--input-shape takes H and W up to 4096"),
    (["inspect", "fcn-mnist", "--classes", "1000000000"],
     "--classes must be at most 100,000"),
    (["inspect", "mobilenet", "--alpha", "1000"], "--alpha must be at most 4"),
])
def test_huge_sizes_are_one_line(args, message):
    one_line_error(cli(*args), message)


def test_images_that_would_not_fit_in_memory_are_refused_before_allocating():
    from edgeconv.data.splits import _physical_memory

    memory = _physical_memory()
    if memory is None or memory > 300 << 30:
        pytest.skip("this machine has the memory for 1,797 4096x4096x3 images")
    one_line_error(cli("data", "--input-shape", "4096,4096,3"),
                   "1,797 images at 4096x4096x3 need", "choose a smaller --input-shape")


# --- defect 8: output paths are checked before any work ------------------------------------

@pytest.fixture
def taken(tmp_path) -> Path:
    """A regular file where a folder would have to be."""
    path = tmp_path / "taken"
    path.write_text("mine")
    return path


@pytest.mark.parametrize("args, message", [
    (lambda run, taken, tmp: ["export", "fcn-mnist", "--untrained", "--out", taken],
     "--out {taken} is a file, not a folder"),
    (lambda run, taken, tmp: ["export", "fcn-mnist", "--untrained", "--out", "/proc/self/x"],
     "--out /proc/self/x: cannot write in /proc/self"),
    (lambda run, taken, tmp: ["train", "fcn-mnist", "--out", taken],
     "--out {taken} is a file, not a folder"),
    (lambda run, taken, tmp: ["report", run, "-o", taken / "report"],
     "--out {taken}/report: {taken} is a file, not a folder"),
    (lambda run, taken, tmp: ["report", run, "-o", tmp / "report", "--summary",
                              "/proc/self/summary.md"], "--summary /proc/self/summary.md:"),
    (lambda run, taken, tmp: ["report", run, "-o", tmp / "report", "--summary",
                              taken / "summary.md"], "{taken} is a file, not a folder"),
    (lambda run, taken, tmp: ["gate", run, "--junit", taken / "gate.xml"],
     "--junit {taken}/gate.xml: {taken} is a file, not a folder"),
    (lambda run, taken, tmp: ["gate", run, "--markdown", "/proc/self/gate.md"],
     "--markdown /proc/self/gate.md: cannot write in /proc/self"),
    (lambda run, taken, tmp: ["gate", run, "--markdown", "/dev/null"],
     "--markdown /dev/null is not a regular file"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(
        benched_fcn, taken, tmp_path, args, message):
    before = tree_hashes(benched_fcn)
    one_line_error(cli(*args(benched_fcn, taken, tmp_path)), message.format(taken=taken))
    assert taken.read_text() == "mine" and not (tmp_path / "report").exists()
    assert tree_hashes(benched_fcn) == before


# --- defect 9a: an export never replaces another model's run -------------------------------

def test_exporting_one_model_into_another_models_run_is_refused(run, tmp_path):
    trained = finished_run(tmp_path / "trained")
    (trained / "model.keras").write_bytes(b"a trained checkpoint")
    one_line_error(cli("export", "gap-mnist", "--out", trained),
                   f"{trained} holds a fcn-mnist run, not gap-mnist")
    one_line_error(cli("export", "gap-mnist", "--untrained", "--out", trained),
                   f"{trained} holds a finished training run: --untrained would overwrite")
    assert (trained / "model.keras").read_bytes() == b"a trained checkpoint"
    before = tree_hashes(run)
    one_line_error(cli("export", "gap-mnist", "--untrained", "--out", run),
                   f"{run} holds a fcn-mnist export, not gap-mnist")
    assert tree_hashes(run) == before


def test_gate_judges_the_file_size_not_an_edited_figure(run, tmp_path):
    # defect 6 through gate: an edited size_bytes must not pass a size budget
    policy = tmp_path / "size.toml"
    policy.write_text('[[rule]]\nname = "small"\nformat = "tflite"\nprecision = "fp32"\n'
                      'max_size_bytes = "1 KiB"\n')
    edit(run / "manifest.json", lambda m: next(
        a for a in m["artifacts"] if a["path"] == "fcn-mnist_fp32.tflite").update(size_bytes=1))
    one_line_error(cli("gate", run / "manifest.json", "--policy", policy),
                   "not the 1 the manifest lists")
