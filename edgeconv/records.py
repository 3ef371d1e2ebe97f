"""The files the stages hand each other, as typed records: results.json (bench) and
train.json (train), with their schema versions, writers and validating readers.

Standard library only: the harness on a board, the SSH path, `report` and `gate` all read
and write results through this module, and none of them may need a runtime to do it.
manifest.json has its own module (edgeconv.manifest) for the same reasons; its schema
version lives here with the others.

A reader validates the whole document against its schema (edgeconv.schema) before using any
of it, and turns anything else into one EdgeconvError line naming the file, the field and
what was expected. Files of the current schema written by older edgeconv versions load: new
fields have defaults; unknown keys (a newer edgeconv of the same schema) are kept, untyped
and unread. The specs every record shares (sha256, sizes, model options, preprocessing, an
epoch) live here; manifest.json's own in edgeconv.manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.formats import FORMATS, PRECISIONS
from edgeconv.schema import (
    Bool, DictOf, Int, ListOf, Num, Obj, Opt, Spec, Str, validate,
)
from edgeconv.files import MAX_MODEL_BYTES, read_regular
from edgeconv.zoo._registry import MAX_CHANNELS, MAX_CLASSES, MAX_SIDE
from edgeconv.zoo.options import MAX_ALPHA

MANIFEST_SCHEMA = 1
RESULTS_SCHEMA = 1
TRAIN_SCHEMA = 1
RESULTS = "results.json"
TRAIN = "train.json"
TEST_WRONG = "test_wrong"  # train.json: indices of the test images the best checkpoint misses

STATUSES = ("ok", "unsupported", "failed")
# Where a row's latency was measured: on the target itself, on this host for a target it
# stands in for (TFLite Micro's interpreter on x86 for a microcontroller: "x86 host,
# reference kernels"), or emulated: on an emulated Linux board (qemu user mode: ~100x slower
# than the board; never a board time), or a microcontroller's firmware on an emulated
# Cortex-M (qemu system mode: instructions counted, no time at all; the row's estimate_ms
# turns them into an estimated board latency, and latency_ms stays empty), or estimated:
# nothing ran, a compiler's performance model gave the figures (an Ethos-U NPU row, Vela's
# estimate in its `npu` record; latency_ms stays empty).
TIMED_ON = ("target", "host", "emulated", "estimated")
# What a row's peak_rss_bytes covers: "runtime", the child's peak after the runtime loaded
# the file and ran the timed runs, before any test image was read (the accuracy pass's
# images and outputs are the harness's, not the runtime's); "process", the whole child up to
# where it stopped (a row that failed before its timed runs).
PEAK_RSS_OF = ("runtime", "process")

MAX_RECORD_BYTES = 64 << 20  # a JSON record (manifest, results, train): read whole
MAX_COUNT = 1 << 53  # any count or byte figure in a record (exact as a JSON double)


# --- the specs records share ---------------------------------------------------------------

SHA256 = Str(pattern="[0-9a-f]{64}", expected="a sha256 (64 lowercase hex digits)")
FRACTION = Num(0, 1)  # accuracy, agreement: a share of the test images
COUNT = Int(0, MAX_COUNT)
SEED = Int(0, 2**63 - 1)
NAME = Str(max_len=1000, allow_empty=False)
TEXT = Str(one_line=False)  # free text a program wrote (an error, a note): folded on reading
# [low, high] of a 95% Wilson interval of a share (edgeconv.stats)
FRACTION_INTERVAL = ListOf(FRACTION, 2, 2)
# A file against the float model on the same images (edgeconv.stats.PairedComparison):
# the images only one of them gets right, the accuracy drop with its interval, McNemar's p.
VERSUS_FLOAT = Obj({
    "n": COUNT, "both_right": COUNT, "reference_only": COUNT, "candidate_only": COUNT,
    "drop": Num(-1, 1), "drop_interval": ListOf(Num(-1, 1), 2, 2), "mcnemar_p": Num(0, 1),
    "confidence": Num(0, 1), "method": Opt(Str(max_len=200)),
}, required=("n", "reference_only", "candidate_only", "drop", "drop_interval", "mcnemar_p"))


@dataclass
class ImageShape(Spec):
    """[H, W, C] with H, W up to MAX_SIDE and 1..MAX_CHANNELS channels; `free`: H and W may
    be null (a model that takes any size)."""

    free: bool = True

    def check(self, value: Any, where: str) -> Any:
        side = Int(1, MAX_SIDE, expected="an image side")
        ListOf(Opt(side) if self.free else side, 3, 3).check(value, where)
        Int(1, MAX_CHANNELS, expected="a channel count").check(value[2], f"{where}[2]")
        return value


# The model options a run or an export recorded (ModelOptions.to_dict()); resolve_options
# checks them against the model when they are used.
MODEL_OPTIONS = Obj({
    "input_shape": Opt(ImageShape()), "classes": Opt(Int(1, MAX_CLASSES)),
    "alpha": Opt(Num(0, MAX_ALPHA)), "version": Opt(Str(max_len=100)),
    "groups": Opt(Int(1, 1024)), "blocks": Opt(Int(1, 1024)), "kernel": Opt(Int(1, 1024)),
})
# How images were prepared (edgeconv.data.Preprocessing.to_dict()): what bench and export
# repeat. The source may be larger than a model input (a folder of photos).
PREPROCESSING = Obj({
    "input_shape": ImageShape(free=False), "source_shape": Opt(ListOf(Int(1, 1 << 20), 3, 3)),
    "resize": Opt(Str(max_len=100)), "channels": Opt(Str(max_len=100)), "scale": Num(),
    "offset": Num(), "input_dtype": Opt(Str(max_len=100)),
    # a user model's (edgeconv export PATH); absent in records written before them
    "layout": Opt(Str(choices=("NHWC", "NCHW"))),
    "color": Opt(Str(choices=("rgb", "bgr", "gray"))),
    "mean": Opt(ListOf(Num(), 1, MAX_CHANNELS)), "std": Opt(ListOf(Num(), 1, MAX_CHANNELS)),
}, required=("input_shape", "scale", "offset"))
LOSS = Num(finite=False, nan=True)  # a diverged run logs inf or NaN, and its record stays
EPOCH = Obj({"epoch": COUNT, "loss": LOSS, "accuracy": FRACTION, "val_loss": LOSS,
             "val_accuracy": FRACTION, "seconds": Num(min=0)},
            required=("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"))


def collapse_whitespace(text: str) -> str:
    """Free text read back from a record, on one line (tables, one-line messages)."""
    return " ".join(text.split())


def check_version(data: dict[str, Any], expected: int, source: str, what: str,
                  fix: str) -> None:
    """`schema_version` is the integer `expected` (true is not 1); else one line."""
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise EdgeconvError(f"{source}: schema_version must be the integer {expected};"
                            f" got {version!r}"[:300])
    if version != expected:
        raise EdgeconvError(f"{source}: {what}schema_version {version!r} is not the"
                            f" {expected} this edgeconv reads; {fix}"[:300])


@dataclass(frozen=True)
class Latency:
    """Per-inference latency over the timed runs, in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    # 95% interval of the p50 from the timed runs (order statistics, edgeconv.stats); None
    # with fewer than 6 runs, and in files written before it was recorded
    p50_low: float | None = None
    p50_high: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Latency:
        """Raises SchemaError (a ValueError) naming the field when `data` is not one."""
        LATENCY.check(data, "latency_ms")
        return cls(**{f.name: None if data.get(f.name) is None else float(data[f.name])
                      for f in fields(cls)})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# The kinds of a row's structured notes (BenchRow.caveats): a reader acts on a note by its
# kind, never by its wording. Records are open: a kind this edgeconv does not know (a newer
# one wrote it) loads, and is shown by no one that selects kinds.
NO_FIRMWARE = "no-firmware"  # why the MCU firmware did not run this row; what would make it
HOST_TIME = "host-time"  # the latency is the host interpreter's time here, not the target's
NO_FIGURE = "no-figure"  # why a row lacks a figure it would have (accuracy, parity), once
NOTE_KINDS = (NO_FIRMWARE, HOST_TIME, NO_FIGURE)


@dataclass(frozen=True)
class Note:
    """A row's note that readers tell apart by `kind` (NOTE_KINDS: the ones this edgeconv
    writes), and its `text`, for people."""

    kind: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "text": self.text}


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
    peak_rss_of: str | None = None  # PEAK_RSS_OF: what peak_rss_bytes covers
    size_bytes: int | None = None
    accuracy: float | None = None
    agreement: float | None = None
    arena_bytes: int | None = None
    flash_bytes: int | None = None
    fits: bool | None = None
    notes: list[str] = field(default_factory=list)
    # How sure the accuracy and agreement are: the images they were measured on and a 95%
    # Wilson interval each (edgeconv.stats); None where not measured.
    eval_samples: int | None = None
    accuracy_interval: list[float] | None = None
    agreement_interval: list[float] | None = None
    # Outputs against the same file run on this (x86) machine on the same inputs: on an
    # emulated or remote board, what the row proves (records.PARITY). For an MCU firmware:
    # against the host TFLite Micro interpreter.
    parity: dict[str, Any] | None = None
    # --- an MCU firmware run on an emulated Cortex-M (edgeconv.mcu; timed_on "emulated") ---
    # core, kernel set, machine, source tree, how instructions were counted, instructions per
    # invoke and for set-up, the firmware's flash without the model, the model, static data
    mcu: dict[str, Any] | None = None
    # the estimated board latency (edgeconv.mcu.calibration.Estimate): never a measurement
    estimate_ms: dict[str, Any] | None = None
    ram_bytes: int | None = None  # arena + stack peak + static data
    stack_bytes: int | None = None  # stack peak
    # per operator in execution order: index, op, instructions, share, macs, instructions_per_mac
    ops: list[dict[str, Any]] | None = None
    # the firmware's outputs against LiteRT's reference kernels on the same inputs
    reference_parity: dict[str, Any] | None = None
    # --- an Ethos-U NPU row (edgeconv.npu; timed_on "estimated"): the Vela compile's
    # configuration, cycles, latency at the NPU clock, SRAM / flash, where each operator runs
    # and why, per-layer cycles, and the CPU-fallback operators' cost (records.NPU)
    npu: dict[str, Any] | None = None
    # notes a reader acts on, each with its kind (NOTE_KINDS); `notes` holds the others
    caveats: list[Note] = field(default_factory=list)

    def caveats_of(self, *kinds: str) -> list[Note]:
        return [note for note in self.caveats if note.kind in kinds]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["latency_ms"] = self.latency_ms.to_dict() if self.latency_ms else None
        data["notes"] = list(self.notes)
        data["caveats"] = [note.to_dict() for note in self.caveats]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchRow:
        """A row as results.json holds it: validated against ROW (SchemaError, a ValueError,
        names the field), unknown keys ignored, free text on one line."""
        ROW.check(data, "")
        return cls.from_checked(data)

    @classmethod
    def from_checked(cls, data: dict[str, Any]) -> BenchRow:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        latency = values.get("latency_ms")
        values["latency_ms"] = Latency.from_dict(latency) if latency is not None else None
        if values.get("error") is not None:
            values["error"] = collapse_whitespace(values["error"])
        values["notes"] = [collapse_whitespace(n) for n in values.get("notes", [])]
        # files written before caveats existed have none: their notes hold those texts
        values["caveats"] = [Note(c["kind"], collapse_whitespace(c["text"]))
                             for c in values.get("caveats", [])]
        return cls(**values)


_ROW_REQUIRED = ("artifact", "sha256", "format", "runtime", "target", "status")
# A file's outputs on a board against the same file on this machine, on the same inputs:
# how many inputs, how many output values, how many differ, the largest difference (in the
# output's own units: LSB for an integer output), and what ran on each side.
PARITY = Obj({
    "inputs": COUNT, "values": COUNT, "differing": COUNT, "max_abs_diff": Num(min=0),
    "equal": Bool(), "reference": Opt(Str(max_len=1000)), "cpu": Opt(Str(max_len=1000)),
    # inputs whose outputs are bit-exact, inputs with the same top-1, and what inputs
    # ("test images", "seeded random inputs")
    "inputs_equal": Opt(COUNT), "top1_equal": Opt(COUNT), "on": Opt(Str(max_len=1000)),
}, required=("inputs", "values", "differing", "max_abs_diff", "equal"))
ESTIMATE = Obj({**{name: Num(min=0) for name in ("low", "mid", "high", "cpi_low", "cpi_mid",
                                                  "cpi_high")}, "basis": TEXT},
               required=("low", "mid", "high", "basis"))
MCU = Obj({"core": NAME, "kernels": NAME, "machine": Opt(NAME), "tree": Opt(TEXT),
           "counter": Opt(TEXT), "invoke_instructions": COUNT, "setup_instructions": Opt(COUNT),
           "runtime_flash_bytes": Opt(COUNT), "model_bytes": Opt(COUNT),
           "static_bytes": Opt(COUNT), "arena_bytes": Opt(COUNT),
           "host_arena_bytes": Opt(COUNT), "clock_mhz": Opt(Num(min=0)),
           **{key: Opt(Num(min=0)) for key in ("library_seconds", "firmware_seconds",
                                               "run_seconds")}},
          required=("core", "kernels", "invoke_instructions"))
OP = Obj({"index": COUNT, "op": NAME, "instructions": COUNT, "share": FRACTION,
          "macs": Opt(COUNT), "instructions_per_mac": Opt(Num(min=0))},
         required=("index", "op", "instructions"))
PLACEMENT = Obj({"index": COUNT, "op": NAME, "output": Opt(Str(max_len=4096)),
                 "on": Str(choices=("NPU", "CPU")), "reason": Opt(TEXT)},
                required=("index", "op", "on"))
LAYER = Obj({"original_op": NAME, "npu_op": NAME, "cycles": COUNT, "macs": COUNT,
             "name": Opt(Str(max_len=4096)), "on": Opt(Str(choices=("NPU", "CPU")))},
            required=("original_op", "npu_op", "cycles"))
NPU = Obj({"accelerator": NAME, "system_config": NAME, "memory_mode": NAME,
           "clock_mhz": Num(min=0), "vela": Opt(NAME), "cycles_total": COUNT,
           "cycles_npu": Opt(COUNT), "latency_ms": Num(min=0), "sram_bytes": COUNT,
           "flash_bytes": COUNT, "dram_bytes": Opt(COUNT), "macs": Opt(COUNT),
           "compiled_bytes": Opt(COUNT), "summary_file": Opt(TEXT),
           "summary": Opt(DictOf(Str(max_len=1000))), "npu_ops": Opt(COUNT),
           "cpu_ops": Opt(COUNT), "placement": Opt(ListOf(PLACEMENT, max_len=100_000)),
           "layers": Opt(ListOf(LAYER, max_len=100_000)), "compile_seconds": Opt(Num(min=0)),
           "basis": Opt(TEXT), "cpu_fallback": Opt(Obj())},
          required=("accelerator", "system_config", "memory_mode", "clock_mhz",
                    "cycles_total", "latency_ms", "sram_bytes", "flash_bytes"))
NOTE = Obj({"kind": Str(max_len=100, pattern="[a-z][a-z0-9-]*",
                        expected="a note kind like no-firmware"), "text": TEXT},
           required=("kind", "text"))
LATENCY = Obj({**{name: Num(min=0) for name in ("p50", "p90", "p99", "mean", "std", "min")},
               "p50_low": Opt(Num(min=0)), "p50_high": Opt(Num(min=0))},
              required=("p50", "p90", "p99", "mean", "std", "min"))
ROW = Obj({
    "artifact": Str(max_len=4096, allow_empty=False), "sha256": SHA256,
    "format": Str(choices=tuple(FORMATS)), "precision": Opt(Str(choices=tuple(PRECISIONS))),
    "runtime": NAME, "target": NAME, "threads": Opt(Int(1, 65_536)),
    "status": Str(choices=STATUSES), "error": Opt(TEXT), "latency_ms": Opt(LATENCY),
    "timed_on": Str(choices=TIMED_ON), "init_ms": Opt(Num(min=0)),
    "first_ms": Opt(Num(min=0)), "runs": Opt(COUNT), "throughput_ips": Opt(Num(min=0)),
    "macs": Opt(COUNT), "gmac_per_s": Opt(Num(min=0)), "peak_rss_bytes": Opt(COUNT),
    "peak_rss_of": Opt(Str(choices=PEAK_RSS_OF)),
    "size_bytes": Opt(Int(0, MAX_MODEL_BYTES)), "accuracy": Opt(FRACTION),
    "agreement": Opt(FRACTION), "arena_bytes": Opt(COUNT), "flash_bytes": Opt(COUNT),
    "fits": Opt(Bool()), "notes": ListOf(TEXT, max_len=1000),
    "eval_samples": Opt(COUNT), "accuracy_interval": Opt(FRACTION_INTERVAL),
    "agreement_interval": Opt(FRACTION_INTERVAL), "parity": Opt(PARITY),
    "mcu": Opt(MCU), "estimate_ms": Opt(ESTIMATE), "ram_bytes": Opt(COUNT),
    "stack_bytes": Opt(COUNT), "ops": Opt(ListOf(OP, max_len=100_000)),
    "reference_parity": Opt(PARITY), "caveats": ListOf(NOTE, max_len=1000),
    "npu": Opt(NPU),
}, required=_ROW_REQUIRED)
# What report and gate read of where a bench ran; the rest (the whole target, versions) is
# kept as written. `config` (how the bench was run) is a record for people: an object.
ENVIRONMENT = Obj({
    **{key: Opt(Str(max_len=1000)) for key in ("host", "cpu", "machine", "os", "python",
                                                 "edgeconv", "created")},
    "cores": Opt(Int(0, 1 << 20)), "runtimes": Opt(DictOf(Opt(Str(max_len=1000)))),
    # the machine's 1, 5 and 15-minute load averages before and after the bench
    "load_before": Opt(ListOf(Num(min=0), 3, 3)), "load_after": Opt(ListOf(Num(min=0), 3, 3)),
    "target": Opt(Obj({"name": Opt(NAME), "kind": Opt(NAME), "description": Opt(TEXT),
                       "sram_bytes": Opt(COUNT), "flash_bytes": Opt(COUNT)})),
})
RESULTS_DOC = Obj({"schema_version": Int(), "environment": Opt(ENVIRONMENT),
                   "config": Opt(Obj()), "results": ListOf(ROW), "notes": Opt(ListOf(TEXT))},
                  required=("schema_version", "results"))


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
    check_version(data, RESULTS_SCHEMA, source, "results ", "re-run bench")
    validate(data, RESULTS_DOC, source)
    return BenchReport(environment=dict(data.get("environment") or {}),
                       config=dict(data.get("config") or {}),
                       results=[BenchRow.from_checked(r) for r in data["results"]],
                       notes=[collapse_whitespace(n) for n in data.get("notes") or []],
                       out=None)


def load_results(path: str | os.PathLike[str]) -> BenchReport:
    """Read and validate a results.json."""
    path = Path(path)
    report = results_from_dict(read_json(path), str(path))
    report.out = path
    return report


def read_json(path: Path) -> Any:
    """Parsed JSON, or one line saying why the file cannot be read: missing, not a regular
    file (a FIFO, a device, /proc), over MAX_RECORD_BYTES, not JSON, or an object that names
    a key twice (JSON keeps the last, so a second `artifacts` could empty a manifest that
    the first one filled: what a reader sees must be all the file says)."""
    text = read_regular(path, MAX_RECORD_BYTES)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise EdgeconvError(f"{path}: not valid JSON (an object names key {exc.key!r} twice)"
                            ) from None
    except RecursionError:
        raise EdgeconvError(f"{path}: not valid JSON (nested too deeply)") from None
    # ValueError: JSONDecodeError, and integers beyond Python's 4300-digit limit
    except (UnicodeDecodeError, ValueError) as exc:
        raise EdgeconvError(f"{path}: not valid JSON ({str(exc)[:200]})") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key[:100]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: the object, refused when a key comes twice."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


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
    # --train-samples (None: every training image), and the test split image by image: its
    # size and the indices the model gets wrong (None: a train.json from before they were kept)
    train_samples: int | None = None
    test_images: int | None = None
    test_wrong: tuple[int, ...] | None = None

    @property
    def epoch_seconds(self) -> list[float]:
        return [h.seconds for h in self.history]


# What export and report read of a train.json (the rest: recipe, dataset summary, labels,
# versions, kept as written).
TRAIN_DOC = Obj({
    "schema_version": Int(), "model": NAME, "model_options": MODEL_OPTIONS,
    "config": Obj({"model": Opt(NAME), "dataset": Str(max_len=4096, allow_empty=False),
                   "seed": SEED}, required=("dataset", "seed")),
    "preprocessing": PREPROCESSING, "epochs_run": COUNT, "best_epoch": COUNT,
    "test_accuracy": Opt(FRACTION), "history": ListOf(EPOCH),
    TEST_WRONG: Opt(ListOf(COUNT, max_len=10_000_000)),
}, required=("model", "model_options", "config", "preprocessing", "epochs_run", "best_epoch"))


def epoch_record(data: dict[str, Any]) -> EpochRecord:
    """An EPOCH-checked entry (unknown keys, from a newer edgeconv, left out)."""
    return EpochRecord(**{f.name: data[f.name] for f in fields(EpochRecord)})


def load_train(path: str | os.PathLike[str]) -> TrainRecord:
    """Read a train.json (files written before it had a schema_version load too)."""
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and "schema_version" in data:
        check_version(data, TRAIN_SCHEMA, str(path), "train ", "re-run `edgeconv train`")
    validate(data, TRAIN_DOC, str(path))
    test = data.get("test_accuracy")
    return TrainRecord(model=data["model"], model_options=data["model_options"],
                       dataset=data["config"]["dataset"], seed=data["config"]["seed"],
                       preprocessing=data["preprocessing"], epochs_run=data["epochs_run"],
                       best_epoch=data["best_epoch"],
                       test_accuracy=None if test is None else float(test),
                       history=[epoch_record(h) for h in data.get("history", [])],
                       directory=path.parent, train_samples=_train_samples(data),
                       test_images=_test_images(data),
                       test_wrong=None if data.get(TEST_WRONG) is None
                       else tuple(data[TEST_WRONG]))


def _train_samples(data: dict[str, Any]) -> int | None:
    value = data["config"].get("train_samples")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _test_images(data: dict[str, Any]) -> int | None:
    """The test split's size from train.json's dataset summary (None when it has none)."""
    try:
        value = data["dataset"]["splits"]["test"]["count"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
