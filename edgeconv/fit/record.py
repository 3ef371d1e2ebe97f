"""study.json: what `edgeconv fit` found, schema-validated like every record edgeconv reads.

A study folder holds study.json and trials/<candidate key>/, each an ordinary run folder
(train.json, manifest.json, results.json). study.json records the request, the space, the
pruning verdicts, each rung's scores, the trials, the finalists, the Pareto front and the
recommended point (docs/fit.md; the layout is the contract between the orchestration that
writes it and `edgeconv report` / `edgeconv gate`, which read it).

Standard library only: `edgeconv gate` reads a study in a CI job with no runtime. Every path
in the study is relative to the study folder and must stay inside it; `inside` checks that
once symbolic links are followed, where the file is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.fit.footprint import PRECISIONS
from edgeconv.records import (
    COUNT,
    FRACTION,
    LOSS,
    NAME,
    SEED,
    TEXT,
    check_version,
    read_json,
)
from edgeconv.schema import (
    Bool,
    DictOf,
    Int,
    ListOf,
    Num,
    Obj,
    Opt,
    RelPath,
    SchemaError,
    Spec,
    Str,
    contained,
    validate,
)
from edgeconv.zoo._registry import MAX_CHANNELS, MAX_CLASSES, MAX_SIDE

STUDY = "study.json"
STUDY_SCHEMA = 1
KIND = "edgeconv-study"
STATUSES = ("running", "finished", "interrupted", "nothing-fits")
TRIAL_STATES = ("pending", "running", "stopped", "finished", "failed")
# How a finalist's latency was obtained; the verdict line and the report say it in words.
# An estimate has a band (low, mid, high); a measured latency is a median (its "band": the
# fastest run and the 90th percentile).
ESTIMATED, EMULATED = "estimated", "emulated"
HOST, DEVICE = "measured on this host", "measured on the device"
LATENCY_KINDS = (ESTIMATED, EMULATED, HOST, DEVICE)
MEASURED = (HOST, DEVICE)
# what a point is exported and benched at: the precisions a footprint knows
POINT_PRECISIONS = PRECISIONS
MAX_CANDIDATES = 10_000  # far above the space's own limit: a bound, not a policy

# A candidate key: [a-z0-9._-] (Candidate.key), and a point id: "<key>/<precision>".
KEY = Str(pattern=r"[a-z0-9._-]+", max_len=300, allow_empty=False,
          expected="a candidate key ([a-z0-9._-])")
POINT_ID = Str(pattern=r"[a-z0-9._-]+/(" + "|".join(POINT_PRECISIONS) + ")", max_len=320,
               expected="a point id (<candidate key>/<precision>)")
PRECISION = Str(choices=POINT_PRECISIONS)
MS = Num(min=0)


class Scalar(Spec):
    """A knob's value: a one-line string, a finite number, true/false or null."""

    expected = "a string, number, true/false or null"

    def check(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return Str(max_len=1000).check(value, where)
        if isinstance(value, (int, float)):
            return Num().check(value, where)
        raise SchemaError(where, self.expected, value)


class Options(Spec):
    """A candidate's options: an object of knob -> scalar, or the [[name, value], ...] pairs
    of Candidate.options."""

    expected = "an object of knob values or a list of [name, value] pairs"

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return DictOf(Scalar(), max_len=100).check(value, where)
        if isinstance(value, list):
            ListOf(ListOf(max_len=2, min_len=2), max_len=100).check(value, where)
            for i, (name, item) in enumerate(value):
                Str(max_len=1000, allow_empty=False).check(name, f"{where}[{i}][0]")
                Scalar().check(item, f"{where}[{i}][1]")
            return value
        raise SchemaError(where, self.expected, value)


LATENCY_BAND = Obj({"low": MS, "mid": MS, "high": MS, "basis": Opt(TEXT)},
                   required=("low", "mid", "high"))
CANDIDATE = Obj({"key": KEY, "model": NAME, "options": Options(), "size": Int(1, MAX_SIDE),
                 "builder": Opt(Str(max_len=4096))}, required=("key", "model", "size"))
REQUEST = Obj({
    "target": NAME, "data": Str(max_len=4096, allow_empty=False),
    "data_dir": Opt(Str(max_len=4096)), "max_latency_ms": Opt(Num(min=0)),
    "min_accuracy": Opt(FRACTION), "precisions": ListOf(PRECISION, 1, 10, unique=True),
    "time_budget_s": Opt(Num(min=0)), "seed": Opt(SEED), "train_samples": Opt(COUNT),
    "eval_samples": Opt(COUNT), "min_epochs": Opt(Int(1, 100_000)),
    "max_epochs": Opt(Int(1, 100_000)), "reduction_factor": Opt(Int(2, 1000)),
    "workers": Opt(Int(1, 1 << 16)), "executor": Opt(Str(choices=("local", "ray"))),
    "ray_address": Opt(Str(max_len=1000)),
}, required=("target", "data", "precisions"))
SPACE = Obj({"entries": ListOf(Str(max_len=4096), max_len=1000),
             "candidates": ListOf(CANDIDATE, max_len=MAX_CANDIDATES)},
            required=("entries", "candidates"))
DATA = Obj({"classes": Int(1, MAX_CLASSES), "channels": Int(1, MAX_CHANNELS),
            "train": Opt(COUNT), "val": Opt(COUNT), "test": Opt(COUNT)},
           required=("classes", "channels"))
FOOTPRINT = Obj({"params": Opt(COUNT), "macs": Opt(COUNT), "activation_bytes": Opt(COUNT),
                 "model_bytes": Opt(COUNT), "arena_bytes": Opt(COUNT),
                 "flash_bytes": Opt(COUNT), "latency": Opt(LATENCY_BAND),
                 "error": Opt(TEXT)})  # why the untrained export or its planner failed
# A pruning verdict (edgeconv.fit.prune.Verdict.to_dict); `kinds`, when recorded, names
# what each reason is about (prune.KINDS: ram, flash, latency, runs), one per reason.
VERDICT = Obj({"candidate": KEY, "label": Opt(NAME), "precision": PRECISION, "kept": Bool(),
               "reasons": ListOf(TEXT, max_len=100),
               "kinds": Opt(ListOf(Str(max_len=50), max_len=100)), "footprint": Opt(FOOTPRINT)},
              required=("candidate", "precision", "kept", "reasons"))
SCORE = Obj({"val_accuracy": Opt(FRACTION), "val_loss": Opt(LOSS), "epochs": Opt(COUNT),
             "seconds": Opt(Num(min=0))})
RUNG = Obj({"epochs": Int(1, 100_000), "scores": DictOf(SCORE, max_len=MAX_CANDIDATES),
            "promoted": ListOf(KEY, max_len=MAX_CANDIDATES, unique=True)},
           required=("epochs", "scores", "promoted"))
TRIAL = Obj({"dir": RelPath(), "epochs": Opt(COUNT), "state": Str(choices=TRIAL_STATES),
             "error": Opt(TEXT)}, required=("dir", "state"))
FINALIST = Obj({
    "id": POINT_ID, "candidate": KEY, "label": NAME, "precision": PRECISION,
    "file": Opt(RelPath()), "accuracy": Opt(FRACTION), "accuracy_low": Opt(FRACTION),
    "accuracy_high": Opt(FRACTION), "test_images": Opt(COUNT), "latency": Opt(LATENCY_BAND),
    "latency_kind": Opt(Str(choices=LATENCY_KINDS)), "ram_bytes": Opt(COUNT),
    "flash_bytes": Opt(COUNT), "arena_bytes": Opt(COUNT), "predicted_arena_bytes": Opt(COUNT),
    "macs": Opt(COUNT), "params": Opt(COUNT), "fits": Opt(Bool()), "meets": Opt(Bool()),
    "why_not": Opt(ListOf(TEXT, max_len=100)), "results": Opt(RelPath()),
    # the bench row's status, file size and error (a finalist the bench could not run)
    "status": Opt(Str(max_len=100)), "size_bytes": Opt(COUNT), "error": Opt(TEXT),
}, required=("id", "candidate", "label", "precision"))
STUDY_DOC = Obj({
    "schema_version": Int(), "kind": Str(choices=(KIND,)), "name": NAME,
    "status": Str(choices=STATUSES), "request": REQUEST, "space": SPACE, "data": Opt(DATA),
    "pruning": Opt(ListOf(VERDICT, max_len=2 * MAX_CANDIDATES)),
    "rungs": Opt(ListOf(RUNG, max_len=100)),
    "trials": Opt(DictOf(TRIAL, max_len=MAX_CANDIDATES)),
    "finalists": Opt(ListOf(FINALIST, max_len=2 * MAX_CANDIDATES)),
    "front": Opt(ListOf(POINT_ID, max_len=2 * MAX_CANDIDATES, unique=True)),
    "winner": Opt(POINT_ID), "verdict": Opt(Str(max_len=2000)),
    "seconds": Opt(DictOf(Num(min=0), max_len=100)),
    "versions": Opt(DictOf(Opt(Str(max_len=1000)), max_len=100)),
}, required=("schema_version", "kind", "name", "status", "request", "space"))
# What a reader may index without a None check (absent or null in a running study).
_EMPTY: dict[str, Any] = {"pruning": [], "rungs": [], "trials": {}, "finalists": [],
                          "front": [], "data": None, "winner": None, "verdict": None,
                          "seconds": {}, "versions": {}}


def study_file(path: str | os.PathLike[str]) -> Path:
    """The study.json of `path` (a study folder, or the file itself)."""
    path = Path(path)
    return path / STUDY if path.is_dir() else path


def is_study(path: str | os.PathLike[str]) -> bool:
    """Is `path` a study folder (or its study.json)? Cheap: only looks for the file."""
    path = Path(path)
    return (path.is_dir() and (path / STUDY).is_file()) or (
        path.name == STUDY and path.is_file())


def check_study(doc: Any, source: str) -> dict[str, Any]:
    """`doc` if it is a valid study document; else one EdgeconvError line naming `source`
    and the field."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise EdgeconvError(f"{source}: not an edgeconv study.json (kind is not {KIND!r})")
    check_version(doc, STUDY_SCHEMA, source, "study ",
                  "re-run `edgeconv fit` with this edgeconv")
    validate(doc, STUDY_DOC, source)
    try:
        _check_references(doc)
    except SchemaError as exc:
        raise EdgeconvError(f"{source}: {exc}") from None
    return doc


def write_study(study_dir: str | os.PathLike[str], doc: dict[str, Any]) -> Path:
    """Validate, then write study.json atomically (a reader never sees half of one)."""
    target = Path(study_dir) / STUDY
    check_study(doc, str(target))
    _atomic.write_json(target, doc)
    return target


def load_study(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A study folder's (or a study.json's) document, validated, with the optional sections
    filled in empty (a running study has no finalists yet)."""
    file = study_file(path)
    if Path(path).is_dir() and not file.is_file():
        raise EdgeconvError(f"{path} has no {STUDY}; is it a study folder (`edgeconv fit"
                            " --out`)?")
    doc = check_study(read_json(file), str(file))
    for key, empty in _EMPTY.items():
        if doc.get(key) is None:
            doc[key] = type(empty)() if isinstance(empty, (list, dict)) else empty
    return doc


def inside(study_dir: str | os.PathLike[str], relative: str, what: str) -> Path:
    """`study_dir / relative`, refused in one line when it leads outside the study folder
    once symbolic links are followed."""
    if not contained(study_dir, relative):
        raise EdgeconvError(f"{Path(study_dir) / STUDY}: {what} {relative!r} leads outside"
                            f" {study_dir} (a symbolic link?)")
    return Path(study_dir) / relative


def options_of(candidate: dict[str, Any]) -> dict[str, Any]:
    """A candidate's options as a dict, whichever form the record holds them in."""
    options = candidate.get("options") or {}
    return dict(options) if isinstance(options, dict) else {k: v for k, v in options}


def _check_references(doc: dict[str, Any]) -> None:
    """Names that must point at something the document defines: a hand-edited or hostile
    study must not name a winner that is not a finalist, or a trial of no candidate."""
    keys = [c["key"] for c in doc["space"]["candidates"]]
    known = set(keys)
    if len(known) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise SchemaError("space.candidates", "unique keys",
                          message=f"names the key {twice!r} twice")

    def need(key: str, where: str) -> None:
        if key not in known:
            raise SchemaError(where, "a candidate of the space",
                              message=f"names {key!r}, which is no candidate of the space")

    for i, verdict in enumerate(doc.get("pruning") or []):
        need(verdict["candidate"], f"pruning[{i}].candidate")
    for i, rung in enumerate(doc.get("rungs") or []):
        for key in rung["scores"]:
            need(key, f"rungs[{i}].scores")
        for j, key in enumerate(rung["promoted"]):
            need(key, f"rungs[{i}].promoted[{j}]")
    for key in doc.get("trials") or {}:
        need(key, "trials")
    ids: set[str] = set()
    for i, point in enumerate(doc.get("finalists") or []):
        need(point["candidate"], f"finalists[{i}].candidate")
        if point["id"] != f"{point['candidate']}/{point['precision']}":
            raise SchemaError(f"finalists[{i}].id", "<candidate>/<precision>", point["id"])
        if point["id"] in ids:
            raise SchemaError(f"finalists[{i}].id", "unique", message="repeats an id")
        ids.add(point["id"])
    for j, point_id in enumerate(doc.get("front") or []):
        if point_id not in ids:
            raise SchemaError(f"front[{j}]", "a finalist id",
                              message=f"names {point_id!r}, which is no finalist")
    winner = doc.get("winner")
    if winner is not None and winner not in ids:
        raise SchemaError("winner", "a finalist id",
                          message=f"names {winner!r}, which is no finalist")
