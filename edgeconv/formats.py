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
}
FLOAT = "fp32"  # the reference precision every other file is compared with
# Precisions that need calibration images (a representative dataset).
CALIBRATED = frozenset({"int8"})


@dataclass(frozen=True)
class Format:
    """A model file format.

    `converter(session, precision, keep_float) -> Converted` makes a file of this format from
    the export's ConversionSession (edgeconv.export.convert: the file's bytes, the options the
    manifest records, the int8 boundary where only the graph says it); `keep_float` names
    layers an int8 file leaves float. `layer_errors(source, int8: bytes) -> LayerErrors`
    measures each quantised layer of an int8 file against the float model that `source`
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

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise EdgeconvError(f"{self.name} files come in {', '.join(self.precisions)}, not"
                                f" '{precision}'")


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("keras", "Keras", ".keras", (FLOAT,), "Keras 3 model (the float reference)",
           exported=False),
    Format("tflite", "TFLite", ".tflite", ("fp32", "fp16", "dynamic", "int8"),
           "TensorFlow Lite flatbuffer (LiteRT, TFLite Micro)",
           converter="edgeconv.export.convert:make_tflite",
           layer_errors="edgeconv.quant.tflite_debug:layer_errors",
           validator="edgeconv.bench.validate:check_tflite"),
    Format("onnx", "ONNX", ".onnx", ("fp32", "int8"), "ONNX graph (int8 as QDQ), onnxruntime",
           converter="edgeconv.export.convert:make_onnx",
           layer_errors="edgeconv.quant.onnx_debug:layer_errors",
           validator="edgeconv.bench.validate:check_onnx"),
)}
# What `edgeconv export --formats` makes, in order.
EXPORT_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS.values() if f.exported)


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
