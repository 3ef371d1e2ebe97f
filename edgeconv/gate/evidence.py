"""What the gate judges: the artifacts that manifest.json files describe and the rows of
results.json files, read with the standard library only (a CI job needs no runtime).

A bench row names its file by a label and a sha256, not by model: it is linked to its export
through the sha256 of an artifact in a manifest given (or the manifest.json beside the
results file), which supplies the model name and the float accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError
from edgeconv.manifest import MANIFEST, Manifest, load_manifest

RESULTS = "results.json"
RESULTS_SCHEMA = 1  # edgeconv.bench.SCHEMA_VERSION; not imported: that pulls in the harness


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


@dataclass(frozen=True)
class Row:
    """One results.json row: an artifact measured in a runtime on a target."""

    artifact: Exported  # what is known of the file (its model, when linked)
    target: str
    runtime: str
    threads: int | None
    status: str  # ok | unsupported | failed
    error: str | None
    timed_on: str  # "host" on MCU targets: TFLite Micro timed on the bench machine
    latency_ms: dict[str, float] | None
    size_bytes: int | None
    accuracy: float | None
    agreement: float | None
    arena_bytes: int | None
    flash_bytes: int | None
    fits: bool | None
    source: str

    @property
    def label(self) -> str:
        threads = f" x{self.threads}" if self.threads else ""
        return f"{self.artifact.label} @ {self.target} ({self.runtime}{threads})"


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
    results: dict[Path, dict[str, Any]] = {}
    for path in paths:
        if path.is_dir():
            found = False
            if (path / MANIFEST).is_file():
                manifests.setdefault(path.resolve(), load_manifest(path))
                found = True
            if (path / RESULTS).is_file():
                results.setdefault((path / RESULTS).resolve(), _read_results(path / RESULTS))
                found = True
            if not found:
                raise EdgeconvError(f"{path} has no {MANIFEST} or {RESULTS}; run `edgeconv"
                                    " export` / `edgeconv bench --out` first")
        elif path.is_file():
            if _is_results(path):
                results.setdefault(path.resolve(), _read_results(path))
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
    for file, document in results.items():
        beside = file.parent / MANIFEST
        if beside.is_file() and file.parent not in manifests:
            for exported in _exported(load_manifest(beside)):
                by_sha.setdefault(exported.sha256, exported)
        unlinked = 0
        for raw in document["results"]:
            row = _row(raw, by_sha, str(file))
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


def _is_results(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeconvError(f"{path}: not valid JSON ({exc})") from None
    return isinstance(data, dict) and "results" in data and "artifacts" not in data


def _read_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeconvError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "results" not in data:
        raise EdgeconvError(f"{path}: not an edgeconv results.json (no results)")
    if data.get("schema_version") != RESULTS_SCHEMA:
        raise EdgeconvError(f"{path}: results schema_version {data.get('schema_version')!r}"
                            f" is not the {RESULTS_SCHEMA} this edgeconv reads; re-run bench")
    rows = data["results"]
    needed = ("artifact", "sha256", "format", "runtime", "target", "status")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in needed)
                                             for r in rows):
        raise EdgeconvError(f"{path}: malformed results.json (each row needs"
                            f" {', '.join(needed)})")
    return data


def _exported(manifest: Manifest) -> list[Exported]:
    float_accuracy = manifest.data.get("float_accuracy")
    source = str(manifest.directory / MANIFEST)
    return [Exported(label=f"{manifest.directory.name}/{Path(a.path).name}",
                     file=Path(a.path).name, model=manifest.model, format=a.format,
                     precision=a.precision, sha256=a.sha256, size_bytes=a.size_bytes,
                     accuracy=a.accuracy, agreement=a.agreement,
                     float_accuracy=float_accuracy, source=source)
            for a in manifest.artifacts]


def _row(raw: dict[str, Any], by_sha: dict[str, Exported], source: str) -> Row:
    artifact = by_sha.get(raw["sha256"]) or Exported(
        label=raw["artifact"], file=Path(raw["artifact"]).name, model=None,
        format=raw["format"], precision=raw.get("precision"), sha256=raw["sha256"],
        size_bytes=raw.get("size_bytes"), accuracy=None, agreement=None, float_accuracy=None,
        source=source)
    return Row(artifact=artifact, target=raw["target"], runtime=raw["runtime"],
               threads=raw.get("threads"), status=raw["status"], error=raw.get("error"),
               timed_on=raw.get("timed_on", "target"), latency_ms=raw.get("latency_ms"),
               size_bytes=raw.get("size_bytes"), accuracy=raw.get("accuracy"),
               agreement=raw.get("agreement"), arena_bytes=raw.get("arena_bytes"),
               flash_bytes=raw.get("flash_bytes"), fits=raw.get("fits"), source=source)
