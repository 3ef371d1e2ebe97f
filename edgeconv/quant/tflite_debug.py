"""Per-layer int8 error of a TFLite file, by TensorFlow's QuantizationDebugger.

The debugger re-runs the int8 conversion of the Keras model with the file's settings and
calibration images, and compares each quantised op's output with the float op's output on
the same input (so the weight and activation quantisation of that op alone).
"""

from __future__ import annotations

import csv
import io

import numpy as np

from edgeconv._capture import captured_output
from edgeconv._lazy import require
from edgeconv.convert.tflite import quantization_debugger, tflite_converter
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.quant.layers import FloatSource, LayerErrors
from edgeconv.quant.metrics import flat, sqnr_db

METHOD = ("TensorFlow QuantizationDebugger: each quantised op against the float op on the"
          " same input (re-quantised from model.keras with the export's settings)")


FILE_METHOD = ("each quantised tensor of the file, dequantised, against the same tensor of"
               " the fp32 TFLite file on the same input (LiteRT, every tensor kept): the error"
               " accumulated up to that layer")


def layer_errors(source: FloatSource, int8: bytes, precision: str = "int8") -> LayerErrors:
    """Per quantised op: rmse, rmse_per_scale, sqnr_db, scale, over the calibration images.

    An int8 file is not read: the debugger needs the float and int8 models side by side,
    so it makes the int8 one again, the same way. TensorFlow's debugger quantises at int8
    whatever its converter says, so an int16x8 file, a mixed one (`precision` "mixed") or
    one calibrated by another method than min/max is compared tensor by tensor with the
    fp32 file itself (`file_layer_errors`).
    """
    if precision != "int8" or source.settings.method != "minmax":
        # ai-edge-quantizer's file (MSE / OCTAV weight ranges): TensorFlow would re-make a
        # different one
        return file_layer_errors(source, int8)
    # The model first: loading it imports TensorFlow with its start-up chatter silenced.
    model, settings = source.keras_model(), source.settings
    tf = require("tensorflow", extra="train")
    # The debugger compares op by op inside the graph; TensorFlow's io rewrite it runs
    # refuses int16 input ("Model input is not dequantized"), so int16x8 keeps float io.
    converter = tflite_converter(model, precision, source.calibration,
                                 float_io=settings.float_io or precision != "int8",
                                 per_channel=settings.per_channel)
    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"sqnr_db": _sqnr_db})
    failure = None
    with captured_output() as output:
        try:
            debugger = quantization_debugger(converter, source.calibration, options)
            # TF 2.21's debugger, built from a converter, drops the preserve-all-tensors flag
            # its direct-compare metrics need: the float side then reads reused buffers
            # (garbage such as 8e37). Rebuild its interpreter with the flag.
            debugger._quant_interpreter = tf.lite.Interpreter(
                model_content=debugger.quant_model, experimental_preserve_all_tensors=True)
            debugger.run()
            table = io.StringIO()
            debugger.layer_statistics_dump(table)
        except Exception as exc:  # noqa: BLE001 - the converter raises many types
            failure = exc
    if failure is not None:
        reason = output.reason() or one_line(failure)
        raise EdgeconvError(f"TFLite quantisation debugging of {model.name} failed: {reason}")
    rows = []
    for row in csv.DictReader(io.StringIO(table.getvalue())):
        rmse, scale = float(row["mean_squared_error"]) ** 0.5, float(row["scale"])
        rows.append({"name": row["tensor_name"], "op": row["op_name"], "rmse": rmse,
                     "rmse_per_scale": rmse / scale if scale else None,
                     "sqnr_db": float(row["sqnr_db"]), "scale": scale})
    return LayerErrors(METHOD, rows)


def file_layer_errors(source: FloatSource, content: bytes) -> LayerErrors:
    """Each integer activation of the .tflite `content` against the same-named tensor of the
    source's fp32 TFLite file, both run in LiteRT on the calibration images."""
    from edgeconv.runtimes.litert import _interpreter_api

    fp32 = source.float_file("tflite")
    if fp32 is None:
        raise EdgeconvError(f"{source.origin}: no fp32 TFLite file to compare with")
    interpreter_class, resolvers = _interpreter_api()[:2]
    # No XNNPACK: a delegated graph's inner tensors are not kept, and read as stale memory.
    options = {"experimental_preserve_all_tensors": True,
               "experimental_op_resolver_type": resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    failure = None
    with captured_output() as output:
        try:
            quantised = interpreter_class(model_content=content, **options)
            floating = interpreter_class(model_content=fp32, **options)
            for interpreter in (quantised, floating):
                interpreter.allocate_tensors()
            pairs = _same_named(quantised, floating)
            producers = {o: op["op_name"] for op in quantised._get_ops_details()
                         for o in op["outputs"]}
            collected: dict[int, tuple[list, list]] = {q["index"]: ([], []) for q, _ in pairs}
            for image in source.calibration:
                for interpreter in (quantised, floating):
                    _run(interpreter, image[np.newaxis].astype(np.float32))
                for q, f in pairs:
                    scale, zero = q["quantization"]
                    values = quantised.get_tensor(q["index"]).astype(np.float64)
                    collected[q["index"]][0].append((values - zero) * scale)
                    collected[q["index"]][1].append(floating.get_tensor(f["index"]))
        except Exception as exc:  # noqa: BLE001 - LiteRT raises many types
            failure = exc
    if failure is not None:
        reason = output.reason() or one_line(failure)
        raise EdgeconvError(f"per-layer comparison of the TFLite file failed: {reason}")
    rows = []
    for q, _ in pairs:
        after, before = (flat(v) for v in collected[q["index"]])
        scale = float(q["quantization"][0])
        rmse = float(np.sqrt(np.mean(np.square(before - after))))
        rows.append({"name": q["name"], "op": producers.get(q["index"], "?"), "rmse": rmse,
                     "rmse_per_scale": rmse / scale if scale else None,
                     "sqnr_db": sqnr_db(before, after), "scale": scale,
                     "dtype": np.dtype(q["dtype"]).name})
    return LayerErrors(FILE_METHOD, rows)


def _same_named(quantised, floating) -> list[tuple[dict, dict]]:
    """(integer activation, float tensor of the same name and shape): the layers to compare
    (weights and biases are constants: not activations)."""
    floats = {t["name"]: t for t in floating.get_tensor_details()
              if np.dtype(t["dtype"]) == np.float32}
    produced = {o for op in quantised._get_ops_details() for o in op["outputs"]}
    return [(t, floats[t["name"]]) for t in quantised.get_tensor_details()
            if t["index"] in produced and np.dtype(t["dtype"]) in (np.int8, np.int16)
            and t["quantization"][0] and t["name"] in floats
            and tuple(floats[t["name"]]["shape"]) == tuple(t["shape"])]


def _run(interpreter, x: np.ndarray) -> None:
    """One invoke on a float image, quantised first where the input is integer."""
    detail = interpreter.get_input_details()[0]
    if np.dtype(detail["dtype"]) != np.float32:
        scale, zero = detail["quantization"]
        limits = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale) + zero, limits.min, limits.max)
    interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
    interpreter.invoke()


def _sqnr_db(floats, quants, scale, zero_point) -> float:
    """The debugger's direct-compare metric: an op's int8 output against its float output."""
    return sqnr_db(flat(floats), (flat(quants) - zero_point) * scale)
