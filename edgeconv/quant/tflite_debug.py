"""Per-layer int8 error of a TFLite file, by TensorFlow's QuantizationDebugger.

The debugger re-runs the int8 conversion of the Keras model with the file's settings and
calibration images, and compares each quantised op's output with the float op's output on
the same input (so the weight and activation quantisation of that op alone).
"""

from __future__ import annotations

import csv
import io

from edgeconv._capture import captured_output
from edgeconv._lazy import require
from edgeconv.convert.tflite import quantization_debugger, tflite_converter
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.quant.layers import FloatSource, LayerErrors
from edgeconv.quant.metrics import flat, sqnr_db

METHOD = ("TensorFlow QuantizationDebugger: each int8 op against the float op on the same"
          " input (re-quantised from model.keras with the export's settings)")


def layer_errors(source: FloatSource, int8: bytes) -> LayerErrors:
    """Per quantised op: rmse, rmse_per_scale, sqnr_db, scale, over the calibration images.

    `int8` is not read: the debugger needs the float and int8 models side by side, so it
    makes the int8 one again, the same way.
    """
    # The model first: loading it imports TensorFlow with its start-up chatter silenced.
    model, settings = source.keras_model(), source.settings
    tf = require("tensorflow", extra="train")
    converter = tflite_converter(model, "int8", source.calibration,
                                 float_io=settings.float_io, per_channel=settings.per_channel)
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


def _sqnr_db(floats, quants, scale, zero_point) -> float:
    """The debugger's direct-compare metric: an op's int8 output against its float output."""
    return sqnr_db(flat(floats), (flat(quants) - zero_point) * scale)
