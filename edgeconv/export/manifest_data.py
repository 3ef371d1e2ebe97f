"""The manifest's part in an export: the previous one removed first (with the files it
vouched for), the new document built last from what was measured."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeconv import __version__
from edgeconv.errors import EdgeconvError
from edgeconv.formats import FORMATS
from edgeconv.manifest import MANIFEST, load_manifest
from edgeconv.quant.calibration import CalibrationCheck, CalibrationSet
from edgeconv.runtimes.registry import installed_version

# Libraries whose versions make an artifact reproducible; read from package metadata so
# that recording them imports nothing.
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime",
             "ai-edge-litert", "tflite-micro", "numpy")


def drop_previous_export(run_dir: Path) -> list[str]:
    """Remove the old manifest first, then the files it vouched for, and only those: a file
    is removed when its entry is a plain relative path inside `run_dir` (after symbolic
    links) and the file is still the one listed (regular, same size and sha256). Never the
    checkpoint export started from, never a directory, never a changed or foreign file: those
    are left, with a note. An unreadable manifest vouches for nothing: it alone is removed.
    Returns the notes."""
    manifest = run_dir / MANIFEST
    if manifest.is_dir():
        raise EdgeconvError(f"{manifest} is a directory; move it away to export into {run_dir}")
    notes: list[str] = []
    try:
        previous = load_manifest(manifest) if manifest.exists() else None
    except EdgeconvError as exc:
        previous = None
        notes.append(f"the previous {MANIFEST} was unreadable ({exc}): removed, and no file it"
                     " listed")
    manifest.unlink(missing_ok=True)
    for artifact in previous.artifacts if previous else []:
        if not FORMATS[artifact.format].exported:  # the checkpoint export starts from
            continue
        try:
            previous.verified_path(artifact)  # containment, regular file, size, sha256
        except EdgeconvError as exc:
            if os.path.lexists(run_dir / artifact.path):
                notes.append(f"left {artifact.path} as it is, not the file the previous"
                             f" {MANIFEST} listed ({exc})")
            continue
        (run_dir / artifact.path).unlink(missing_ok=True)
    return notes


def manifest_document(source, data, verifier, full_test: int,
                      calibration: CalibrationSet | None, check: CalibrationCheck | None,
                      config) -> dict[str, Any]:
    """Everything manifest.json holds but the artifacts (edgeconv.manifest writes those), the
    same blocks for every source (edgeconv.export.source)."""
    prep = data.preprocessing.to_dict()
    document = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": source.model_block(),
        "input": {**source.input_block(data), "dtype": "float32",
                  "normalisation": {"scale": prep["scale"], "offset": prep["offset"],
                                    "formula": "x = uint8_pixel * scale + offset"},
                  "preprocessing": prep},
        "labels": list(data.class_names),
        "dataset": {**data.summary(), "seed": source.seed, **data.recorded(),
                    "evaluated_on": "test"},
        "float_accuracy": verifier.float_accuracy,
        "versions": {"edgeconv": __version__, "python": platform.python_version(),
                     **{name: v for name in VERSIONED if (v := installed_version(name))}},
    }
    if len(data.test.x) < full_test:  # bench measures on the same images
        document["dataset"]["test_subset"] = {"samples": len(data.test.x), "of": full_test,
                                              "seed": source.seed}
    if calibration is not None and check is not None:
        document["calibration"] = {"split": calibration.split, "seed": calibration.seed,
                                   **check.to_dict()}
    return document
