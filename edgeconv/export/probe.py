"""`python -m edgeconv.export.probe FILE`: a user's `.onnx` or `.tflite` opened in its runtime,
in a child process of its own, answered as one JSON line.

The parent (edgeconv.export.intake.take_in) runs this through edgeconv._child.run_child on
the private copy it hashed and checked, so a runtime that crashes or hangs on a hostile file
costs a line naming the user's file, never the export. The answer is what the file holds:
`inputs` and `outputs` (name, shape with null for free dimensions, dtype, scale,
zero_point), `signature` (per output, the serving signature's name of it or null), the
`precision` the file was made at and the ONNX `opset`; or `{"error": reason}` when the
runtime or edgeconv refuses the file. An `.onnx` never imports TensorFlow: a machine with
onnxruntime alone takes one in.

Precision of a file made elsewhere, read from the file:
- TFLite: int8 when the input is int8 or uint8, or when float input is quantised by a
  QUANTIZE op inside (full-integer with float io); fp16 when any tensor is float16 (float16
  weights); dynamic when int8 tensors sit in a float graph without QUANTIZE (int8 weights,
  float activations); fp32 otherwise.
- ONNX: int8 when the graph holds QuantizeLinear / DequantizeLinear or QLinear* / *Integer
  nodes; fp32 otherwise (a float16 ONNX is refused: edgeconv records no fp16 ONNX).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgeconv._child import REASON_CHARS
from edgeconv.errors import EdgeconvError, one_line

INT8_ONNX_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear")
ONNX_FLOAT16 = 10  # onnx.TensorProto.FLOAT16


def describe(path: Path) -> dict[str, Any]:
    """What the file at `path` holds, opened in the runtime its suffix names (module
    docstring); EdgeconvError when that runtime or the precision reading refuses it."""
    from edgeconv.formats import format_of
    from edgeconv.runtimes import open_runtime

    fmt = format_of(path).name
    with open_runtime(path) as runtime:  # the runtime the export then measures it in
        inputs, outputs = runtime.inputs(), runtime.outputs()
        signature = runtime.signature_names()
    answer: dict[str, Any] = {"inputs": [_tensor(t) for t in inputs],
                              "outputs": [_tensor(t) for t in outputs],
                              "signature": list(signature), "opset": None}
    answer["precision"], answer["opset"] = read_precision(path, fmt)
    return answer


def _tensor(info) -> dict[str, Any]:
    return {"name": info.name, "shape": list(info.shape), "dtype": info.dtype,
            "scale": info.scale, "zero_point": info.zero_point}


def read_precision(path: Path, fmt: str) -> tuple[str, int | None]:
    """(precision, opset or None) of a file, by its format row's `precision_reader`."""
    from edgeconv.formats import get_format, resolve

    reader = get_format(fmt).precision_reader
    if reader is None:
        raise EdgeconvError(f"edgeconv reads no precision from {fmt} files")
    return resolve(reader)(path)


def precision_of(path: Path, fmt: str) -> str:
    """The precision a file was made at, read from the file (module docstring)."""
    return read_precision(path, fmt)[0]


def onnx_precision(path: Path) -> tuple[str, int | None]:
    """(precision, opset) of an ONNX file, read from its graph (module docstring)."""
    from edgeconv.convert.onnx import parse_model

    try:
        model = parse_model(path.read_bytes())  # the private copy, checked whole
    except EdgeconvError:
        raise
    except Exception as exc:  # noqa: BLE001 - protobuf's errors
        raise EdgeconvError(f"not an ONNX model: {one_line(exc)[:200]}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    graph = model.graph
    if any(node.op_type in INT8_ONNX_OPS for node in graph.node):
        return "int8", opset
    if any(t.data_type == ONNX_FLOAT16 for t in graph.initializer):
        raise EdgeconvError("its weights are float16; edgeconv records ONNX files at fp32 or"
                            " int8 only")
    return "fp32", opset


def tflite_precision(path: Path) -> tuple[str, None]:
    """(precision, None) of a TFLite file, read from its tensors and ops (module
    docstring)."""
    return _tflite_precision(path), None


def _tflite_precision(path: Path) -> str:
    import numpy as np

    from edgeconv.runtimes.litert import _interpreter_api

    interpreter = _interpreter_api()[0](model_path=str(path))
    inputs = interpreter.get_input_details()
    if np.dtype(inputs[0]["dtype"]) in (np.int8, np.uint8):
        return "int8"
    if np.dtype(inputs[0]["dtype"]) == np.int16:  # 16x8: int16 activations, int8 weights
        return "int16x8"
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


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        answer: dict[str, Any] = {"error": "usage: python -m edgeconv.export.probe FILE"}
    else:
        try:
            answer = describe(Path(args[0]))
        except EdgeconvError as exc:
            answer = {"error": " ".join(str(exc).split())[:REASON_CHARS]}
        except Exception as exc:  # noqa: BLE001 - a runtime's own refusal of the file
            answer = {"error": one_line(exc)[:REASON_CHARS]}
    print(json.dumps(answer), flush=True)  # the last line: what run_child reads


if __name__ == "__main__":
    main()
