"""The order of an export's work, the same for every source (edgeconv.export.source): a zoo
model, a training run, fresh weights, or a model file of the user's.

Ordered so that an interruption at any moment leaves nothing a manifest vouches for that is
not complete: the previous manifest goes first (then the files it listed), each new file is
written atomically, and the new manifest is written last.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.export.budget import hold_budget
from edgeconv.export.config import ExportConfig, ExportResult, Refusal
from edgeconv.export.data import calibration_for, evaluation_data
from edgeconv.export.manifest_data import drop_previous_export, manifest_document
from edgeconv.export.plan import plan
from edgeconv.export.source import calibrated, check_holds, open_source
from edgeconv.export.verify import notes_for
from edgeconv.formats import CALIBRATED, INT8, get_format
from edgeconv.kernels import kernel_notes
from edgeconv.manifest import write_manifest
from edgeconv.progress import Progress, Steps


def export(config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Make, measure and list every file `config` asks for; `progress` also draws training
    when a model name has no finished run yet."""
    progress = progress or Progress()
    started = time.perf_counter()
    planned = plan(config)
    source = open_source(config, progress)  # trains a zoo model first when it has no run
    run_dir = source.run_dir
    _atomic.check_output_dir(run_dir, "--out")  # before the model and data are made
    with _writing(run_dir, source.name), \
            tempfile.TemporaryDirectory(prefix="edgeconv-export-") as scratch:
        data = source.load(config, Path(scratch))
        # a user's images may be cut to --eval-samples as they are read (full_test: of how many)
        full_test = getattr(data, "full_test", None) or len(data.test.x)
        data = evaluation_data(data, config, seed=source.seed)
        calibration, check, notes = (calibration_for(data, config)
                                     if calibrated(config, source.kind) else (None, None, []))

        notes = drop_previous_export(run_dir) + notes
        steps = Steps(progress, 1 + 2 * len(planned), "export")
        steps.step("float reference")
        reference = source.reference(run_dir, data)
        verifier, artifacts = reference.verifier, list(reference.artifacts)
        notes += reference.notes
        jobs = source.jobs(planned, reference)
        session = source.session(calibration, config.int8_settings)
        refusals: list[Refusal] = []
        budgets_met: list[bool] = []
        for fmt, precision in jobs:
            path = run_dir / f"{source.name}_{precision}{get_format(fmt).suffix}"
            steps.step(f"{fmt} {precision}: converting")
            try:
                made = session.make(fmt, precision)
            except EdgeconvError as exc:  # one converter's refusal: the others still export
                refusals.append(Refusal(path.name, "convert", str(exc)))
                steps.step(f"{fmt} {precision}: not made")
                continue
            _atomic.write_bytes(path, made.content)
            steps.step(f"{fmt} {precision}: measuring on {len(data.test.x)} images")
            try:
                artifact = verifier.measure(path, fmt, precision, made)
            except EdgeconvError as exc:  # it does not run: not an artifact of the export
                path.unlink(missing_ok=True)
                refusals.append(Refusal(path.name, "measure", str(exc)))
                continue
            if config.max_drop is not None and precision == INT8:
                try:
                    artifact, met = hold_budget(artifact, made, path, fmt, session, verifier,
                                                config.max_drop, progress,
                                                allow_float=config.allow_float)
                except EdgeconvError as exc:  # e.g. no per-layer report (a SavedModel)
                    refusals.append(Refusal(path.name, "budget", str(exc)))
                    met = False
                budgets_met.append(met)
            artifacts.append(artifact)
            notes.extend(notes_for(artifact, data.preprocessing.to_dict()))
            if precision in CALIBRATED:  # what its ops run on where it lands (edgeconv.kernels)
                notes.extend(f"{path.name}: {n}" for n in kernel_notes(path, fmt))
    if jobs and len(artifacts) == len(reference.artifacts) and not reference.made:
        if source.kind.copied:  # the user's copy alone is no export to vouch for
            _remove(run_dir, [a.path for a in reference.artifacts])
        raise EdgeconvError(f"no file of {source.shown} could be made: "
                            + "; ".join(r.text() for r in refusals)[:600])
    notes.extend(verifier.notes)  # e.g. outputs that could be matched by position only
    document = manifest_document(source, data, verifier, full_test, calibration, check,
                                 config)
    manifest = write_manifest(run_dir, document, artifacts)
    if not source.trained:
        notes.append("untrained weights: the accuracy figures are those of random weights"
                     " (size and speed figures are real)")
    return ExportResult(run_dir=run_dir, manifest=manifest, model=source.name,
                        trained=source.trained, trained_now=source.trained_now,
                        float_accuracy=verifier.float_accuracy, artifacts=artifacts,
                        notes=notes, seconds=time.perf_counter() - started,
                        budget_met=all(budgets_met) if budgets_met else None,
                        refusals=refusals)


def _remove(run_dir: Path, names: list[str]) -> None:
    for name in names:
        (run_dir / name).unlink(missing_ok=True)


@contextmanager
def _writing(run_dir: Path, model: str) -> Iterator[None]:
    """One export at a time in a run directory: the directory itself is locked (no lock file
    is left beside the export), and a second export there is refused at once."""
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            created = False  # the other export's folder
            raise EdgeconvError(f"another edgeconv export is writing to {run_dir}; wait for it"
                                " to finish, or give another --out") from None
        check_holds(run_dir, model)  # what an export that just finished there left
        yield
    except BaseException:
        if created:  # a failed export leaves no folder it made (rmdir: only when empty)
            with suppress(OSError):
                run_dir.rmdir()
        raise
    finally:
        os.close(fd)  # releases the lock
