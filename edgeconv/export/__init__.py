"""Export a trained run: TFLite and ONNX files at each precision, each measured in its own
runtime on the test split, listed in manifest.json.

One module per job: `plan` (which files, checked against the format table), `source` (the
model: a run, a zoo name trained first, or untrained weights), `data` (test and calibration
images), `convert` (the conversion session and each format's converter), `verify` (each
file run in its runtime), `budget` (the int8 `--max-drop` search), `manifest_data` (the
manifest's removal first and its document last), `run` (the order of work).
"""

from edgeconv.export.config import ExportConfig, ExportResult
from edgeconv.export.run import export

__all__ = ["ExportConfig", "ExportResult", "export"]
