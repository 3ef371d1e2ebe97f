"""int8 diagnosis and repair, in one package (as onnxruntime keeps calibrate, qdq_loss_debug
and quantize together).

- `calibration`: the calibration images (drawn from the training split) and the checks that
  they match training;
- `settings`: how an int8 file was made (per channel, float io, calibration method);
- `metrics`: SQNR and friends;
- `layers`: per-layer int8 error, ONE dispatch over the format table to `tflite_debug`
  (TensorFlow's QuantizationDebugger) and `onnx_debug` (onnxruntime's qdq_loss_debug);
- `budget`: keep the worst layers float until an accuracy budget holds (`--max-drop`);
- `report`: `edgeconv quant-report`.

Importing the package imports none of them (and no TensorFlow).
"""
