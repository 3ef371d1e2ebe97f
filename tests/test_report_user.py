"""The report's "Your models" section, from hand-written manifests and results.json (no
TensorFlow): a user's classifier exported from ONNX with labels, a two-output detector
without labels, and a zoo export beside them that the section leaves out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.quant.output_parity import output_parity

runner = CliRunner()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _artifact(name: str, fmt: str, precision: str, parity, **extra) -> dict:
    return {"path": f"{name}_{precision}.{fmt}", "format": fmt, "precision": precision,
            "size_bytes": 20_480 if precision == "int8" else 81_920,
            "sha256": _sha(f"{name}{fmt}{precision}"), "runtime": "onnxruntime 1.20",
            "eval_samples": 300, "output_parity": parity, **extra}


def _manifest(run: Path, name: str, artifacts: list[dict], **top) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "model": {"name": name, "trained": True, **top.pop("model", {})},
        "artifacts": artifacts, **top}, allow_nan=False))
    return run


def _row(run: Path, artifact: dict, target: str, p50: float, timed_on: str = "target",
         threads: int | None = 1) -> dict:
    return {"artifact": f"{run.name}/{artifact['path']}", "sha256": artifact["sha256"],
            "format": artifact["format"], "precision": artifact["precision"],
            "runtime": "onnxruntime" if artifact["format"] == "onnx" else "litert",
            "target": target, "threads": threads, "status": "ok", "timed_on": timed_on,
            "runs": 20, "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2,
                                       "mean": p50, "std": p50 / 20, "min": p50 * 0.9,
                                       "p50_low": p50 * 0.95, "p50_high": p50 * 1.05}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)

    # a user's digits classifier exported from mnist.onnx (labels, parity, benched on cpu)
    logits = [rng.normal(size=(300, 10)).astype(np.float32)]
    int8 = output_parity(logits, [np.round(logits[0] * 16) / 16], ["Plus214_Output_0"])
    source = {"kind": "onnx", "file": "mnist.onnx", "sha256": _sha("mnistonnxfp32")}
    mnist = root / "mnist"
    fp32_file = _artifact("mnist", "onnx", "fp32", None, accuracy=0.90, agreement=1.0)
    int8_file = _artifact("mnist", "onnx", "int8", int8, accuracy=0.893, agreement=0.99)
    _manifest(mnist, "mnist", [fp32_file, int8_file], model={"source": source},
              float_accuracy=0.90, dataset={"name": "digits-folder", "seed": 0},
              input={"shape": [None, 1, 28, 28], "layout": "NCHW", "dtype": "float32"})
    (mnist / "results.json").write_text(json.dumps({"schema_version": 1, "results": [
        _row(mnist, fp32_file, "cpu", 0.120), _row(mnist, int8_file, "cpu", 0.080),
        _row(mnist, int8_file, "cpu", 0.050, threads=4),  # the fewest threads is shown
        _row(mnist, int8_file, "rpi4", 9.0, timed_on="emulated"),
        {**_row(mnist, fp32_file, "rpi5", 1.0), "status": "failed", "latency_ms": None,
         "error": "onnxruntime is not installed on rpi5"}]}))

    # a two-output detector without labels, one file's scores gone NaN
    ref = [rng.normal(size=(50, 4, 4)).astype(np.float32),
           rng.uniform(size=(50, 3)).astype(np.float32)]
    broken = [ref[0] + 0.01, ref[1].copy()]
    broken[1][0, 0] = np.nan
    det = root / "det"
    det_int8 = _artifact("det", "tflite", "int8", output_parity(
        ref, [np.round(r * 32) / 32 for r in ref], ["boxes", "scores"]))
    _manifest(det, "det", [
        _artifact("det", "keras", "fp32", None),
        _artifact("det", "tflite", "fp32", output_parity(ref, ref, ["boxes", "scores"])),
        det_int8,
        _artifact("det", "onnx", "int8", output_parity(ref, broken, ["boxes", "scores"]))],
        model={"source": {"kind": "keras", "file": "det.keras"}})
    (det / "results-stm32h7.json").write_text(json.dumps({"schema_version": 1, "results": [
        _row(det, det_int8, "stm32h7", 3.5, timed_on="host", threads=None)]}))

    # a zoo export beside them, and a user model from before model.source was recorded
    _manifest(root / "fcn", "fcn-mnist", [_artifact("fcn", "tflite", "int8", None,
                                                    accuracy=0.9)], float_accuracy=0.91)
    _manifest(root / "old", "my-net", [_artifact("old", "tflite", "fp32", None, accuracy=0.8)],
              float_accuracy=0.8)
    return root


def _report(tmp_path: Path, *paths: Path) -> str:
    out = tmp_path / "report"
    done = runner.invoke(app, ["report", *map(str, paths), "-o", str(out), "--no-arithmetic",
                               "--no-plots"])
    assert done.exit_code == 0, done.output
    return (out / "report.md").read_text()


def _section(md: str) -> str:
    start = md.index("## Your models")
    end = md.find("\n## ", start + 1)
    return md[start:end if end > 0 else None]


def _block(section: str, model: str) -> str:
    """The paragraph about one export and its tables: up to the next export's paragraph."""
    start = section.index(f"**{model}**")
    end = section.find("\n**", start + 1)
    return section[start:end if end > 0 else None]


def _table_rows(text: str, first: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in text.splitlines() if line.startswith(f"| {first}")]


def test_the_section_lists_only_the_users_exports(runs, tmp_path):
    section = _section(_report(tmp_path, runs))
    assert "4 export(s)" not in section and "3 export(s) of your own model files" in section
    assert "**mnist** (mnist/): from `mnist.onnx` (onnx)" in section
    assert "input 1x28x28 NCHW float32" in section and "digits-folder, 300 images" in section
    assert "**det** (det/): from `det.keras` (keras)" in section
    assert "**my-net** (old/)" in section  # not a zoo name: the user's, source or not
    assert "fcn-mnist" not in section


def test_a_labelled_export_shows_accuracy_parity_and_cpu_latency(runs, tmp_path):
    section = _section(_report(tmp_path, runs))
    mnist = _block(section, "mnist")
    [header] = _table_rows(mnist, "file | format")
    assert "accuracy [95%] (data, images)" in header and "cpu latency ms" in header
    assert not any("rpi4" in c for c in header)  # emulated: never a latency column
    rows = {r[0]: dict(zip(header, r)) for r in _table_rows(mnist, "`mnist_")
            if len(r) == len(header)}
    fp32, int8 = rows["`mnist_fp32.onnx`"], rows["`mnist_int8.onnx`"]
    assert fp32["cosine (worst)"] == "(the float reference)"  # the user's own file, as is
    assert int8["accuracy [95%] (data, images)"].startswith("89.3% (digits-folder, 300 images")
    assert int8["agreement with float"] == "99.0%"
    # the 1-thread row, not the 4-thread one
    assert int8["cpu latency ms"] == "0.080 [0.076, 0.084] (measured)"
    assert fp32["cpu latency ms"] == "0.120 [0.114, 0.126] (measured)"
    assert int8["size"] == "20.0 KiB"
    assert "Float accuracy 90.0%" in mnist
    # a row that did not run says so, with the runtime's reason
    assert fp32["rpi5 latency ms"] == "**failed**: onnxruntime is not installed on rpi5"
    assert int8["rpi5 latency ms"] == ""


def test_an_unlabelled_export_shows_parity_per_output_and_nan(runs, tmp_path):
    section = _section(_report(tmp_path, runs))
    det = _block(section, "det")
    assert "No labels: no accuracy" in det
    [header] = _table_rows(det, "file | format")
    assert "accuracy [95%] (data, images)" not in header
    assert "stm32h7 latency ms" in header
    rows = {r[0]: dict(zip(header, r)) for r in _table_rows(det, "`det_")
            if len(r) == len(header)}
    assert rows["`det_fp32.keras`"]["cosine (worst)"] == "(the float reference)"
    assert rows["`det_fp32.tflite`"]["SNR dB (worst)"] == "inf (equal)"
    assert rows["`det_fp32.tflite`"]["cosine (worst)"] == "1 (equal)"
    int8 = rows["`det_int8.tflite`"]
    assert int8["stm32h7 latency ms"] == "3.500 [3.325, 3.675] (x86 host, reference kernels)"
    # a 1/32 grid adds the same noise to both; relative to scores in [0, 1] it is louder
    # than to boxes (std 1), so scores have the worst SNR and are named
    assert int8["SNR dB (worst)"].endswith("(scores)")
    snr = {r[1]: float(r[4]) for r in _table_rows(det, "`det_int8.tflite` int8")}
    assert snr["scores"] < snr["boxes"]
    assert int8["SNR dB (worst)"] == f"{snr['scores']:.1f} (scores)"
    assert "NaN/inf" in rows["`det_int8.onnx`"]["cosine (worst)"]
    per_output = _table_rows(det, "`det_")
    outputs = [(r[0], r[1]) for r in per_output if len(r) == 8]
    assert ("`det_int8.tflite` int8", "boxes") in outputs
    assert ("`det_int8.tflite` int8", "scores") in outputs
    nan = next(r for r in per_output if len(r) == 8 and r[0].startswith("`det_int8.onnx`")
               and r[1] == "scores")
    assert "NaN/inf** in 1 value of 'scores'" in nan[3]


def test_no_user_export_no_section(runs, tmp_path):
    md = _report(tmp_path, runs / "fcn")
    assert "## Your models" not in md


def test_an_mcu_firmware_estimate_is_said_to_be_one(tmp_path):
    from edgeconv import records

    if "estimate_ms" not in records.ROW.fields:
        pytest.skip("this tree's results.json has no MCU firmware rows")
    ref = [np.linspace(-1, 1, 40, dtype=np.float32).reshape(4, 10)]
    run = tmp_path / "runs" / "mine"
    int8 = _artifact("mine", "tflite", "int8", output_parity(ref, [ref[0] * 0.99], ["out"]))
    _manifest(run, "mine", [int8], model={"source": {"kind": "tflite", "file": "mine.tflite"}})
    row = {**_row(run, int8, "nucleo-h7a3zi", 1.0, timed_on="emulated", threads=None),
           "latency_ms": None,
           "mcu": {"core": "cortex-m7", "kernels": "cmsis-nn", "invoke_instructions": 123_456},
           "estimate_ms": {"low": 0.8, "mid": 1.1, "high": 1.5, "basis": "test"}}
    (run / "results-h7.json").write_text(json.dumps({"schema_version": 1, "results": [row]}))
    section = _section(_report(tmp_path, tmp_path / "runs"))
    [header] = _table_rows(section, "file | format")
    [line] = [r for r in _table_rows(section, "`mine_") if len(r) == len(header)]
    assert dict(zip(header, line))["nucleo-h7a3zi latency ms"] == "~1.10 [0.800-1.50] (emulated," \
                                                                  " estimate)"


def test_a_valid_entry_without_a_figure_is_shown_as_such(tmp_path):
    # a hand-written manifest may leave a figure null: said, never a crash or a number
    entry = {"output": "y", "values": 10, "max_abs_diff": 0.5, "rmse": None, "cosine": None,
             "snr_db": 12.0}
    run = _manifest(tmp_path / "runs" / "odd", "odd", [
        _artifact("odd", "tflite", "int8", [entry])])
    section = _section(_report(tmp_path, run))
    [header] = _table_rows(section, "file | format")
    [line] = [r for r in _table_rows(section, "`odd_") if len(r) == len(header)]
    cells = dict(zip(header, line))
    assert (cells["cosine (worst)"], cells["SNR dB (worst)"], cells["RMSE (worst)"]) == (
        "n/a", "12.0", "n/a")
