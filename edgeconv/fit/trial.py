"""One job of a study, run in a worker: train a candidate up to a rung, size a point before
training, or export and bench a finalist. A job is a plain dict and so is its result, so the
same function runs in a local process and in a Ray task (edgeconv.fit.executors).

A trial folder is an ordinary training run (edgeconv.train: model.keras, last.keras,
state.json, train.json), continued rung after rung with `resume`; a finalist's folder then
also holds its export (manifest.json, the .tflite files) and bench (results.json), exactly
what `edgeconv export RUN` and `edgeconv bench RUN --target T` would have made.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, one_line
from edgeconv.records import NO_FIRMWARE


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job; a failure is the job's result (one line), never the study's end."""
    started = time.perf_counter()
    try:
        result = _JOBS[job["kind"]](job)
        error = None
    except EdgeconvError as exc:
        result, error = {}, str(exc)
    except Exception as exc:  # noqa: BLE001 - a candidate that breaks must not end the study
        result, error = {}, one_line(f"{type(exc).__name__}: {exc}")
    finally:
        _clear_keras()
    return {"key": job["key"], **result, "error": error,
            "seconds": time.perf_counter() - started}


def _clear_keras() -> None:
    """A worker runs many jobs: drop the last one's graphs and models."""
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


def candidate_of(job: dict[str, Any]):
    from edgeconv.fit.space import Candidate

    return Candidate.from_dict(job["candidate"])


# --- training to a rung --------------------------------------------------------------------


def _train(job: dict[str, Any]) -> dict[str, Any]:
    from edgeconv.train import STATE, TrainConfig, train

    candidate = candidate_of(job)
    model = zoo_name(candidate, job["channels"])
    folder = Path(job["dir"])
    # a builder's knobs are its function's arguments (zoo_name bakes them in), not zoo options
    options = candidate.options_dict() if candidate.builder is None else {}
    config = TrainConfig(
        model=model, model_options={**options, "input_shape": (candidate.size, candidate.size,
                                                               job["channels"])},
        dataset=job["data"], data_dir=job.get("data_dir"), epochs=job["max_epochs"],
        seed=job["seed"], out=folder, resume=(folder / STATE).is_file(),
        train_samples=job.get("train_samples"), stop_after=job["epochs"])
    result = train(config)
    return {"epochs": result.epochs_run, "val_accuracy": result.best_val_accuracy,
            "val_loss": _best_val_loss(result), "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early}


def _best_val_loss(result) -> float | None:
    for epoch in result.history:
        if epoch.epoch == result.best_epoch:
            return epoch.val_loss
    return None


def zoo_name(candidate, channels: int) -> str:
    """The zoo name training uses: the model's, or for a user's builder a model registered
    in this process under the candidate's key (train and export read the zoo)."""
    if candidate.builder is None:
        return candidate.model
    from edgeconv.zoo._registry import _REGISTRY, ModelSpec, register

    if candidate.key not in _REGISTRY:
        from edgeconv.fit.space import build_candidate

        def build(opts):
            return build_candidate(candidate, opts.classes, opts.input_shape[2])

        register(ModelSpec(
            name=candidate.key, family="user", description=f"{candidate.label} (your builder)",
            builder=build, default_input_shape=(candidate.size, candidate.size, channels),
            default_classes=10, min_size=candidate.size))
    return candidate.key


# --- sizing a point before training ------------------------------------------------------


def _footprint(job: dict[str, Any]) -> dict[str, Any]:
    from edgeconv.fit.footprint import footprint
    from edgeconv.fit.prune import judge
    from edgeconv.targets import get_target

    candidate = candidate_of(job)
    target = get_target(job["target"])
    folder = Path(job["dir"])
    folder.mkdir(parents=True, exist_ok=True)
    fp = footprint(candidate, job["precision"], job["classes"], job["channels"], folder,
                   target, max_latency_ms=job.get("max_latency_ms"))
    verdict = judge(candidate, job["precision"], fp, target, job.get("max_latency_ms"))
    return {"verdict": verdict.to_dict()}


# --- a finalist: export and bench --------------------------------------------------------


def _final(job: dict[str, Any]) -> dict[str, Any]:
    from edgeconv.bench import BenchConfig, run_bench
    from edgeconv.export.config import ExportConfig
    from edgeconv.export.run import export
    from edgeconv.records import RESULTS

    candidate = candidate_of(job)
    zoo_name(candidate, job["channels"])  # a builder's model must be known to export
    folder = Path(job["dir"])
    made = export(ExportConfig(target=str(folder), precisions=frozenset(job["precisions"]),
                               formats=("tflite",), dataset=job["data"],
                               data_dir=job.get("data_dir"), seed=job["seed"],
                               eval_samples=job.get("eval_samples")))
    report = run_bench(BenchConfig(paths=(folder,), target=job["target"],
                                   data_dir=job.get("data_dir"), out=folder / RESULTS,
                                   eval_samples=job.get("eval_samples"),
                                   tflm_tree=job.get("tflm_tree"),
                                   tflm_subset=job.get("tflm_subset"),
                                   runs=job.get("runs", 20), warmup=3, min_time=0.2))
    points = []
    for precision in job["precisions"]:
        row = _row_for(report.results, precision)
        artifact = next((a for a in made.artifacts if a.precision == precision), None)
        points.append(_point(candidate, precision, row, artifact))
    return {"points": points, "float_accuracy": made.float_accuracy}


def _row_for(rows, precision: str):
    """The bench row that stands for a precision: the firmware's (CMSIS-NN first) on an MCU
    target, else the first measured one."""
    mine = [r for r in rows if r.precision == precision and r.format == "tflite"]
    order = {"emulated": 0, "target": 1, "estimated": 2, "host": 3}
    mine.sort(key=lambda r: (not r.ok, order.get(r.timed_on, 9),
                             (r.mcu or {}).get("kernels") != "cmsis-nn"))
    return mine[0] if mine else None


def _point(candidate, precision: str, row, artifact) -> dict[str, Any]:
    """A finalist's figures; its files named within its trial folder (the study adds where
    that folder is)."""
    from edgeconv.records import RESULTS

    point: dict[str, Any] = {
        "id": f"{candidate.key}/{precision}", "candidate": candidate.key,
        "label": candidate.label, "precision": precision,
        "file": artifact.path if artifact is not None else None, "results": RESULTS,
    }
    if row is None:
        return {**point, "error": "the bench made no row for this file"}
    interval = row.accuracy_interval or [None, None]
    latency, kind = _latency(row)
    return {**point, "accuracy": row.accuracy, "accuracy_low": interval[0],
            "accuracy_high": interval[1], "test_images": row.eval_samples,
            "latency": latency, "latency_kind": kind, "ram_bytes": row.ram_bytes,
            "flash_bytes": row.flash_bytes, "arena_bytes": row.arena_bytes,
            "macs": row.macs, "fits": row.fits, "size_bytes": row.size_bytes,
            "status": row.status, "error": row.error}


def _latency(row) -> tuple[dict[str, Any] | None, str | None]:
    """The row's latency as a band, and how it was obtained."""
    if row.estimate_ms:
        estimate = row.estimate_ms
        return ({key: estimate[key] for key in ("low", "mid", "high")}
                | {"basis": estimate["basis"]}, "estimated")
    if row.latency_ms is not None and not row.caveats_of(NO_FIRMWARE):
        # (an MCU row no firmware ran holds the x86 interpreter's time: no board figure)
        stats = row.latency_ms
        where = "measured on this host" if row.timed_on == "host" else "measured on the device"
        return ({"low": stats.min, "mid": stats.p50, "high": stats.p90,
                 "basis": f"{where}: min, median and 90th percentile of {row.runs} runs"},
                where)
    return None, None


_JOBS = {"train": _train, "footprint": _footprint, "final": _final}
