"""TFLite calibration methods beyond min/max: `--calibration-method mse|octav` makes the
file with ai-edge-quantizer's MSE or OCTAV weight ranges (edgeconv.convert.tflite_mixed),
the manifest records the method that made it, and a method a chosen format lacks is refused
with one line (edgeconv.export.plan)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.export.config import ExportConfig
from edgeconv.export.plan import plan


def _quantised_tensors(content: bytes) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(weights, activations): each int8/int16 tensor's scales, by name; a weight is a tensor
    with data in the file."""
    from edgeconv._lazy import require

    schema = require("tensorflow.lite.python.schema_py_generated", extra="train")
    root = schema.Model.GetRootAsModel(content, 0)
    graph = root.Subgraphs(0)
    weights, activations = {}, {}
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        quant = tensor.Quantization()
        if tensor.Type() not in (schema.TensorType.INT8, schema.TensorType.INT16) \
                or quant is None or not quant.ScaleLength():
            continue
        constant = root.Buffers(tensor.Buffer()).DataLength() > 0
        (weights if constant else activations)[tensor.Name().decode()] = \
            quant.ScaleAsNumpy().copy()
    return weights, activations


@pytest.fixture(scope="module")
def made(conversion_session):
    pytest.importorskip("ai_edge_quantizer")
    from edgeconv.convert.tflite_mixed import to_tflite_mixed
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.settings import Int8Settings

    model, session = conversion_session
    files = {}
    for method in ("minmax", "mse", "octav"):
        own = ConversionSession(model, session.calibration_set, Int8Settings(method=method))
        files[method] = own.make("tflite", "int8")
    # the same quantiser at min/max: what mse and octav change, held apart from the
    # quantiser's own differences with TensorFlow's converter
    fp32 = session.make("tflite", "fp32").content
    files["quantizer minmax"] = to_tflite_mixed(fp32, session.calibration, ())
    return files


def test_each_method_is_recorded_as_the_one_that_made_the_file(made):
    assert {m: made[m].options["calibration"]["method"] for m in ("minmax", "mse", "octav")} \
        == {"minmax": "minmax", "mse": "mse", "octav": "octav"}
    assert "quantizer" not in made["minmax"].options  # TensorFlow's converter
    assert made["mse"].options["quantizer"] == made["octav"].options["quantizer"] \
        == "ai-edge-quantizer"
    assert len({made["minmax"].content, made["mse"].content, made["octav"].content}) == 3


def test_mse_changes_the_weight_ranges_only(made):
    base_weights, base_activations = _quantised_tensors(made["quantizer minmax"])
    weights, activations = _quantised_tensors(made["mse"].content)
    assert base_weights and set(weights) == set(base_weights)
    # activations: min/max over the same calibration images, whatever the method
    assert all(np.array_equal(activations[n], base_activations[n]) for n in base_activations)
    assert all(not np.allclose(weights[n], base_weights[n]) for n in base_weights)


def test_octav_clips_weights_and_never_widens_them(made):
    base_weights, base_activations = _quantised_tensors(made["quantizer minmax"])
    weights, activations = _quantised_tensors(made["octav"].content)
    assert all(np.array_equal(activations[n], base_activations[n]) for n in base_activations)
    assert all((weights[n] <= base_weights[n] * (1 + 1e-6)).all() for n in base_weights)


def test_int16x8_with_mse_keeps_16_bit_activations(conversion_session):
    pytest.importorskip("ai_edge_quantizer")
    from edgeconv.convert.tflite_mixed import _tensor_types
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.settings import Int8Settings

    model, session = conversion_session
    made = ConversionSession(model, session.calibration_set, Int8Settings(method="mse")).make(
        "tflite", "int16x8")
    assert made.options["calibration"]["method"] == "mse"
    assert "INT16" in set(_tensor_types(made.content).values())


def test_the_layer_report_reads_the_file_not_a_min_max_remake(conversion_session, made):
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.settings import Int8Settings
    from edgeconv.quant.tflite_debug import FILE_METHOD, METHOD, layer_errors

    model, session = conversion_session
    own = ConversionSession(model, session.calibration_set, Int8Settings(method="mse"))
    assert layer_errors(own, made["mse"].content).method == FILE_METHOD
    assert layer_errors(session, made["minmax"].content).method == METHOD


@pytest.mark.parametrize(("target", "formats", "method", "extra", "message"), [
    ("fcn-mnist", ("tflite", "onnx"), "entropy", {},
     ("--calibration-method entropy: TFLite calibrates with minmax, mse, octav; give --formats"
     " onnx for entropy")),
    ("fcn-mnist", ("onnx",), "mse", {},
     ("--calibration-method mse: ONNX calibrates with minmax, entropy, percentile; give"
     " --formats tflite for mse")),
    ("fcn-mnist", ("tflite",), "octav", {"float_io": True},
     "--calibration-method octav makes TFLite files with int8 input and output"),
    ("fcn-mnist", ("tflite",), "kl", {}, ("unknown calibration method 'kl'; use one of minmax,"
     " mse, octav, entropy, percentile")),
])
def test_a_method_a_chosen_format_lacks_is_refused(target, formats, method, extra, message):
    config = ExportConfig(target, precisions=frozenset({"int8"}), formats=formats,
                          calibration_method=method, **extra)
    with pytest.raises(EdgeconvError) as caught:
        plan(config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("target", "formats", "method"), [
    ("fcn-mnist", ("tflite",), "mse"),
    ("fcn-mnist", ("onnx",), "entropy"),
    ("mnist.onnx", ("tflite", "onnx"), "entropy"),  # an ONNX file becomes ONNX only
    ("fcn-mnist", ("tflite", "onnx"), "percentile"),  # no calibrated file asked: nothing to refuse
])
def test_a_method_every_calibrating_format_has_is_planned(target, formats, method):
    precisions = frozenset() if method == "percentile" else frozenset({"int8"})
    assert plan(ExportConfig(target, precisions=precisions, formats=formats,
                             calibration_method=method))


@pytest.mark.parametrize("method", ["mse", "octav"])
def test_a_pruned_channel_given_a_zero_scale_is_refused(method):
    # ai-edge-quantizer 0.10.0's MSE and OCTAV give an all-zero weight channel scale 0: its
    # bias is lost and its output reads the zero point. Refused, never written.
    pytest.importorskip("ai_edge_quantizer")
    from edgeconv._lazy import keras
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.calibration import CalibrationSet
    from edgeconv.quant.settings import Int8Settings

    k = keras()
    inputs = k.Input((8,))
    dense = k.layers.Dense(4, name="pruned")
    model = k.Model(inputs, dense(inputs))
    kernel = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    kernel[:, 3] = 0.0  # a pruned channel, with a bias of its own
    dense.set_weights([kernel, np.full(4, 2.0, np.float32)])
    images = np.random.default_rng(1).random((16, 8), dtype=np.float32)
    session = ConversionSession(model, CalibrationSet(images, np.zeros(16, np.int64), seed=0),
                                Int8Settings(method=method))
    with pytest.raises(EdgeconvError, match="zero or non-finite scale \\(1 of 4 channels of "):
        session.make("tflite", "int8")
    assert session.make("tflite", "fp32").content  # the float file is still made
