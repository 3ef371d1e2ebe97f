"""A user's `.onnx` or `.tflite` file (made elsewhere, e.g. exported from PyTorch) as an
export's source. Never imports TensorFlow or Keras: a machine with onnxruntime alone runs it
(tests/test_own_model.py holds it to that in a process where `import tensorflow` fails).

The file is taken in first (edgeconv.export.intake: read once, hashed, privately copied,
checked for structure, probed in a child process); only the checked copy is opened. Its
precision is read from the file. It is its own float reference; an fp32 ONNX file is also
the graph the conversion session quantises int8 QDQ from, so `--int8` and `--max-drop`
serve it as they serve a converted graph. A `.tflite` (or `--measure-only`) is measured as
it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.export.config import ExportConfig
from edgeconv.export.keras_source import (
    classifier_width, user_input_block, user_model_block, user_run_dir,
)
from edgeconv.export.source import Reference, Source, calibrated
from edgeconv.export.user_model import tidy_name
from edgeconv.formats import FLOAT, SourceKind, get_format
from edgeconv.progress import Progress


@dataclass
class ModelFileSource(Source):
    kind: SourceKind
    path: Path  # the user's file, as given (only named, never opened after intake)
    run_dir: Path
    name: str
    seed: int
    taken: Any = None  # edgeconv.export.intake.TakenFile, once taken in
    content: bytes = b""

    @property
    def shown(self) -> str:
        return self.path.name

    def load(self, config: ExportConfig, scratch: Path):
        from edgeconv.data.user import load_user_data
        from edgeconv.export.intake import take_in

        self.taken = take_in(self.path, self.kind.reference, scratch)
        if calibrated(config, self.kind) and self.taken.precision != FLOAT:
            raise EdgeconvError(f"{self.path.name} is already {self.taken.precision}; --int8"
                                " quantises an fp32 ONNX file (or pass --measure-only)")
        data = load_user_data(config.dataset, self.taken.model_input(), config.prep,
                              calibration=config.calibration_data, data_dir=config.data_dir,
                              seed=config.seed, need_labels=config.max_drop is not None,
                              eval_samples=config.eval_samples,
                              output_width=classifier_width(
                                  [tuple(o["shape"]) for o in self.taken.outputs]))
        self.content = self.taken.copy.read_bytes()  # the bytes that were hashed and checked
        return data

    def reference(self, run_dir: Path, data) -> Reference:
        """The file itself, copied into the export and run: its outputs are the reference."""
        from edgeconv.export.convert import Converted
        from edgeconv.export.outputs import run_outputs
        from edgeconv.export.verify import Verifier

        fmt, precision = self.kind.reference, self.taken.precision
        path = run_dir / f"{self.name}_{precision}{get_format(fmt).suffix}"
        _atomic.write_bytes(path, self.content)
        outputs, (_, _, infos, signature, _) = run_outputs(path, data.test.x)
        verifier = Verifier(None, data, reference_outputs=outputs,
                            reference_names=_output_names(infos, signature))
        options = {"opset": self.taken.opset} if self.taken.opset is not None else {}
        artifact = verifier.measure(path, fmt, precision, Converted(self.content, options),
                                    reference=True)
        notes = []
        if precision != FLOAT:  # its accuracy is a measured file's, not a float model's
            verifier.float_accuracy = verifier.float_interval = None
            notes.append(f"{path.name} is {precision} (read from the file) and is its own"
                         " reference: accuracy only, no parity with a float model")
        return Reference(verifier, [artifact], notes, made=((fmt, precision),))

    def session(self, calibration, settings):
        """Conversions start from the user's fp32 graph (upgraded to the opset QDQ needs)."""
        from edgeconv.export.convert import ConversionSession

        floats = {}
        if self.kind.converts() and self.taken.precision == FLOAT:
            from edgeconv.convert.onnx import QDQ_OPSET, at_least_opset

            floats[self.kind.reference] = at_least_opset(self.content, QDQ_OPSET)
        return ConversionSession(None, calibration, settings, float_files=floats,
                                 input_name=self.taken.inputs[0]["name"],
                                 origin=self.path.name)

    def model_block(self) -> dict[str, Any]:
        record = {"kind": self.kind.name, "file": self.path.name, "sha256": self.taken.sha256}
        if self.taken.external_data:  # inlined into the export's files; named and hashed here
            record["external_data"] = [data.record() for data in self.taken.external_data]
        return user_model_block(self.name, record)

    def input_block(self, data) -> dict[str, Any]:
        return user_input_block(data)


def open_model_file(config: ExportConfig, kind: SourceKind, progress: Progress
                    ) -> ModelFileSource:
    path = Path(config.target).expanduser()
    name = tidy_name(path.stem)
    return ModelFileSource(kind=kind, path=path, run_dir=user_run_dir(config, name),
                           name=name, seed=config.seed)


def _output_names(outputs, signature: list[str | None]) -> list[str]:
    """A file's own output names, as the reference: the signature's where it names them
    (a TFLite file's Keras names), else the tensors' (output_K says only the position)."""
    return [name if name and not re.fullmatch(r"output_\d+", name) else info.name
            for info, name in zip(outputs, signature)]
