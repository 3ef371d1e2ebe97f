"""A Keras model file of the user's (`edgeconv export PATH`): hashing and loading it.

Kinds (edgeconv.formats.SOURCE_KINDS): `.keras` (Keras 3, loaded in safe mode), `.h5`
(legacy Keras HDF5), a SavedModel directory (loaded inference-only: `keras.layers.TFSMLayer`
wrapped in a Model). `.onnx` and `.tflite` files never reach Keras: edgeconv.export.intake.

Custom layers: `--custom-objects my_layers.py` runs that file, which the user names on the
command line, and registers its module-level `CUSTOM_OBJECTS` dict and anything it
registered with `@keras.saving.register_keras_serializable`. Code stored inside the model
file (a Lambda's bytecode) never runs: safe mode stays on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeconv.errors import EdgeconvError, one_line
from edgeconv.files import MAX_MODEL_BYTES, open_regular, read_upto

if TYPE_CHECKING:
    from edgeconv.data.user import ModelInput
    from edgeconv.formats import SourceKind

@dataclass(frozen=True)
class UserSource:
    """The user's model file and what the manifest records about it."""

    path: Path
    kind: str
    sha256: str
    name: str  # the export's model name: the file's stem, tidied

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.path.name, "sha256": self.sha256}

    def read(self) -> bytes:
        """The file's bytes (a single file's kinds), checked to be the ones hashed."""
        with open_regular(self.path, MAX_MODEL_BYTES, what="model file") as (fh, _):
            content = read_upto(fh, MAX_MODEL_BYTES)
        if hashlib.sha256(content).hexdigest() != self.sha256:
            raise EdgeconvError(f"{self.path} changed while it was being exported; run again")
        return content


def user_source(target: str, kind: SourceKind) -> UserSource:
    """Check the file is there and readable (regular, bounded), and hash it (a directory
    kind: the file that marks it, e.g. a SavedModel's saved_model.pb)."""
    path = Path(target).expanduser()
    if not os.path.exists(path):
        raise EdgeconvError(f"{path} does not exist")
    hashed = path / kind.marker if kind.marker else path
    digest = hashlib.sha256()
    with open_regular(hashed, MAX_MODEL_BYTES, what="model file", allow_empty=False) as (fh, _):
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    stem = path.name if kind.marker else path.stem
    return UserSource(path=path, kind=kind.name, sha256=digest.hexdigest(), name=tidy_name(stem))


def tidy_name(stem: str) -> str:
    """A file's stem as an export's model name (and its files' prefix)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "model"


# --- Keras, HDF5 and SavedModel ------------------------------------------------------------


def custom_objects_file(script: str | os.PathLike[str]) -> Path:
    """The --custom-objects file, absolute (a bench child runs it from elsewhere); one line
    when it is no Python file. Export and bench both check it here, before any work."""
    path = Path(script).expanduser()
    if not path.is_file() or path.suffix != ".py":
        raise EdgeconvError(f"--custom-objects {script}: not a Python file (.py)")
    return path.resolve()


def register_custom_objects(script: str | None) -> dict[str, Any]:
    """Run the user's own Python file (named on the command line) and return its
    CUSTOM_OBJECTS; classes it registers with register_keras_serializable are found by
    Keras itself."""
    if script is None:
        return {}
    path = custom_objects_file(script)
    from edgeconv._lazy import keras

    keras()  # the file imports keras: on the TensorFlow backend, quietly
    spec = importlib.util.spec_from_file_location(f"edgeconv_user_objects_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code: any error is theirs
        raise EdgeconvError(f"--custom-objects {path} failed to run: {one_line(exc)[:300]}"
                            ) from None
    objects = getattr(module, "CUSTOM_OBJECTS", {})
    if not isinstance(objects, dict):
        raise EdgeconvError(f"{path}: CUSTOM_OBJECTS must be a dict of name -> class or function")
    return dict(objects)


def load_keras_archive(source: UserSource, custom_objects: dict[str, Any]):
    """A .keras file's model: a zip of bounded size, checked before TensorFlow is loaded."""
    from edgeconv.runtimes.keras import _check_archive

    _check_archive(source.path)
    return load_h5(source, custom_objects)


def load_h5(source: UserSource, custom_objects: dict[str, Any]):
    """A .keras or .h5 file's model, ready to convert (functional); a Lambda layer is
    refused from the config alone (read as JSON), before Keras or TensorFlow load."""
    from edgeconv._lazy import keras

    if _lambda_names(source.path):
        raise EdgeconvError(_lambda_refusal(source.path))
    k = keras()
    try:
        with k.saving.custom_object_scope(custom_objects):
            model = k.saving.load_model(source.path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - zip, h5, JSON, unknown-layer, lambda errors
        raise EdgeconvError(_load_failure(source.path, exc)) from None
    return as_functional(model, k)


def load_saved_model(source: UserSource, custom_objects: dict[str, Any]):
    """A SavedModel directory's serving signature, as an inference-only Keras model."""
    from edgeconv._lazy import keras

    return _saved_model(source.path, keras())


def _load_failure(path: Path, exc: Exception) -> str:
    """One line naming the layer Keras refused and the way out."""
    text = str(exc)
    lambda_ = "safe_mode" in text or "Lambda" in text and "unsafe" in text.lower()
    if lambda_:
        return _lambda_refusal(path)
    unknown = re.search(r"[Cc]ould not locate (?:class|function) '([^']+)'", text) \
        or re.search(r"Unknown (?:layer|object)[^'\"]*['\"]([^'\"]+)['\"]", text)
    if unknown:
        return (f"cannot load {path}: layer '{unknown.group(1)}' is not a Keras layer edgeconv"
                " knows; register it with --custom-objects my_layers.py (a Python file of"
                " yours defining it, with CUSTOM_OBJECTS = {'" + unknown.group(1)
                + "': ...} or @keras.saving.register_keras_serializable)")
    return f"cannot load {path} with Keras: {one_line(exc)[:300]}"


def _lambda_refusal(path: Path) -> str:
    names = _lambda_names(path)
    which = f"Lambda layer '{names[0]}'" if names else "a Lambda layer"
    return (f"cannot load {path}: {which} holds Python code stored in the file, which safe"
            " mode never runs; replace it with a custom layer defined in a file of yours and"
            " pass --custom-objects my_layers.py")


def _lambda_names(path: Path) -> list[str]:
    """The names of the Lambda layers in a .keras file's config.json or an .h5 file's
    model_config (read as JSON, never run)."""
    import json
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        else:  # legacy HDF5: the config is an attribute of the file
            import h5py

            with h5py.File(path, "r") as h5:
                config = json.loads(h5.attrs["model_config"])
    except Exception:  # noqa: BLE001 - no names then; the message still says Lambda
        return []
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                found.append(str((node.get("config") or {}).get("name", "?")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def as_functional(model, k):
    """A Sequential as a functional Model of the same layers (tf2onnx cannot convert a
    Keras 3 Sequential: it has no `output_names` before it is called); others as they are."""
    if not isinstance(model, k.Sequential):
        return model
    shape = model.input_shape
    inputs = k.Input(shape=shape[1:], batch_size=None, dtype=model.inputs[0].dtype
                     if model.inputs else "float32", name="input")
    x = inputs
    for layer in model.layers:
        x = layer(x)
    return k.Model(inputs, x, name=model.name)


def _saved_model(path: Path, k):
    """A SavedModel as an inference-only Keras model around its serving signature."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
    except Exception as exc:  # noqa: BLE001 - protobuf, missing signature, ops
        raise EdgeconvError(f"cannot load the SavedModel {path}: {one_line(exc)[:300]}"
                            ) from None
    specs = list(signature.structured_input_signature[1].values())
    if len(specs) != 1:
        raise EdgeconvError(f"the SavedModel {path} takes {len(specs)} inputs; edgeconv"
                            " exports single-input models")
    spec = specs[0]
    layer = k.layers.TFSMLayer(str(path), call_endpoint="serving_default")
    inputs = k.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype.name, name="input")
    outputs = layer(inputs)
    if isinstance(outputs, dict):  # a signature returns named outputs: keep their order
        outputs = [outputs[name] for name in sorted(outputs)]
        outputs = outputs[0] if len(outputs) == 1 else outputs
    return k.Model(inputs, outputs, name=re.sub(r"\W+", "_", path.name) or "saved_model")


def keras_input(model) -> ModelInput:
    """What the Keras model says about its input (the preprocessing defaults)."""
    import numpy as np

    from edgeconv.data.user import ModelInput

    tensor = model.inputs[0]
    return ModelInput(shape=(None, *tuple(tensor.shape[1:])),
                      dtype=np.dtype(tensor.dtype).name, name=tensor.name)


def keras_outputs(model, x) -> list:
    """The model's outputs on `x`, as a list of float32 arrays (one per output)."""
    import numpy as np

    out = model.predict(x, batch_size=32, verbose=0)
    if isinstance(out, dict):
        out = [out[key] for key in sorted(out)]
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o, dtype=np.float32) for o in out]
