"""Runtimes: real engines on real files, third-party and converted here, no mocks."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.runtimes import RUNTIMES, open_runtime, runtime_versions
from edgeconv.runtimes.base import quantize
from edgeconv.runtimes.micro import probe

MODELS = Path(__file__).parents[1] / ".." / "shared" / "models"
shared = pytest.mark.skipif(not MODELS.is_dir(), reason=f"no third-party models at {MODELS}")
RESNET_INT8 = MODELS / "mlcommons-tiny" / "pretrainedResnet_quant.tflite"
RESNET_FP32 = MODELS / "mlcommons-tiny" / "pretrainedResnet.tflite"


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message.strip() == message
    return message


@pytest.fixture(scope="module")
def cifar_images():
    # Blocky random images in the 0..255 pixel range the ResNet was trained on.
    blocks = np.random.default_rng(0).uniform(0, 255, (8, 4, 4, 3))
    return np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2).astype(np.float32)


# --- third-party files ------------------------------------------------------------------------

@shared
def test_int8_file_reports_its_quantisation():
    with open_runtime(RESNET_INT8) as litert, open_runtime(RESNET_INT8, "tflite-micro") as micro:
        assert litert.backend == "ai_edge_litert" and litert.version
        (source,), (target,) = litert.inputs(), litert.outputs()
        assert (source.shape, source.dtype, source.scale, source.zero_point) == (
            (None, 32, 32, 3), "int8", 1.0, -128)
        assert (target.shape, target.dtype, target.scale, target.zero_point) == (
            (None, 10), "int8", 1 / 256, -128)
        # TFLM has no dynamic dimensions; the quantisation is the file's, the same.
        (micro_source,) = micro.inputs()
        assert micro_source.shape == (1, 32, 32, 3)
        assert (micro_source.name, micro_source.scale, micro_source.zero_point) == (
            source.name, source.scale, source.zero_point)


@shared
def test_run_quantises_with_the_files_scale_rounding_and_clipping():
    x = np.random.default_rng(1).uniform(-60, 300, (2, 32, 32, 3)).astype(np.float32)
    expected_input = np.clip(np.round(x) - 128, -128, 127).astype(np.int8)
    with open_runtime(RESNET_INT8) as litert:
        raw = litert.run_raw(expected_input)
        assert np.array_equal(litert.run(x), (raw.astype(np.float32) + 128) / 256)
        with pytest.raises(EdgeconvError, match="takes int8 input, got float32; run"):
            litert.run_raw(x)


@shared
def test_int8_and_float_resnet_agree_in_litert_and_tflite_micro(cifar_images):
    outputs = {}
    for path in (RESNET_FP32, RESNET_INT8):
        for runtime in ("litert", "tflite-micro"):
            with open_runtime(path, runtime) as engine:
                outputs[path.name, runtime] = engine.run(cifar_images)
    fp32, int8 = outputs[RESNET_FP32.name, "litert"], outputs[RESNET_INT8.name, "litert"]
    assert fp32.shape == int8.shape == (8, 10)
    # The same float model in two interpreters: the same numbers up to float rounding.
    np.testing.assert_allclose(outputs[RESNET_FP32.name, "tflite-micro"], fp32, atol=1e-4)
    # Quantisation moves the softmax a little, and rarely the top-1.
    assert np.abs(int8 - fp32).mean() < 0.05
    assert np.mean(int8.argmax(1) == fp32.argmax(1)) >= 0.75
    assert np.mean(outputs[RESNET_INT8.name, "tflite-micro"].argmax(1) == int8.argmax(1)) >= 0.75


@shared
def test_litert_reference_kernels_nearly_match_tflite_micro(cifar_images):
    with open_runtime(RESNET_INT8, reference=True) as litert, \
            open_runtime(RESNET_INT8, "tflite-micro") as micro:
        x = quantize(cifar_images, micro.inputs()[0])
        ours, board = litert.run_raw(x).astype(int), micro.run_raw(x).astype(int)
    # Same integer arithmetic in every layer but the last FULLY_CONNECTED, whose odd one-step
    # rounding difference the softmax magnifies (observed: 1 value of 80 off, by 7 of 256).
    assert np.mean(ours == board) > 0.9 and np.abs(ours - board).max() <= 10


@shared
def test_tflite_micro_arena_in_process_and_in_a_probe():
    with open_runtime(RESNET_INT8, "tflite-micro") as micro:
        in_process = micro.arena_used_bytes()
    # The README measured 55,984 B; other TFLM versions plan the arena slightly differently.
    assert 40_000 < in_process < 80_000
    result = probe(RESNET_INT8)
    assert result.ok and result.arena_bytes == in_process and result.error is None
    too_small = probe(RESNET_INT8, arena_size=10_000)
    assert not too_small.ok and "Failed to resize buffer" in too_small.error


@shared
def test_person_detect_is_refused_by_litert_but_runs_in_tflite_micro():
    path = MODELS / "tflite-micro" / "person_detect.tflite"
    with pytest.raises(EdgeconvError) as excinfo:
        open_runtime(path)
    assert "cannot load" in one_line_error(excinfo) and "quantized_dimension" in str(excinfo.value)
    result = probe(path)
    assert result.ok and 60_000 < result.arena_bytes < 136 * 1024


@shared
def test_a_file_that_crashes_tflite_micro_is_reported_not_fatal():
    path = MODELS / "invalid" / "model_invoking_error.tflite"
    with pytest.raises(EdgeconvError) as excinfo:
        open_runtime(path)
    assert "fake-op-double" in one_line_error(excinfo)
    result = probe(path)  # segfaults the child; this process carries on
    assert not result.ok and result.arena_bytes is None
    assert result.error.startswith("TFLite Micro crashed (signal 11 SIGSEGV)")


@shared
def test_tflite_micro_reasons_and_time_limit_reach_the_caller():
    vela = probe(MODELS / "invalid" / "person_detect_vela.tflite")
    assert not vela.ok and "Failed to get registration from op code CUSTOM" in vela.error
    assert "\n" not in vela.error
    slow = probe(RESNET_INT8, timeout=0.01)
    assert not slow.ok and slow.error == "TFLite Micro timed out after 0.01 s"


@shared
def test_mnist_onnx_runs_in_onnxruntime_one_sample_at_a_time():
    with open_runtime(MODELS / "onnx" / "mnist.onnx") as ort:
        assert ort.providers == ["CPUExecutionProvider"]
        (source,) = ort.inputs()
        assert (source.shape, source.dtype, source.scale) == ((1, 1, 28, 28), "float32", None)
        x = np.random.default_rng(2).uniform(0, 1, (3, 1, 28, 28)).astype(np.float32)
        batch = ort.run(x)
        assert batch.shape == (3, 10)
        np.testing.assert_array_equal(batch[1:2], ort.run(x[1:2]))
        with pytest.raises(EdgeconvError) as excinfo:
            ort.run(x.transpose(0, 2, 3, 1))
        assert one_line_error(excinfo) == ("mnist.onnx takes input of shape (N, 1, 28, 28), "
                                           "got (3, 28, 28, 1)")


@shared
def test_onnxruntime_providers_are_checked():
    path = MODELS / "onnx" / "mnist.onnx"
    with pytest.raises(EdgeconvError, match="did you mean 'cuda'"):
        open_runtime(path, providers="cdua")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(EdgeconvError, match=r"no CUDAExecutionProvider.*edgeconv\[gpu\]"):
            open_runtime(path, providers="cuda")


@shared
def test_litert_falls_back_to_tensorflow_and_a_missing_engine_names_its_extra():
    # A fresh interpreter where the engines cannot be imported (None in sys.modules).
    code = f"""
import sys
import numpy as np
sys.modules.update(ai_edge_litert=None, tflite_runtime=None, tensorflow=None,
                   onnxruntime=None, tflite_micro=None)
from edgeconv.errors import EdgeconvError
from edgeconv.runtimes import open_runtime
for path, runtime in (({str(RESNET_INT8)!r}, None), ({str(MODELS / "onnx" / "mnist.onnx")!r},
                      None), ({str(RESNET_INT8)!r}, "tflite-micro")):
    try:
        open_runtime(path, runtime)
    except EdgeconvError as exc:
        print(exc)
del sys.modules["tensorflow"]
with open_runtime({str(RESNET_INT8)!r}) as litert:
    print(litert.backend, litert.run(np.zeros((2, 32, 32, 3), np.float32)).shape)
"""
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, check=True)
    litert, onnx, micro, fallback = proc.stdout.splitlines()
    assert litert.endswith("install it with: pip install 'edgeconv[litert]'")
    assert onnx.endswith("install it with: pip install 'edgeconv[onnx]'")
    assert micro.endswith("install it with: pip install 'edgeconv[micro]'")
    assert fallback == "tensorflow.lite (2, 10)"


# --- models converted here --------------------------------------------------------------------

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Tiny conv nets saved as .keras and converted to fp32 .tflite for real."""
    from edgeconv._lazy import keras

    k = keras()
    import tensorflow as tf

    k.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("converted")

    def save(name, inputs, head):
        x = k.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        model = k.Model(inputs, head(x))
        model.save(out / f"{name}.keras")
        tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        (out / f"{name}.tflite").write_bytes(tflite)
        return out / name

    dense = lambda x: k.layers.Dense(3)(k.layers.Flatten()(x))
    pooled = lambda x: k.layers.Dense(3)(k.layers.GlobalAveragePooling2D()(x))
    return {
        "dynamic_batch": save("dynamic_batch", k.Input((16, 16, 1)), dense),
        "batch_of_one": save("batch_of_one", k.Input((16, 16, 1), batch_size=1), dense),
        "any_size": save("any_size", k.Input((None, None, 1)), pooled),
    }


def images(n, size, seed=3):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 1)).astype(np.float32)


def test_dynamic_batch_runs_at_once_and_matches_keras(converted):
    x = images(5, 16)
    with open_runtime(converted["dynamic_batch"].with_suffix(".tflite")) as litert, \
            open_runtime(converted["dynamic_batch"].with_suffix(".keras")) as reference:
        assert litert.inputs()[0].shape == reference.inputs()[0].shape == (None, 16, 16, 1)
        assert litert.inputs()[0].scale is None
        out = litert.run(x)
        assert litert._interpreter.get_input_details()[0]["shape"].tolist() == [5, 16, 16, 1]
        assert out.shape == (5, 3) and out.dtype == np.float32
        np.testing.assert_allclose(out, reference.run(x), atol=1e-4)


def test_batch_fixed_at_one_loops_and_rejects_a_wrong_shape(converted):
    path = converted["batch_of_one"].with_suffix(".tflite")
    x = images(3, 16)
    with open_runtime(path) as litert, open_runtime(path, "tflite-micro") as micro:
        assert litert.inputs()[0].shape == (1, 16, 16, 1)
        out = litert.run(x)
        assert out.shape == (3, 3)
        np.testing.assert_allclose(micro.run(x), out, atol=1e-5)
        with pytest.raises(EdgeconvError) as excinfo:
            litert.run(images(1, 20))
        assert one_line_error(excinfo) == ("batch_of_one.tflite takes input of shape "
                                           "(N, 16, 16, 1), got (1, 20, 20, 1)")
        with pytest.raises(EdgeconvError, match=r"got \(16, 16, 1\)"):
            micro.run(x[0])


def test_dynamic_height_and_width_resize_in_litert(converted):
    with open_runtime(converted["any_size"].with_suffix(".tflite")) as litert, \
            open_runtime(converted["any_size"].with_suffix(".keras")) as reference:
        assert litert.inputs()[0].shape == (None, None, None, 1)
        for size in (28, 40, 28):
            x = images(2, size, seed=size)
            np.testing.assert_allclose(litert.run(x), reference.run(x), atol=1e-4)


def test_xnnpack_and_threads_do_not_change_float_outputs(converted):
    path = converted["dynamic_batch"].with_suffix(".tflite")
    x = images(4, 16)
    outputs = []
    for options in ({}, {"xnnpack": False}, {"threads": 1}, {"threads": 2, "xnnpack": False},
                    {"reference": True}):
        with open_runtime(path, **options) as litert:
            outputs.append(litert.run(x))
    for out in outputs[1:]:
        np.testing.assert_allclose(out, outputs[0], atol=1e-5)
    with pytest.raises(EdgeconvError, match="threads must be >= 1"):
        open_runtime(path, threads=0)


def test_keras_runtime_refuses_a_lambda_without_running_it(tmp_path):
    from edgeconv._lazy import keras

    k = keras()
    marker = tmp_path / "lambda-ran"
    path = str(marker)  # a closure Keras can store with the lambda's code
    inputs = k.Input((4,))
    # Building the model traces the lambda once, which proves it writes the marker when run.
    touch = k.layers.Lambda(lambda x: (open(path, "w").close(), x)[1])
    k.Model(inputs, touch(inputs)).save(tmp_path / "lambda.keras")
    assert marker.exists()
    marker.unlink()
    with pytest.raises(EdgeconvError) as excinfo:
        open_runtime(tmp_path / "lambda.keras")
    assert "Lambda layer" in one_line_error(excinfo) and "safe mode" in str(excinfo.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["x.tflite", "x.onnx", "x.keras"])
def test_garbage_files_are_refused_in_one_line(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not a model" * 10)
    with pytest.raises(EdgeconvError) as excinfo:
        open_runtime(path)
    assert one_line_error(excinfo).startswith(f"cannot load {path} with ")
    if name.endswith(".tflite"):
        with pytest.raises(EdgeconvError, match="not a TFLite flatbuffer"):
            open_runtime(path, "tflite-micro")


def test_open_runtime_names_what_it_cannot_open(tmp_path):
    with pytest.raises(EdgeconvError, match="does not exist"):
        open_runtime(tmp_path / "missing.tflite")
    with pytest.raises(EdgeconvError, match=r"no runtime for '\.pt' files"):
        open_runtime(tmp_path / "model.pt")
    with pytest.raises(EdgeconvError, match="did you mean 'litert'"):
        open_runtime(tmp_path / "model.tflite", runtime="litrt")
    assert RUNTIMES == ("litert", "onnxruntime", "keras", "tflite-micro")


def test_importing_runtimes_loads_no_engine():
    code = ("import sys, edgeconv.runtimes as r; versions = r.runtime_versions(); "
            "print(sorted(versions)); "
            "print([m for m in ('tensorflow', 'onnxruntime', 'ai_edge_litert', 'keras', "
            "'tflite_micro') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    listed, imported = proc.stdout.splitlines()
    assert imported == "[]"
    assert "'ai-edge-litert'" in listed and "'onnxruntime'" in listed
    assert runtime_versions()["tflite-micro"]


def test_onnx_int8_is_not_saturated(conversion_session, tmp_path):
    """An int8 QDQ file runs in onnxruntime with its own arithmetic: on an x86 CPU without
    VNNI the fused u8s8 kernels saturate (35% of the output scale off, measured on an AVX2
    EPYC), so edgeconv runs the graph unfused there and says so; elsewhere fused."""
    from edgeconv.runtimes.onnxrt import UNFUSED_QDQ_NOTE, _fused_int8_saturates

    model, session = conversion_session  # test_contracts' small CNN and its session
    for precision in ("fp32", "int8"):
        path = tmp_path / f"m_{precision}.onnx"
        path.write_bytes(session.make("onnx", precision).content)
        test = np.random.default_rng(1).random((16, 16, 16, 1), dtype=np.float32)
        reference = model.predict(test, verbose=0)
        with open_runtime(path) as runtime:
            error = np.abs(runtime.run(test).reshape(reference.shape) - reference).max()
            unfused = precision == "int8" and _fused_int8_saturates()
            assert runtime.run_note == (UNFUSED_QDQ_NOTE if unfused else None)
        assert error / np.abs(reference).max() <= 0.02, precision
