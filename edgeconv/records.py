"""The files the stages hand each other, as typed records: results.json (bench) and
train.json (train), with their schema versions, writers and validating readers.

Standard library only: the harness on a board, the SSH path, `report` and `gate` all read
and write results through this module, and none of them may need a runtime to do it.
manifest.json has its own module (edgeconv.manifest) for the same reasons; its schema
version lives here with the others.

A reader turns anything that is not the document it expects into one EdgeconvError line
naming the file. Files of the current schema written by older edgeconv versions load: new
fields have defaults, unknown fields are ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError

MANIFEST_SCHEMA = 1
RESULTS_SCHEMA = 1
TRAIN_SCHEMA = 1
RESULTS = "results.json"
TRAIN = "train.json"

STATUSES = ("ok", "unsupported", "failed")
# Where a row's latency was measured: on the target itself, or on this host for a target
# it stands in for (TFLite Micro's interpreter on x86 for a microcontroller).
TIMED_ON = ("target", "host")


@dataclass(frozen=True)
class Latency:
    """Per-inference latency over the timed runs, in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Latency:
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or not set(names) <= data.keys():
            raise ValueError(f"latency_ms needs {', '.join(names)}; got {data!r}")
        return cls(**{name: float(data[name]) for name in names})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class BenchRow:
    """One row of results.json: an artifact in a runtime at a thread count on a target."""

    artifact: str  # the export folder's name / file, or the bare file's path
    sha256: str
    format: str
    precision: str | None  # None: a bare file, whose precision nothing recorded
    runtime: str
    target: str
    threads: int | None
    status: str  # ok | unsupported | failed
    error: str | None = None
    latency_ms: Latency | None = None
    timed_on: str = "target"  # "host" for MCU targets: TFLite Micro ran on this machine
    init_ms: float | None = None
    first_ms: float | None = None
    runs: int | None = None
    throughput_ips: float | None = None  # inferences per second at the mean latency
    macs: int | None = None
    gmac_per_s: float | None = None
    peak_rss_bytes: int | None = None
    size_bytes: int | None = None
    accuracy: float | None = None
    agreement: float | None = None
    arena_bytes: int | None = None
    flash_bytes: int | None = None
    fits: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["latency_ms"] = self.latency_ms.to_dict() if self.latency_ms else None
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchRow:
        """A row as results.json holds it; unknown keys ignored, types checked."""
        missing = [k for k in _ROW_REQUIRED if k not in data]
        if missing:
            raise ValueError(f"a row lacks {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        latency = values.get("latency_ms")
        values["latency_ms"] = Latency.from_dict(latency) if latency else None
        row = cls(**values)
        _check_row(row)
        return row


_ROW_REQUIRED = ("artifact", "sha256", "format", "runtime", "target", "status")
_ROW_TYPES: dict[str, tuple[type, ...]] = {
    "artifact": (str,), "sha256": (str,), "format": (str,), "runtime": (str,),
    "target": (str,), "status": (str,), "precision": (str, type(None)),
    "threads": (int, type(None)), "error": (str, type(None)), "timed_on": (str,),
    "init_ms": (int, float, type(None)), "first_ms": (int, float, type(None)),
    "runs": (int, type(None)), "throughput_ips": (int, float, type(None)),
    "macs": (int, type(None)), "gmac_per_s": (int, float, type(None)),
    "peak_rss_bytes": (int, type(None)), "size_bytes": (int, type(None)),
    "accuracy": (int, float, type(None)), "agreement": (int, float, type(None)),
    "arena_bytes": (int, type(None)), "flash_bytes": (int, type(None)),
    "fits": (bool, type(None)), "notes": (list,),
}


def _check_row(row: BenchRow) -> None:
    for name, types in _ROW_TYPES.items():
        value = getattr(row, name)
        # bool is an int in Python: a count or a size must not be True
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise ValueError(f"{name} is {value!r}")
    if row.status not in STATUSES:
        raise ValueError(f"status {row.status!r} is not one of {', '.join(STATUSES)}")
    if row.timed_on not in TIMED_ON:
        raise ValueError(f"timed_on {row.timed_on!r} is not one of {', '.join(TIMED_ON)}")


@dataclass
class BenchReport:
    """A bench run: where it ran, how, and one row per measurement."""

    environment: dict[str, Any]
    config: dict[str, Any]
    results: list[BenchRow]
    notes: list[str]
    out: Path | None = None  # where it was written, if it was

    @property
    def target_kind(self) -> str | None:
        return (self.environment.get("target") or {}).get("kind")

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": RESULTS_SCHEMA, "environment": self.environment,
                "config": self.config, "results": [r.to_dict() for r in self.results],
                "notes": self.notes}

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Atomically: a reader never sees half a results.json."""
        _atomic.write_json(Path(path), self.to_dict())
        return Path(path)


def is_results_document(data: Any) -> bool:
    """Does parsed JSON look like a results.json (rather than a manifest)?"""
    return isinstance(data, dict) and "results" in data and "artifacts" not in data


def results_from_dict(data: Any, source: str) -> BenchReport:
    """A parsed results.json -> BenchReport; anything else is one line naming `source`."""
    if not isinstance(data, dict) or "results" not in data:
        raise EdgeconvError(f"{source}: not an edgeconv results.json (no results)")
    if data.get("schema_version") != RESULTS_SCHEMA:
        raise EdgeconvError(f"{source}: results schema_version {data.get('schema_version')!r}"
                            f" is not the {RESULTS_SCHEMA} this edgeconv reads; re-run bench")
    rows, environment = data["results"], data.get("environment") or {}
    if not isinstance(rows, list) or not isinstance(environment, dict):
        raise EdgeconvError(f"{source}: malformed results.json (results must be a list,"
                            " environment an object)")
    try:
        results = [BenchRow.from_dict(r) if isinstance(r, dict) else _not_a_row(r)
                   for r in rows]
    except (TypeError, ValueError, KeyError) as exc:
        raise EdgeconvError(f"{source}: malformed results.json ({exc}; each row needs"
                            f" {', '.join(_ROW_REQUIRED)})") from None
    notes = data.get("notes") or []
    return BenchReport(environment=environment, config=dict(data.get("config") or {}),
                       results=results, notes=[str(n) for n in notes]
                       if isinstance(notes, list) else [], out=None)


def _not_a_row(value: Any) -> BenchRow:
    raise ValueError(f"a row is {type(value).__name__}, not an object")


def load_results(path: str | os.PathLike[str]) -> BenchReport:
    """Read and validate a results.json."""
    path = Path(path)
    report = results_from_dict(read_json(path), str(path))
    report.out = path
    return report


def read_json(path: Path) -> Any:
    """Parsed JSON, or one line saying why the file cannot be read."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeconvError(f"{path} does not exist") from None
    except RecursionError:
        raise EdgeconvError(f"{path}: not valid JSON (nested too deeply)") from None
    # ValueError: JSONDecodeError, and integers beyond Python's 4300-digit limit
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EdgeconvError(f"{path}: not valid JSON ({exc})") from None


# --- train.json --------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a training run: train.py logs it, train.json keeps it."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class TrainRecord:
    """A finished training run as train.json records it: what export and report read."""

    model: str
    model_options: dict[str, Any]
    dataset: str  # the dataset name it trained on (config.dataset)
    seed: int
    preprocessing: dict[str, Any]  # exactly as training prepared the images
    epochs_run: int
    best_epoch: int
    test_accuracy: float | None
    history: list[EpochRecord]
    directory: Path

    @property
    def epoch_seconds(self) -> list[float]:
        return [h.seconds for h in self.history]


def load_train(path: str | os.PathLike[str]) -> TrainRecord:
    """Read a train.json (files written before it had a schema_version load too)."""
    path = Path(path)
    data = read_json(path)
    try:
        version = data.get("schema_version", TRAIN_SCHEMA)
        if version != TRAIN_SCHEMA:
            raise EdgeconvError(f"{path}: train schema_version {version!r} is not the"
                                f" {TRAIN_SCHEMA} this edgeconv reads; re-run `edgeconv train`")
        history = [EpochRecord(**{f.name: h[f.name] for f in fields(EpochRecord)})
                   for h in data.get("history", [])]
        options = data["model_options"]
        preprocessing = data["preprocessing"]
        if not isinstance(options, dict) or not isinstance(preprocessing, dict):
            raise TypeError("model_options and preprocessing must be objects")
        test = data.get("test_accuracy")
        return TrainRecord(model=str(data["model"]), model_options=options,
                           dataset=str(data["config"]["dataset"]),
                           seed=int(data["config"]["seed"]), preprocessing=preprocessing,
                           epochs_run=int(data["epochs_run"]), best_epoch=int(data["best_epoch"]),
                           test_accuracy=None if test is None else float(test),
                           history=history, directory=path.parent)
    except EdgeconvError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise EdgeconvError(f"{path}: not a readable training result ({type(exc).__name__}:"
                            f" {exc}); re-run `edgeconv train`") from None
