"""Keras -> TFLite at fp32, fp16, dynamic-range or full-integer int8.

The converted graph has batch 1, what a device runs: a free batch dimension makes the
converter add SHAPE / PACK / STRIDED_SLICE ops around every reshape, which costs time on a
board and kernels on a microcontroller. Height and width stay free when the Keras model
leaves them free (gap-mnist), so the file accepts `resize_tensor_input`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from edgeconv._capture import captured_output
from edgeconv._lazy import keras, require
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.formats import FORMATS

PRECISIONS = FORMATS["tflite"].precisions


def to_tflite(model, precision: str = "fp32", calibration: np.ndarray | None = None, *,
              float_io: bool = False, per_channel: bool = True,
              keep_float: Sequence[str] = ()) -> bytes:
    """Convert a Keras model; int8 needs `calibration` images (preprocessed, NHWC float32).

    int8 is full-integer with builtin int8 kernels only: no SELECT_TF_OPS, no float
    fallback, so an op the converter cannot quantise fails the conversion instead of
    silently staying float. Its input and output are int8 unless `float_io`.

    `keep_float` (int8 only) names tensors (as edgeconv.quant.layers reports them) whose
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
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                       tf.lite.OpsSet.TFLITE_BUILTINS]
                return quantization_debugger(
                    converter, calibration, tf.lite.experimental.QuantizationDebugOptions(
                        denylisted_nodes=list(keep_float))).get_nondebug_quantized_model()
            return converter.convert()
        except Exception as exc:  # noqa: BLE001 - the converter raises many types
            failure = exc
    # The converter's own last words (captured once the block exits) say more than the
    # exception, which is often a generic ConverterError.
    reason = output.reason() or one_line(failure)
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
    elif precision == "int8":
        if calibration is None or len(calibration) == 0:
            raise EdgeconvError("int8 quantisation needs calibration images; none were given")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: one_at_a_time(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if not float_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
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
