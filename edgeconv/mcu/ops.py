"""What a .tflite file asks of TFLite Micro: its operators in execution order, their MACs,
which MicroMutableOpResolver call registers each, and the model's inputs and outputs.

Reads the flatbuffer with the pure-Python schema module the tflite_micro wheel ships (no
TensorFlow, no interpreter: safe on any file, and quick).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeconv.errors import EdgeconvError
from edgeconv.files import read_regular

# The most of a model file the MCU path reads (files.MAX_MODEL_BYTES, 2 GiB, is any
# model's): 16 times the emulated flash (4 MiB), so the operator list of a model too large
# to run is still read and its size refused with a reason, while a hostile file cannot make
# the parse hold gigabytes.
MAX_MCU_MODEL_BYTES = 64 * 1024 * 1024

# BuiltinOperator name -> MicroMutableOpResolver method, as declared in TFLM 90b983c2's
# tensorflow/lite/micro/micro_mutable_op_resolver.h (tests check it against the tree).
RESOLVER_CALLS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice", "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax", "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D",
    "MIRROR_PAD": "AddMirrorPad", "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MUL": "AddMul",
    "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad",
    "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape",
    "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt",
    "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf",
    "TANH": "AddTanh", "TRANSPOSE_CONV": "AddTransposeConv", "TRANSPOSE": "AddTranspose",
    "UNPACK": "AddUnpack", "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}

# Ops with an int8-only CMSIS-NN registration (Register_<OP>_INT8()): used when every
# instance of the op in the model is int8 in and out, so the firmware links only that path.
INT8_REGISTRATIONS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX", "ADD", "MUL"})

_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "INT32": "int32", "UINT8": "uint8",
           "INT64": "int64", "BOOL": "bool", "INT16": "int16", "INT8": "int8",
           "FLOAT64": "float64", "UINT32": "uint32", "UINT16": "uint16", "INT4": "int4"}


@dataclass(frozen=True)
class TensorSpec:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                 # numpy name ("int8"), or the schema name if numpy has none


@dataclass(frozen=True)
class OpInfo:
    index: int
    op: str                    # "CONV_2D", or the custom code of a custom op
    custom: bool
    macs: int | None           # CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED; None otherwise
    input_dtypes: tuple[str, ...]   # of the tensor inputs (absent optional inputs skipped)
    output_dtypes: tuple[str, ...]
    output_names: tuple[str, ...] = ()  # its output tensors (edgeconv.npu places ops by them)


@dataclass(frozen=True)
class ModelOps:
    ops: list[OpInfo]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    subgraphs: int

    @property
    def op_names(self) -> list[str]:
        """The distinct operators, in order of first use."""
        return list(dict.fromkeys(op.op for op in self.ops))

    @property
    def macs(self) -> int:
        return sum(op.macs or 0 for op in self.ops)

    def unsupported(self) -> list[str]:
        return [name for name in self.op_names if name not in RESOLVER_CALLS]

    def check_supported(self, path: str | Path) -> None:
        missing = self.unsupported()
        if missing:
            raise EdgeconvError(f"{path}: TFLite Micro has no kernel for operator "
                                f"{', '.join(missing)}; it cannot run on a microcontroller")

    def int8_only(self, name: str) -> bool:
        """Every instance of op `name` reads and writes int8 (weights int8 too, bias aside)."""
        ops = [op for op in self.ops if op.op == name]
        return name in INT8_REGISTRATIONS and all(
            op.output_dtypes and all(d == "int8" for d in op.output_dtypes)
            and all(d in ("int8", "int32") for d in op.input_dtypes)
            and op.input_dtypes and op.input_dtypes[0] == "int8" for op in ops)


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    return schema


def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")
            and isinstance(v, int)}


def read_ops(path: str | Path) -> ModelOps:
    data = read_regular(path, MAX_MCU_MODEL_BYTES, what="model")
    return parse_ops(data, str(path))


def parse_ops(data: bytes, label: str = "model") -> ModelOps:
    if data[4:8] != b"TFL3":
        raise EdgeconvError(f"{label} is not a TFLite flatbuffer")
    schema = _schema()
    try:
        return _parse(schema, data, label)
    except EdgeconvError:
        raise
    except Exception as exc:  # a malformed flatbuffer: offsets out of range and the like
        raise EdgeconvError(f"{label}: cannot read the TFLite flatbuffer ({type(exc).__name__})"
                            ) from None


def _parse(schema, data: bytes, label: str) -> ModelOps:
    model = schema.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise EdgeconvError(f"{label}: the model has no subgraph")
    builtin = _names(schema.BuiltinOperator)
    types = _names(schema.TensorType)
    graph = model.Subgraphs(0)

    def tensor(i: int) -> TensorSpec:
        t = graph.Tensors(i)
        shape = t.ShapeAsNumpy()
        dims = tuple(int(d) for d in shape) if not isinstance(shape, int) else ()
        kind = types.get(t.Type(), str(t.Type()))
        name = t.Name()
        return TensorSpec(i, name.decode(errors="replace") if name else f"tensor{i}", dims,
                          _DTYPES.get(kind, kind.lower()))

    ops = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = builtin.get(number) == "CUSTOM"
        name = ((code.CustomCode() or b"?").decode(errors="replace") if custom
                else builtin.get(number, f"BUILTIN_{number}"))
        ins = [tensor(i) for i in op.InputsAsNumpy() if i >= 0] if op.InputsLength() else []
        outs = [tensor(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        ops.append(OpInfo(k, name, custom, _macs(name, ins, outs),
                          tuple(t.dtype for t in ins), tuple(t.dtype for t in outs),
                          tuple(t.name for t in outs)))
    return ModelOps(ops, [tensor(int(i)) for i in graph.InputsAsNumpy()],
                    [tensor(int(i)) for i in graph.OutputsAsNumpy()], model.SubgraphsLength())


def _macs(name: str, ins: list[TensorSpec], outs: list[TensorSpec]) -> int | None:
    """Multiply-accumulates of the three ops that dominate a CNN; None for the others."""
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return None
    if len(ins) < 2 or not outs:
        return None
    out, weights = outs[0].shape, ins[1].shape
    if not out or not weights:
        return None
    out_elements = int(np.prod(out))
    if name == "CONV_2D":          # filter [out_c, kh, kw, in_c]
        return out_elements * int(np.prod(weights[1:]))
    if name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, out_c]
        return out_elements * int(np.prod(weights[1:3]))
    return out_elements * int(weights[-1])  # FULLY_CONNECTED: weights [units, depth]
