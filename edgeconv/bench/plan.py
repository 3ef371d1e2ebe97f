"""What to measure: the artifacts behind the user's paths, and which runtimes may run them.

Everything here reads files and metadata only (manifest.json, package metadata): no runtime
is imported, so planning never pays for TensorFlow and never touches an untrusted model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.bench.validate import check_model_file
from edgeconv.errors import EdgeconvError
from edgeconv.manifest import MANIFEST, Manifest, load_manifest, sha256_of

# artifact format -> the runtime that runs it on a host target
HOST_RUNTIME = {"tflite": "litert", "onnx": "onnxruntime", "keras": "keras"}
# runtime -> (modules, any of which provides it; the extra that installs it)
_PROVIDERS = {
    "litert": (("ai_edge_litert", "tflite_runtime", "tensorflow"), "litert"),
    "onnxruntime": (("onnxruntime",), "onnx"),
    "tflite-micro": (("tflite_micro",), "micro"),
    "keras": (("tensorflow",), "train"),
}


@dataclass(frozen=True)
class Artifact:
    """One model file to measure, with what its manifest (if any) says about it."""

    path: Path
    format: str  # tflite | onnx | keras
    precision: str | None  # None for a bare file: the file does not say
    sha256: str
    size_bytes: int
    manifest: Manifest | None = None

    @property
    def label(self) -> str:
        if self.manifest is None:
            return str(self.path)
        return f"{self.manifest.directory.name}/{self.path.name}"

    @property
    def hwc(self) -> list[int] | None:
        """The input size the model was exported for (fills free dimensions)."""
        if self.manifest is None:
            return None
        return self.manifest.data.get("input", {}).get("preprocessing", {}).get("input_shape")


def collect(paths: list[Path], runs_dir: Path = Path("runs")) -> list[Artifact]:
    """Artifacts of run directories (sha256-verified) and bare files, in the given order.

    No path: every export under `runs_dir`.
    """
    if not paths:
        paths = sorted(p.parent for p in runs_dir.glob(f"**/{MANIFEST}"))
        if not paths:
            raise EdgeconvError(f"no exports under {runs_dir}/; run `edgeconv export NAME`"
                                " first, or give a run directory or a model file")
    found: list[Artifact] = []
    for path in paths:
        if path.is_dir() or path.name == MANIFEST:
            manifest = load_manifest(path)
            for entry in manifest.artifacts:
                file = manifest.verified_path(entry)
                if entry.format != "keras":
                    check_model_file(file)
                found.append(Artifact(file, entry.format, entry.precision, entry.sha256,
                                      entry.size_bytes, manifest))
        else:
            check_model_file(path)
            found.append(Artifact(path, path.suffix.lower().lstrip("."), None, sha256_of(path),
                                  path.stat().st_size))
    return found


def runtime_available(runtime: str) -> bool:
    modules, _ = _PROVIDERS[runtime]
    return any(importlib.util.find_spec(m) is not None for m in modules)


def require_runtime(runtime: str) -> None:
    """One line naming the pip extra when the library behind `runtime` is not installed."""
    if not runtime_available(runtime):
        modules, extra = _PROVIDERS[runtime]
        raise EdgeconvError(f"the {runtime} runtime needs the Python package '{modules[0]}';"
                            f" install it with: pip install 'edgeconv[{extra}]'")


def dataset_spec(manifest: Manifest, data: str | None, data_dir: str | None) -> dict[str, Any]:
    """How to load the labelled test split for this export (its dataset unless --data)."""
    dataset = manifest.data.get("dataset", {})
    preprocessing = manifest.data.get("input", {}).get("preprocessing", {})
    # The images the export measured on (a subset for untrained weights or --eval-samples),
    # unless another dataset is asked for.
    subset = dataset.get("test_subset") if data is None else None
    return {"name": data or dataset.get("name"), "data_dir": data_dir,
            "seed": dataset.get("seed", 0), "preprocessing": preprocessing,
            "test_samples": subset.get("samples") if isinstance(subset, dict) else None}
