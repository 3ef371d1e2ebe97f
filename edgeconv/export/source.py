"""Where an export starts, as the one export loop (edgeconv.export.run) sees it.

A source is one row of edgeconv.formats.SOURCE_KINDS: a zoo model (its name, a training run,
fresh weights) or a model file of the user's (.keras, .h5, a SavedModel, .onnx, .tflite).
Each kind's opener returns a `Source`, which yields, in the loop's order:

1. `load(config, scratch)`: the data (edgeconv.data.measured's protocol) and whatever the
   float reference needs (a Keras model, or the user's file checked and privately copied);
2. `reference(run_dir, data)`: the float reference, run on the measured images (a
   Verifier), and the export's reference files, written;
3. `session(calibration, settings)`: the ConversionSession the format table's converters
   make every other file from;
4. `model_block()` / `input_block(data)`: the manifest's model and input blocks.

What a kind can become is the table's `becomes`; the request is checked against it here,
before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError
from edgeconv.export.config import ExportConfig
from edgeconv.formats import CALIBRATED, FLOAT, SourceKind, resolve
from edgeconv.manifest import Artifact
from edgeconv.progress import Progress

DEFAULT_RUNS_DIR = Path("runs")  # as edgeconv.train's (not imported: it pulls in the zoo)


@dataclass
class Reference:
    """The float reference of an export: what every file is measured against, the files
    that stand for it in the manifest, and the notes about it."""

    verifier: Any  # edgeconv.export.verify.Verifier
    artifacts: list[Artifact] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # (format, precision) of a job the reference already is (a user's fp32 ONNX file)
    made: tuple[tuple[str, str], ...] = ()


class Source:
    """The base of every kind's source (module docstring); subclasses fill in the steps."""

    kind: SourceKind
    name: str  # the export's model name: the zoo name, or the file's tidy stem
    run_dir: Path
    seed: int
    trained: bool = True
    trained_now: bool = False

    @property
    def shown(self) -> str:
        """How messages name the source: the zoo name, or the user's file."""
        return self.name

    def load(self, config: ExportConfig, scratch: Path):
        raise NotImplementedError

    def reference(self, run_dir: Path, data) -> Reference:
        raise NotImplementedError

    def session(self, calibration, settings):
        raise NotImplementedError

    def model_block(self) -> dict[str, Any]:
        raise NotImplementedError

    def input_block(self, data) -> dict[str, Any]:
        raise NotImplementedError

    def jobs(self, planned: list[tuple[str, str]], reference: Reference
             ) -> list[tuple[str, str]]:
        """The planned (format, precision) pairs this kind becomes, less the reference."""
        return [(fmt, precision) for fmt, precision in planned
                if precision in self.kind.becomes.get(fmt, ()) and
                (fmt, precision) not in reference.made]


def open_source(config: ExportConfig, progress: Progress) -> Source:
    """The source `config.target` names, through its kind's opener (the table's row); its
    request is checked first."""
    from edgeconv.formats import source_kind_of

    kind = source_kind_of(config.target, untrained=config.untrained)
    check_request(config, kind)
    return resolve(kind.opener)(config, kind, progress)


def check_request(config: ExportConfig, kind: SourceKind) -> None:
    """What this kind of source cannot be asked for, before anything is read."""
    if not kind.user_file:
        return
    shown = Path(config.target).name
    if not config.data_given:
        raise EdgeconvError(f"exporting {shown} needs --data: the images it is"
                            " measured (and int8 calibrated) on: a folder with one sub-folder"
                            " per class, a folder of images (no labels), an .npz with x and y,"
                            " or a dataset name")
    if config.untrained or config.model_options:
        raise EdgeconvError(f"{shown} is a model file: --untrained and the zoo's"
                            " model options do not apply")
    if config.max_drop is not None:
        from edgeconv.data.user import has_labels

        if not has_labels(config.dataset):
            raise EdgeconvError(f"--max-drop needs labelled images (accuracy), and --data"
                                f" {config.dataset} has none: give a folder with one"
                                " sub-folder per class, or an .npz with y")
    asked = set(config.precisions)
    if measure_only(config, kind):
        if asked:
            raise EdgeconvError(f"{shown} is measured as it is (--measure-only, or a"
                                f" {kind.title}): --{', --'.join(sorted(asked))} would convert"
                                " it")
        return
    # Of the formats asked for, those it cannot become are left out; none at all is refused.
    homeless = sorted(asked - {p for fmt, precisions in kind.becomes.items()
                               if fmt in config.formats for p in precisions})
    formats = [] if set(config.formats) & set(kind.becomes) else list(config.formats)
    if homeless or formats:
        becomes = ", ".join(f"{fmt} {'/'.join(p for p in precisions if p != FLOAT)}"
                            for fmt, precisions in kind.becomes.items())
        raise EdgeconvError(f"from a {kind.title} edgeconv makes {becomes} only (TFLite from"
                            " ONNX needs a converter edgeconv does not adopt; see"
                            " docs/own-model.md); drop "
                            + " / ".join([f"--{p}" for p in homeless]
                                         + [f"--formats {f}" for f in formats]))


def measure_only(config: ExportConfig, kind: SourceKind) -> bool:
    """The file is measured as it is: converted to nothing."""
    return config.measure_only or not kind.converts()


def calibrated(config: ExportConfig, kind: SourceKind) -> bool:
    """The export makes a calibrated (int8) file, so it draws calibration images."""
    return not measure_only(config, kind) and bool(config.precisions & CALIBRATED)


def check_holds(run_dir: Path, model: str) -> None:
    """An export of `model` must not replace another model's export at --out."""
    from edgeconv.manifest import MANIFEST, load_manifest

    if not (run_dir / MANIFEST).is_file():
        return
    try:
        held = load_manifest(run_dir).model
    except EdgeconvError:
        return  # unreadable: it vouches for nothing, and the export replaces it
    check_model(held, model, run_dir, "export")


def check_model(held: str, wanted: str, run_dir: Path, what: str) -> None:
    if held != wanted:
        raise EdgeconvError(f"{run_dir} holds a {held} {what}, not {wanted}: export it with"
                            f" `edgeconv export {run_dir}`, or give {wanted} another --out")

