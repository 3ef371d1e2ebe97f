"""A TFLite file quantised by ai-edge-quantizer: layers that mix int8 and int16x8
activations, or weight ranges chosen by MSE or OCTAV instead of min/max.

TensorFlow's converter quantises a whole graph at one precision, on min/max ranges.
ai-edge-quantizer (Google's LiteRT quantiser) takes a float .tflite file and a recipe per
layer: int8 activations everywhere, and 16-bit activations (int8 weights) on the layers the
`--max-drop` search widens; it places the QUANTIZE ops that convert between the two at each
boundary. Its recipe also names the algorithm that picks each layer's quantisation
parameters: for the ops with weights, `MSE` (each channel's step set to 0.05408 x its RMS,
the library's fitted rule for the least squared error) or `OCTAV` (the OCTAV paper's
optimal clipping), which is what
`--calibration-method mse|octav` asks for; activations stay on min/max over every
calibration image either way (ai-edge-quantizer 0.10.0 applies both algorithms to weight
tensors only). Every op stays integer: an op it cannot quantise at the asked width would be
left float, and that is refused here (a float island is what the search exists to avoid).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from edgeconv._capture import captured_output
from edgeconv._lazy import require
from edgeconv.convert.tflite import raise_softmax_input_scales
from edgeconv.errors import EdgeconvError, one_line

QUANTIZER = "ai-edge-quantizer"
EXTRA = "mixed"  # the pip extra that installs it (pyproject.toml)
# Ops that only move or convert tensors: float in and out of them at the graph's float
# boundary is not float compute.
_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
# --calibration-method -> ai-edge-quantizer's algorithm (algorithm_manager.AlgorithmName)
ALGORITHMS = {"minmax": "MIN_MAX_UNIFORM_QUANT", "mse": "MSE", "octav": "OCTAV"}
# The ops whose weights MSE and OCTAV choose ranges for (both register these in 0.10.0);
# every other op keeps min/max.
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D_TRANSPOSE")


def to_tflite_mixed(fp32: bytes, calibration: np.ndarray, wide: Sequence[str], *,
                    per_channel: bool = True, method: str = "minmax",
                    activation_bits: int = 8) -> bytes:
    """`fp32` (a float .tflite file) quantised with `activation_bits` activations (8, or 16:
    int16x8 throughout), with the ops whose output tensors `wide` names at int16
    activations; weight ranges by `method` (ALGORITHMS); calibrated on `calibration` images
    (NHWC float32)."""
    if calibration is None or len(calibration) == 0:
        raise EdgeconvError("ai-edge-quantizer's static quantisation needs calibration images")
    if method not in ALGORITHMS:
        raise EdgeconvError(f"{QUANTIZER} has no calibration method '{method}'; use one of"
                            f" {', '.join(ALGORITHMS)}")
    quantizer = require("ai_edge_quantizer.quantizer", extra=EXTRA)
    qtyping = require("ai_edge_quantizer.qtyping", extra=EXTRA)
    algorithms = require("ai_edge_quantizer.algorithm_manager", extra=EXTRA).AlgorithmName
    algorithm = getattr(algorithms, ALGORITHMS[method])
    granularity = (qtyping.QuantGranularity.CHANNELWISE if per_channel
                   else qtyping.QuantGranularity.TENSORWISE)
    failure = None
    with captured_output() as output:
        try:
            engine = quantizer.Quantizer(bytearray(fp32))
            # The later config wins where both match: every op, then the wide layers.
            _static(engine, qtyping, ".*", activation_bits, granularity, algorithm)
            if wide:
                _static(engine, qtyping, scope_regex(wide), 16, granularity, algorithm)
            signature, input_name = _signature_input(fp32)
            samples = [{input_name: image[np.newaxis].astype(np.float32)}
                       for image in calibration]
            result = engine.quantize(_min_max(fp32, engine, {signature: samples}),
                                     enable_progress_report=False)
            content = bytes(result.quantized_model)
        except Exception as exc:  # noqa: BLE001 - the quantiser raises many types
            failure = exc
    if failure is not None:
        raise EdgeconvError(f"{QUANTIZER} could not make the {_what(wide, method)} file:"
                            f" {output.reason() or one_line(failure)}")
    narrow = [name for name in wide if _tensor_types(content).get(name) != "INT16"]
    if narrow:  # a name the recipe matched no op by: the search would measure plain int8
        raise EdgeconvError(f"{QUANTIZER} gave {len(narrow)} of the {len(wide)} layers asked"
                            f" no int16 activations ({narrow[0][:80]})")
    zero = zero_scales(content)
    if zero:  # MSE and OCTAV (0.10.0) give an all-zero weight channel scale 0; MSE a tiny one
        name, bad, channels = zero[0]
        raise EdgeconvError(f"{QUANTIZER} ({method}) gave {len(zero)} tensor(s) a zero or"
                            f" non-finite scale ({bad} of {channels} channels of"
                            f" {name.split(';')[-1][-60:]}), which no TFLite runtime computes"
                            " with; use --calibration-method minmax")
    floats = float_ops(content)
    if floats:
        raise EdgeconvError(f"{QUANTIZER} left {len(floats)} op(s) float ({', '.join(floats[:3])})"
                            f" in the {_what(wide, method)} file")
    return raise_softmax_input_scales(content)


def _what(wide: Sequence[str], method: str) -> str:
    """The file asked for, as messages name it."""
    return "mixed int8/int16x8" if wide else f"{method}-calibrated"


def _static(engine, qtyping, regex: str, bits: int, granularity, algorithm) -> None:
    """The recipe for the ops `regex` matches: `bits` activations and int8 weights, min/max
    for every op, then `algorithm` for the weights of WEIGHT_OPS."""
    ops = qtyping.TFLOperationName
    engine.add_static_config(regex, ops.ALL_SUPPORTED, bits, 8, granularity)
    if algorithm.name != "MIN_MAX_UNIFORM_QUANT":
        for op in WEIGHT_OPS:
            engine.add_static_config(regex, getattr(ops, op), bits, 8, granularity,
                                     algorithm_key=algorithm)
    if bits == 16:  # CMSIS-NN's int16 FULLY_CONNECTED refuses per-channel weights
        engine.add_static_config(regex, ops.FULLY_CONNECTED, 16, 8,
                                 qtyping.QuantGranularity.TENSORWISE, algorithm_key=algorithm)


def _min_max(fp32: bytes, engine, data: dict) -> dict:
    """Each tensor's min and max over every calibration image, as TensorFlow's converter
    calibrates the int8 file the search starts from. The quantiser's own `calibrate` keeps
    a moving average (factor 0.95) of per-image ranges instead: with one image per step it
    forgets the extremes, and clipped the outlier model's hidden layer at 3.35 where its
    values reach 4.55 (the mixed file's logits then sat 0.40 RMSE from float; 0.03 for
    TensorFlow's int16x8 file)."""
    calibrator = require("ai_edge_quantizer.calibrator", extra=EXTRA)
    qsv_utils = require("ai_edge_quantizer.utils.qsv_utils", extra=EXTRA)
    run = calibrator.Calibrator(fp32, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    # the recipe says which tensors to calibrate; ai-edge-quantizer 0.10.0 (pinned) exposes
    # it only as the Quantizer's attribute
    run.calibrate(data, engine._recipe_manager)
    return run.get_model_qsvs()


def scope_regex(tensors: Sequence[str]) -> str:
    """The recipe regex that matches exactly the ops producing `tensors`: ai-edge-quantizer
    names an op by its output tensors, joined and ended by ';'."""
    return "^(?:" + "|".join(re.escape(name) for name in tensors) + ");$"


def float_ops(content: bytes) -> list[str]:
    """Ops of a .tflite file that compute in float (their output is float32), other than the
    QUANTIZE / DEQUANTIZE at a float input or output: 'OP (output tensor)'."""
    schema = require("tensorflow.lite.python.schema_py_generated", extra="train")
    root = schema.Model.GetRootAsModel(content, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    found = []
    for g in range(root.SubgraphsLength()):
        graph = root.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = root.OperatorCodes(op.OpcodeIndex())
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
            if name in _BOUNDARY_OPS or op.OutputsLength() == 0:
                continue
            tensor = graph.Tensors(op.Outputs(0))
            if tensor.Type() == schema.TensorType.FLOAT32:
                found.append(f"{name} ({(tensor.Name() or b'').decode(errors='replace')})")
    return found


def zero_scales(content: bytes) -> list[tuple[str, int, int]]:
    """Tensors of a .tflite file whose quantisation has a scale that is not a positive
    finite number (a bias then loses its value, an output reads its zero point): (name,
    such channels, channels)."""
    schema = require("tensorflow.lite.python.schema_py_generated", extra="train")
    graph = schema.Model.GetRootAsModel(content, 0).Subgraphs(0)
    found = []
    for t in range(graph.TensorsLength()):
        quant = graph.Tensors(t).Quantization()
        if quant is None or not quant.ScaleLength():
            continue
        scales = quant.ScaleAsNumpy()
        bad = int(np.sum(~(np.isfinite(scales) & (scales > 0))))
        if bad:
            name = (graph.Tensors(t).Name() or b"").decode(errors="replace")
            found.append((name, bad, int(scales.size)))
    return found


def _tensor_types(content: bytes) -> dict[str, str]:
    """Each tensor's name -> its type's name (INT8, INT16, FLOAT32...), first subgraph."""
    schema = require("tensorflow.lite.python.schema_py_generated", extra="train")
    graph = schema.Model.GetRootAsModel(content, 0).Subgraphs(0)
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    return {(graph.Tensors(t).Name() or b"").decode(errors="replace"):
            types.get(graph.Tensors(t).Type(), "?") for t in range(graph.TensorsLength())}


def _signature_input(content: bytes) -> tuple[str, str]:
    """The serving signature's key and its one input's name (what the quantiser's calibration
    is keyed by)."""
    interpreter_module = require("ai_edge_litert.interpreter", extra="litert")
    signatures = interpreter_module.Interpreter(model_content=content).get_signature_list()
    if len(signatures) != 1:
        raise EdgeconvError(f"the float TFLite file has {len(signatures)} signatures; the mixed"
                            " quantiser needs one")
    key, spec = next(iter(signatures.items()))
    if len(spec["inputs"]) != 1:
        raise EdgeconvError("the mixed quantiser calibrates a model of one input")
    return key, spec["inputs"][0]
