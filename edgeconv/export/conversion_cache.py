"""Converted files kept by content: the same model converted the same way twice is converted once.

The slow conversions are those of the big ImageNet-shaped models: VGG16's fp32 TFLite file is
~50 s of the converter on a 2-core machine, its int8 file ~90 s more, for weights that are the
same every time (`--untrained` seeds them). A conversion is looked up here by a key that holds
everything its bytes depend on:

- the model: its architecture (Keras JSON) and every weight's bytes;
- the request: format, precision, the layers kept float or widened to int16;
- the int8 settings and the calibration images' bytes (for calibrated precisions);
- the converters: the versions of TensorFlow, tf2onnx, onnx, onnxruntime and
  ai-edge-quantizer, and the bytes of edgeconv's own conversion modules.

So a hit is the file the converter would make now, with what the manifest records about it.
Only conversions that took at least SLOW_S are stored (a small model converts faster than it
is hashed and copied), in `~/.cache/edgeconv/conversions` (EDGECONV_CONVERSION_CACHE: another
folder, or `off`), and the least recently used entries go once the folder passes LIMIT_BYTES.
A file whose bytes were written and whose record was not is no entry: the record is written
last, each by an atomic rename.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv._cache import cache_dir

CACHE_ENV = "EDGECONV_CONVERSION_CACHE"
SLOW_S = 5.0
LIMIT_BYTES = 3 * 1024**3
CONVERTER_PACKAGES = ("tensorflow", "tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime",
                      "ai-edge-quantizer")
# edgeconv's own code that decides a converted file's bytes
CONVERSION_MODULES = ("convert/tflite.py", "convert/tflite_mixed.py", "convert/onnx.py",
                      "export/convert.py", "quant/settings.py", "quant/calibration.py")


def root() -> Path | None:
    """The cache folder, or None when EDGECONV_CONVERSION_CACHE is `off`."""
    if os.environ.get(CACHE_ENV, "").strip().lower() == "off":
        return None
    return cache_dir("conversions", CACHE_ENV)


@functools.cache  # the packages and edgeconv's modules do not change while it runs
def _versions() -> str:
    found = []
    for name in CONVERTER_PACKAGES:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    package = Path(__file__).resolve().parent.parent
    for module in CONVERSION_MODULES:
        path = package / module
        if path.is_file():
            found.append(f"{module}:{hashlib.sha256(path.read_bytes()).hexdigest()}")
    return "\n".join(found)


def conversion_key(model, request: dict[str, Any], calibration) -> str:
    """The sha256 of everything a converted file's bytes depend on (module docstring)."""
    import numpy as np

    digest = hashlib.sha256()
    digest.update(_versions().encode())
    digest.update(json.dumps(request, sort_keys=True, default=str).encode())
    digest.update(model.to_json().encode())
    for weight in model.weights:
        digest.update(weight.path.encode() if hasattr(weight, "path") else b"")
        array = np.ascontiguousarray(np.asarray(weight))
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    if calibration is not None:
        images = np.ascontiguousarray(calibration)
        digest.update(f"{images.dtype}{images.shape}".encode())
        digest.update(images.data)
    return digest.hexdigest()


def _paths(folder: Path, key: str) -> tuple[Path, Path]:
    return folder / f"{key}.bin", folder / f"{key}.json"


def lookup(folder: Path, key: str) -> tuple[bytes, dict[str, Any]] | None:
    """The stored bytes and record of `key`, or None (absent, or not whole)."""
    content_path, record_path = _paths(folder, key)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        content = content_path.read_bytes()
    except (OSError, ValueError):
        return None
    if hashlib.sha256(content).hexdigest() != record.get("sha256"):
        return None  # damaged on disk: convert again (and store again)
    os.utime(record_path)  # recently used
    return content, record


def store(folder: Path, key: str, content: bytes, record: dict[str, Any]) -> None:
    """Keep a converted file (best effort: a full or read-only disk only loses the reuse)."""
    content_path, record_path = _paths(folder, key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic.write_bytes(content_path, content)
        _atomic.write_json(record_path, {**record,
                                         "sha256": hashlib.sha256(content).hexdigest()})
        _evict(folder, LIMIT_BYTES)
    except (OSError, TypeError, ValueError):  # disk full or read-only; a record not JSON
        content_path.unlink(missing_ok=True)
        record_path.unlink(missing_ok=True)


def _evict(folder: Path, limit: int) -> None:
    """Remove the least recently used entries until the folder holds at most `limit` bytes."""
    entries = []
    for record_path in folder.glob("*.json"):
        content_path = record_path.with_suffix(".bin")
        try:
            size = content_path.stat().st_size + record_path.stat().st_size
            entries.append((record_path.stat().st_mtime, size, record_path, content_path))
        except OSError:
            continue
    total = sum(e[1] for e in entries)
    for _, size, record_path, content_path in sorted(entries):
        if total <= limit:
            break
        for path in (record_path, content_path):  # the record first: no half entry is read
            path.unlink(missing_ok=True)
        total -= size


def cached(model, request: dict[str, Any], calibration,
           convert: Callable[[], tuple[bytes, dict[str, Any]]],
           on_hit: Callable[[], None] | None = None) -> tuple[bytes, dict[str, Any]]:
    """`convert()` (bytes and record: what the manifest records), or what it returned the
    last time for the same key. `model` None (no Keras model: a user's ONNX graph) is never
    cached."""
    folder = root()
    if folder is None or model is None:
        return convert()
    key = conversion_key(model, request, calibration)
    found = lookup(folder, key)
    if found is not None:
        if on_hit is not None:
            on_hit()
        content, record = found
        record.pop("sha256", None)
        return content, record
    started = time.monotonic()
    content, record = convert()
    if time.monotonic() - started >= SLOW_S:
        store(folder, key, content, record)
    return content, record


def request_of(fmt: str, precision: str, keep_float: Sequence[str], wide: Sequence[str],
               settings: Any) -> dict[str, Any]:
    """What a conversion was asked for, as the key holds it."""
    from dataclasses import asdict, is_dataclass

    return {"format": fmt, "precision": precision, "keep_float": list(keep_float),
            "wide": list(wide), "settings": asdict(settings) if is_dataclass(settings)
            else repr(settings)}
