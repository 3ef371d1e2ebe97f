"""A Keras model file of the user's as an export's source: `.keras` (Keras 3, safe mode),
`.h5` (legacy HDF5) or a SavedModel directory (inference-only), loaded with
edgeconv.export.user_model and converted to every format like a zoo model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.export.config import ExportConfig
from edgeconv.export.source import (
    DEFAULT_RUNS_DIR, Reference, Source, check_holds,
)
from edgeconv.export.user_model import UserSource, user_source
from edgeconv.formats import SourceKind
from edgeconv.progress import Progress


@dataclass
class KerasFileSource(Source):
    kind: SourceKind
    file: UserSource
    run_dir: Path
    name: str
    seed: int
    model: Any = None
    content: bytes = b""  # a .keras file's bytes: copied as the export's reference file

    @property
    def shown(self) -> str:
        return self.file.path.name

    def load(self, config: ExportConfig, scratch: Path):
        from edgeconv.data.user import load_user_data
        from edgeconv.export.user_model import keras_input, register_custom_objects
        from edgeconv.formats import resolve

        custom = register_custom_objects(config.custom_objects)
        self.model = resolve(self.kind.loader)(self.file, custom)
        data = load_user_data(config.dataset, keras_input(self.model), config.prep,
                              calibration=config.calibration_data, data_dir=config.data_dir,
                              seed=config.seed, need_labels=config.max_drop is not None,
                              eval_samples=config.eval_samples,
                              output_width=classifier_width(
                                  [tuple(t.shape) for t in self.model.outputs]))
        if self.kind.copied:  # read before the previous export goes (it may be its)
            self.content = self.file.read()
        return data

    def reference(self, run_dir: Path, data) -> Reference:
        from edgeconv.export.verify import Verifier

        verifier = Verifier(self.model, data)
        if self.content:  # the user's file, as the reference entry of the export
            keras_file = run_dir / f"{self.name}.keras"
            _atomic.write_bytes(keras_file, self.content)
            return Reference(verifier, [verifier.reference_artifact(keras_file)])
        return Reference(verifier, notes=[
            f"the float reference is {self.file.path.name} run in Keras ({self.kind.title});"
            " it is not one of the export's files"])

    def session(self, calibration, settings):
        from edgeconv.export.convert import ConversionSession

        return ConversionSession(self.model, calibration, settings)

    def model_block(self) -> dict[str, Any]:
        return user_model_block(self.name, self.file.record())

    def input_block(self, data) -> dict[str, Any]:
        return user_input_block(data)


def open_keras_file(config: ExportConfig, kind: SourceKind, progress: Progress
                    ) -> KerasFileSource:
    file = user_source(config.target, kind)
    run_dir = user_run_dir(config, file.name)
    return KerasFileSource(kind=kind, file=file, run_dir=run_dir, name=file.name,
                           seed=config.seed)


# --- what every user file's source shares --------------------------------------------------


def user_run_dir(config: ExportConfig, name: str) -> Path:
    """--out, or runs/NAME; checked before any work, and never another model's export."""
    run_dir = Path(config.out or DEFAULT_RUNS_DIR / name)
    _atomic.check_output_dir(run_dir, "--out")
    check_holds(run_dir, name)
    return run_dir


def user_model_block(name: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "options": {}, "trained": True, "source": record}


def user_input_block(data) -> dict[str, Any]:
    """The model's input as the user's images were prepared for it."""
    prep = data.preprocessing
    h, w, c = prep.input_shape
    shape = [None, c, h, w] if prep.layout == "NCHW" else [None, h, w, c]
    return {"shape": shape, "layout": prep.layout}


def classifier_width(shapes: list[tuple]) -> int | None:
    """The width of a single (N, K) output: a classifier's, whose labels must number K."""
    if len(shapes) == 1 and len(shapes[0]) == 2 and isinstance(shapes[0][1], int) \
            and shapes[0][1] >= 2:
        return shapes[0][1]
    return None
