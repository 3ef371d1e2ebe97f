"""A model with several outputs through the whole chain: the Runtime interface runs every
output, bench times such a file and compares every output, the export names each output
as the float model does in every format, and its table shows the worst output's parity.

The export is real: `edgeconv export two.keras --data images/ --int8` of a two-output Keras
model (boxes: 4 values, score: 1) on unlabelled images, as tests/test_gate_parity.py makes
it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeconv.errors import EdgeconvError

# End to end with TensorFlow conversions: out of the quick suite, run by CI (`-m own`).
pytestmark = pytest.mark.own

def edgeconv(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeconv", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def _bench(run: Path, target: str, **env) -> list[dict]:
    done = edgeconv("bench", run, "--target", target, "--runs", "5", "--warmup", "1",
                    "--min-time", "0", "--json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)["results"]


# --- the export: names and table ------------------------------------------------------------


def test_every_file_names_its_outputs_as_the_float_model_does(two_output_export):
    run, _ = two_output_export
    manifest = json.loads((run / "manifest.json").read_text())
    made = [a for a in manifest["artifacts"] if a["format"] != "keras"]
    assert {(a["format"], a["precision"]) for a in made} == {
        ("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")}
    for artifact in made:
        assert [p["output"] for p in artifact["output_parity"]] == ["boxes", "score"]
        # matched by the signature, not by the file's order: the values per output agree
        assert [p["values"] for p in artifact["output_parity"]] == [40 * 4, 40 * 1]
    tflite = next(a for a in made if a["format"] == "tflite")
    # the file itself keeps the converter's names, in its own order: what made this needed
    assert "boxes" not in [o["name"] for o in tflite["outputs"]]


def test_the_export_table_shows_the_reference_and_each_files_worst_output(two_output_export):
    run, done = two_output_export
    lines = done.stdout.splitlines()
    header = next(line for line in lines if "min cosine" in line)
    assert "min SNR dB" in header
    reference = next(line for line in lines if "two.keras" in line)
    assert reference.count("(reference)") == 2
    manifest = json.loads((run / "manifest.json").read_text())
    for artifact in manifest["artifacts"][1:]:
        line = next(line for line in lines if f" {artifact['path']} " in line)
        worst = min(p["snr_db"] for p in artifact["output_parity"])
        assert f"{worst:.1f}" in line


def test_a_nan_output_shows_as_nan_in_the_export_table():
    from edgeconv.commands.export import _parity_cells
    from edgeconv.manifest import Artifact
    from edgeconv.quant.output_parity import output_parity

    reference = [np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)]
    broken = [reference[0].copy(), np.full((4, 1), np.nan, np.float32)]
    artifact = Artifact(path="x.tflite", sha256="0" * 64, size_bytes=1, format="tflite",
                        precision="int8", output_parity=output_parity(reference, broken))
    assert _parity_cells(artifact) == ["NaN", "NaN"]
    equal = Artifact(path="y.tflite", sha256="0" * 64, size_bytes=1, format="tflite",
                     precision="fp32", output_parity=output_parity(reference, reference))
    assert _parity_cells(equal) == ["1.000000", "inf"]


# --- bench ----------------------------------------------------------------------------------


def test_bench_on_cpu_times_every_file_of_a_two_output_export(two_output_export, tmp_path):
    run, _ = two_output_export
    rows = _bench(run, "cpu")
    assert {Path(r["artifact"]).name for r in rows} == {
        "two.keras", "two_fp32.tflite", "two_int8.tflite", "two_fp32.onnx", "two_int8.onnx"}
    for row in rows:
        assert row["status"] == "ok", row["error"]
        assert row["latency_ms"]["p50"] > 0 and row["runs"] >= 5
        assert row["accuracy"] is None and row["agreement"] is None  # not a classifier


def test_bench_on_an_mcu_target_runs_the_int8_file_or_says_why(two_output_export):
    run, _ = two_output_export
    env = {k: v for k, v in os.environ.items() if k != "EDGECONV_TFLM_TREE"}
    done = subprocess.run([sys.executable, "-m", "edgeconv", "bench", str(run), "--target",
                           "stm32h7", "--runs", "5", "--warmup", "1", "--min-time", "0",
                           "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {Path(r["artifact"]).name: r for r in json.loads(done.stdout)["results"]}
    int8 = rows["two_int8.tflite"]
    assert int8["status"] == "ok", int8["error"]
    assert int8["arena_bytes"] > 0 and int8["timed_on"] == "host"
    assert any("2 outputs" in note for note in int8["notes"])
    for name, row in rows.items():
        assert row["status"] == "ok" or row["error"], name  # ok, or a reason


TREES = Path(__file__).resolve().parents[2] / "shared" / "third_party"


@pytest.mark.mcu
@pytest.mark.skipif(not TREES.is_dir() or not (shutil.which("arm-none-eabi-g++")
                                               and shutil.which("qemu-system-arm")),
                    reason="TFLM trees, Arm GNU toolchain or qemu-system-arm missing")
def test_the_firmware_compares_every_output_with_the_host_interpreter(two_output_export):
    run, _ = two_output_export
    [row] = _bench(run / "two_int8.tflite", "stm32h7", EDGECONV_TFLM_TREE=str(TREES))
    assert row["status"] == "ok" and row["timed_on"] == "emulated", row["error"]
    for parity in (row["parity"], row["reference_parity"]):
        # boxes (4) and score (1) per input: both outputs, not the first alone
        assert parity["outputs"] == 2 and parity["values"] == parity["inputs"] * 5


# --- the bench child's saved outputs and their parity --------------------------------------


def test_saved_outputs_hold_every_output_and_parity_compares_them_all(two_output_export, tmp_path):
    from edgeconv.bench.child import Job, measure
    from edgeconv.bench.parity import _load_outputs, board_parity
    from edgeconv.runtimes import get_runtime

    run, _ = two_output_export
    entry = get_runtime("litert")
    saved = tmp_path / "outputs.npz"
    answer = measure(Job(path=str(run / "two_int8.tflite"), format="tflite",
                         entry=Job.entry_of(entry), options={"threads": 1}, warmup=0, runs=1,
                         min_time=0.0, outputs=str(saved)))
    assert answer["status"] == "ok", answer.get("error")
    board = _load_outputs(saved, "the board's")
    assert len(board["outs"]) == 2 and board["out"] is board["outs"][0]
    assert sorted(o.shape[1] for o in board["outs"]) == [1, 4]
    same = board_parity(board["outs"], [o.copy() for o in board["outs"]])
    assert same["equal"] and same["outputs"] == 2 and "top1_equal" not in same
    assert same["values"] == sum(o.size for o in board["outs"])
    # one value of the second output off by 3 steps: counted, and its input is not equal
    other = [o.copy() for o in board["outs"]]
    other[1][5, 0] = other[1][5, 0] + 3 if other[1][5, 0] < 120 else other[1][5, 0] - 3
    differs = board_parity(board["outs"], other)
    assert not differs["equal"] and differs["differing"] == 1 and differs["max_abs_diff"] == 3
    assert differs["inputs_equal"] == differs["inputs"] - 1
    with pytest.raises(EdgeconvError, match="2 outputs on the board, 1 here"):
        board_parity(board["outs"], board["outs"][:1])


# --- matching a file's outputs to the float model's ------------------------------------------


def test_outputs_are_matched_by_signature_name_size_or_position():
    from edgeconv.export.verify import match_outputs

    boxes, score = np.zeros((3, 4)), np.zeros((3, 1))
    names = ["boxes", "score"]
    # a TFLite file: reordered, tensor names of the converter, signature output_K
    assert match_outputs([score, boxes], [boxes, score], "f", names, ["t:1", "t:0"],
                         ["output_1", "output_0"]) == ([1, 0], True)
    # the model's own names (ONNX), in any order
    assert match_outputs([score, boxes], [boxes, score], "f", names, ["score", "boxes"],
                         [None, None]) == ([1, 0], True)
    # no names: sizes tell them apart
    assert match_outputs([score, boxes], [boxes, score], "f", names, ["a", "b"],
                         [None, None]) == ([1, 0], True)
    # two outputs of one size and no names: by position, not named
    a, b = np.zeros((3, 2)), np.ones((3, 2))
    assert match_outputs([a, b], [a, b], "f", names, ["x", "y"], [None, None]) == ([0, 1],
                                                                                    False)
    # a name that points at an output of the wrong size is not trusted
    assert match_outputs([score, boxes], [boxes, score], "f", names, ["boxes", "score"],
                         [None, None]) == ([1, 0], True)
    with pytest.raises(EdgeconvError, match="has 1 outputs, the float model 2"):
        match_outputs([boxes], [boxes, score], "f", names, ["a"], [None])


# --- the Runtime interface ------------------------------------------------------------------


def test_a_runtime_implements_invoke_all_or_invoke():
    from edgeconv.runtimes.base import Runtime, TensorInfo

    class Doubled(Runtime):  # single-output: `_invoke` alone
        name = "doubled"

        def __init__(self, path):
            super().__init__(path)
            self.backend, self.version = "numpy", np.__version__
            self._inputs = [TensorInfo("x", (None, 2), "float32")]
            self._outputs = [TensorInfo("y", (None, 2), "float32")]

        def _invoke(self, x):
            return x * 2

    with Doubled(__file__) as runtime:
        x = np.arange(6, dtype=np.float32).reshape(3, 2)
        assert np.array_equal(runtime.run(x), x * 2)
        [only] = runtime.run_all(x)
        assert np.array_equal(only, x * 2)
    with pytest.raises(TypeError, match="neither _invoke_all nor _invoke"):
        type("Nothing", (Runtime,), {"name": "nothing"})
