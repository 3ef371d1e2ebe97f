"""Export a model: TFLite and ONNX files at each precision, each measured in its own runtime
on the test images, listed in manifest.json. One loop for every source.

One module per job: `source` (the source protocol and the request checks; a source kind's
row in edgeconv.formats.SOURCE_KINDS names its opener: `zoo_source` for a zoo model, a run or
fresh weights, `keras_source` for a .keras / .h5 / SavedModel of the user's, `file_source`
for an .onnx / .tflite, taken in by `intake` and probed in a child by `probe`), `plan` (which
files, checked against the format table), `data` (the evaluation subset and calibration
draw), `convert` (the conversion session and each format's converter), `verify` (each file
run in its runtime), `budget` (the int8 `--max-drop` search), `manifest_data` (the
manifest's removal first and its document last), `run` (the order of work).

The names below are imported on first use, so that a child importing one module of the
package (`python -m edgeconv.export.probe`) does not load the whole pipeline.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExportConfig", "ExportResult", "export"]


def __getattr__(name: str) -> Any:
    if name in ("ExportConfig", "ExportResult"):
        from edgeconv.export import config

        return getattr(config, name)
    if name == "export":
        from edgeconv.export.run import export

        return export
    raise AttributeError(f"module 'edgeconv.export' has no attribute '{name}'")
