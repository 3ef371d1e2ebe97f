"""Which kernel each runtime runs an operator with, at each activation width.

A file that converts may still run badly where it lands: an int16 op that TFLite Micro has
no kernel for fails to load on the board; one that CMSIS-NN optimises at int8 only runs
TFLite Micro's reference C++ (several times the cycles); LiteRT's XNNPACK delegate takes
no int16 op; onnxruntime has no int16 kernels and computes a 16-bit QDQ graph in float
between its Dequantize / Quantize pairs. `kernel_notes(path, fmt)` says so, one line per
operator and width, before a file is benched.

The TFLite Micro and CMSIS-NN columns are checked against the pinned TFLite Micro tree by
tests/test_kernel_table.py (each CMSIS-NN function named here is called by that op's
kernel file, and each reference kernel takes int16 exactly where the table says). The
LiteRT and onnxruntime lines come from those runtimes' documented kernels (XNNPACK's
quantised operator list; onnxruntime's QDQ fusions are int8 / uint8 only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeconv.errors import EdgeconvError


@dataclass(frozen=True)
class OpKernels:
    """One TFLite operator's kernels on a microcontroller.

    `sources`: its kernel files in tensorflow/lite/micro/kernels (stem; `.cc`, `_common.cc`
    and `.h` are read); `tflm_int16`: TFLite Micro's reference kernel takes int16
    activations; `cmsis_s8` / `cmsis_s16`: the CMSIS-NN function its cmsis_nn kernel calls
    at that width (None: that width falls back to the reference code, or the op has no
    CMSIS-NN kernel)."""

    op: str
    sources: tuple[str, ...]
    tflm_int16: bool
    cmsis_s8: str | None = None
    cmsis_s16: str | None = None


MICRO_KERNELS: dict[str, OpKernels] = {k.op: k for k in (
    OpKernels("CONV_2D", ("conv",), True, "arm_convolve_wrapper_s8", "arm_convolve_wrapper_s16"),
    OpKernels("DEPTHWISE_CONV_2D", ("depthwise_conv",), True, "arm_depthwise_conv_wrapper_s8",
              "arm_depthwise_conv_s16"),
    OpKernels("FULLY_CONNECTED", ("fully_connected",), True, "arm_fully_connected_wrapper_s8",
              "arm_fully_connected_s16"),
    OpKernels("ADD", ("add",), True, "arm_elementwise_add_s8", "arm_elementwise_add_s16"),
    OpKernels("MUL", ("mul",), True, "arm_elementwise_mul_s8", "arm_elementwise_mul_s16"),
    OpKernels("AVERAGE_POOL_2D", ("pooling",), True, "arm_avgpool_s8", "arm_avgpool_s16"),
    OpKernels("MAX_POOL_2D", ("pooling",), True, "arm_max_pool_s8", "arm_max_pool_s16"),
    OpKernels("SOFTMAX", ("softmax",), True, "arm_softmax_s8", "arm_softmax_s16"),
    OpKernels("BATCH_MATMUL", ("batch_matmul",), True, "arm_batch_matmul_s8",
              "arm_batch_matmul_s16"),
    OpKernels("MAXIMUM", ("maximum_minimum",), True, "arm_maximum_s8"),
    OpKernels("MINIMUM", ("maximum_minimum",), True, "arm_minimum_s8"),
    OpKernels("PAD", ("pad",), True, "arm_pad_s8"),
    OpKernels("TRANSPOSE", ("transpose",), True, "arm_transpose_s8"),
    OpKernels("TRANSPOSE_CONV", ("transpose_conv",), True, "arm_transpose_conv_wrapper_s8"),
    # reference kernels only, at either width
    OpKernels("MEAN", ("reduce",), True),
    OpKernels("SUM", ("reduce",), True),
    OpKernels("CONCATENATION", ("concatenation",), True),
    OpKernels("LOGISTIC", ("logistic",), True),
    OpKernels("TANH", ("tanh",), True),
    OpKernels("LEAKY_RELU", ("leaky_relu",), True),
    OpKernels("RELU", ("activations",), True),
    OpKernels("RELU6", ("activations",), True),
    OpKernels("SUB", ("sub",), True),
    OpKernels("STRIDED_SLICE", ("strided_slice",), True),
    OpKernels("RESIZE_NEAREST_NEIGHBOR", ("resize_nearest_neighbor",), True),
    OpKernels("QUANTIZE", ("quantize",), True),
    OpKernels("DEQUANTIZE", ("dequantize",), True),
    OpKernels("HARD_SWISH", ("hard_swish",), False),
)}
# Ops that move bytes whatever their type (a reshape is a copy or nothing): any width runs.
TYPE_FREE = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})
# The TFLite ops XNNPACK's LiteRT delegate runs at int8 (its quantised operator list); it
# takes no int16 op, so LiteRT runs those on its builtin kernels (for 16x8: reference code).
XNNPACK_INT8 = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "SUB",
                          "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "CONCATENATION", "PAD",
                          "TRANSPOSE", "TRANSPOSE_CONV", "LEAKY_RELU", "LOGISTIC", "TANH",
                          "RESIZE_BILINEAR", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SLICE",
                          "STRIDED_SLICE", "ELU", "HARD_SWISH", "MAXIMUM", "MINIMUM"})
_BOUNDARY = ("QUANTIZE", "DEQUANTIZE")
# ONNX ops that only move values (their speed does not depend on a kernel's width)
_ONNX_TYPE_FREE = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose",
                             "Identity"})


def micro_notes(ops: list[tuple[str, str]], *, cmsis_nn: bool = True) -> list[str]:
    """One line per (op, activation dtype) a microcontroller would fail to load or run slowly
    (TFLite Micro with CMSIS-NN, or its reference kernels alone)."""
    from edgeconv.mcu.ops import RESOLVER_CALLS

    notes = []
    for op, dtype in dict.fromkeys(ops):
        kernels = MICRO_KERNELS.get(op)
        if op not in RESOLVER_CALLS:
            notes.append(f"{op}: TFLite Micro has no kernel for it; the file fails to load")
        elif dtype == "float32" and op not in _BOUNDARY + tuple(TYPE_FREE):
            notes.append(f"{op} in float32: TFLite Micro's reference float kernel (CMSIS-NN"
                         " has none; no FPU: software float)")
        elif dtype == "int16" and kernels is not None and not kernels.tflm_int16:
            notes.append(f"{op} at int16: TFLite Micro has no int16 kernel for it; the file"
                         " fails to load")
        elif dtype == "int16" and cmsis_nn and kernels is not None and kernels.cmsis_s8 \
                and not kernels.cmsis_s16:
            notes.append(f"{op} at int16: TFLite Micro's reference kernel; CMSIS-NN optimises"
                         f" it at int8 only ({kernels.cmsis_s8})")
    return notes


# CMSIS-NN's int16 FULLY_CONNECTED fails Prepare on per-channel weights
# (cmsis_nn/fully_connected.cc: "Currently only Int8 is supported for per channel
# quantization"; tests/test_kernel_table.py keeps watch). TFLite Micro's reference kernel
# and LiteRT accept them, so only a board with CMSIS-NN fails.
PER_CHANNEL_INT16_FC = ("FULLY_CONNECTED at int16 with per-channel weights: CMSIS-NN's kernel"
                        " refuses them; the file fails to load on a Cortex-M with CMSIS-NN")


def per_channel_int16_fc(content: bytes) -> bool:
    """Does a .tflite file hold an int16 FULLY_CONNECTED whose int8 weights have one scale
    per output channel?"""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    codes = [max(model.OperatorCodes(i).BuiltinCode(),
                 model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if codes[op.OpcodeIndex()] != schema.BuiltinOperator.FULLY_CONNECTED \
                    or op.InputsLength() < 2:
                continue
            source, weights = graph.Tensors(op.Inputs(0)), graph.Tensors(op.Inputs(1))
            quantization = weights.Quantization()
            if source.Type() == schema.TensorType.INT16 and quantization is not None \
                    and quantization.ScaleLength() > 1:
                return True
    return False


def litert_notes(ops: list[tuple[str, str]]) -> list[str]:
    """One line per int16 op XNNPACK would run at int8 but LiteRT runs on a builtin kernel."""
    return [f"{op} at int16: LiteRT's builtin (reference) kernel; XNNPACK runs it at int8 only"
            for op, dtype in dict.fromkeys(ops) if dtype == "int16" and op in XNNPACK_INT8]


def onnx_notes(path: Path) -> list[str]:
    """One line per op type of a 16-bit QDQ ONNX graph that onnxruntime computes in float."""
    from edgeconv.convert.onnx import constants, parse_model

    graph = parse_model(path.read_bytes()).graph
    initializers = constants(graph)
    wide = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"
            and len(node.input) == 3 and str(getattr(initializers.get(node.input[2]), "dtype",
                                                     "")) in ("int16", "uint16")}
    ops = dict.fromkeys(node.op_type for node in graph.node
                        if node.op_type not in ("QuantizeLinear", "DequantizeLinear")
                        and node.op_type not in _ONNX_TYPE_FREE and wide & set(node.input))
    return [f"{op} at int16: onnxruntime has no int16 kernel; it runs in float between its"
            " 16-bit Dequantize / Quantize pair" for op in ops]


def tflite_ops(path: Path) -> list[tuple[str, str]]:
    """(op, activation dtype) of each op of a .tflite file, in order: the dtype of its first
    input (QUANTIZE / DEQUANTIZE: of their integer side)."""
    from edgeconv.mcu.ops import read_ops

    found = []
    for op in read_ops(path).ops:
        dtypes = op.output_dtypes if op.op == "QUANTIZE" else op.input_dtypes
        found.append((op.op, dtypes[0] if dtypes else "?"))
    return found


def kernel_notes(path: Path, fmt: str) -> list[str]:
    """What a file's ops would run on, one line each, where that is a failure to load or a
    slow kernel: a TFLite file on a microcontroller with CMSIS-NN and in LiteRT, an ONNX
    file in onnxruntime. Nothing when the reader it needs is not installed."""
    try:
        if fmt == "onnx":
            return [f"onnxruntime: {n}" for n in onnx_notes(path)]
        if fmt == "tflite":
            ops = tflite_ops(path)
            micro = micro_notes(ops) + ([PER_CHANNEL_INT16_FC]
                                        if per_channel_int16_fc(path.read_bytes()) else [])
            return [*(f"Cortex-M (TFLite Micro + CMSIS-NN): {n}" for n in micro),
                    *(f"LiteRT: {n}" for n in litert_notes(ops))]
    except (ImportError, EdgeconvError):  # no reader here, or a file it cannot read: the
        return []                          # runtime itself will say why when it loads it
    return []


def runtime_notes(path: Path, fmt: str, runtime: str, *, cmsis_nn: bool = True) -> list[str]:
    """`kernel_notes` for the one runtime a bench row opens the file in (`cmsis_nn`: the
    microcontroller target runs CMSIS-NN, else TFLite Micro's reference kernels)."""
    try:
        if runtime == "onnxruntime" and fmt == "onnx":
            return onnx_notes(path)
        if fmt != "tflite" or runtime not in ("litert", "tflite-micro"):
            return []
        ops = tflite_ops(path)
        if runtime == "litert":
            return litert_notes(ops)
        # a float file is not what a microcontroller runs: say nothing of its float ops
        if not any(dtype in ("int8", "int16") for _, dtype in ops):
            return []
        refused = cmsis_nn and per_channel_int16_fc(path.read_bytes())
        return micro_notes(ops, cmsis_nn=cmsis_nn) + ([PER_CHANNEL_INT16_FC] if refused else [])
    except (ImportError, EdgeconvError):
        return []
