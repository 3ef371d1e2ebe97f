"""A study: which candidate of a space, at which precision, fits a target best.

Three phases, each recorded in study.json as it goes (edgeconv.fit.record), so that a study
stopped at any moment (Ctrl-C, kill -9, a lost node) resumes with --resume where it stood:

1. pruning: every point (candidate x precision) sized before a single epoch
   (edgeconv.fit.prune); what certainly cannot fit the target is dropped, with its reason;
2. training: the survivors, in brackets of similar cost, trained by successive halving
   (edgeconv.fit.schedule) on the executor (local processes or Ray tasks); each result is
   recorded as it arrives, and a trial folder keeps its last finished epoch;
3. finalists: the trials that reached their bracket's highest rung are exported and benched
   on the target (on this machine: the firmware tools and the study folder are here), and
   the Pareto front and the recommended point are drawn from those figures.

Brackets: successive halving ranks on accuracy alone, which would drop every small model at
the first rung; halving within brackets of similar MACs keeps the best small, medium and
large candidates, so the front shows the trade the articles argue about.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv import __version__
from edgeconv.errors import EdgeconvError
from edgeconv.fit.record import POINT_PRECISIONS, STUDY
from edgeconv.fit.schedule import rung_epochs
from edgeconv.fit.training import TRIALS
from edgeconv.progress import Progress

SCRATCH = ".footprints"  # the untrained files pruning makes; removed once pruning is done
WORKER_LOG = "workers.log"  # what the worker processes print (TensorFlow's own logging)


@dataclass(frozen=True)
class FitRequest:
    target: str
    out: Path
    data: str = "digits"
    data_dir: str | None = None
    max_latency_ms: float | None = None
    min_accuracy: float | None = None
    space: tuple[str, ...] = ()  # empty: the default space
    precisions: tuple[str, ...] = ("int8",)
    time_budget_s: float | None = None
    seed: int = 0
    train_samples: int | None = None
    eval_samples: int | None = None
    min_epochs: int = 1
    max_epochs: int = 9
    reduction_factor: int = 3
    brackets: int = 3
    workers: int = 1
    ray_address: str | None = None
    resume: bool = False
    tflm_tree: str | None = None
    tflm_subset: str | None = None  # tests: the quicker "mlperf-tiny" firmware library

    # what must match for --resume to continue a study (workers, budget, executor may change)
    IDENTITY = ("target", "data", "data_dir", "max_latency_ms", "min_accuracy", "space",
                "precisions", "seed", "train_samples", "eval_samples", "min_epochs",
                "max_epochs", "reduction_factor", "brackets")

    def record(self) -> dict[str, Any]:
        return {"target": self.target, "data": self.data, "data_dir": self.data_dir,
                "max_latency_ms": self.max_latency_ms, "min_accuracy": self.min_accuracy,
                "space": list(self.space), "precisions": list(self.precisions),
                "time_budget_s": self.time_budget_s, "seed": self.seed,
                "train_samples": self.train_samples, "eval_samples": self.eval_samples,
                "min_epochs": self.min_epochs, "max_epochs": self.max_epochs,
                "reduction_factor": self.reduction_factor, "brackets": self.brackets,
                "workers": self.workers, "executor": "ray" if self.ray_address else "local",
                "ray_address": self.ray_address}


@dataclass
class Clock:
    """Seconds per phase, added to what earlier sessions of the study spent."""

    spent: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - begun)

    def add(self, name: str, seconds: float) -> None:
        self.spent[name] = self.spent.get(name, 0.0) + seconds


def run_study(request: FitRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) the study `request` describes; returns its study.json document."""
    from edgeconv import _atomic
    from edgeconv.targets import get_target

    progress = progress or Progress()
    _check(request)
    target = get_target(request.target)
    _atomic.check_output_dir(request.out, "--out")
    # the question checked whole before the study folder is made: a bad space or dataset
    # leaves nothing behind
    data = _data_facts(request)
    space = _space(request, data["channels"])
    if request.resume and not (request.out / STUDY).is_file():
        raise EdgeconvError(f"nothing to resume in {request.out}: no {STUDY} there; run"
                            " without --resume to start")
    with _locked(request.out):
        doc = _open(request)
        clock = Clock(spent=dict(doc.get("seconds") or {}))
        session_started = time.perf_counter()
        try:
            _run(doc, request, target, data, space, clock, progress)
        except KeyboardInterrupt:
            doc["status"] = "interrupted"
            raise
        finally:
            clock.add("total", time.perf_counter() - session_started)
            doc["seconds"] = {k: round(v, 3) for k, v in clock.spent.items()}
            _save(request.out, doc)
    return doc


def _check(request: FitRequest) -> None:
    rung_epochs(request.min_epochs, request.max_epochs, request.reduction_factor)
    for precision in request.precisions:
        if precision not in POINT_PRECISIONS:
            raise EdgeconvError(f"--precisions: '{precision}' is not one a study exports;"
                                f" choose from {', '.join(POINT_PRECISIONS)}")
    if not request.precisions:
        raise EdgeconvError("--precisions: give at least one of "
                            + ", ".join(POINT_PRECISIONS))
    if request.workers < 1:
        raise EdgeconvError(f"--workers must be >= 1; got {request.workers}")
    if request.brackets < 1:
        raise EdgeconvError(f"--brackets must be >= 1; got {request.brackets}")
    if request.max_latency_ms is not None and not request.max_latency_ms > 0:
        raise EdgeconvError(f"--max-latency-ms must be > 0; got {request.max_latency_ms}")
    if request.min_accuracy is not None and not 0 <= request.min_accuracy <= 1:
        raise EdgeconvError(f"--min-accuracy is a fraction of the test images, 0 to 1; got"
                            f" {request.min_accuracy}")
    if request.data == "synthetic_text":
        raise EdgeconvError("--data synthetic_text is text (article D's char-CNN); fit searches"
                            " image models: give an image dataset or folder")
    if request.time_budget_s is not None and not request.time_budget_s > 0:
        raise EdgeconvError(f"--time-budget must be > 0; got {request.time_budget_s} s")


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One process at a time in a study folder (the folder itself is locked)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgeconvError(f"another edgeconv fit is running in {folder}; wait for it,"
                                " or give another --out") from None
        yield
    finally:
        os.close(fd)


def _open(request: FitRequest) -> dict[str, Any]:
    """A new study document, or the folder's, checked against the request, to resume."""
    from edgeconv.fit.record import KIND, STUDY_SCHEMA, load_study

    path = request.out / STUDY
    if not request.resume:
        if path.exists() or (request.out / TRIALS).exists():
            raise EdgeconvError(f"{request.out} holds a study already: --resume continues it,"
                                " or give another --out")
        return {"schema_version": STUDY_SCHEMA, "kind": KIND, "name": request.out.name,
                "status": "running", "request": request.record(),
                "space": {"entries": list(request.space) or ["default"], "candidates": []},
                "data": None, "pruning": [], "rungs": [], "trials": {},
                "finalists": [], "front": [], "winner": None, "verdict": None,
                "seconds": {}, "versions": _versions(request)}
    doc = load_study(path)
    saved, asked = doc["request"], request.record()
    for key in FitRequest.IDENTITY:
        if saved.get(key) != asked[key]:
            raise EdgeconvError(f"cannot resume {request.out}: it was started with"
                                f" {_option(key)} {_shown(saved.get(key))}, not"
                                f" {_shown(asked[key])}")
    doc["request"].update({k: asked[k] for k in ("workers", "executor", "ray_address",
                                                "time_budget_s")})
    doc["status"] = "running"
    doc["versions"] = _versions(request)
    return doc


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(default)"
    if isinstance(value, float):
        return f"{value:g}"
    return "(not set)" if value is None else str(value)


def _versions(request: FitRequest) -> dict[str, str | None]:
    from edgeconv.runtimes.registry import installed_version

    return {"edgeconv": __version__, "optuna": installed_version("optuna"),
            "ray": installed_version("ray") if request.ray_address else None}


def _save(folder: Path, doc: dict[str, Any]) -> None:
    from edgeconv.fit.record import write_study

    write_study(folder, doc)


# --- the phases --------------------------------------------------------------------------


def _run(doc: dict[str, Any], request: FitRequest, target, data: dict[str, Any], space,
         clock: Clock, progress: Progress) -> None:
    doc["data"] = data
    if doc["space"]["candidates"] and \
            doc["space"]["candidates"] != space.to_dict()["candidates"]:
        raise EdgeconvError(f"cannot resume {request.out}: the space's candidates differ from"
                            " those the study started with (the zoo or a builder changed)")
    doc["space"] = space.to_dict()
    candidates = {c.key: c for c in space.candidates}
    progress.message(f"{len(candidates)} candidates x {len(request.precisions)} precision(s)"
                     f" = {len(candidates) * len(request.precisions)} points on {target.name}")
    from edgeconv.fit.executors import LocalExecutor

    threads = max(1, (os.cpu_count() or 1) // request.workers)
    # one pool of workers for every phase here: each worker imports TensorFlow once
    local = LocalExecutor(request.workers, threads, request.out / WORKER_LOG)
    try:
        with clock.phase("pruning"):
            kept = _prune(doc, request, candidates, data, local, progress)
        _save(request.out, doc)
        if not kept:
            doc["status"] = "nothing-fits"
            doc["verdict"] = _nothing_fits(doc, target, request.max_latency_ms)
            raise EdgeconvError(doc["verdict"])
        from edgeconv.fit.training import train_phase

        with clock.phase("training"):
            finalists = train_phase(doc, request, [candidates[k] for k in kept],
                                    data["channels"], local, threads, clock,
                                    lambda: _save(request.out, doc), progress)
        with clock.phase("finalists"):
            _finalists(doc, request, [candidates[k] for k in finalists], data, local, target,
                       progress)
    except BaseException:
        local.close(cancel=True)
        raise
    local.close()
    _conclude(doc, request, target)
    doc["status"] = "finished"


def _nothing_fits(doc, target, max_latency_ms: float | None) -> str:
    from edgeconv.fit.prune import Verdict, nothing_fits_message

    return nothing_fits_message([Verdict.from_dict(v) for v in doc["pruning"]], target,
                                max_latency_ms)


def _data_facts(request: FitRequest) -> dict[str, Any]:
    """Classes, channels and split sizes, as training will see them."""
    from edgeconv.data import load
    from edgeconv.data.sources import load_dataset

    raw = load_dataset(request.data, data_dir=request.data_dir)
    h, w, c = raw.x_train.shape[1:4] if raw.x_train.ndim == 4 else (*raw.x_train.shape[1:3], 1)
    prepared = load(request.data, input_shape=(h, w, c), data_dir=request.data_dir,
                    seed=request.seed, limit=request.train_samples)
    return {"classes": prepared.num_classes, "channels": int(c),
            "train": len(prepared.train.y), "val": len(prepared.val.y),
            "test": len(prepared.test.y)}


def _space(request: FitRequest, channels: int):
    from edgeconv.fit.space import default_space, parse_space

    return parse_space(list(request.space), channels) if request.space else \
        default_space(channels)


def _prune(doc, request: FitRequest, candidates: dict, data, local,
           progress: Progress) -> list[str]:
    """Size every point not sized yet (in parallel), record the verdicts in space order;
    the keys of the candidates with at least one point kept, cheapest first."""
    done = {(v["candidate"], v["precision"]) for v in doc["pruning"]}
    jobs = [{"kind": "footprint", "key": f"{key}/{precision}", "candidate": c.to_dict(),
             "precision": precision, "classes": data["classes"],
             "channels": data["channels"], "target": request.target,
             "max_latency_ms": request.max_latency_ms,
             "dir": str((request.out / SCRATCH / key / precision).resolve())}
            for key, c in candidates.items() for precision in request.precisions
            if (key, precision) not in done]
    def sized(job: dict, result: dict) -> None:  # kept as it comes: a resume skips it
        if result.get("error"):
            raise EdgeconvError(f"cannot size {job['key']} before training: {result['error']}")
        doc["pruning"].append(result["verdict"])
        _save(request.out, doc)

    if jobs:
        _run_jobs(jobs, local, progress, "sizing before training", on_result=sized)
    order = {(key, p): i for i, key in enumerate(candidates) for p in request.precisions}
    doc["pruning"].sort(key=lambda v: order.get((v["candidate"], v["precision"]), 1 << 30))
    shutil.rmtree(request.out / SCRATCH, ignore_errors=True)
    pruned = [v for v in doc["pruning"] if not v["kept"]]
    progress.message(f"pruned {len(pruned)} of {len(doc['pruning'])} points before training"
                     + (": " + _reason_counts(pruned) if pruned else ""))
    macs = {}
    for verdict in doc["pruning"]:
        if verdict["kept"]:
            macs[verdict["candidate"]] = verdict["footprint"]["macs"]
    return sorted(macs, key=lambda k: (macs[k], list(candidates).index(k)))


def _reason_counts(pruned: list[dict[str, Any]]) -> str:
    """'3 by latency, 1 by RAM': what ruled the pruned points out (a point may count twice)."""
    counts: dict[str, int] = {}
    for verdict in pruned:
        for kind in verdict.get("kinds") or ["other"]:
            counts[kind] = counts.get(kind, 0) + 1
    names = {"ram": "RAM", "flash": "flash", "latency": "latency", "runs": "missing kernels"}
    return ", ".join(f"{n} by {names.get(kind, kind)}" for kind, n in counts.items())


def _run_jobs(jobs: list[dict], executor, progress: Progress, what: str,
              at_once: int | None = None,
              on_result: Callable[[dict, dict], None] | None = None) -> dict[str, dict]:
    """Every job on `executor`, `at_once` at a time (default: all its workers); results by
    job key, each also handed to `on_result` as it comes."""
    results: dict[str, dict] = {}
    progress.start(len(jobs), what)
    pending = list(jobs)
    while pending or executor.busy():
        while pending and executor.busy() < (at_once or executor.workers):
            executor.submit(pending.pop(0))
        for job, result in executor.results(timeout=1.0):
            results[job["key"]] = result
            progress.update(len(results), f"{what}: {job['key']}")
            if on_result is not None:
                on_result(job, result)
    return results


# --- finalists ---------------------------------------------------------------------------


def _finalists(doc, request: FitRequest, finalists: list, data, local, target,
               progress: Progress) -> None:
    """Export and bench every finalist not done yet, at each precision pruning kept."""
    kept = {(v["candidate"], v["precision"]): v for v in doc["pruning"] if v["kept"]}
    done = {p["candidate"] for p in doc["finalists"]}
    jobs = []
    for candidate in finalists:
        precisions = [p for p in request.precisions if (candidate.key, p) in kept]
        if candidate.key in done or not precisions:
            continue
        jobs.append({"kind": "final", "key": candidate.key, "candidate": candidate.to_dict(),
                     "dir": str((request.out / TRIALS / candidate.key).resolve()),
                     "precisions": precisions, "target": request.target,
                     "data": request.data, "data_dir": request.data_dir,
                     "seed": request.seed, "eval_samples": request.eval_samples,
                     "channels": data["channels"], "tflm_tree": request.tflm_tree,
                     "tflm_subset": request.tflm_subset})
    if not jobs:
        return
    progress.message(f"exporting and benching {len(jobs)} finalist(s) on {request.target}")
    # an emulated core's instruction counts do not depend on what else runs; a time
    # measured here does: then one bench at a time
    at_once = None if target.core else 1
    results = _run_jobs(jobs, local, progress, "finalists", at_once)
    for job in jobs:
        result = results[job["key"]]
        if result.get("error"):
            progress.message(f"finalist {job['key']} could not be exported and benched:"
                             f" {result['error'][:300]}")
            doc["trials"][job["key"]]["error"] = result["error"][:2000]
            continue
        for point in result["points"]:
            footprint = kept[(point["candidate"], point["precision"])]["footprint"]
            if point.get("latency") is None and footprint.get("latency"):
                # no firmware ran (no toolchain): the estimate from MACs, said as such
                point["latency"], point["latency_kind"] = footprint["latency"], "estimated"
            point["predicted_arena_bytes"] = footprint.get("arena_bytes")
            point["params"] = footprint.get("params")
            point["macs"] = point.get("macs") or footprint.get("macs")
            folder = doc["trials"][point["candidate"]]["dir"]  # files: in its trial folder
            point["file"] = f"{folder}/{point['file']}" if point.get("file") else None
            point["results"] = f"{folder}/{point['results']}"
            doc["finalists"].append(point)
    _save(request.out, doc)


def _conclude(doc, request: FitRequest, target) -> None:
    from edgeconv.fit.front import choose, misses, pareto_front, verdict_line

    finalists = doc["finalists"]
    for point in finalists:
        point["why_not"] = misses(point, doc["request"])
        point["meets"] = not point["why_not"]
    doc["front"] = pareto_front(finalists)
    winner = choose(finalists, doc["request"])
    doc["winner"] = winner["id"] if winner else None
    doc["verdict"] = verdict_line(winner, target.name) if winner else None


def summary_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The finalists, front first, for the command's table."""
    front = set(doc.get("front") or [])
    return sorted(doc.get("finalists") or [],
                  key=lambda p: (p["id"] not in front, -(p.get("accuracy") or 0)))
