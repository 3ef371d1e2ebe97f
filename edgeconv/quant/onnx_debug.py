"""Per-layer int8 error of an ONNX QDQ file, by onnxruntime's qdq_loss_debug.

Each activation before and after its own QuantizeLinear/DequantizeLinear pair (that layer's
rounding and clipping), and against the float model's same tensor (every error up to there:
accumulated_sqnr_db), over the calibration images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgeconv._capture import captured_output
from edgeconv._lazy import require
from edgeconv.convert.onnx import (
    QDQ_OPSET,
    at_least_opset,
    calibration_reader,
    constants,
    parse_model,
)
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.quant.layers import FloatSource, LayerErrors
from edgeconv.quant.metrics import flat, sqnr_db

METHOD = ("onnxruntime qdq_loss_debug: each activation before/after its QDQ pair;"
          " accumulated_sqnr_db against the float model's same tensor")


def layer_errors(source: FloatSource, int8: bytes, precision: str = "int8") -> LayerErrors:
    """Per quantised activation of the QDQ model `int8` (int8, int16x8 or mixed: each
    activation's own QuantizeLinear says its width), against the source's fp32 ONNX."""
    fp32 = source.float_file("onnx")
    if fp32 is None:
        raise EdgeconvError(f"{source.origin}: no fp32 ONNX file to compare with")
    # a graph of an old opset (a user's) was upgraded before it was quantised (QDQ needs
    # 13): the float side is compared as it was quantised
    fp32 = at_least_opset(fp32, QDQ_OPSET)
    return LayerErrors(METHOD, _compare(fp32, int8, source.calibration))


def _input_name(model: bytes) -> str:
    """The graph's input (edgeconv names it "input"; a user's ONNX its own)."""
    return parse_model(model).graph.input[0].name


def _compare(fp32: bytes, int8: bytes, calibration: np.ndarray) -> list[dict]:
    debug = require("onnxruntime.quantization.qdq_loss_debug", extra="train")
    quant = require("onnxruntime.quantization", extra="train")
    shape_inference = require("onnxruntime.quantization.shape_inference", extra="train")
    failure = None
    with tempfile.TemporaryDirectory(prefix="edgeconv-onnx-") as tmp, \
            captured_output() as output:
        paths = {n: Path(tmp) / f"{n}.onnx" for n in ("fp32", "pre", "int8", "pre_aug",
                                                       "int8_aug")}
        paths["fp32"].write_bytes(fp32)
        paths["int8"].write_bytes(int8)
        try:
            # The QDQ model was made from the pre-processed graph: compare with that one,
            # whose tensor names it shares.
            shape_inference.quant_pre_process(str(paths["fp32"]), str(paths["pre"]))
            activations = {}
            for name in ("pre", "int8"):
                debug.modify_model_output_intermediate_tensors(str(paths[name]),
                                                               str(paths[f"{name}_aug"]))
                activations[name] = debug.collect_activations(
                    str(paths[f"{name}_aug"]),
                    calibration_reader(quant, calibration, _input_name(fp32)),
                    session_options=_unoptimised())
            matched = debug.create_activation_matching(activations["int8"],
                                                       activations["pre"])
            graph = parse_model(int8).graph
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types
            failure = exc
    if failure is not None:
        reason = output.reason() or one_line(failure)
        raise EdgeconvError(f"ONNX quantisation debugging failed: {reason}")
    producers = {out: node.op_type for node in graph.node for out in node.output}
    scales = _activation_scales(graph)
    rows = []
    for name, tensors in matched.items():
        if "pre_qdq" not in tensors or "post_qdq" not in tensors:
            continue
        before, after = flat(tensors["pre_qdq"]), flat(tensors["post_qdq"])
        scale, zero_point, lowest = scales.get(name, (None, None, None))
        if scale is not None:
            # The quantiser drops a ReLU before a QuantizeLinear whose range starts at 0 (the
            # clip does its work), so "before" can be pre-ReLU: clip it at the range's floor.
            before = np.maximum(before, (lowest - zero_point) * scale)
        rmse = float(np.sqrt(np.mean(np.square(before - after))))
        rows.append({
            "name": name, "op": producers.get(name, "input"), "rmse": rmse,
            "rmse_per_scale": rmse / scale if scale else None,
            "sqnr_db": sqnr_db(before, after), "scale": scale,
            "accumulated_sqnr_db": sqnr_db(flat(tensors["float"]), after)
            if "float" in tensors else None})
    return rows


def _unoptimised():
    """Session options that run the graph as written: onnxruntime's optimiser would fold a
    ReLU into the QuantizeLinear after it, and the "before" tensor would be pre-ReLU."""
    ort = require("onnxruntime", extra="onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def _activation_scales(graph) -> dict[str, tuple[float, int, int]]:
    """(scale, zero point, lowest level) of each activation's int8 or int16 QuantizeLinear,
    where per tensor."""
    initializers = constants(graph)
    scales = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) == 3:
            scale, zero = initializers.get(node.input[1]), initializers.get(node.input[2])
            if scale is not None and zero is not None and scale.size == 1 \
                    and zero.dtype in (np.int8, np.int16):
                scales[node.input[0]] = (float(scale.reshape(())), int(zero.reshape(())),
                                         int(np.iinfo(zero.dtype).min))
    return scales
