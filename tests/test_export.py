"""Export: real conversions, each file checked here in its runtime (LiteRT, onnxruntime,
TFLite Micro) independently of the figures the exporter itself wrote into the manifest."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.errors import EdgeconvError

runner = CliRunner()


def edgeconv(*args, timeout=600):
    """The CLI in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "edgeconv", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def litert(path, reference=False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Reference kernels compute int8 exactly as TFLite Micro does; XNNPACK may round otherwise.
    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


def litert_run(interpreter, x):
    """Float in, float out, one image at a time, (de)quantising int8 io by the file's own
    scale and zero-point; resizes a free-size input to each image's size."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in x:
        batch = image[np.newaxis]
        if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
            interpreter.resize_tensor_input(inp["index"], batch.shape)
            interpreter.allocate_tensors()
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            batch = np.clip(np.round(batch / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], batch)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        results.append(y.reshape(-1))
    return np.stack(results)


def onnx_run(path, x):
    """onnxruntime as edgeconv runs it: int8 QDQ unfused on an x86 CPU without VNNI, whose
    fused kernels saturate (edgeconv.runtimes.onnxrt; test_onnx_int8_is_not_saturated)."""
    import onnxruntime as ort

    from edgeconv.runtimes.onnxrt import _fused_int8_saturates

    options = ort.SessionOptions()
    if _fused_int8_saturates():
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0].reshape(len(x), -1)


def prepared_data(manifest):
    from edgeconv.data import load

    prep = manifest["input"]["preprocessing"]
    return load(manifest["dataset"]["name"], input_shape=prep["input_shape"],
                seed=manifest["dataset"]["seed"])


def artifact(manifest, fmt, precision):
    return next(a for a in manifest["artifacts"]
                if a["format"] == fmt and a["precision"] == precision)


@pytest.fixture(scope="module")
def fcn(tmp_path_factory):
    """The issue's check: `edgeconv export fcn-mnist --int8 --out DIR` with no run yet."""
    out = tmp_path_factory.mktemp("export") / "fcn"
    proc = edgeconv("export", "fcn-mnist", "--int8", "--fp16", "--dynamic", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "training one with the default recipe" in " ".join(proc.stderr.split())
    return out, json.loads((out / "manifest.json").read_text()), proc


def test_manifest_describes_the_files_exactly(fcn):
    out, manifest, _ = fcn
    assert manifest["schema_version"] == 1
    assert manifest["model"]["name"] == "fcn-mnist"
    assert manifest["model"]["options"]["input_shape"] == [28, 28, 1]
    assert manifest["input"]["shape"] == [None, 28, 28, 1]
    assert manifest["labels"] == [str(i) for i in range(10)]
    assert manifest["dataset"]["name"] == "digits"
    assert {"tensorflow-cpu", "onnxruntime", "ai-edge-litert", "edgeconv"} <= set(
        manifest["versions"])
    made = {(a["format"], a["precision"]) for a in manifest["artifacts"]}
    assert made == {("keras", "fp32"), ("tflite", "fp32"), ("tflite", "fp16"),
                    ("tflite", "dynamic"), ("tflite", "int8"), ("onnx", "fp32"),
                    ("onnx", "int8")}
    for a in manifest["artifacts"]:
        data = (out / a["path"]).read_bytes()
        assert a["size_bytes"] == len(data)
        assert a["sha256"] == hashlib.sha256(data).hexdigest()
    # Nothing else in the directory but the run's own files.
    listed = {a["path"] for a in manifest["artifacts"]}
    assert {p.name for p in out.iterdir()} - listed == {"manifest.json", "last.keras",
                                                        "state.json", "train.json"}


def test_int8_tflite_quantisation_parameters_are_recorded(fcn):
    out, manifest, _ = fcn
    tflite = artifact(manifest, "tflite", "int8")
    interpreter = litert(out / tflite["path"])
    inp = interpreter.get_input_details()[0]
    assert inp["dtype"] == np.int8
    assert tflite["quantization"]["input"]["scale"] == pytest.approx(inp["quantization"][0])
    assert tflite["quantization"]["input"]["zero_point"] == inp["quantization"][1]
    assert tflite["quantization"]["output"]["dtype"] == "int8"
    assert tflite["options"]["per_channel"] is True
    assert tflite["options"]["calibration"]["split"] == "train"
    # Builtin int8 kernels only: no float op left in the graph, no custom / Flex op.
    ops = {d["op_name"] for d in interpreter._get_ops_details()}
    assert not {op for op in ops if "FLEX" in op or "CUSTOM" in op or op == "DEQUANTIZE"}
    onnx_q = artifact(manifest, "onnx", "int8")["quantization"]
    assert onnx_q["input"]["dtype"] == "int8" and onnx_q["input"]["scale"] > 0


def test_fp32_files_equal_keras_and_int8_keeps_accuracy(fcn):
    import keras

    out, manifest, _ = fcn
    data = prepared_data(manifest)
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    reference = model.predict(data.test.x, verbose=0)
    float_accuracy = np.mean(reference.argmax(1) == data.test.y)
    assert float_accuracy == pytest.approx(manifest["float_accuracy"])
    assert float_accuracy >= 0.95

    tflite32 = litert_run(litert(out / artifact(manifest, "tflite", "fp32")["path"]),
                          data.test.x)
    onnx32 = onnx_run(out / artifact(manifest, "onnx", "fp32")["path"], data.test.x)
    assert np.abs(tflite32 - reference).max() <= 1e-4
    assert np.abs(onnx32 - reference).max() <= 1e-4
    assert np.abs(tflite32 - onnx32).max() <= 1e-4

    runs = {"tflite": litert_run(litert(out / artifact(manifest, "tflite", "int8")["path"]),
                                 data.test.x),
            "onnx": onnx_run(out / artifact(manifest, "onnx", "int8")["path"], data.test.x)}
    for fmt, outputs in runs.items():
        accuracy = np.mean(outputs.argmax(1) == data.test.y)
        agreement = np.mean(outputs.argmax(1) == reference.argmax(1))
        assert accuracy >= float_accuracy - 0.01, fmt
        assert agreement >= 0.97, fmt
        # The manifest's figures are the ones measured here.
        assert artifact(manifest, fmt, "int8")["accuracy"] == pytest.approx(accuracy)
        assert artifact(manifest, fmt, "int8")["agreement"] == pytest.approx(agreement)


def test_int8_tflite_runs_in_tflite_micro_like_litert(fcn):
    from tflite_micro.python.tflite_micro import runtime

    out, manifest, _ = fcn
    tflite = artifact(manifest, "tflite", "int8")
    assert tflite["micro"]["ok"] is True and tflite["micro"]["arena_bytes"] > 0
    data = prepared_data(manifest)
    x = data.test.x[:20]
    interpreter = runtime.Interpreter.from_bytes((out / tflite["path"]).read_bytes(),
                                                 arena_size=4 << 20)
    scale, zero = (tflite["quantization"]["input"][k] for k in ("scale", "zero_point"))
    micro = []
    for image in x:
        interpreter.set_input(np.clip(np.round(image[np.newaxis] / scale + zero), -128, 127)
                              .astype(np.int8), 0)
        interpreter.invoke()
        micro.append(interpreter.get_output(0).reshape(-1))
    lite = litert(out / tflite["path"], reference=True)
    inp = lite.get_input_details()[0]
    raw = []
    for image in x:
        lite.set_tensor(inp["index"], np.clip(np.round(image[np.newaxis] / scale + zero),
                                              -128, 127).astype(np.int8))
        lite.invoke()
        raw.append(lite.get_tensor(lite.get_output_details()[0]["index"]).reshape(-1))
    # Same int8 kernels' arithmetic: the outputs differ by at most one quantisation step.
    assert np.abs(np.stack(micro).astype(int) - np.stack(raw).astype(int)).max() <= 1


def test_export_table_and_json(fcn):
    out, manifest, proc = fcn
    assert "fcn-mnist_int8.tflite" in proc.stdout and "manifest:" in proc.stdout
    # how many images, and for each converted file the paired drop with its interval
    assert "measured on 359 test images" in " ".join(proc.stdout.split())  # title may wrap
    (int8,) = [line for line in proc.stdout.splitlines() if "fcn-mnist_int8.tflite" in line]
    # accuracy "97.5 [96.9–98.0]" and the change "-0.28 [-0.9, +0.3]" (p with --wide)
    assert "–" in int8 and (" [+" in int8 or " [-" in int8)
    result = run("export", out, "--int8", "--json")  # re-export the finished run
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["trained_now"] is False and data["model"] == "fcn-mnist"
    # This export made no fp16 / dynamic files: the old ones are gone with the old manifest.
    assert not (out / "fcn-mnist_fp16.tflite").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert {a["precision"] for a in manifest["artifacts"]} == {"fp32", "int8"}


def test_a_changed_file_fails_its_sha256_check(fcn, tmp_path):
    import shutil

    from edgeconv.manifest import load_manifest

    out, _, _ = fcn
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    manifest = load_manifest(copy)
    target = manifest.find("tflite", "fp32")
    assert manifest.verified_path(target) == copy / target.path
    data = bytearray((copy / target.path).read_bytes())
    data[-1] ^= 0xFF
    (copy / target.path).write_bytes(bytes(data))
    with pytest.raises(EdgeconvError, match="sha256 .* does not match the manifest"):
        manifest.verified_path(target)
    (copy / target.path).unlink()
    with pytest.raises(EdgeconvError, match="missing"):
        manifest.verified_path(target)


def test_free_size_model_runs_at_two_sizes_in_both_runtimes(tmp_path):
    import keras

    out = tmp_path / "gap"
    result = run("export", "gap-mnist", "--untrained", "--int8", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["shape"] == [None, None, None, 1]
    assert manifest["model"]["trained"] is False
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    rng = np.random.default_rng(0)
    for size in (28, 40):
        x = rng.random((3, size, size, 1), dtype=np.float32)
        reference = model.predict(x, verbose=0)
        for precision in ("fp32", "int8"):
            lite = litert_run(litert(out / f"gap-mnist_{precision}.tflite"), x)
            onnx = onnx_run(out / f"gap-mnist_{precision}.onnx", x)
            assert lite.shape == onnx.shape == (3, 10)
            tolerance = 1e-4 if precision == "fp32" else 0.05
            assert np.abs(lite - reference).max() <= tolerance, (size, precision)
            assert np.abs(onnx - reference).max() <= tolerance, (size, precision)


def test_untrained_export_measures_a_test_subset_and_bench_uses_the_same(benched_fcn):
    manifest = json.loads((benched_fcn / "manifest.json").read_text())
    assert manifest["dataset"]["test_subset"] == {"samples": 32, "of": 359, "seed": 0}
    assert manifest["dataset"]["splits"]["test"]["count"] == 32
    by_path = {a["path"]: a for a in manifest["artifacts"]}
    rows = json.loads((benched_fcn / "results.json").read_text())["results"]
    int8 = next(r for r in rows if r["artifact"].endswith("fcn-mnist_int8.tflite"))
    # The same images in the same runtime: the same accuracy to the last image (1/32 apart
    # were bench to use the whole split or other images, it would almost surely differ).
    assert int8["accuracy"] == by_path["fcn-mnist_int8.tflite"]["accuracy"]
    assert int8["accuracy"] * 32 == round(int8["accuracy"] * 32)


@pytest.mark.parametrize("args, message", [
    (["export", "runs-that-do-not-exist/fcn"], "is not a finished training run"),
    (["export", "mobilenett"], "did you mean 'mobilenet'"),
    (["export", "fcn-mnist", "--formats", "tflite,pb"], "unknown format 'pb'"),
    (["export", "fcn-mnist", "--fp16", "--formats", "onnx"], "--fp16 and --dynamic are TFLite"),
    (["export", "fcn-mnist", "--float-io"], "apply to int8 and int16x8; add --int8"),
    (["export", "fcn-mnist", "--int16x8", "--max-drop", "1"], "--max-drop applies to int8"),
    (["export", "fcn-mnist", "--int8", "--allow-float"], "--allow-float lets --max-drop"),
    (["export", "fcn-mnist", "--int8", "--calibration-method", "kl"],
     "unknown calibration method 'kl'"),
    (["export", "fcn-mnist", "--int8", "--calibration-samples", "0"], "must be > 0"),
    (["export", "fcn-mnist", "--eval-samples", "0"], "--eval-samples must be > 0"),
])
def test_bad_requests_are_one_line_and_exit_2(args, message, tmp_path):
    result = run(*args, "--out", tmp_path / "out") if "runs-that" not in args[1] else run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_plan_and_its_messages_come_from_the_format_table():
    from edgeconv.export import ExportConfig
    from edgeconv.export.plan import plan
    from edgeconv.formats import EXPORT_FORMATS, FORMATS, PRECISIONS

    every = frozenset(PRECISIONS)
    made = plan(ExportConfig("fcn-mnist", precisions=every, formats=("onnx", "tflite")))
    assert made == [(f, p) for f in EXPORT_FORMATS for p in FORMATS[f].precisions]
    assert plan(ExportConfig("fcn-mnist")) == [(f, "fp32") for f in EXPORT_FORMATS]
    # One TFLite-only flag still names both: the fix is the same.
    with pytest.raises(EdgeconvError, match="^--fp16 and --dynamic are TFLite precisions;"
                                            " add tflite to --formats$"):
        plan(ExportConfig("fcn-mnist", precisions=frozenset({"dynamic"}), formats=("onnx",)))
    with pytest.raises(EdgeconvError, match="unknown precision 'int4'"):
        plan(ExportConfig("fcn-mnist", precisions=frozenset({"int4"})))


def test_per_layer_errors_dispatch_through_the_format_table():
    from edgeconv.quant.layers import layer_errors

    # keras is a float source format: the table names no per-layer report for it.
    with pytest.raises(EdgeconvError, match="no per-layer int8 report for keras files"):
        layer_errors("keras", None, b"")


def _finished_run(directory: Path, model_bytes: bytes) -> Path:
    directory.mkdir(parents=True)
    (directory / "model.keras").write_bytes(model_bytes)
    (directory / "train.json").write_text(json.dumps({
        "model": "fcn-mnist", "model_options": {"input_shape": [28, 28, 1], "classes": 10},
        "config": {"model": "fcn-mnist", "dataset": "digits", "seed": 0},
        "epochs_run": 1, "best_epoch": 1,
        "preprocessing": {"input_shape": [28, 28, 1], "source_shape": [8, 8, 1],
                          "resize": "bilinear", "channels": "none", "scale": 1 / 255,
                          "offset": 0.0, "input_dtype": "float32"}}))
    return directory


def test_corrupt_keras_file_is_refused_cleanly(tmp_path):
    run_dir = _finished_run(tmp_path / "run", b"PK\x03\x04 this is not a keras archive")
    result = run("export", run_dir)
    assert result.exit_code == 2
    assert "model.keras with Keras:" in result.output
    assert not (run_dir / "manifest.json").exists()


def test_foreign_keras_file_with_code_is_never_executed(tmp_path):
    import keras

    marker = str(tmp_path / "executed")  # a str: Keras serialises the lambda's closure
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)  # code inside the file
    outputs = keras.layers.Lambda(
        lambda x: (open(marker, "w").close(), x)[1])(outputs)
    source = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(source)
    os.unlink(marker)  # building the model ran the lambda once
    run_dir = _finished_run(tmp_path / "run", source.read_bytes())
    result = run("export", run_dir)
    assert result.exit_code == 2
    assert "with Keras: it contains Python code (a Lambda layer)" in result.output
    assert not os.path.exists(marker)
    assert not (run_dir / "manifest.json").exists()


def test_missing_calibration_data_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("export", "fcn-mnist", "--untrained", "--int8", "--data", "mnist",
                 "--data-dir", tmp_path / "empty", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "mnist" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_op_without_int8_kernels_fails_the_conversion_clearly():
    import keras

    from edgeconv.convert import to_tflite

    inputs = keras.Input((4,))
    outputs = keras.layers.Activation(keras.ops.erf)(inputs)
    model = keras.Model(inputs, outputs, name="erf")
    calibration = np.random.default_rng(0).random((8, 4), dtype=np.float32)
    with pytest.raises(EdgeconvError, match="TFLite int8 conversion of erf failed"):
        to_tflite(model, "int8", calibration)


def test_interrupted_export_leaves_nothing_the_manifest_vouches_for(fcn, tmp_path):
    import shutil

    from edgeconv.manifest import load_manifest

    source, _, _ = fcn
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "edgeconv", "export", str(run_dir),
                             "--int8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    # Wait until the old manifest is gone (the export has begun), then interrupt it.
    deadline = time.monotonic() + 120
    while (run_dir / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the export finished before the interrupt reached it")
    assert proc.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    assert not (run_dir / "manifest.json").exists()
    assert not [p for p in run_dir.iterdir() if ".partial-" in p.name]
    # Re-running completes cleanly.
    result = run("export", run_dir, "--int8")
    assert result.exit_code == 0, result.output
    manifest = load_manifest(run_dir)
    for a in manifest.artifacts:
        manifest.verified_path(a)


def test_max_drop_widens_the_worst_layers_until_the_budget_holds(tmp_path):
    out = tmp_path / "budget"
    # Random weights sit near every decision boundary: plain int8 loses ~2 points on the
    # whole test split (an untrained export measures 32 images unless told otherwise).
    result = run("export", "fcn-mnist", "--untrained", "--int8", "--max-drop", "0.5",
                 "--eval-samples", "359", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["budget_met"] is True
    manifest = json.loads((out / "manifest.json").read_text())
    for fmt in ("tflite", "onnx"):
        int8 = artifact(manifest, fmt, "int8")
        budget = int8["options"]["accuracy_budget"]
        # integer first: the blamed layers at int16x8, none float without --allow-float
        assert budget["met"] is True and budget["int16x8_layers"], fmt
        assert budget["kept_float"] == [], fmt
        assert budget["plain_int8"]["accuracy"] < manifest["float_accuracy"] - 0.005, fmt
        assert int8["accuracy"] >= manifest["float_accuracy"] - 0.005, fmt
        # The file on disk is the one measured: its own runtime agrees with the manifest.
        x = prepared_data(manifest).test.x
        outputs = (litert_run(litert(out / int8["path"]), x) if fmt == "tflite"
                   else onnx_run(out / int8["path"], x))
        labels = prepared_data(manifest).test.y
        assert len(labels) == 359 and "test_subset" not in manifest["dataset"]
        assert np.mean(outputs.argmax(1) == labels) == pytest.approx(int8["accuracy"])
    assert "layer(s) at int16x8 to meet --max-drop 0.5" in " ".join(data["notes"])


def test_quant_report_ranks_layers_by_error(fcn):
    out, _, _ = fcn
    result = run("quant-report", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == "fcn-mnist" and report["calibration_samples"] == 200
    by_format = {a["format"]: a for a in report["artifacts"]}
    assert set(by_format) == {"tflite", "onnx"}
    for fmt, errors in by_format.items():
        layers = errors["layers"]
        assert len(layers) >= 4, fmt
        sqnr = [row["sqnr_db"] for row in layers]
        assert sqnr == sorted(sqnr), fmt  # worst first
        convs = [row for row in layers if row["op"] in ("CONV_2D", "Conv")]
        # A trained 8-bit conv layer: tens of dB, errors of about one rounding step.
        for row in convs:
            assert 15 < row["sqnr_db"] < 100, (fmt, row)
            assert 0.05 < row["rmse_per_scale"] < 1.0, (fmt, row)
    table = run("quant-report", out / "fcn-mnist_int8.onnx", "--top", "2")
    assert table.exit_code == 0 and "accumulated SQNR dB" in table.stdout
    bad = run("quant-report", out / "fcn-mnist_fp32.onnx")
    assert bad.exit_code == 2 and "is not an int8 file" in bad.output
