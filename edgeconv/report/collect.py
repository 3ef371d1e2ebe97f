"""Read what the report shows: manifests (exports) and results.json files (bench rows),
into typed records. Standard library only: nothing is measured or imported here.

A path may be an export directory (its manifest.json, train.json and any results*.json
inside), a folder of exports (searched recursively, e.g. runs/), a manifest.json or a
results.json. A bench row is linked to its export by the sha256 of the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError
from edgeconv.manifest import MANIFEST, load_manifest

RESULTS_SCHEMA = 1  # edgeconv.bench.SCHEMA_VERSION; not imported: that pulls in the harness


@dataclass(frozen=True)
class FileRecord:
    """One exported file, as its manifest recorded it (accuracy on the test split)."""

    file: str
    format: str
    precision: str
    size_bytes: int
    sha256: str
    accuracy: float | None
    output_shape: list[int | None] | None
    micro_arena_bytes: int | None


@dataclass(frozen=True)
class TrainRecord:
    """What train.json says about a run (for the training-time and overfitting claims)."""

    epochs_run: int
    best_epoch: int
    epoch_seconds: list[float]
    train_accuracy: list[float]
    val_accuracy: list[float]


@dataclass(frozen=True)
class ExportRecord:
    directory: Path
    model: str
    options: dict[str, Any]
    trained: bool
    dataset: str | None
    float_accuracy: float | None
    files: list[FileRecord]
    train: TrainRecord | None

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
        return f"trained ({self.dataset})" if self.trained else "untrained"

    def file(self, fmt: str, precision: str) -> FileRecord | None:
        return next((f for f in self.files if f.format == fmt and f.precision == precision),
                    None)


@dataclass(frozen=True)
class BenchRecord:
    """One results.json row, linked to its export when the export was given too."""

    export: ExportRecord | None
    file: str
    format: str
    precision: str | None
    runtime: str
    target: str
    target_kind: str | None
    threads: int | None
    status: str
    error: str | None
    p50_ms: float | None
    p90_ms: float | None
    timed_on: str
    peak_rss_bytes: int | None
    size_bytes: int | None
    accuracy: float | None
    macs: int | None
    arena_bytes: int | None
    flash_bytes: int | None
    fits: bool | None
    sram_budget: int | None
    flash_budget: int | None
    source: Path  # the results.json it came from

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.p50_ms is not None


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
    by_sha: dict[str, tuple[ExportRecord, FileRecord]] = {}
    for file in dict.fromkeys(p.resolve() for p in manifests):
        export = _export(file)
        out.exports.append(export)
        for rec in export.files:
            by_sha.setdefault(rec.sha256, (export, rec))
    for file in dict.fromkeys(p.resolve() for p in results):
        document = _read_results(file)
        out.results_files.append(file)
        env = document.get("environment") or {}
        target = env.get("target") or {}
        unlinked = 0
        for raw in document["results"]:
            row = _row(raw, by_sha, target, file)
            unlinked += row.export is None
            out.rows.append(row)
            out.environments.setdefault(row.target, env)
        if unlinked:
            out.notes.append(f"{file}: {unlinked} row(s) match no export given (by sha256);"
                             " pass their export directories too to name their models")
    return out


def _classify(path: Path, manifests: list[Path], results: list[Path]) -> None:
    if path.is_file():
        if _is_results(path):
            results.append(path)
        else:
            load_manifest(path)  # a clear error if it is neither
            manifests.append(path)
        return
    if not path.is_dir():
        raise EdgeconvError(f"{path} does not exist")
    manifests.extend(sorted(path.rglob(MANIFEST)))
    for candidate in sorted(path.rglob("results*.json")):
        if _is_results(candidate):
            results.append(candidate)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeconvError(f"{path}: not valid JSON ({exc})") from None


def _is_results(path: Path) -> bool:
    data = _load_json(path)
    return isinstance(data, dict) and "results" in data and "artifacts" not in data


def _read_results(path: Path) -> dict[str, Any]:
    data = _load_json(path)
    if data.get("schema_version") != RESULTS_SCHEMA:
        raise EdgeconvError(f"{path}: results schema_version {data.get('schema_version')!r}"
                            f" is not the {RESULTS_SCHEMA} this edgeconv reads; re-run bench")
    needed = ("artifact", "sha256", "format", "runtime", "target", "status")
    rows = data["results"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in needed)
                                             for r in rows):
        raise EdgeconvError(f"{path}: malformed results.json (each row needs"
                            f" {', '.join(needed)})")
    return data


def _export(file: Path) -> ExportRecord:
    manifest = load_manifest(file)
    data = manifest.data
    files = [FileRecord(file=Path(a.path).name, format=a.format, precision=a.precision,
                        size_bytes=a.size_bytes, sha256=a.sha256, accuracy=a.accuracy,
                        output_shape=(a.outputs[0].get("shape") if a.outputs else None),
                        micro_arena_bytes=(a.micro or {}).get("arena_bytes"))
             for a in manifest.artifacts]
    model = data["model"]
    return ExportRecord(directory=manifest.directory, model=manifest.model,
                        options=dict(model.get("options") or {}),
                        trained=bool(model.get("trained", True)),
                        dataset=(data.get("dataset") or {}).get("name"),
                        float_accuracy=data.get("float_accuracy"), files=files,
                        train=_train(manifest.directory / "train.json"))


def _train(path: Path) -> TrainRecord | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        history = data["history"]
        return TrainRecord(epochs_run=int(data["epochs_run"]), best_epoch=int(data["best_epoch"]),
                           epoch_seconds=[float(h["seconds"]) for h in history],
                           train_accuracy=[float(h["accuracy"]) for h in history],
                           val_accuracy=[float(h["val_accuracy"]) for h in history])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an unfinished or foreign train.json: the claims that need it say so


def _row(raw: dict[str, Any], by_sha: dict[str, tuple[ExportRecord, FileRecord]],
         target: dict[str, Any], source: Path) -> BenchRecord:
    export, record = by_sha.get(raw["sha256"], (None, None))
    latency = raw.get("latency_ms") or {}
    return BenchRecord(
        export=export, file=Path(raw["artifact"]).name, format=raw["format"],
        # a bare file benched without its manifest has no precision in its row
        precision=raw.get("precision") or (record.precision if record else None), runtime=raw["runtime"], target=raw["target"],
        target_kind=target.get("kind"), threads=raw.get("threads"), status=raw["status"],
        error=raw.get("error"), p50_ms=latency.get("p50"), p90_ms=latency.get("p90"),
        timed_on=raw.get("timed_on", "target"), peak_rss_bytes=raw.get("peak_rss_bytes"),
        size_bytes=raw.get("size_bytes"), accuracy=raw.get("accuracy"), macs=raw.get("macs"),
        arena_bytes=raw.get("arena_bytes"), flash_bytes=raw.get("flash_bytes"),
        fits=raw.get("fits"), sram_budget=target.get("sram_bytes"),
        flash_budget=target.get("flash_bytes"), source=source)
