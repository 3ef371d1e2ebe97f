"""What the gate judges: the artifacts that manifest.json files describe and the rows of
results.json files, read with the standard library only (a CI job needs no runtime).

A bench row names its file by a label and a sha256, not by model: it is linked to its export
through the sha256 of an artifact in a manifest given (or the manifest.json beside the
results file), which supplies the model name and the float accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv import records
from edgeconv.errors import EdgeconvError
from edgeconv.manifest import MANIFEST, Manifest, load_manifest
from edgeconv.records import RESULTS, BenchReport, BenchRow


@dataclass(frozen=True)
class Exported:
    """One exported file with the figures its manifest recorded at export (the test split)."""

    label: str  # "<export dir>/<file>", as bench labels it
    file: str
    model: str | None  # None: known only from a results.json with no manifest to link it
    format: str
    precision: str | None
    sha256: str
    size_bytes: int | None
    accuracy: float | None
    agreement: float | None
    float_accuracy: float | None  # the Keras model's accuracy, for the drop
    source: str  # the file these figures come from
    # How sure the figures are (manifest.json since it records them; None before): the test
    # images measured, the 95% Wilson intervals, the paired comparison with the float model.
    eval_samples: int | None = None
    accuracy_interval: list[float] | None = None
    agreement_interval: list[float] | None = None
    versus_float: dict[str, Any] | None = None
    # Each output against the float reference's (edgeconv.quant.output_parity entries);
    # None when not recorded (a manifest written before, or the reference itself).
    output_parity: list[dict[str, Any]] | None = None
    # This file is the float reference the others were compared with (the Keras model, or
    # the user's own file kept as is): its parity is exact by definition.
    parity_reference: bool = False
    # Some other file of the same manifest records output parity (so this one's missing
    # parity is not a manifest written before edgeconv measured it).
    parity_elsewhere: bool = False
    # False: the model was exported without labels (its manifest records no accuracy at
    # all, and output parity or the user's model file): accuracy budgets do not apply.
    labelled: bool = True


@dataclass(frozen=True)
class Row:
    """A results.json row, with the file it measured (its model, when linked)."""

    row: BenchRow
    artifact: Exported  # what is known of the file: from its manifest, or from this row
    source: str  # the results.json it came from

    @property
    def label(self) -> str:
        threads = f" x{self.row.threads}" if self.row.threads else ""
        return f"{self.artifact.label} @ {self.row.target} ({self.row.runtime}{threads})"


@dataclass
class Evidence:
    # the manifests' artifacts, then files known only from bench rows (linked by sha256)
    artifacts: list[Exported] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_evidence(paths: list[Path]) -> Evidence:
    """Read run/export directories (manifest.json, and results.json when there), manifest
    files and results.json files; each file once however often it is named."""
    if not paths:
        raise EdgeconvError("give at least one run directory or results.json")
    manifests: dict[Path, Manifest] = {}
    results: dict[Path, BenchReport] = {}
    for path in paths:
        if path.is_dir():
            found = False
            # each file once however often it is named: loaded only when not seen yet
            if (path / MANIFEST).is_file():
                if path.resolve() not in manifests:
                    manifests[path.resolve()] = load_manifest(path)
                found = True
            if (path / RESULTS).is_file():
                if (path / RESULTS).resolve() not in results:
                    results[(path / RESULTS).resolve()] = records.load_results(path / RESULTS)
                found = True
            if not found:
                raise EdgeconvError(f"{path} has no {MANIFEST} or {RESULTS}; run `edgeconv"
                                    " export` / `edgeconv bench --out` first")
        elif path.exists():  # read_json refuses a FIFO, a device or /proc in one line
            data = records.read_json(path)
            if records.is_results_document(data):  # parsed once: what was read is judged
                results.setdefault(path.resolve(), records.results_from_dict(data, str(path)))
            else:
                manifest = load_manifest(path)
                manifests.setdefault(manifest.directory.resolve(), manifest)
        else:
            raise EdgeconvError(f"{path} does not exist")

    evidence = Evidence()
    by_sha: dict[str, Exported] = {}
    for manifest in manifests.values():
        for exported in _exported(manifest):
            evidence.artifacts.append(exported)
            by_sha.setdefault(exported.sha256, exported)
    for file, report in results.items():
        beside = file.parent / MANIFEST
        if beside.is_file() and file.parent not in manifests:
            for exported in _exported(load_manifest(beside)):
                by_sha.setdefault(exported.sha256, exported)
        unlinked = 0
        for bench_row in report.results:
            row = _row(bench_row, by_sha, str(file))
            evidence.rows.append(row)
            unlinked += row.artifact.model is None
            # a file known from a bench row is an artifact too (for must_run_on, size)
            if row.artifact not in evidence.artifacts:
                evidence.artifacts.append(row.artifact)
                by_sha.setdefault(row.artifact.sha256, row.artifact)
        if unlinked:
            evidence.notes.append(
                f"{file}: {unlinked} row(s) match no artifact of a manifest given or beside it"
                " (by sha256), so their model is unknown and a `model` selector skips them;"
                " pass their export directory too, or re-bench if the export changed")
    return evidence


def _exported(manifest: Manifest) -> list[Exported]:
    source = str(manifest.directory / MANIFEST)
    for artifact in manifest.artifacts:
        # A size budget must judge the file, not a figure someone may have edited: a file
        # beside its manifest is checked (containment, size, sha256) as bench checks it.
        # A manifest copied without its files is judged on what it records.
        if (manifest.directory / artifact.path).exists():
            manifest.verified_path(artifact)
    measured = [a for a in manifest.artifacts if a.output_parity is not None]
    user_file = manifest.model_info.source  # a user's model file (edgeconv export PATH)
    # Without labels: not one accuracy recorded by an export that would have recorded it
    # (one that measured output parity, or of a user's model file). A manifest written
    # before either, with no accuracy, is not "without labels": its missing figure fails.
    labelled = manifest.float_accuracy is not None or any(
        a.accuracy is not None for a in manifest.artifacts) or not (measured or user_file)
    own = (user_file or {}).get("sha256")
    return [Exported(label=f"{manifest.directory.name}/{Path(a.path).name}",
                     file=Path(a.path).name, model=manifest.model, format=a.format,
                     precision=a.precision, sha256=a.sha256, size_bytes=a.size_bytes,
                     accuracy=a.accuracy, agreement=a.agreement,
                     float_accuracy=manifest.float_accuracy, source=source,
                     eval_samples=a.eval_samples, accuracy_interval=a.accuracy_interval,
                     agreement_interval=a.agreement_interval, versus_float=a.versus_float,
                     output_parity=a.output_parity,
                     # the Keras model is the reference; so is the user's file kept as is
                     # when the others were compared with it
                     parity_reference=a.output_parity is None and (
                         a.format == "keras" or (a.sha256 == own and bool(measured))),
                     parity_elsewhere=any(m is not a for m in measured), labelled=labelled)
            for a in manifest.artifacts]


def _row(row: BenchRow, by_sha: dict[str, Exported], source: str) -> Row:
    # A file no manifest given describes is known by what its row says of it; the export's
    # accuracy and agreement are then unknown (the row's own are the row's).
    artifact = by_sha.get(row.sha256) or Exported(
        label=row.artifact, file=Path(row.artifact).name, model=None, format=row.format,
        precision=row.precision, sha256=row.sha256, size_bytes=row.size_bytes, accuracy=None,
        agreement=None, float_accuracy=None, source=source)
    return Row(row=row, artifact=artifact, source=source)
