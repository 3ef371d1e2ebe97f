"""The training phase of a study: the kept candidates, in brackets of similar cost, trained
rung by rung by successive halving (edgeconv.fit.schedule) on the executor, every result
recorded in the study document as it arrives and saved (`save`), so that a study stopped at
any moment resumes from its record (`_replay` tells the recorded results again)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from edgeconv.errors import EdgeconvError
from edgeconv.fit.schedule import Halving, rung_epochs
from edgeconv.progress import Progress

if TYPE_CHECKING:
    from edgeconv.fit.study import Clock, FitRequest

TRIALS = "trials"  # the study folder's trial folders, one per trained candidate
FINALISTS_PER_BRACKET = 2  # when the budget stops a bracket short of its last rung


def _brackets(keys: list[str], count: int, eta: int) -> list[list[str]]:
    """`keys` (cheapest first) cut into brackets of similar cost: at most `count`, each with
    at least `eta` candidates so that halving has something to halve."""
    n = max(1, min(count, len(keys) // eta))
    size, extra = divmod(len(keys), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(keys[start:end])
        start = end
    return out


def train_phase(doc, request: FitRequest, kept: list, channels: int, local, threads: int,
                clock: Clock, save: Callable[[], None], progress: Progress) -> list[str]:
    """Successive halving over the kept candidates (on Ray with --ray, else on `local`); the
    keys of the finalists."""
    from edgeconv.fit.executors import RayExecutor

    epochs = rung_epochs(request.min_epochs, request.max_epochs, request.reduction_factor)
    by_key = {c.key: c for c in kept}
    brackets = _brackets([c.key for c in kept], request.brackets, request.reduction_factor)
    halvings = [Halving(keys, epochs, request.reduction_factor) for keys in brackets]
    bracket_of = {key: b for b, keys in enumerate(brackets) for key in keys}
    if not doc["rungs"]:
        doc["rungs"] = [{"epochs": e, "scores": {}, "promoted": []} for e in epochs]
    for key in by_key:
        doc["trials"].setdefault(key, {"dir": f"{TRIALS}/{key}", "epochs": 0,
                                       "state": "pending", "error": None})
        doc["trials"][key]["bracket"] = bracket_of[key]
    _replay(doc, halvings, bracket_of)

    budget = request.time_budget_s
    spent_before = clock.spent.get("training", 0.0)
    begun = time.perf_counter()

    def out_of_time() -> bool:
        return budget is not None and spent_before + time.perf_counter() - begun >= budget

    waiting = _waiting(halvings)
    if waiting:
        executor = RayExecutor(request.ray_address, request.workers, threads) \
            if request.ray_address else local
        running: set[tuple[str, int]] = set()
        try:
            while True:
                waiting = [w for w in _waiting(halvings) if w not in running]
                submitted = False
                while waiting and executor.busy() < executor.workers and not out_of_time():
                    key, rung = waiting.pop(0)
                    executor.submit(_train_job(request, by_key[key], rung, epochs, channels))
                    running.add((key, rung))
                    doc["trials"][key]["state"] = "running"
                    submitted = True
                if submitted:
                    save()
                    _show(doc, progress, running, len(waiting))
                if not running:
                    break
                for job, result in executor.results(timeout=1.0):
                    rung = epochs.index(job["epochs"])
                    running.discard((job["key"], rung))
                    _record(doc, halvings[bracket_of[job["key"]]], job["key"], rung, result,
                            epochs, progress)
                    save()
        except BaseException:
            if executor is not local:
                executor.close(cancel=True)
            raise
        if executor is not local:
            executor.close()
        if out_of_time() and _waiting(halvings):
            progress.message(f"the time budget ({budget:g} s of training) is spent: the"
                             " finalists are each bracket's survivors so far")
            for key, _ in _waiting(halvings):
                if doc["trials"][key]["state"] in ("pending", "running"):
                    doc["trials"][key]["state"] = "stopped"
    finalists = []
    for halving in halvings:
        rung, kept = halving.survivors()
        finished = [k for k in kept if k in halving.scores[rung]]
        # all that finished the bracket's highest rung; when a budget stopped the bracket,
        # the best of those still on their way too, up to FINALISTS_PER_BRACKET
        finalists += finished + kept[len(finished):][:max(0, FINALISTS_PER_BRACKET
                                                          - len(finished))]
    if not finalists:
        raise EdgeconvError("no trial finished its first rung: "
                            + "; ".join(f"{k}: {t['error']}" for k, t in doc["trials"].items()
                                        if t.get("error"))[:600])
    return finalists


def _train_job(request: FitRequest, candidate, rung: int, epochs: list[int],
               channels: int) -> dict:
    return {"kind": "train", "key": candidate.key, "candidate": candidate.to_dict(),
            "dir": str((request.out / TRIALS / candidate.key).resolve()),
            "epochs": epochs[rung], "max_epochs": epochs[-1], "data": request.data,
            "data_dir": request.data_dir, "seed": request.seed,
            "train_samples": request.train_samples, "channels": channels}


def _waiting(halvings: list[Halving]) -> list[tuple[str, int]]:
    """Jobs to run, lower rungs first and the brackets taken in turn: under a time budget
    every candidate gets its first score and every bracket moves, rather than one bracket
    going deep while the others wait (the order changes when a result comes, never what
    halving decides)."""
    ranked = [(rung, turn, b, key) for b, h in enumerate(halvings)
              for turn, (key, rung) in enumerate(h.waiting())]
    return [(key, rung) for rung, _, _, key in sorted(ranked)]


def _replay(doc, halvings: list[Halving], bracket_of: dict[str, int]) -> None:
    """The recorded rung results told again, in order: the same decisions as before."""
    told: set[tuple[str, int]] = set()
    changed = True
    while changed:
        changed = False
        for rung, record in enumerate(doc["rungs"]):
            for key, score in record["scores"].items():
                if key not in bracket_of or (key, rung) in told:
                    continue
                halving = halvings[bracket_of[key]]
                if key in halving.entrants[rung]:
                    value = score["val_accuracy"]
                    halving.tell(key, rung, math.nan if value is None else value)
                    told.add((key, rung))
                    changed = True
        for halving in halvings:
            if halving.decide():
                changed = True


def _record(doc, halving: Halving, key: str, rung: int, result: dict, epochs: list[int],
            progress: Progress) -> None:
    """A rung result into the document, told to the halving, and the decisions it allows
    (each one a line the user keeps)."""
    trial = doc["trials"][key]
    if result.get("error"):
        trial.update(state="failed", error=result["error"][:2000])
        progress.message(f"{key} failed at rung {rung + 1}: {result['error'][:300]}")
        score = math.nan
        doc["rungs"][rung]["scores"][key] = {"val_accuracy": None, "val_loss": None,
                                             "epochs": trial["epochs"],
                                             "seconds": round(result["seconds"], 3)}
    else:
        score = result["val_accuracy"]
        trial.update(epochs=result["epochs"], error=None)
        doc["rungs"][rung]["scores"][key] = {
            "val_accuracy": score, "val_loss": _finite(result.get("val_loss")),
            "epochs": result["epochs"], "seconds": round(result["seconds"], 3)}
    halving.tell(key, rung, score)
    for decision in halving.decide():
        record = doc["trials"][decision.key]
        if record["state"] == "failed":
            continue
        if decision.promoted:
            promoted = doc["rungs"][decision.rung]["promoted"]
            promoted.append(decision.key)
            # in the trials' own order (cheapest first), not the order brackets happened to
            # report in: the same study gives the same record on any executor
            order = list(doc["trials"])
            promoted.sort(key=order.index)
            record["state"] = "pending"
        else:
            last = decision.rung == len(epochs) - 1
            record["state"] = "finished" if last else "stopped"
        accuracy = doc["rungs"][decision.rung]["scores"][decision.key]["val_accuracy"]
        n = epochs[decision.rung]
        progress.message(f"rung {decision.rung + 1} ({n} epoch{'s' if n > 1 else ''}):"
                         f" {decision.key} {100 * accuracy:.1f}% val -> "
                         + ("promoted" if decision.promoted else record["state"]))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _show(doc, progress: Progress, running: set, waiting: int) -> None:
    """Rung jobs done, running and waiting (the bar: its total grows as trials are
    promoted), trials stopped by halving, points pruned before training, the best so far."""
    states = [t["state"] for t in doc["trials"].values()]
    pruned = len({v["candidate"] for v in doc["pruning"]} - set(doc["trials"]))
    best = None
    for rung in reversed(doc["rungs"]):
        scored = {k: s["val_accuracy"] for k, s in rung["scores"].items()
                  if s["val_accuracy"] is not None}
        if scored:
            key = max(scored, key=lambda k: scored[k])
            best = f"best {key} {100 * scored[key]:.1f}% val after {rung['epochs']} epoch(s)"
            break
    done = sum(len(r["scores"]) for r in doc["rungs"])
    progress.start(done + len(running) + waiting, "training", completed=done)
    progress.update(done, f"{len(running)} running, {states.count('stopped')} stopped,"
                          f" {states.count('finished')} finished, {pruned} pruned"
                    + (f"; {best}" if best else ""))
