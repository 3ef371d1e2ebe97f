"""Keras -> ONNX fp32 (tf2onnx), and ONNX fp32 -> int8, int16x8 or mixed QDQ
(onnxruntime.quantization),
with the graph readers export and the per-layer report (edgeconv.quant.onnx_debug) share.

The ONNX graph keeps the Keras NHWC layout and a free batch dimension named "batch"; height
and width are free ("height", "width") when the Keras model leaves them free.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeconv._capture import captured_output
from edgeconv._lazy import require
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.formats import FORMATS

# ONNX opset 17 (ai.onnx), supported by tf2onnx >= 1.14 and every onnxruntime since 1.13;
# recorded in the manifest.
OPSET = 17
INPUT_NAME = "input"
CALIBRATION_METHODS = FORMATS["onnx"].calibration_methods  # minmax, entropy, percentile
# Each quantised precision's activation type (onnxruntime.quantization.QuantType); weights
# are QInt8 in both.
ACTIVATION_TYPES = {"int8": "QInt8", "int16x8": "QInt16"}


def to_onnx(model, opset: int = OPSET) -> bytes:
    """Convert a Keras model to an fp32 ONNX model (serialised bytes)."""
    tf = require("tensorflow", extra="train")
    tf2onnx = require("tf2onnx", extra="train")
    signature = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=INPUT_NAME),)
    failure = None
    with captured_output() as output:
        try:
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature,
                                                  opset=opset)
        except Exception as exc:  # noqa: BLE001 - tf2onnx raises many types
            failure = exc
    if failure is not None:
        reason = output.reason() or one_line(failure)
        raise EdgeconvError(f"ONNX conversion of {model.name} failed: {reason}")
    _name_free_dims(proto)
    return proto.SerializeToString()


def quantize_onnx(fp32: bytes, calibration: np.ndarray, *, method: str = "minmax",
                  per_channel: bool = True, keep_float: Sequence[str] = (),
                  input_name: str = INPUT_NAME, precision: str = "int8",
                  wide: Sequence[str] = ()) -> bytes:
    """Static integer quantisation in QDQ form, calibrated on `calibration` images.

    Pre-processing (shape inference, graph optimisation) first, as onnxruntime recommends;
    weights int8, per channel unless `per_channel` is False; activations int8, or int16 for
    `precision` "int16x8" (onnxruntime then raises the graph to opset 21, whose
    QuantizeLinear takes int16). `wide` names activations (as edgeconv.quant.layers
    reports them) quantised to int16 in an int8 graph: onnxruntime's per-tensor overrides,
    with the int8 <-> int16 conversions it places at each boundary (mixed precision).
    `keep_float` names tensors whose producing nodes are left unquantised: selective
    quantisation, for an accuracy budget.
    `input_name`: the graph's input (a user's ONNX names its own, e.g. "Input3").
    """
    if precision not in ACTIVATION_TYPES:
        raise EdgeconvError(f"ONNX files are quantised to {', '.join(ACTIVATION_TYPES)}, not"
                            f" '{precision}'")
    if method not in CALIBRATION_METHODS:
        raise EdgeconvError(f"unknown calibration method '{method}'; use one of"
                            f" {', '.join(CALIBRATION_METHODS)}")
    if calibration is None or len(calibration) == 0:
        raise EdgeconvError(f"{precision} quantisation needs calibration images; none were"
                            " given")
    quant = require("onnxruntime.quantization", extra="onnx")
    shape_inference = require("onnxruntime.quantization.shape_inference", extra="onnx")
    methods = {"minmax": quant.CalibrationMethod.MinMax,
               "entropy": quant.CalibrationMethod.Entropy,
               "percentile": quant.CalibrationMethod.Percentile}
    failure = None
    with tempfile.TemporaryDirectory(prefix="edgeconv-onnx-") as tmp, \
            captured_output() as output:
        source, prepared, quantised = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx",
                                                                "int8.onnx"))
        source.write_bytes(fp32)
        try:
            shape_inference.quant_pre_process(str(source), str(prepared))

            activations = getattr(quant.QuantType, ACTIVATION_TYPES[precision])
            overrides: dict[str, list[dict]] = {}
            calibrate = methods[method]
            if method == "entropy":  # its ranges computed here: see entropy_ranges
                for name, (low, high) in entropy_ranges(quant, prepared, calibration,
                                                        input_name, Path(tmp)).items():
                    # onnxruntime computes with the override's numpy dtype
                    overrides[name] = [{"rmin": np.float32(low), "rmax": np.float32(high)}]
                calibrate = quant.CalibrationMethod.MinMax  # overridden wherever it counts
            for name in wide:
                overrides.setdefault(name, [{}])[0]["quant_type"] = quant.QuantType.QInt16

            def quantise(extra: dict) -> None:
                if overrides:
                    extra = {**extra, "TensorQuantOverrides": overrides}
                quant.quantize_static(
                    str(prepared), str(quantised),
                    calibration_reader(quant, calibration, input_name),
                    quant_format=quant.QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=activations, weight_type=quant.QuantType.QInt8,
                    calibrate_method=calibrate, extra_options=extra,
                    nodes_to_exclude=_producers(prepared.read_bytes(), keep_float))

            try:
                quantise({})
            except ValueError as exc:
                # onnxruntime (1.2x-1.32) fails adjusting weight scales for an int32 bias
                # when a bias is a separate Add of a per-channel constant (PyTorch-style and
                # CNTK graphs, e.g. the ONNX model zoo's MNIST): skip that adjustment.
                if "truth value of an array" not in str(exc):
                    raise
                quantise({"QDQDisableWeightAdjustForInt32Bias": True})
            return quantised.read_bytes()
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types
            failure = exc
    reason = output.reason() or one_line(failure)
    raise EdgeconvError(f"ONNX {precision}{' (mixed)' if wide else ''} quantisation failed:"
                        f" {reason}")


# onnxruntime's quantize_static builds its entropy calibrator with 128 histogram bins and
# 128 quantised bins and passes no option to change either (onnxruntime 1.17-1.32). Its KL
# search slides a window of the quantised width over the histogram: with the two equal
# there is one window, the whole histogram, so the "entropy" range is the min..max range
# and the file is byte-identical to minmax. edgeconv runs the same calibrator with
# TensorRT's 2048 bins (the KL search then has 961 candidate ranges) and gives
# quantize_static the ranges it finds, per tensor.
ENTROPY_BINS = 2048
ENTROPY_QUANTIZED_BINS = 128


def entropy_ranges(quant, model: Path, calibration: np.ndarray, input_name: str,
                   scratch: Path) -> dict[str, tuple[float, float]]:
    """(low, high) per activation of `model`, by onnxruntime's entropy (KL) calibrator over
    ENTROPY_BINS histogram bins."""
    calibrator = quant.create_calibrator(
        str(model), None, augmented_model_path=str(scratch / "entropy_augmented.onnx"),
        calibrate_method=quant.CalibrationMethod.Entropy,
        extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": ENTROPY_QUANTIZED_BINS,
                       "symmetric": False})
    calibrator.collect_data(calibration_reader(quant, calibration, input_name))
    ranges = calibrator.compute_data()
    return {name: (float(np.asarray(data.range_value[0]).reshape(())),
                   float(np.asarray(data.range_value[1]).reshape(())))
            for name, data in ranges.data.items()}


# Per-channel QuantizeLinear / DequantizeLinear (the `axis` attribute) came with opset 13;
# a user's graph of an older opset (the ONNX model zoo's opset 8 MNIST) is upgraded first.
QDQ_OPSET = 13


def opset_of(content: bytes) -> int | None:
    """The graph's ai.onnx opset; one line when the bytes are no ONNX model."""
    try:
        model = parse_model(content)
    except Exception as exc:  # noqa: BLE001 - protobuf's errors
        raise EdgeconvError(f"not an ONNX model: {one_line(exc)[:200]}") from None
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def at_least_opset(content: bytes, opset: int) -> bytes:
    """The graph upgraded to `opset` when it is older (unchanged otherwise)."""
    current = opset_of(content)
    if current is None or current >= opset:
        return content
    from onnx import helper, version_converter

    model = parse_model(content)
    # The converter looks weights up among the graph's inputs, as IR version 3 required;
    # files that list them as initializers only (the model zoo's MNIST) get them listed
    # there for the conversion, and taken out again after.
    listed = {i.name for i in model.graph.input}
    added = [t for t in model.graph.initializer if t.name not in listed]
    model.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                             for t in added)
    try:
        upgraded = version_converter.convert_version(model, opset)
    except Exception as exc:  # noqa: BLE001 - the converter's refusals
        raise EdgeconvError(f"cannot upgrade the ONNX graph from opset {current} to {opset}"
                            f" for int8 QDQ: {one_line(exc)[:200]}") from None
    names = {t.name for t in added}
    kept = [i for i in upgraded.graph.input if i.name not in names]
    del upgraded.graph.input[:]
    upgraded.graph.input.extend(kept)
    upgraded.ir_version = max(upgraded.ir_version, 7)  # initializers need not be inputs
    return upgraded.SerializeToString()


def parse_model(model: bytes):
    """The onnx ModelProto of serialised bytes."""
    return require("onnx", extra="train").load_from_string(model)


def constants(graph) -> dict[str, np.ndarray]:
    """The graph's initializers (weights, scales, zero points) by name, as arrays."""
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


# Ops the quantiser folds into the layer before them (no QDQ pair between): keeping such
# an op's output float must keep that layer float too, or its int8 weights stay.
_FOLDED_INTO_PREVIOUS = ("Relu", "Clip", "Add")


def _producers(model: bytes, tensors: Sequence[str]) -> list[str]:
    """Names of the nodes that produce `tensors` (what quantize_static can exclude), and
    behind a ReLU, clip or bias Add, the layer it is folded into."""
    if not tensors:
        return []
    nodes = parse_model(model).graph.node
    producer = {out: node for node in nodes for out in node.output}
    chosen: dict[str, None] = {}
    for tensor in tensors:
        node = producer.get(tensor)
        while node is not None and node.name not in chosen:
            chosen[node.name] = None
            if node.op_type not in _FOLDED_INTO_PREVIOUS or not node.input:
                break
            node = producer.get(node.input[0])
    return list(chosen)


def boundary_quantization(int8_model: bytes) -> dict[str, dict[str, float | int] | None]:
    """Scale and zero-point of the QuantizeLinear after the input and of the
    DequantizeLinear before the output, where the QDQ graph has them."""
    graph = parse_model(int8_model).graph
    initializers = constants(graph)

    def params(node) -> dict[str, float | int] | None:
        scale, zero = (initializers.get(name) for name in node.input[1:3])
        if scale is None or zero is None or scale.size != 1:
            return None
        return {"scale": float(scale.reshape(())), "zero_point": int(zero.reshape(())),
                "dtype": str(zero.dtype)}

    found: dict[str, dict[str, float | int] | None] = {"input": None, "output": None}
    # The input's first quantisation often follows a layout op (NHWC -> NCHW Transpose).
    inputs = {i.name for i in graph.input}
    for node in graph.node:
        if node.op_type in ("Transpose", "Reshape", "Identity") and node.input[0] in inputs:
            inputs.update(node.output)
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in inputs:
            found["input"] = params(node)
        if node.op_type == "DequantizeLinear" and node.output[0] in outputs:
            found["output"] = params(node)
    return found


def calibration_reader(quant, images: np.ndarray, input_name: str = INPUT_NAME):
    """onnxruntime's CalibrationDataReader over an array of images, one per batch."""

    class ImageReader(quant.CalibrationDataReader):
        def __init__(self):
            self._images = iter(images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self._images, None)
            return None if image is None else {input_name: image[np.newaxis].astype(np.float32)}

    return ImageReader()


def _name_free_dims(proto) -> None:
    """tf2onnx names free dimensions "unk__N": name them for the people who read them."""
    names = ("batch", "height", "width")
    for tensor in proto.graph.input:
        dims = tensor.type.tensor_type.shape.dim
        for dim, name in zip(dims, names):
            if dim.HasField("dim_param"):
                dim.dim_param = name
