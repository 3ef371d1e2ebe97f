"""Conversion: the session every conversion of one export reads, and each format's converter.

`ConversionSession.make(fmt, precision)` calls the converter the format table names
(edgeconv.formats: `Format.converter`); each returns the file's bytes with what the manifest
records about how it was made. The session holds the Keras model, the calibration images
and the int8 settings, and keeps what later conversions build on (the fp32 ONNX the int8
one is quantised from). It is also the float side of the per-layer int8 report
(edgeconv.quant.layers.FloatSource) that the `--max-drop` search ranks layers with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv.errors import EdgeconvError
from edgeconv.export import conversion_cache
from edgeconv.formats import CALIBRATED, FLOAT, INT8, WIDE, get_format, resolve
from edgeconv.quant.calibration import CalibrationSet
from edgeconv.quant.settings import Int8Settings


@dataclass(frozen=True)
class Converted:
    """A made file: its bytes and what the manifest records about how it was made."""

    content: bytes
    options: dict[str, Any]  # opset, per_channel, float_io, calibration
    # int8: scale and zero-point at the input and output, where only the graph says them
    # (ONNX QDQ keeps float io); None: the runtime's io tensors say them.
    quantization: dict[str, Any] | None = None


class ConversionSession:
    """`model`: the Keras model every format is converted from; or None with `float_files`
    (format -> fp32 bytes: a user's ONNX file, which int8 is quantised from as a converted
    fp32 graph would be) and `input_name` (that graph's input)."""

    def __init__(self, model, calibration: CalibrationSet | None, settings: Int8Settings, *,
                 float_files: dict[str, bytes] | None = None, input_name: str | None = None,
                 origin: str | None = None):
        self.model, self.calibration_set, self.settings = model, calibration, settings
        self.origin = origin or model.name
        self.input_name = input_name
        self._kept: dict[str, Any] = {f"{fmt} {FLOAT}": content
                                      for fmt, content in (float_files or {}).items()}

    @property
    def calibration(self) -> np.ndarray | None:
        return None if self.calibration_set is None else self.calibration_set.images

    def make(self, fmt: str, precision: str, keep_float: Sequence[str] = (),
             wide: Sequence[str] = ()) -> Converted:
        """The file of `fmt` at `precision`; for an int8 file, `wide` names layers (their
        output tensors, as edgeconv.quant.layers reports them) given int16 activations
        (WIDE) and `keep_float` layers left float."""
        found = get_format(fmt)
        if found.converter is None:
            raise EdgeconvError(f"edgeconv does not make {fmt} files; it starts from them")
        found.check_precision(precision)
        if wide and (precision != INT8 or WIDE not in found.precisions):
            raise EdgeconvError(f"{fmt} {precision} files have no per-layer {WIDE}")
        converter = resolve(found.converter)

        def convert() -> tuple[bytes, dict[str, Any]]:
            made = converter(self, precision, tuple(keep_float), tuple(wide))
            return made.content, {"options": made.options, "quantization": made.quantization}

        # A slow conversion made before, of the same weights, request, calibration images and
        # converter versions, is reused (the VGG16 of every `--untrained` export is the same).
        content, record = conversion_cache.cached(
            self.model, conversion_cache.request_of(fmt, precision, keep_float, wide,
                                                    self.settings),
            self.calibration if precision in CALIBRATED else None, convert)
        return Converted(content, record["options"], record["quantization"])

    def kept(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()`, once per session: for results later conversions start from."""
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]

    def int8_options(self, method: str) -> dict[str, Any]:
        """The options every calibrated file records: weight scales and calibration."""
        return {"per_channel": self.settings.per_channel,
                "calibration": self.calibration_set.record(method)}

    def keras(self):
        """The Keras model conversions start from; one line when the source has none."""
        if self.model is None:
            raise EdgeconvError(f"{self.origin} is no Keras model: edgeconv converts it to its"
                                " own format only")
        return self.model

    # FloatSource (edgeconv.quant.layers): what the per-layer report compares with.
    def keras_model(self):
        return self.keras()

    def float_file(self, fmt: str) -> bytes:
        return self.make(fmt, FLOAT).content


def make_tflite(session: ConversionSession, precision: str, keep_float: tuple[str, ...] = (),
                wide: tuple[str, ...] = ()) -> Converted:
    """Keras -> TFLite (edgeconv.convert.tflite); int8 and int16x8 calibrate on min/max.
    With `wide` layers, or a calibration method other than min/max (mse, octav), the fp32
    file is quantised by ai-edge-quantizer (edgeconv.convert.tflite_mixed): int8 with those
    layers at int16x8, the weights' ranges chosen by the method."""
    from edgeconv.convert.tflite import to_tflite

    settings = session.settings
    method = settings.method if precision in CALIBRATED else "minmax"
    if wide or method != "minmax":
        from edgeconv.convert.tflite_mixed import QUANTIZER, to_tflite_mixed

        if keep_float:
            raise EdgeconvError(f"a TFLite file made by {QUANTIZER} (int16x8 layers, or"
                                f" --calibration-method {method}) keeps no layer float")
        fp32 = session.kept(f"tflite {FLOAT}", lambda: to_tflite(session.keras(), FLOAT))
        content = to_tflite_mixed(fp32, session.calibration, wide,
                                  per_channel=settings.per_channel, method=method,
                                  activation_bits=16 if precision == WIDE else 8)
        # The quantiser makes int8 input and output whatever --float-io says; the method
        # recorded is the one passed to it, which chose its weight ranges.
        return Converted(content, {**session.int8_options(method), "float_io": False,
                                   "quantizer": QUANTIZER})
    content = to_tflite(session.keras(), precision, session.calibration,
                        float_io=settings.float_io, per_channel=settings.per_channel,
                        keep_float=keep_float)
    options = {}
    if precision in CALIBRATED:
        options = {**session.int8_options("minmax"), "float_io": settings.float_io}
    return Converted(content, options)


def make_onnx(session: ConversionSession, precision: str, keep_float: tuple[str, ...] = (),
              wide: tuple[str, ...] = ()) -> Converted:
    """Keras -> ONNX once (kept), and int8 / int16x8 / mixed QDQ quantised from that fp32
    graph."""
    from edgeconv.convert.onnx import (
        INPUT_NAME,
        boundary_quantization,
        opset_of,
        quantize_onnx,
        to_onnx,
    )

    fp32 = session.kept(f"onnx {FLOAT}", lambda: to_onnx(session.keras()))
    if precision == FLOAT:
        return Converted(fp32, {"opset": opset_of(fp32)})
    settings = session.settings
    content = quantize_onnx(fp32, session.calibration, method=settings.method,
                            per_channel=settings.per_channel, keep_float=keep_float,
                            input_name=session.input_name or INPUT_NAME, precision=precision,
                            wide=wide)
    return Converted(content, {"opset": opset_of(content),
                               **session.int8_options(settings.method)},
                     quantization=boundary_quantization(content))
