"""Keras -> TFLite at fp32, fp16, dynamic-range, full-integer int8 or int16x8 (int16
activations, int8 weights).

The converted graph has batch 1, what a device runs: a free batch dimension makes the
converter add SHAPE / PACK / STRIDED_SLICE ops around every reshape, which costs time on a
board and kernels on a microcontroller. Height and width stay free when the Keras model
leaves them free (gap-mnist), so the file accepts `resize_tensor_input`.

An int8 file is also made loadable by TFLite Micro where the converter's calibration leaves
a softmax input with a scale below what TFLite Micro accepts (`raise_softmax_input_scales`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from edgeconv._capture import captured_output
from edgeconv._lazy import keras, require
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.formats import FORMATS

PRECISIONS = FORMATS["tflite"].precisions


def to_tflite(model, precision: str = "fp32", calibration: np.ndarray | None = None, *,
              float_io: bool = False, per_channel: bool = True,
              keep_float: Sequence[str] = ()) -> bytes:
    """Convert a Keras model; int8 and int16x8 need `calibration` images (preprocessed, NHWC
    float32).

    int8 is full-integer with builtin int8 kernels only: no SELECT_TF_OPS, no float
    fallback, so an op the converter cannot quantise fails the conversion instead of
    silently staying float. Its input and output are int8 unless `float_io`. int16x8 is the
    same with int16 activations (and int16 input and output).

    `keep_float` (integer precisions only) names tensors (as edgeconv.quant.layers reports them) whose
    ops stay float: selective quantisation, for an accuracy budget. Float kernels are then
    allowed, and TensorFlow's debugger that does it gives the file float input and output.
    """
    converter = tflite_converter(model, precision, calibration, float_io=float_io,
                                 per_channel=per_channel)
    failure = None
    with captured_output() as output:
        try:
            if keep_float:
                tf = require("tensorflow", extra="train")
                converter.target_spec.supported_ops = [*converter.target_spec.supported_ops,
                                                       tf.lite.OpsSet.TFLITE_BUILTINS]
                content = quantization_debugger(
                    converter, calibration, tf.lite.experimental.QuantizationDebugOptions(
                        denylisted_nodes=list(keep_float))).get_nondebug_quantized_model()
            else:
                content = converter.convert()
            return raise_softmax_input_scales(content) if precision == "int8" else content
        except Exception as exc:  # noqa: BLE001 - the converter raises many types
            failure = exc
    # The converter's own last words (captured once the block exits) say more than the
    # exception, which is often a generic ConverterError.
    reason = output.reason() or one_line(failure)
    # The ops it could not take are listed on their own lines ("TF Select ops: Erf"):
    # named in the message, so that a user's model says which layer to change.
    ops = [" ".join(line.split()) for line in output.text.splitlines()
           if line.strip().startswith(("TF Select ops:", "Flex ops:", "Custom ops:"))]
    if ops:
        reason = f"{reason} ({'; '.join(ops)[:200]})"
    raise EdgeconvError(f"TFLite {precision} conversion of {model.name} failed: {reason}")


def tflite_converter(model, precision: str, calibration: np.ndarray | None, *, float_io: bool,
                     per_channel: bool):
    """A TFLiteConverter set up for `precision` (what to_tflite and the debugger both start
    from)."""
    if precision not in PRECISIONS:
        raise EdgeconvError(f"unknown TFLite precision '{precision}'; use one of"
                            f" {', '.join(PRECISIONS)}")
    tf = require("tensorflow", extra="train")
    converter = tf.lite.TFLiteConverter.from_keras_model(_batch_one(model))
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision in ("int8", "int16x8"):
        if calibration is None or len(calibration) == 0:
            raise EdgeconvError(f"{precision} quantisation needs calibration images; none were"
                                " given")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: one_at_a_time(calibration)
        # 16x8: int16 activations, int8 weights (int64 biases), every op or the conversion
        # fails; the converter calls the mode experimental, LiteRT and TFLite Micro run it.
        ops, io_type = ((tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.int8) if precision == "int8"
                        else (tf.lite.OpsSet
                              .EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                              tf.int16))
        converter.target_spec.supported_ops = [ops]
        if precision == "int16x8":
            # CMSIS-NN's int16 FULLY_CONNECTED refuses per-channel weights (AllocateTensors
            # fails on the board; TFLite Micro's host reference kernels take them):
            # dense layers get one weight scale each (tests/test_kernel_table.py).
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        if not float_io:
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
        # Per-channel weight scales are the TFLite default; per-tensor is what some older
        # accelerators and MCU kernels require, at a cost in accuracy on depthwise layers.
        converter._experimental_disable_per_channel = not per_channel
    return converter


def quantization_debugger(converter, calibration: np.ndarray, options):
    """TensorFlow's QuantizationDebugger over `converter`, fed the calibration images: it
    makes selectively quantised files here, and per-layer reports in edgeconv.quant."""
    tf = require("tensorflow", extra="train")
    return tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: one_at_a_time(calibration),
        debug_options=options)


def _batch_one(model):
    """The same layers and weights behind an input of batch size 1."""
    k = keras()
    inputs = k.Input(batch_shape=(1, *model.input_shape[1:]), name="input")
    return k.Model(inputs, model(inputs, training=False), name=model.name)


def one_at_a_time(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """A representative dataset as TensorFlow takes it: one batch-1 float32 image per step."""
    for image in images:
        yield [image[np.newaxis].astype(np.float32)]


# TFLite Micro's int8 SOFTMAX and LOG_SOFTMAX compute their input multiplier with
# QuantizeMultiplierGreaterThanOne(beta * input_scale * 2**26), a TFLITE_CHECK that calls
# abort() -- no message, whatever the arena -- unless that product exceeds 1
# (kernels/internal/quantization_util.cc: PreprocessSoftmaxScaling, with
# kScaledDiffIntegerBits = 5; CMSIS-NN's softmax goes through the same code).
# The converter gives a tensor whose calibrated range is under 1e-6 the range 2e-6
# (kNearZeroTolerance), i.e. scale 2e-6 / 255 = 7.8e-9, below this floor of 1.49e-8:
# near-constant logits, as untrained MobileNets give (their activations shrink ~10x per
# depthwise block, to ~1e-19), make a file LiteRT runs and TFLite Micro aborts on.
TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA = 2.0 ** -26

# Ops TFLite Micro runs by copying int8 bytes: input and output must share one scale, so
# raising a softmax input's scale raises theirs back to the op that requantises.
_SAME_SCALE_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
# Ops whose int8 kernels rescale to whatever output scale the file gives (multipliers are
# computed from the tensors' scales when TFLite Micro prepares them).
_RESCALING_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "ADD")


@dataclass(frozen=True)
class SoftmaxBelowFloor:
    """An int8 softmax whose input scale TFLite Micro's kernel aborts on."""

    subgraph: int
    operator: int
    op_name: str  # SOFTMAX or LOG_SOFTMAX
    tensor: int
    tensor_name: str
    scale: float
    beta: float

    @property
    def min_scale(self) -> float:
        """The scale TFLite Micro needs to exceed (none does for a beta <= 0)."""
        return TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA / self.beta if self.beta > 0 else np.inf

    def reason(self) -> str:
        return (f"TFLite Micro's int8 {self.op_name} kernel aborts on it: input"
                f" '{self.tensor_name}' has scale {self.scale:.3g}, not above the"
                f" {self.min_scale:.3g} (2^-26 / beta) it needs (near-constant logits:"
                f" calibrated range {255 * self.scale:.2g})")


def softmax_inputs_below_tflm_floor(model: bytes | bytearray, schema) -> list[SoftmaxBelowFloor]:
    """Every int8 SOFTMAX / LOG_SOFTMAX in a .tflite file whose input scale TFLite Micro
    aborts on. `schema` is a generated TFLite schema module (TensorFlow's or TFLite Micro's
    `schema_py_generated`): each side reads with the one it already has loaded. A file the
    schema cannot read gives none: TFLite Micro's own verifier then speaks."""
    try:
        return _softmax_inputs_below_floor(model, schema)
    except Exception:  # noqa: BLE001 - a malformed flatbuffer fails in many ways
        return []


def _softmax_inputs_below_floor(model: bytes | bytearray, schema) -> list[SoftmaxBelowFloor]:
    root = schema.Model.GetRootAsModel(model, 0)
    codes = [_op_name(root.OperatorCodes(i), schema) for i in range(root.OperatorCodesLength())]
    found = []
    for g in range(root.SubgraphsLength()):
        graph = root.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            name = codes[op.OpcodeIndex()]
            if name not in ("SOFTMAX", "LOG_SOFTMAX") or op.InputsLength() == 0:
                continue
            tensor = graph.Tensors(op.Inputs(0))
            scales = _scales(tensor)
            if tensor.Type() != schema.TensorType.INT8 or scales is None or len(scales) != 1:
                continue
            beta = _softmax_beta(op, schema) if name == "SOFTMAX" else 1.0
            scale = float(scales[0])
            if not scale * beta > TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA:
                found.append(SoftmaxBelowFloor(g, o, name, op.Inputs(0),
                                               (tensor.Name() or b"").decode(errors="replace"),
                                               scale, beta))
    return found


def raise_softmax_input_scales(content: bytes, schema=None) -> bytes:
    """`content` with each int8 softmax input scale below TFLite Micro's floor raised to just
    above it, so TFLite Micro loads the file instead of aborting.

    Lossless in int8: a scale this small spans under 4e-6 over all 256 levels, so exp() of
    any two inputs differs by under 4e-6 relative, far below the int8 output's step
    (1/256); the softmax output is the same uniform distribution either way. The raise goes
    back through RESHAPE-like ops to the op that requantises; where the graph is not of
    that simple form the file is left as it was (TFLite Micro then names the reason).
    `schema` as in `softmax_inputs_below_tflm_floor` (default: TensorFlow's).
    """
    if schema is None:  # TensorFlow's, which a conversion has loaded already
        schema = require("tensorflow.lite.python.schema_py_generated", extra="train")
    below = softmax_inputs_below_tflm_floor(content, schema)
    if not below:
        return content
    patched = bytearray(content)
    root = schema.Model.GetRootAsModel(patched, 0)
    codes = [_op_name(root.OperatorCodes(i), schema) for i in range(root.OperatorCodesLength())]
    before = _all_scales(root)
    raised = set()
    for item in below:
        graph = root.Subgraphs(item.subgraph)
        chain = _same_scale_chain(graph, codes, item.tensor)
        if chain is None or item.beta <= 0:
            continue
        new_scale = _just_above(item.beta)
        for index in chain:
            # A writable view of the scale vector inside `patched` (flatbuffers reads vectors
            # with np.frombuffer); a one-scale tensor's vector is one float32.
            _scales(graph.Tensors(index))[0] = new_scale
            raised.add((item.subgraph, index))
    # The converter writes one scale vector per tensor; should a writer ever share one, the
    # raise would reach a tensor outside the chain: keep the file as it was then.
    after = _all_scales(root)
    if any(key not in raised and not np.array_equal(before[key], after[key]) for key in before):
        return content
    return bytes(patched)


def _all_scales(root) -> dict[tuple[int, int], np.ndarray]:
    return {(g, t): np.array(scales)  # copies: `root` reads a buffer about to change
            for g in range(root.SubgraphsLength())
            for t in range(root.Subgraphs(g).TensorsLength())
            if (scales := _scales(root.Subgraphs(g).Tensors(t))) is not None}


def _same_scale_chain(graph, codes: list[str], tensor: int) -> list[int] | None:
    """`tensor` and the tensors it takes its scale from through RESHAPE-like ops, up to a
    rescaling op (or a graph input); None if another op reads one of them or some op on the
    way is of another kind (changing the scale would then change what they compute)."""
    producers, readers = {}, {}
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        for i in range(op.OutputsLength()):
            producers[op.Outputs(i)] = o
        for i in range(op.InputsLength()):
            readers[op.Inputs(i)] = readers.get(op.Inputs(i), 0) + 1
    chain = []
    while True:
        if readers.get(tensor, 0) != 1 or tensor in chain:
            return None
        chain.append(tensor)
        if tensor not in producers:  # a graph input: whoever feeds it reads its scale
            return chain
        op = graph.Operators(producers[tensor])
        name = codes[op.OpcodeIndex()]
        if name in _RESCALING_OPS:
            return chain
        if name not in _SAME_SCALE_OPS:
            return None
        tensor = op.Inputs(0)


def _just_above(beta: float) -> np.float32:
    """The smallest float32 scale TFLite Micro accepts with `beta` (it multiplies in double)."""
    scale = np.float32(TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA / beta)
    while not float(scale) * beta > TFLM_SOFTMAX_MIN_SCALE_TIMES_BETA:
        scale = np.nextafter(scale, np.float32(np.inf))
    return scale


def _scales(tensor) -> np.ndarray | None:
    quantization = tensor.Quantization()
    if quantization is None or quantization.ScaleLength() == 0:
        return None
    return quantization.ScaleAsNumpy()


def _op_name(code, schema) -> str:
    # The builtin code moved to a 32-bit field at 127; older files keep it in the 8-bit one.
    number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    return next((k for k, v in vars(schema.BuiltinOperator).items() if v == number), "?")


def _softmax_beta(op, schema) -> float:
    table = op.BuiltinOptions()
    if op.BuiltinOptionsType() != schema.BuiltinOptions.SoftmaxOptions or table is None:
        return 1.0
    options = schema.SoftmaxOptions()
    options.Init(table.Bytes, table.Pos)
    return float(options.Beta())
