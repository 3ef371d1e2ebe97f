"""The order of work of `edgeconv export PATH` for a model file of the user's.

The same guarantees as a zoo export (edgeconv.export.run): the run directory is checked
before any work, the previous manifest goes first (then the files it listed), each file
is written atomically and the manifest last. What differs is where the model and the
images come from:

- `.keras` / `.h5` / SavedModel: loaded (safe mode; `--custom-objects`), then every format
  and precision a zoo model gets, through the same ConversionSession. A file one converter
  cannot make is a note naming it and the reason; the others still export.
- `.onnx`: the file itself is the fp32 file and the float reference; `--int8` adds an ONNX
  QDQ file quantised by onnxruntime on the user's images. No TensorFlow is imported.
- `.tflite` (and `.onnx` with `--measure-only`): measured as it is, precision read from
  the file (edgeconv.export.onnx_only.precision_of).
"""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


from edgeconv import __version__, _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.export.config import ExportConfig, ExportResult
from edgeconv.export.convert import Converted
from edgeconv.export.manifest_data import VERSIONED, drop_previous_export
from edgeconv.data.user import has_labels
from edgeconv.export.user_model import TF_KINDS, UserSource, user_source
from edgeconv.export.verify import Verifier, notes_for
from edgeconv.formats import CALIBRATED, FLOAT, get_format
from edgeconv.manifest import Artifact, write_manifest
from edgeconv.progress import Progress, Steps
from edgeconv.quant.calibration import CalibrationSet, check_calibration
from edgeconv.runtimes.registry import installed_version

DEFAULT_RUNS_DIR = Path("runs")  # as edgeconv.train's (not imported: it pulls in the zoo)


def export_user(config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    progress = progress or Progress()
    started = time.perf_counter()
    source = user_source(config.target)
    _check_request(config, source)
    if config.out is not None:
        _atomic.check_output_dir(config.out, "--out")
    run_dir = Path(config.out or DEFAULT_RUNS_DIR / source.name)
    _atomic.check_output_dir(run_dir, "--out")
    from edgeconv.export.source import _check_holds

    _check_holds(run_dir, source.name)
    if source.kind in TF_KINDS:
        made = _keras_export(config, source, run_dir, progress)
    else:
        made = _file_export(config, source, run_dir, progress)
    artifacts, notes, data, verifier, budgets = made
    notes = [*notes, *verifier.notes]  # e.g. outputs matched by position only
    if not any(a.format != "keras" for a in artifacts):  # every converter refused
        refusals = [n for n in notes if " not made: " in n or " not kept: " in n]
        for copied in artifacts:  # the reference copy alone: no export to vouch for
            (run_dir / copied.path).unlink(missing_ok=True)
        raise EdgeconvError(f"no file of {source.path.name} could be made: "
                            + "; ".join(refusals)[:600])
    document = manifest_document(source, data, verifier, config)
    manifest = write_manifest(run_dir, document, artifacts)
    return ExportResult(run_dir=run_dir, manifest=manifest, model=source.name, trained=True,
                        trained_now=False, float_accuracy=verifier.float_accuracy,
                        artifacts=artifacts, notes=notes,
                        seconds=time.perf_counter() - started,
                        budget_met=all(budgets) if budgets else None)


def _check_request(config: ExportConfig, source: UserSource) -> None:
    """What a user model cannot be asked for, before anything is read."""
    if not config.data_given:
        raise EdgeconvError(f"exporting {source.path.name} needs --data: the images it is"
                            " measured (and int8 calibrated) on: a folder with one sub-folder"
                            " per class, a folder of images (no labels), an .npz with x and y,"
                            " or a dataset name")
    if config.untrained or config.model_options.get("alpha") is not None \
            or config.model_options.get("version") is not None \
            or config.model_options.get("groups") is not None:
        raise EdgeconvError(f"{source.path.name} is a model file: --untrained and the zoo's"
                            " model options do not apply")
    if config.max_drop is not None and not has_labels(config.dataset):
        raise EdgeconvError(f"--max-drop needs labelled images (accuracy), and --data"
                            f" {config.dataset} has none: give a folder with one sub-folder per"
                            " class, or an .npz with y")
    tf_free = source.kind in ("onnx", "tflite")
    measure_only = config.measure_only or source.kind == "tflite"
    asked = set(config.precisions)
    if measure_only and asked:
        raise EdgeconvError(f"{source.path.name} is measured as it is (--measure-only, or a"
                            f" .tflite): --{', --'.join(sorted(asked))} would convert it")
    if tf_free and not measure_only:
        if asked - {"int8"} or "onnx" not in config.formats:
            raise EdgeconvError("from an ONNX file edgeconv makes ONNX int8 only (TFLite from"
                                " ONNX needs a converter edgeconv does not adopt; see"
                                " docs/own-model.md); drop --fp16 / --dynamic / --formats"
                                " tflite")
        if config.max_drop is not None:
            raise EdgeconvError("--max-drop on an ONNX file is not supported yet; export"
                                " without it and read the per-file figures")


# --- Keras, HDF5, SavedModel ---------------------------------------------------------------


def _keras_export(config: ExportConfig, source: UserSource, run_dir: Path,
                  progress: Progress):
    from edgeconv.data.user import load_user_data
    from edgeconv.export.budget import hold_budget
    from edgeconv.export.convert import ConversionSession
    from edgeconv.export.plan import plan
    from edgeconv.export.user_model import (
        keras_input, load_user_keras, register_custom_objects,
    )

    jobs = plan(config)
    custom = register_custom_objects(config.custom_objects)
    model = load_user_keras(source, custom)
    width = _classifier_width([tuple(t.shape) for t in model.outputs])
    data = load_user_data(config.dataset, keras_input(model), config.prep,
                          calibration=config.calibration_data, data_dir=config.data_dir,
                          seed=config.seed, need_labels=config.max_drop is not None,
                          output_width=width)
    data, full = _evaluation(data, config)
    calibration, notes = _calibration(data, config)
    content = source.read() if source.kind == "keras" else b""  # copied as the reference
    notes = drop_previous_export(run_dir) + notes
    steps = Steps(progress, 1 + 2 * len(jobs), "export")
    steps.step("float reference (Keras)")
    verifier = Verifier(model, data)
    artifacts: list[Artifact] = []
    budgets: list[bool] = []
    if source.kind == "keras":  # the user's file, as the reference entry of the export
        keras_file = run_dir / f"{source.name}.keras"
        _atomic.write_bytes(keras_file, content)
        artifacts.append(verifier.reference_artifact(keras_file))
    else:
        notes.append(f"the float reference is {source.path.name} run in Keras"
                     f" ({source.kind}); it is not one of the export's files")
    session = ConversionSession(model, calibration, config.int8_settings)
    for fmt, precision in jobs:
        name = f"{source.name}_{precision}{get_format(fmt).suffix}"
        steps.step(f"{fmt} {precision}: converting")
        try:
            made = session.make(fmt, precision)
        except EdgeconvError as exc:  # one converter's refusal: the others still export
            notes.append(f"{name} not made: {exc}")
            steps.step(f"{fmt} {precision}: skipped")
            continue
        path = run_dir / name
        _atomic.write_bytes(path, made.content)
        steps.step(f"{fmt} {precision}: measuring on {len(data.test)} images")
        try:
            artifact = verifier.measure(path, fmt, precision, made)
        except EdgeconvError as exc:
            path.unlink(missing_ok=True)
            notes.append(f"{name} not kept: {exc}")
            continue
        if config.max_drop is not None and precision in CALIBRATED:
            try:
                artifact, met = hold_budget(artifact, made, path, fmt, session, verifier,
                                            config.max_drop, progress)
                budgets.append(met)
            except Exception as exc:  # noqa: BLE001 - e.g. no per-layer report (SavedModel)
                notes.append(f"{name}: --max-drop could not search ({str(exc)[:200]})")
        artifacts.append(artifact)
        notes.extend(notes_for(artifact, data.preprocessing.to_dict()))
    if full is not None:
        data = _SubsetMark(data, full)
    return artifacts, notes, data, verifier, budgets


# --- ONNX and TFLite files, without TensorFlow ---------------------------------------------


def _file_export(config: ExportConfig, source: UserSource, run_dir: Path,
                 progress: Progress):
    from edgeconv.data.user import load_user_data
    from edgeconv.export.onnx_only import model_input, opset_of, precision_of

    fmt = source.kind
    measure_only = config.measure_only or fmt == "tflite"
    mi, outputs = model_input(source.path, fmt)
    precision = precision_of(source.path, fmt)
    width = _classifier_width([tuple(t.shape) for t in outputs])
    data = load_user_data(config.dataset, mi, config.prep,
                          calibration=config.calibration_data, data_dir=config.data_dir,
                          seed=config.seed, output_width=width)
    data, full = _evaluation(data, config)
    want_int8 = not measure_only and "int8" in config.precisions
    if want_int8 and precision != FLOAT:
        raise EdgeconvError(f"{source.path.name} is already {precision}; --int8 quantises an"
                            " fp32 ONNX file (or pass --measure-only)")
    calibration, notes = _calibration(data, config) if want_int8 else (None, [])
    content = source.read()  # before the previous export goes: it may be that export's file
    notes = drop_previous_export(run_dir) + notes
    steps = Steps(progress, 2 + 2 * want_int8, "export")
    path = run_dir / f"{source.name}_{precision}{get_format(fmt).suffix}"
    _atomic.write_bytes(path, content)
    steps.step(f"{path.name}: the float reference" if precision == FLOAT
               else f"{path.name}: measured as it is")
    from edgeconv.export.outputs import run_outputs

    reference, (_, _, outputs, signature) = run_outputs(path, data.test.x)
    verifier = Verifier(None, data, reference_outputs=reference,
                        reference_names=_output_names(outputs, signature))
    options = {"opset": opset_of(content)} if fmt == "onnx" else {}
    steps.step(f"{path.name}: measuring on {len(data.test)} images")
    artifacts = [verifier.measure(path, fmt, precision, Converted(content, options),
                                  reference=True)]
    if precision != FLOAT:  # its accuracy is a measured file's, not a float model's
        verifier.float_accuracy = verifier.float_interval = None
        notes.append(f"{path.name} is {precision} (read from the file) and is its own"
                     " reference: accuracy only, no parity with a float model")
    if want_int8:
        steps.step(f"{fmt} int8: quantising (onnxruntime, QDQ)")
        int8_path = run_dir / f"{source.name}_int8.onnx"
        try:
            artifact = _onnx_int8(content, calibration, mi.name, int8_path, config, verifier)
        except EdgeconvError as exc:  # the fp32 file still exports
            int8_path.unlink(missing_ok=True)
            notes.append(f"{int8_path.name} not made: {exc}")
        else:
            steps.step(f"{fmt} int8: measured on {len(data.test)} images")
            artifacts.append(artifact)
            notes.extend(notes_for(artifact, data.preprocessing.to_dict()))
    if full is not None:
        data = _SubsetMark(data, full)
    return artifacts, notes, data, verifier, []


def _output_names(outputs, signature: list[str | None]) -> list[str]:
    """A file's own output names, as the reference: the signature's where it names them
    (a TFLite file's Keras names), else the tensors' (output_K says only the position)."""
    import re

    return [name if name and not re.fullmatch(r"output_\d+", name) else info.name
            for info, name in zip(outputs, signature)]


def _onnx_int8(content: bytes, calibration: CalibrationSet, input_name: str, path: Path,
               config: ExportConfig, verifier: Verifier) -> Artifact:
    from edgeconv.convert.onnx import boundary_quantization
    from edgeconv.export.onnx_only import opset_of, quantize_user_onnx

    settings = config.int8_settings
    int8 = quantize_user_onnx(content, calibration.images, input_name, method=settings.method,
                              per_channel=settings.per_channel)
    made = Converted(int8, {"opset": opset_of(int8), "per_channel": settings.per_channel,
                            "calibration": calibration.record(settings.method)},
                     quantization=boundary_quantization(int8))
    _atomic.write_bytes(path, int8)
    return verifier.measure(path, "onnx", "int8", made)


# --- shared --------------------------------------------------------------------------------


def _classifier_width(shapes: list[tuple]) -> int | None:
    """The width of a single (N, K) output: a classifier's, whose labels must number K."""
    if len(shapes) == 1 and len(shapes[0]) == 2 and isinstance(shapes[0][1], int) \
            and shapes[0][1] >= 2:
        return shapes[0][1]
    return None


class _SubsetMark:
    """The data, with the size of the whole measured set it was cut from."""

    def __init__(self, data, full: int):
        self.data, self.full = data, full

    def __getattr__(self, name):
        return getattr(self.data, name)


def _evaluation(data, config: ExportConfig):
    from edgeconv.data.user import evaluation_subset

    if config.eval_samples is None or config.eval_samples >= len(data.test):
        return data, None
    return evaluation_subset(data, config.eval_samples, seed=config.seed), len(data.test)


def _calibration(data, config: ExportConfig) -> tuple[CalibrationSet | None, list[str]]:
    if not config.precisions & CALIBRATED:
        return None, []
    from edgeconv.data.user import calibration_set

    split = ("calibration-data" if config.calibration_data else
             "test" if data.calibration_from_test else "train")
    drawn = calibration_set(data, config.calibration_samples, config.seed, split)
    labels = drawn.labels if len(drawn.labels) else None
    check = check_calibration(drawn.images, labels, data.train.x, data.preprocessing.to_dict(),
                              max(data.num_classes, 1))
    notes = [f"calibration: {w}" for w in check.warnings]
    if data.calibration_from_test:
        notes.append("calibration images were drawn from the measured images (their pixels,"
                     " never their labels); give --calibration-data DIR to keep them apart")
    return drawn, notes


def manifest_document(source: UserSource, data, verifier: Verifier,
                      config: ExportConfig) -> dict[str, Any]:
    prep = data.preprocessing
    h, w, c = prep.input_shape
    shape = [None, c, h, w] if prep.layout == "NCHW" else [None, h, w, c]
    document = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": source.name, "options": {}, "trained": True,
                  "source": source.record()},
        "input": {"shape": shape, "layout": prep.layout, "dtype": "float32",
                  "normalisation": {"scale": prep.scale, "offset": prep.offset,
                                    "formula": "x = uint8_pixel * scale + offset"},
                  "preprocessing": prep.to_dict()},
        "labels": list(data.class_names),
        "dataset": {**data.summary(), "seed": config.seed, "user": data.spec,
                    "evaluated_on": "test"},
        "float_accuracy": verifier.float_accuracy,
        "versions": {"edgeconv": __version__, "python": platform.python_version(),
                     **{name: v for name in VERSIONED if (v := installed_version(name))}},
    }
    if isinstance(data, _SubsetMark):
        document["dataset"]["test_subset"] = {"samples": len(data.test), "of": data.full,
                                              "seed": config.seed}
    return document
