"""TFLite Micro loads edgeconv's int8 TFLite files (issue 14, item 7).

Near-constant logits (what untrained MobileNets give: their activations shrink ~10x per
depthwise block) get the converter's smallest range, 2e-6, i.e. a softmax input scale of
7.8e-9; TFLite Micro's int8 softmax needs beta * scale > 2^-26 (1.49e-8) and otherwise
calls abort() while preparing the op. The export raises that scale (losslessly) and
TFLite Micro names the reason for a file that still has it.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

from edgeconv.convert.tflite import (
    TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA,
    raise_softmax_input_scales,
    softmax_inputs_below_tflm_floor,
    tflite_converter,
    to_tflite,
)
from edgeconv.runtimes.micro import probe

pytest.importorskip("tflite_micro")


def _model(head: str, logit_gain: float):
    """A small image classifier whose logits are `logit_gain` times an ordinary layer's.

    head "dense": pooled features -> Dense -> softmax (MobileNet v2's FULLY_CONNECTED ->
    SOFTMAX); "conv": a 1x1 Conv2D -> Reshape -> softmax (MobileNet v1's CONV_2D -> RESHAPE
    -> SOFTMAX, where the raised scale must reach the convolution's output too).
    """
    from edgeconv._lazy import keras

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((12, 12, 3))
    x = k.layers.Conv2D(8, 3, activation="relu")(inputs)
    if head == "dense":
        x = k.layers.GlobalAveragePooling2D()(x)
        logits = k.layers.Dense(10, name="logits")
    else:
        x = k.layers.GlobalAveragePooling2D(keepdims=True)(x)
        logits = k.layers.Conv2D(10, 1, name="logits")
    x = logits(x)
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * logit_gain, bias])
    if head == "conv":
        x = k.layers.Reshape((10,))(x)
    outputs = k.layers.Activation("softmax")(x)
    return k.Model(inputs, outputs, name=f"{head}_head")


def _calibration() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (16, 12, 12, 3)).astype(np.float32)


def _converter_alone(model) -> bytes:
    """The file TensorFlow's converter makes, before edgeconv's softmax check."""
    return tflite_converter(model, "int8", _calibration(), float_io=False,
                            per_channel=True).convert()


def _tf_schema():
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


@pytest.fixture(scope="module", params=["dense", "conv"])
def near_constant(request, tmp_path_factory):
    """(head, converter's file, edgeconv's file) for a model with ~1e-9 logits."""
    model = _model(request.param, logit_gain=1e-9)
    folder = tmp_path_factory.mktemp(request.param)
    raw, ours = folder / "converter.tflite", folder / "edgeconv.tflite"
    raw.write_bytes(_converter_alone(model))
    ours.write_bytes(to_tflite(model, "int8", _calibration()))
    return request.param, raw, ours


def test_the_converter_gives_near_constant_logits_a_scale_tflm_rejects(near_constant):
    _, raw, _ = near_constant
    (below,) = softmax_inputs_below_tflm_floor(raw.read_bytes(), _tf_schema())
    assert below.op_name == "SOFTMAX" and below.beta == 1.0
    # kNearZeroTolerance: a calibrated range under 1e-6 becomes 2e-6 over 255 steps
    assert below.scale == pytest.approx(2e-6 / 255, rel=1e-3)
    assert below.scale < below.min_scale == TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA


def test_tflite_micro_itself_aborts_on_that_file(near_constant):
    """The cause, shown on the interpreter with no edgeconv in between: SIGABRT at load.
    Should a TFLite Micro release stop aborting, this fails: the scale raise may then go."""
    _, raw, _ = near_constant
    child = subprocess.run(
        [sys.executable, "-c",
         "import sys; from tflite_micro.python.tflite_micro import runtime;"
         "runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read())", str(raw)],
        capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGABRT, child.stderr.decode()[-500:]


def test_tflite_micro_names_the_reason_instead_of_dying(near_constant):
    _, raw, _ = near_constant
    result = probe(raw)
    assert not result.ok
    assert "SOFTMAX kernel aborts on it" in result.error and "2^-26" in result.error
    assert "SIGABRT" not in result.error and "\n" not in result.error


def test_the_export_loads_in_tflite_micro_with_the_same_outputs(near_constant):
    _, raw, ours = near_constant
    assert softmax_inputs_below_tflm_floor(ours.read_bytes(), _tf_schema()) == []
    result = probe(ours)
    assert result.ok, result.error
    assert result.arena_bytes > 0
    # Lossless: TFLite Micro on edgeconv's file gives LiteRT's int8 outputs on the
    # converter's own file, and LiteRT gives the same on both files.
    from edgeconv.runtimes import open_runtime

    x = np.random.default_rng(2).integers(-128, 128, (4, 12, 12, 3)).astype(np.int8)
    with open_runtime(raw, "litert") as before, open_runtime(ours, "litert") as after, \
            open_runtime(ours, "tflite-micro") as micro:
        expected = before.run_raw(x)
        np.testing.assert_array_equal(after.run_raw(x), expected)
        np.testing.assert_array_equal(micro.run_raw(x), expected)


def test_the_raise_changes_only_the_softmax_input_chain(near_constant):
    head, raw, ours = near_constant
    schema = _tf_schema()
    before, after = (schema.Model.GetRootAsModel(p.read_bytes(), 0).Subgraphs(0)
                     for p in (raw, ours))
    changed = {t: (before.Tensors(t).Name().decode(), after.Tensors(t).Quantization().Scale(0))
               for t in range(before.TensorsLength())
               if before.Tensors(t).Quantization() is not None
               and before.Tensors(t).Quantization().ScaleLength() > 0
               and not np.array_equal(before.Tensors(t).Quantization().ScaleAsNumpy(),
                                      after.Tensors(t).Quantization().ScaleAsNumpy())}
    # dense head: the FULLY_CONNECTED output; conv head: the CONV_2D output and the RESHAPE's
    assert len(changed) == {"dense": 1, "conv": 2}[head], changed
    assert all("logits" in name or "reshape" in name.lower() for name, _ in changed.values())
    # just above the floor: 2^-26 is a float32, the next one up is the smallest accepted
    floor = np.float32(TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA)
    assert {scale for _, scale in changed.values()} == {
        float(np.nextafter(floor, np.float32(np.inf)))}
    assert len(raw.read_bytes()) == len(ours.read_bytes())


def test_ordinary_logits_are_left_alone():
    content = _converter_alone(_model("conv", logit_gain=1.0))
    assert softmax_inputs_below_tflm_floor(content, _tf_schema()) == []
    assert raise_softmax_input_scales(content) is content
