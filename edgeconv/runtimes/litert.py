"""LiteRT (the TFLite interpreter) for .tflite files.

The standalone ai-edge-litert wheel is preferred; tflite-runtime (older boards) and the copy
inside TensorFlow are fallbacks, so the same code runs on a Pi and on a training machine.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv._lazy import keras
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.runtimes.base import Runtime, TensorInfo

# LiteRT glues its reports into one message, one per bad tensor ("...Was 3.Tensor 33 has...").
_GLUED_REPORTS = re.compile(r"(?<=\.)(?=[A-Z])")


class LiteRTRuntime(Runtime):
    """A .tflite file in LiteRT, allocated at load and re-allocated only on a new input shape.

    `xnnpack` applies LiteRT's default CPU delegate (else its builtin optimised kernels run).
    `reference` runs TFLite's reference kernels instead, delegates off: slow, but what a board
    running TFLite Micro computes. On the MLPerf Tiny int8 ResNet-8 every layer then matches
    TFLM exactly but the last FULLY_CONNECTED (off by one step at times, which the softmax
    scales up to ~7); XNNPACK and the optimised kernels round differently in every layer and
    end up tens of steps away on some inputs.
    """

    name = "litert"

    def __init__(self, path: str | Path, *, threads: int | None = None,
                 xnnpack: bool = True, reference: bool = False) -> None:
        super().__init__(path)
        if threads is not None and threads < 1:
            raise EdgeconvError(f"threads must be >= 1; got {threads}")
        interpreter_class, resolvers, self.backend, self.version = _interpreter_api()
        if reference:
            resolver = resolvers.BUILTIN_REF
        else:
            resolver = resolvers.AUTO if xnnpack else resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._interpreter = interpreter_class(model_path=str(self.path), num_threads=threads,
                                                  experimental_op_resolver_type=resolver)
            # Unknown custom ops and bad tensors fail here, at load rather than on a first run.
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise EdgeconvError(f"cannot load {self.path} with LiteRT: {_condensed(exc)}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        self._inputs = [_tensor_info(d) for d in inputs]
        self._outputs = [_tensor_info(d) for d in outputs]
        self._input_index = inputs[0]["index"]
        self._output_indices = [d["index"] for d in outputs]
        self._signature_names = _signature_names(self._interpreter, self._output_indices)
        self._allocated_shape = tuple(int(d) for d in inputs[0]["shape"])

    def _invoke_all(self, x: np.ndarray) -> list[np.ndarray]:
        if x.shape != self._allocated_shape:
            # strict: only the dimensions the file marks dynamic (-1) may change
            self._interpreter.resize_tensor_input(self._input_index, x.shape, strict=True)
            self._interpreter.allocate_tensors()
            self._allocated_shape = x.shape
        self._interpreter.set_tensor(self._input_index, x)
        self._interpreter.invoke()
        # copies, safe to keep
        return [self._interpreter.get_tensor(index) for index in self._output_indices]

    def prepared(self, x: np.ndarray) -> Callable[[], object]:
        """The input is set once; the timed call is the interpreter's invoke() alone."""
        self.run_raw_all(x)  # checks, and resizes / allocates for x
        self._interpreter.set_tensor(self._input_index, x)
        return self._interpreter.invoke

    def signature_names(self) -> list[str | None]:
        return list(self._signature_names)

    def close(self) -> None:
        self._interpreter = None


def _signature_names(interpreter, indices: list[int]) -> list[str | None]:
    """The serving signature's name of each output tensor. The converter names the tensors
    after its graph (`StatefulPartitionedCall_1:0`) and may order them by that name; the
    signature keeps the model's own names or positions."""
    try:  # the public get_signature_list() has the names but not the tensors they map to
        signatures = interpreter._get_full_signature_list()
    except Exception:  # noqa: BLE001 - an interpreter without it: no names, not a failure
        return [None] * len(indices)
    if not isinstance(signatures, dict) or len(signatures) != 1:
        return [None] * len(indices)
    outputs = next(iter(signatures.values())).get("outputs") or {}
    by_index = {index: name for name, index in outputs.items()}
    return [by_index.get(index) for index in indices]


def _interpreter_api() -> tuple[Any, Any, str, str]:
    """(Interpreter class, OpResolverType, backend module, version) of the first LiteRT found."""
    for package in ("ai_edge_litert", "tflite_runtime"):
        try:
            module = importlib.import_module(f"{package}.interpreter")
        except ImportError:
            continue
        version = getattr(importlib.import_module(package), "__version__", "unknown")
        return module.Interpreter, module.OpResolverType, package, version
    try:
        keras()  # imports TensorFlow quietly
    except EdgeconvError:
        raise EdgeconvError("running .tflite files needs the Python package 'ai-edge-litert'; "
                            "install it with: pip install 'edgeconv[litert]'") from None
    tf = importlib.import_module("tensorflow")
    return tf.lite.Interpreter, tf.lite.experimental.OpResolverType, "tensorflow.lite", \
        tf.__version__


def _condensed(exc: Exception) -> str:
    """LiteRT's error on one line: its first report, which says what is wrong."""
    first, *more = _GLUED_REPORTS.split(one_line(exc), maxsplit=1)
    return f"{first} (and more)" if more else first


def _tensor_info(details: dict) -> TensorInfo:
    # shape_signature keeps -1 for dynamic dimensions; files from old converters lack it
    signature = details.get("shape_signature")
    dims = signature if signature is not None and len(signature) else details["shape"]
    scale, zero_point = details["quantization"]
    return TensorInfo(
        name=details["name"],
        shape=tuple(None if d < 0 else int(d) for d in dims),
        dtype=np.dtype(details["dtype"]).name,
        scale=float(scale) if scale else None,
        zero_point=int(zero_point) if scale else None,
    )
