"""The order of an export's work.

Ordered so that an interruption at any moment leaves nothing a manifest vouches for that is
not complete: the previous manifest goes first (then the files it listed), each new file is
written atomically, and the new manifest is written last.
"""

from __future__ import annotations

import time

from edgeconv import _atomic
from edgeconv.export.budget import hold_budget
from edgeconv.export.config import ExportConfig, ExportResult
from edgeconv.export.convert import ConversionSession
from edgeconv.export.data import calibration_for, evaluation_data, load_data
from edgeconv.export.manifest_data import drop_previous_export, manifest_data
from edgeconv.export.plan import plan
from edgeconv.export.source import Source, build_untrained, resolve_source
from edgeconv.export.verify import Verifier, notes_for
from edgeconv.formats import CALIBRATED, get_format
from edgeconv.manifest import write_manifest
from edgeconv.progress import Progress, Steps
from edgeconv.train import BEST


def export(config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Make, measure and list every file `config` asks for; `progress` also draws training
    when a model name has no finished run yet."""
    from edgeconv.export.user_model import kind_of

    if kind_of(config.target) is not None or _foreign_file(config.target):
        from edgeconv.export.user_run import export_user  # a model file of the user's

        return export_user(config, progress)
    progress = progress or Progress()
    started = time.perf_counter()
    jobs = plan(config)
    source = resolve_source(config, progress)
    _atomic.check_output_dir(source.run_dir, "--out")  # before the model and data are made
    model, data, source = _model_and_data(source, config)
    full_test = len(data.test.y)
    data = evaluation_data(data, config, seed=source.seed)
    calibration_set, check = calibration_for(data, config)

    notes = drop_previous_export(source.run_dir)
    steps = Steps(progress, 1 + 2 * len(jobs), "export")
    steps.step("float reference (Keras)")
    verifier = Verifier(model, data)
    keras_file = source.run_dir / BEST
    if not source.trained:  # nothing on disk yet: the untrained model is exported as is
        with _atomic.atomic_path(keras_file) as tmp:
            model.save(tmp)
    artifacts = [verifier.reference_artifact(keras_file)]
    notes += [f"calibration: {w}" for w in check.warnings] if check else []
    session = ConversionSession(model, calibration_set, config.int8_settings)
    budgets_met = []
    for fmt, precision in jobs:
        steps.step(f"{fmt} {precision}: converting")
        path = source.run_dir / f"{source.spec_name}_{precision}{get_format(fmt).suffix}"
        made = session.make(fmt, precision)
        _atomic.write_bytes(path, made.content)
        steps.step(f"{fmt} {precision}: measuring on {len(data.test.y)} test images")
        artifact = verifier.measure(path, fmt, precision, made)
        if config.max_drop is not None and precision in CALIBRATED:
            artifact, met = hold_budget(artifact, made, path, fmt, session, verifier,
                                        config.max_drop, progress)
            budgets_met.append(met)
        artifacts.append(artifact)
        notes.extend(notes_for(artifact, data.preprocessing.to_dict()))
    notes.extend(verifier.notes)  # e.g. outputs that could be matched by position only
    document = manifest_data(source, data, verifier.float_accuracy, full_test,
                             calibration_set, check)
    manifest = write_manifest(source.run_dir, document, artifacts)
    if not source.trained:
        notes.append("untrained weights: the accuracy figures are those of random weights"
                     " (size and speed figures are real)")
    return ExportResult(run_dir=source.run_dir, manifest=manifest, model=source.spec_name,
                        trained=source.trained, trained_now=source.trained_now,
                        float_accuracy=verifier.float_accuracy, artifacts=artifacts,
                        notes=notes, seconds=time.perf_counter() - started,
                        budget_met=all(budgets_met) if budgets_met else None)


def _foreign_file(target: str) -> bool:
    """A file that is no model edgeconv reads (model.pt, notes.txt): refused as one."""
    from pathlib import Path

    return Path(target).is_file()


def _model_and_data(source: Source, config: ExportConfig):
    """The Keras model and the prepared data (and, untrained, the completed source)."""
    if source.trained:  # a bad checkpoint fails before the dataset is even read
        from edgeconv.runtimes.keras import load_model

        return load_model(source.run_dir / BEST), load_data(source, config), source
    data = load_data(source, config)
    model, source = build_untrained(source, data.num_classes)
    return model, data, source
