"""Read what the report shows: manifests (exports), their train.json, and results.json files
(bench rows). Standard library only: nothing is measured or imported here.

A path may be an export directory (its manifest.json, train.json and any results*.json
inside), a folder of exports (searched recursively, e.g. runs/), a manifest.json or a
results.json. A bench row is linked to its export by the sha256 of the file. The files are
read by their own modules (edgeconv.manifest, edgeconv.records); this one only joins them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv import records
from edgeconv.errors import EdgeconvError
from edgeconv.files import walk_files
from edgeconv.manifest import MANIFEST, Artifact, Manifest, load_manifest
from edgeconv.records import BenchRow, TrainRecord


def file_name(artifact: Artifact) -> str:
    return Path(artifact.path).name


def output_shape(artifact: Artifact) -> list[int | None] | None:
    return artifact.outputs[0].get("shape") if artifact.outputs else None


def micro_arena_bytes(artifact: Artifact) -> int | None:
    """The TFLite Micro arena export measured for this file, if it checked one."""
    return (artifact.micro or {}).get("arena_bytes")


@dataclass(frozen=True)
class ExportRecord:
    """An export as the report reads it: its manifest, and its train.json when trained here."""

    manifest: Manifest
    train: TrainRecord | None

    @property
    def directory(self) -> Path:
        return self.manifest.directory

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def options(self) -> dict[str, Any]:
        return self.manifest.model_info.options

    @property
    def trained(self) -> bool:
        return self.manifest.model_info.trained

    @property
    def dataset(self) -> str | None:
        return self.manifest.dataset.name

    @property
    def float_accuracy(self) -> float | None:
        return self.manifest.float_accuracy

    @property
    def files(self) -> list[Artifact]:
        return self.manifest.artifacts

    def file(self, fmt: str, precision: str) -> Artifact | None:
        return self.manifest.find(fmt, precision)

    @property
    def input_hw(self) -> tuple[int | None, int | None]:
        shape = self.options.get("input_shape") or [None, None, None]
        return shape[0], shape[1]

    @property
    def label(self) -> str:
        """Model name with the options that set it apart: alpha, version, input size."""
        parts = [self.model]
        if "alpha" in self.options:
            parts.append(f"a={self.options['alpha']:g}")
        if "version" in self.options:
            parts.append(f"v{self.options['version']}")
        h, w = self.input_hw
        parts.append(f"{h}x{w}" if h and w else "any size")
        return " ".join(parts)

    @property
    def weights(self) -> str:
        from edgeconv.report.figures import dataset_name  # figures reads this module

        return f"trained ({dataset_name(self.dataset)})" if self.trained else "untrained"


@dataclass(frozen=True)
class BenchRecord:
    """A results.json row, with what the report joins to it: its export (when given), the
    precision of the file it measured, its target's budgets and the file it came from."""

    row: BenchRow
    export: ExportRecord | None
    # The row's precision, or its export's for the same file: a bare file benched without
    # its manifest has none in its row.
    precision: str | None
    sram_budget: int | None  # the target's, from the results file's environment
    flash_budget: int | None
    source: Path  # the results.json it came from

    @property
    def file(self) -> str:
        return Path(self.row.artifact).name

    @property
    def p50_ms(self) -> float | None:
        return self.row.latency_ms.p50 if self.row.latency_ms else None

    @property
    def p90_ms(self) -> float | None:
        return self.row.latency_ms.p90 if self.row.latency_ms else None

    @property
    def ok(self) -> bool:
        """Ran and timed: the report's tables and rules need the latency, not just the run."""
        return self.row.ok and self.p50_ms is not None


@dataclass
class Collection:
    exports: list[ExportRecord] = field(default_factory=list)
    rows: list[BenchRecord] = field(default_factory=list)
    results_files: list[Path] = field(default_factory=list)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by target
    notes: list[str] = field(default_factory=list)


def collect(paths: list[Path]) -> Collection:
    if not paths:
        raise EdgeconvError("give at least one results.json or export directory")
    manifests: list[Path] = []
    results: list[Path] = []
    for path in paths:
        _classify(Path(path), manifests, results)
    if not manifests and not results:
        raise EdgeconvError(f"no manifest.json or results.json under {', '.join(map(str, paths))};"
                            " run `edgeconv export` / `edgeconv bench --out` first")
    out = Collection()
    by_sha: dict[str, tuple[ExportRecord, Artifact]] = {}
    for file in dict.fromkeys(p.resolve() for p in manifests):
        export = _export(file, out.notes)
        out.exports.append(export)
        for artifact in export.files:
            by_sha.setdefault(artifact.sha256, (export, artifact))
    for file in dict.fromkeys(p.resolve() for p in results):
        report = records.load_results(file)
        out.results_files.append(file)
        target = report.environment.get("target") or {}
        unlinked = 0
        for row in report.results:
            record = _record(row, by_sha, target, file)
            unlinked += record.export is None
            out.rows.append(record)
            out.environments.setdefault(row.target, report.environment)
        if unlinked:
            out.notes.append(f"{file}: {unlinked} row(s) match no export given (by sha256);"
                             " pass their export directories too to name their models")
    return out


def _classify(path: Path, manifests: list[Path], results: list[Path]) -> None:
    if path.is_file():
        if records.is_results_document(records.read_json(path)):
            results.append(path)
        else:
            load_manifest(path)  # a clear error if it is neither
            manifests.append(path)
        return
    if not path.is_dir():
        raise EdgeconvError(f"{path} does not exist")
    files = walk_files(path, what="folder")  # no recursion: a deep folder is one line
    manifests.extend(sorted(p for p in files if p.name == MANIFEST))
    # results*.json that are something else (a manifest copy, a foreign file) are skipped
    for candidate in sorted(p for p in files if fnmatch.fnmatchcase(p.name, "results*.json")):
        if records.is_results_document(records.read_json(candidate)):
            results.append(candidate)


def _export(file: Path, notes: list[str]) -> ExportRecord:
    manifest = load_manifest(file)
    return ExportRecord(manifest=manifest, train=_train(manifest.directory / records.TRAIN, notes))


def _train(path: Path, notes: list[str]) -> TrainRecord | None:
    """The run's train.json; None when there is none (an untrained export) or it cannot be
    read (the claims that need it then say they are not measurable, and a note says why)."""
    if not path.is_file():
        return None
    try:
        return records.load_train(path)
    except EdgeconvError as exc:
        notes.append(f"{exc} (its training claims are not measurable)")
        return None


def _record(row: BenchRow, by_sha: dict[str, tuple[ExportRecord, Artifact]],
            target: dict[str, Any], source: Path) -> BenchRecord:
    export, artifact = by_sha.get(row.sha256, (None, None))
    return BenchRecord(row=row, export=export,
                       precision=row.precision or (artifact.precision if artifact else None),
                       sram_budget=target.get("sram_bytes"), flash_budget=target.get("flash_bytes"),
                       source=source)
