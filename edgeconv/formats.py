"""The model file formats edgeconv makes and reads, and the precisions each one carries.

One row per format, read by everything that needs a fact about formats: CLI help and
validation (`--formats`), export planning and conversion dispatch, the per-layer int8
report, the structural check before a runtime reads a file, manifest checks and report
columns. Adding a format or a precision is a row here plus the functions it names
(docs/architecture.md). Standard library only, and nothing named here is imported until it
is used: a device install has no TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean

# Precision name -> what it means, in the order exports make and tables show them.
PRECISIONS: dict[str, str] = {
    "fp32": "float32 weights and activations",
    "fp16": "float16 weights, float32 compute",
    "dynamic": "int8 weights, float activations (dynamic-range quantisation)",
    "int8": "full-integer int8 weights and activations, calibrated",
    # 16x8: what CMSIS-NN, TFLite Micro and Ethos-U run when int8 activations lose too much
    "int16x8": "full-integer int16 activations with int8 weights (16x8), calibrated",
}
FLOAT = "fp32"  # the reference precision every other file is compared with
# Precisions that need calibration images (a representative dataset).
CALIBRATED = frozenset({"int8", "int16x8"})
# The integer precision the `--max-drop` search starts from, and the one it widens layers to
# before any layer is left float (edgeconv.export.budget).
INT8, WIDE = "int8", "int16x8"


@dataclass(frozen=True)
class Format:
    """A model file format.

    `converter(session, precision, keep_float, wide) -> Converted` makes a file of this
    format from the export's ConversionSession (edgeconv.export.convert: the file's bytes,
    the options the manifest records, the int8 boundary where only the graph says it);
    `keep_float` names layers an int8 file leaves float, `wide` layers it gives int16
    activations (int16x8). `layer_errors(source, content: bytes, precision) -> LayerErrors`
    measures each quantised layer of an integer file against the float model that `source`
    (edgeconv.quant.layers.FloatSource) gives; edgeconv.quant.layers.layer_errors dispatches
    to it. `validator(data: bytes)` raises ValueError (or struct.error / IndexError) when the
    bytes are not a whole file of this format. Each is a "module:function" string, imported
    on first use.
    """

    name: str
    title: str  # as messages and tables name it: "TFLite"
    suffix: str
    precisions: tuple[str, ...]  # the precisions edgeconv makes (or reads) in this format
    description: str
    exported: bool = True  # False: the source an export starts from, not a file it makes
    converter: str | None = None
    layer_errors: str | None = None
    validator: str | None = None
    # (path) -> (precision, opset or None): what a file made elsewhere was made at
    precision_reader: str | None = None
    # How its calibrated files can choose their ranges (`--calibration-method`), the
    # default first: edgeconv.export.convert passes the choice to this format's converter.
    calibration_methods: tuple[str, ...] = ()

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise EdgeconvError(f"{self.name} files come in {', '.join(self.precisions)}, not"
                                f" '{precision}'")


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("keras", "Keras", ".keras", (FLOAT,), "Keras 3 model (the float reference)",
           exported=False),
    Format("tflite", "TFLite", ".tflite", ("fp32", "fp16", "dynamic", "int8", "int16x8"),
           "TensorFlow Lite flatbuffer (LiteRT, TFLite Micro)",
           converter="edgeconv.export.convert:make_tflite",
           layer_errors="edgeconv.quant.tflite_debug:layer_errors",
           validator="edgeconv.bench.validate:check_tflite",
           precision_reader="edgeconv.export.probe:tflite_precision",
           # min/max: TensorFlow's converter; mse, octav: ai-edge-quantizer's weight ranges
           calibration_methods=("minmax", "mse", "octav")),
    Format("onnx", "ONNX", ".onnx", ("fp32", "int8", "int16x8"),
           "ONNX graph (integer precisions as QDQ), onnxruntime",
           converter="edgeconv.export.convert:make_onnx",
           layer_errors="edgeconv.quant.onnx_debug:layer_errors",
           validator="edgeconv.bench.validate:check_onnx",
           precision_reader="edgeconv.export.probe:onnx_precision",
           # onnxruntime.quantization's calibrators (edgeconv.convert.onnx)
           calibration_methods=("minmax", "entropy", "percentile")),
)}
# What `edgeconv export --formats` makes, in order.
EXPORT_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS.values() if f.exported)
# Every `--calibration-method` some format has, in table order.
CALIBRATION_METHODS: tuple[str, ...] = tuple(dict.fromkeys(
    m for f in FORMATS.values() for m in f.calibration_methods))


@dataclass(frozen=True)
class SourceKind:
    """Where an export starts: a zoo model (by name, a training run, fresh weights) or a model
    file of the user's.

    `opener(config, progress) -> edgeconv.export.source.Source` makes the export's source;
    `reference` is the format the float reference is run in (its outputs are what every file
    is compared with); `becomes` maps each format this kind is converted to onto the
    precisions it can become there (empty: measured as it is, converted to nothing).
    `suffixes` / `marker` say which paths are this kind (a file's suffix; a file a directory
    holds); a kind with neither is chosen by how it is named (a zoo name, --untrained).
    `user_file`: a file of the user's, recorded in the manifest's model.source; `loader`
    ("module:function") what reads a Keras kind's file into a model; `copied`: the user's
    file itself becomes the export's reference file (else it is only run, and named in a
    note).
    """

    name: str
    title: str
    opener: str
    reference: str
    becomes: dict[str, tuple[str, ...]]
    suffixes: tuple[str, ...] = ()
    marker: str | None = None
    user_file: bool = True
    needs_tensorflow: bool = True
    loader: str | None = None
    copied: bool = False

    def converts(self) -> bool:
        return bool(self.becomes)


_TF_TARGETS = {"tflite": FORMATS["tflite"].precisions, "onnx": FORMATS["onnx"].precisions}
SOURCE_KINDS: dict[str, SourceKind] = {k.name: k for k in (
    SourceKind("zoo", "zoo model", "edgeconv.export.zoo_source:open_zoo", "keras",
               _TF_TARGETS, user_file=False),
    SourceKind("run", "training run", "edgeconv.export.zoo_source:open_zoo", "keras",
               _TF_TARGETS, marker="train.json", user_file=False),
    SourceKind("untrained", "untrained zoo model", "edgeconv.export.zoo_source:open_zoo",
               "keras", _TF_TARGETS, user_file=False),
    SourceKind("keras", "Keras file", "edgeconv.export.keras_source:open_keras_file", "keras",
               _TF_TARGETS, suffixes=(".keras",), copied=True,
               loader="edgeconv.export.user_model:load_keras_archive"),
    SourceKind("h5", "Keras HDF5 file", "edgeconv.export.keras_source:open_keras_file",
               "keras", _TF_TARGETS, suffixes=(".h5", ".hdf5"),
               loader="edgeconv.export.user_model:load_h5"),
    SourceKind("savedmodel", "SavedModel", "edgeconv.export.keras_source:open_keras_file",
               "keras", _TF_TARGETS, marker="saved_model.pb",
               loader="edgeconv.export.user_model:load_saved_model"),
    # The user's fp32 ONNX is the float reference and the graph int8 QDQ is quantised from.
    SourceKind("onnx", "ONNX file", "edgeconv.export.file_source:open_model_file", "onnx",
               {"onnx": FORMATS["onnx"].precisions}, suffixes=(".onnx",),
               needs_tensorflow=False, copied=True),
    SourceKind("tflite", "TFLite file", "edgeconv.export.file_source:open_model_file",
               "tflite", {}, suffixes=(".tflite",), needs_tensorflow=False, copied=True),
)}
# What the manifest's model.source.kind may say: the kinds that are a file of the user's.
USER_FILE_KINDS: tuple[str, ...] = tuple(k.name for k in SOURCE_KINDS.values() if k.user_file)


def source_kind_of(target: str | Path, *, untrained: bool = False) -> SourceKind:
    """The kind of what `edgeconv export TARGET` names, by the table: a file's suffix, a
    directory's marker file, else a zoo name (`--untrained`: fresh weights of one)."""
    path = Path(target)
    if path.is_dir():
        for kind in SOURCE_KINDS.values():
            if kind.marker and (path / kind.marker).is_file():
                return kind
    else:
        suffix = path.suffix.lower()
        for kind in SOURCE_KINDS.values():
            if suffix and suffix in kind.suffixes:
                return kind
    return SOURCE_KINDS["untrained" if untrained else "zoo"]


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise EdgeconvError(f"unknown format '{name}'{did_you_mean(name, FORMATS)}; choose"
                            f" from {', '.join(FORMATS)}")
    return FORMATS[name]


def format_of(path: str | Path) -> Format:
    """The format a file's suffix names; one line when it names none."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if fmt.suffix == suffix:
            return fmt
    raise EdgeconvError(f"{path} is not a model file (expected"
                        f" {', '.join(f.suffix for f in FORMATS.values())} or a run directory"
                        " with manifest.json)")


def precisions_of(formats: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Every precision any of `formats` carries, in PRECISIONS order."""
    wanted = {p for name in formats for p in get_format(name).precisions}
    return tuple(p for p in PRECISIONS if p in wanted)


def parse_formats(text: str, *, exported_only: bool = True) -> tuple[str, ...]:
    """'tflite,onnx' -> ('tflite', 'onnx'), checked against the table (for --formats)."""
    allowed = EXPORT_FORMATS if exported_only else tuple(FORMATS)
    names = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        bad = unknown[0] if unknown else ""
        hint = did_you_mean(bad, allowed).removeprefix("; ") if bad else ""
        raise EdgeconvError(f"unknown format '{bad}'; --formats takes a comma-separated list of"
                            f" {', '.join(allowed)}" + (f" ({hint})" if hint else ""))
    return names


def resolve(dotted: str) -> Callable[..., Any]:
    """'package.module:function' -> the function (imports the module now)."""
    module, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module), attribute)
