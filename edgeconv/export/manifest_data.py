"""The manifest's part in an export: the previous one removed first (with the files it
vouched for), the new document built last from what was measured."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeconv import __version__
from edgeconv.errors import EdgeconvError
from edgeconv.export.source import Source
from edgeconv.formats import FORMATS
from edgeconv.manifest import MANIFEST, load_manifest
from edgeconv.quant.calibration import CalibrationCheck, CalibrationSet
from edgeconv.runtimes.registry import installed_version

# Libraries whose versions make an artifact reproducible; read from package metadata so
# that recording them imports nothing.
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime",
             "ai-edge-litert", "tflite-micro", "numpy")


def drop_previous_export(run_dir: Path) -> None:
    """Remove the old manifest first, then the files it vouched for (never the checkpoint)."""
    manifest = run_dir / MANIFEST
    try:
        previous = load_manifest(manifest) if manifest.is_file() else None
    except EdgeconvError:
        previous = None  # unreadable: it vouches for nothing; just remove it
    manifest.unlink(missing_ok=True)
    for artifact in previous.artifacts if previous else []:
        if FORMATS[artifact.format].exported:  # never the checkpoint export started from
            (run_dir / artifact.path).unlink(missing_ok=True)


def manifest_data(source: Source, data, float_accuracy: float, full_test: int,
                  calibration: CalibrationSet | None, check: CalibrationCheck | None
                  ) -> dict[str, Any]:
    """Everything manifest.json holds but the artifacts (edgeconv.manifest writes those)."""
    from edgeconv.zoo import get_spec, resolve_options

    prep = data.preprocessing.to_dict()
    model_shape = resolve_options(get_spec(source.spec_name), **source.model_options
                                  ).input_shape
    document = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": source.spec_name, "options": source.model_options,
                  "trained": source.trained},
        "input": {"shape": [None, *model_shape], "layout": "NHWC", "dtype": "float32",
                  "normalisation": {"scale": prep["scale"], "offset": prep["offset"],
                                    "formula": "x = uint8_pixel * scale + offset"},
                  "preprocessing": prep},
        "labels": list(data.class_names),
        "dataset": {**data.summary(), "seed": source.seed, "evaluated_on": "test"},
        "float_accuracy": float_accuracy,
        "versions": {"edgeconv": __version__, "python": platform.python_version(),
                     **{name: v for name in VERSIONED if (v := installed_version(name))}},
    }
    if len(data.test.y) < full_test:  # bench measures on the same images
        document["dataset"]["test_subset"] = {"samples": len(data.test.y), "of": full_test,
                                              "seed": source.seed}
    if calibration is not None and check is not None:
        document["calibration"] = {"split": calibration.split, "seed": calibration.seed,
                                   **check.to_dict()}
    return document
