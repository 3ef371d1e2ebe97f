"""Model conversion: Keras -> TFLite (fp32, fp16, dynamic, int8), Keras -> ONNX (fp32, int8).

Each function takes a Keras model (and calibration images for int8) and returns the file's
bytes; writing them, atomically, is the exporter's job (edgeconv.export.convert picks the
function through the format table). Per-layer int8 error reports are in edgeconv.quant.
TensorFlow, tf2onnx and onnxruntime are imported only when a conversion runs.
"""

from edgeconv.convert.onnx import CALIBRATION_METHODS, OPSET, quantize_onnx, to_onnx
from edgeconv.convert.tflite import PRECISIONS as TFLITE_PRECISIONS
from edgeconv.convert.tflite import to_tflite

__all__ = ["CALIBRATION_METHODS", "OPSET", "TFLITE_PRECISIONS", "quantize_onnx", "to_onnx",
           "to_tflite"]
