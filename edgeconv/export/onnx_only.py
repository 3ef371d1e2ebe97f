"""A user's `.onnx` or `.tflite` file (made elsewhere, e.g. exported from PyTorch): measured
as it is, and for ONNX an int8 QDQ file quantised by onnxruntime, calibrated on the user's
images. Never imports TensorFlow or Keras: a machine with onnxruntime alone runs it
(tests/test_own_model.py holds it to that in a process where `import tensorflow` fails).

Precision of a file made elsewhere, read from the file (`precision_of`):
- TFLite: int8 when the input is int8 or uint8, or when float input is quantised by a
  QUANTIZE op inside (full-integer with float io); fp16 when any tensor is float16 (float16
  weights); dynamic when int8 tensors sit in a float graph without QUANTIZE (int8 weights,
  float activations); fp32 otherwise.
- ONNX: int8 when the graph holds QuantizeLinear / DequantizeLinear or QLinear* / *Integer
  nodes; fp32 otherwise (a float16 ONNX is refused: edgeconv records no fp16 ONNX).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeconv.data.user import ModelInput
from edgeconv.errors import EdgeconvError, one_line

INT8_ONNX_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear")


def model_input(path: Path, fmt: str) -> tuple[ModelInput, list]:
    """The file's first input (shape, dtype, quantisation) and its outputs, loaded in its
    runtime: a file the runtime refuses (an operator it has no kernel for) fails here, with
    the runtime's reason, before anything is written."""
    from edgeconv._capture import captured_output
    from edgeconv.runtimes import open_runtime

    with captured_output(), open_runtime(path) as runtime:
        inputs, outputs = runtime.inputs(), runtime.outputs()
    if len(inputs) != 1:
        raise EdgeconvError(f"{path.name} has {len(inputs)} inputs; edgeconv measures"
                            " single-input models")
    first = inputs[0]
    return ModelInput(shape=tuple(first.shape), dtype=first.dtype, scale=first.scale,
                      zero_point=first.zero_point, name=first.name), outputs


def precision_of(path: Path, fmt: str) -> str:
    """The precision a file was made at, read from the file (module docstring)."""
    return _onnx_precision(path) if fmt == "onnx" else _tflite_precision(path)


def _onnx_precision(path: Path) -> str:
    from edgeconv.convert.onnx import parse_model

    graph = parse_model(path.read_bytes()).graph
    if any(node.op_type in INT8_ONNX_OPS for node in graph.node):
        return "int8"
    fp16 = 10  # onnx.TensorProto.FLOAT16
    if any(t.data_type == fp16 for t in graph.initializer):
        raise EdgeconvError(f"{path.name} has float16 weights; edgeconv records ONNX files at"
                            " fp32 or int8 only")
    return "fp32"


def _tflite_precision(path: Path) -> str:
    from edgeconv._capture import captured_output
    from edgeconv.runtimes.litert import _interpreter_api

    interpreter_class = _interpreter_api()[0]
    with captured_output():
        interpreter = interpreter_class(model_path=str(path))
    inputs = interpreter.get_input_details()
    if np.dtype(inputs[0]["dtype"]) in (np.int8, np.uint8):
        return "int8"
    dtypes = {np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    if np.dtype(np.float16) in dtypes:
        return "fp16"
    if np.dtype(np.int8) not in dtypes:
        return "fp32"
    try:  # full-integer with float io quantises its input inside: a QUANTIZE op
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
    except Exception:  # noqa: BLE001 - a private API: without it, the int8 tensors decide
        ops = set()
    return "int8" if "QUANTIZE" in ops else "dynamic"


def quantize_user_onnx(fp32: bytes, calibration: np.ndarray, input_name: str, *,
                       method: str, per_channel: bool) -> bytes:
    """int8 QDQ of the user's fp32 ONNX (edgeconv.convert.onnx), fed by its input's name."""
    from edgeconv.convert.onnx import quantize_onnx

    return quantize_onnx(_at_least_opset(fp32, QDQ_OPSET), calibration, method=method,
                         per_channel=per_channel, input_name=input_name)


# Per-channel QuantizeLinear / DequantizeLinear (the `axis` attribute) came with opset 13;
# files exported by older tools (the ONNX model zoo's opset 8 MNIST) are upgraded first.
QDQ_OPSET = 13


def _at_least_opset(content: bytes, opset: int) -> bytes:
    current = opset_of(content)
    if current is None or current >= opset:
        return content
    from onnx import version_converter

    from edgeconv.convert.onnx import parse_model

    from onnx import helper

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


def opset_of(content: bytes) -> int | None:
    from edgeconv.convert.onnx import parse_model

    try:
        model = parse_model(content)
    except Exception as exc:  # noqa: BLE001 - protobuf's errors
        raise EdgeconvError(f"not an ONNX model: {one_line(exc)[:200]}") from None
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
