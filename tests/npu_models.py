"""Small int8 .tflite files for the NPU tests, written with the TFLite schema's object API
(the tflite_micro wheel's schema_py_generated: no TensorFlow, milliseconds).

`fallback_model`: input int8 [1,4,4,8] -> ADD (input + input) -> DEPTH_TO_SPACE (block 2)
-> int8 [1,8,8,2]. Ethos-U55 runs ADD; DEPTH_TO_SPACE is not an Ethos-U55 operator (Vela
5.2's SUPPORTED_OPS.md), so Vela leaves it to the CPU, where TFLite Micro runs it.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np


def _tensor(schema, name: str, shape: list[int], buffer: int, scale: float = 0.05,
            zero_point: int = 0):
    t = schema.TensorT()
    t.name = name
    t.shape = shape
    t.type = schema.TensorType.INT8
    t.buffer = buffer
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [scale], [zero_point]
    t.quantization = q
    return t


def _op(schema, opcode: int, inputs: list[int], outputs: list[int], options_type: int,
        options):
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, outputs
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def fallback_model(path: Path, float_input: bool = False) -> Path:
    """Write the model above to `path` (with `float_input`, the same graph in float32: a
    model that is not int8, which an NPU target refuses)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tensors = [_tensor(schema, "input", [1, 4, 4, 8], 1),
               _tensor(schema, "sum", [1, 4, 4, 8], 2, scale=0.1),
               _tensor(schema, "output", [1, 8, 8, 2], 3, scale=0.1)]
    if float_input:
        for t in tensors:
            t.type, t.quantization = schema.TensorType.FLOAT32, None
    codes = []
    for builtin in (schema.BuiltinOperator.ADD, schema.BuiltinOperator.DEPTH_TO_SPACE):
        code = schema.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)
        code.version = 1
        codes.append(code)
    add = schema.AddOptionsT()
    d2s = schema.DepthToSpaceOptionsT()
    d2s.blockSize = 2
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.inputs, graph.outputs = [0], [2]
    graph.operators = [_op(schema, 0, [0, 0], [1], schema.BuiltinOptions.AddOptions, add),
                       _op(schema, 1, [1], [2], schema.BuiltinOptions.DepthToSpaceOptions,
                           d2s)]
    graph.name = "main"
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = codes
    model.subgraphs = [graph]
    model.description = "edgeconv test: ADD then DEPTH_TO_SPACE"
    empty = schema.BufferT()
    model.buffers = [schema.BufferT() for _ in range(4)]
    del empty
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


if __name__ == "__main__":
    import sys

    print(fallback_model(Path(sys.argv[1])))
    _ = np
