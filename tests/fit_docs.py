"""Hand-written study.json documents in the layout `edgeconv fit` writes (docs/fit.md): the
inputs of the study record, front, report and gate tests, not the thing under test."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

TARGET = "nucleo-l4r5zi"


def candidate(model: str, size: int, **options: Any) -> dict[str, Any]:
    knobs = "-".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}"
                     for k, v in sorted(options.items()))
    return {"key": f"{model}-{knobs}-{size}" if knobs else f"{model}-{size}", "model": model,
            "options": options, "size": size, "builder": None}


def label(c: dict[str, Any]) -> str:
    knobs = " ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in sorted(c["options"].items()))
    return f"{c['model']} {knobs} at {c['size']}x{c['size']}".replace("  ", " ")


def point(c: dict[str, Any], precision: str = "int8", *, accuracy: float | None = 0.9,
          mid: float | None = 60.0, ram: int | None = 100_000, flash: int | None = 300_000,
          kind: str | None = "estimated", **extra: Any) -> dict[str, Any]:
    """A finalist; its accuracy interval +-2 points, its latency band +-20%."""
    key = c["key"]
    return {"id": f"{key}/{precision}", "candidate": key, "label": label(c),
            "precision": precision, "file": f"trials/{key}/{c['model']}_{precision}.tflite",
            "accuracy": accuracy,
            "accuracy_low": None if accuracy is None else round(accuracy - 0.02, 4),
            "accuracy_high": None if accuracy is None else round(accuracy + 0.02, 4),
            "test_images": 180,
            "latency": None if mid is None else {"low": mid * 0.8, "mid": mid,
                                                 "high": mid * 1.2, "basis": "MACs x band"},
            "latency_kind": None if mid is None else kind, "ram_bytes": ram,
            "flash_bytes": flash, "arena_bytes": 80_000, "predicted_arena_bytes": 84_000,
            "macs": 1_000_000, "params": 10_000, "fits": True, "meets": True, "why_not": [],
            "results": f"trials/{key}/results.json", **extra}


# The space: MobileNet at three widths and two sizes (the articles' trade), a SqueezeNet.
CANDIDATES = [candidate("mobilenet", s, alpha=a) for a in (1.0, 0.5, 0.25) for s in (48, 32)]
CANDIDATES.append(candidate("squeezenet", 48, version="1.1"))
BY_KEY = {c["key"]: c for c in CANDIDATES}
BIG = "mobilenet-alpha1-48"  # pruned: arena and latency
MID = "mobilenet-alpha0.5-48"  # pruned: flash
FINAL = ["mobilenet-alpha0.25-48", "squeezenet-version1.1-48", "mobilenet-alpha0.5-32"]


def study(**changes: Any) -> dict[str, Any]:
    """A finished study on digits for nucleo-l4r5zi: 7 candidates, 2 pruned, 2 rungs, 3
    finalists of which 2 are on the front; the squeezenet point recommended."""
    pruning = []
    for i, c in enumerate(CANDIDATES):
        reasons = {BIG: ["arena 310 KiB > 256 KiB RAM", "~140 ms [110-170] > 100 ms"],
                   MID: ["model 2000 KiB + 90 KiB runtime > 2048 KiB flash"]}.get(c["key"], [])
        # prune.Verdict.to_dict; one with the kinds of its reasons, one read from the words
        kinds = {"kinds": ["ram", "latency"]} if c["key"] == BIG else {}
        pruning.append({"candidate": c["key"], "label": label(c), "precision": "int8",
                        "kept": not reasons, "reasons": reasons, **kinds,
                        "footprint": {"params": 1000 * (7 - i), "macs": 1_000_000 * (7 - i),
                                      "activation_bytes": 9000, "model_bytes": 50_000,
                                      "arena_bytes": 40_000, "flash_bytes": 150_000,
                                      "latency": {"low": 8.0, "mid": 10.0, "high": 12.0,
                                                  "basis": "MACs x instructions per MAC"}}})
    trained = [c["key"] for c in CANDIDATES if c["key"] not in (BIG, MID)]
    rungs = [{"epochs": 1,
              "scores": {k: {"val_accuracy": 0.5 + 0.05 * i, "val_loss": 1.0, "epochs": 1,
                             "seconds": 1.5} for i, k in enumerate(trained)},
              "promoted": FINAL},
             {"epochs": 3,
              "scores": {k: {"val_accuracy": 0.8 + 0.04 * i, "val_loss": 0.4, "epochs": 3,
                             "seconds": 4.0} for i, k in enumerate(FINAL)},
              "promoted": []}]
    a, b, c = (BY_KEY[k] for k in FINAL)
    finalists = [point(a, accuracy=0.85, mid=40.0, ram=90_000),
                 point(b, accuracy=0.90, mid=60.0, ram=100_000),
                 # dominated by b: less accurate, slower, more RAM
                 point(c, accuracy=0.80, mid=70.0, ram=120_000)]
    doc = {
        "schema_version": 1, "kind": "edgeconv-study", "name": "demo", "status": "finished",
        "request": {"target": TARGET, "data": "digits", "data_dir": None,
                    "max_latency_ms": 100.0, "min_accuracy": None, "precisions": ["int8"],
                    "time_budget_s": None, "seed": 0, "train_samples": None,
                    "eval_samples": None, "min_epochs": 1, "max_epochs": 3,
                    "reduction_factor": 3, "workers": 2, "executor": "local",
                    "ray_address": None},
        "space": {"entries": ["mobilenet:alpha=1.0,0.5,0.25:size=48,32",
                              "squeezenet:version=1.1:size=48"],
                  "candidates": copy.deepcopy(CANDIDATES)},
        "data": {"classes": 10, "channels": 1, "train": 1437, "val": 180, "test": 180},
        "pruning": pruning, "rungs": rungs,
        "trials": {k: {"dir": f"trials/{k}", "epochs": 3 if k in FINAL else 1,
                       "state": "finished" if k in FINAL else "stopped", "error": None}
                   for k in trained},
        "finalists": finalists, "front": [finalists[1]["id"], finalists[0]["id"]],
        "winner": finalists[1]["id"],
        "verdict": None,
        "seconds": {"pruning": 1.0, "training": 2.0, "finalists": 3.0, "total": 6.0},
        "versions": {"edgeconv": "0.1.0", "optuna": "4.1.0", "ray": None},
    }
    doc.update(changes)
    return doc


def write(folder: Path, doc: dict[str, Any]) -> Path:
    """study.json written as is (no validation: hostile documents too)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.json").write_text(json.dumps(doc))
    return folder
