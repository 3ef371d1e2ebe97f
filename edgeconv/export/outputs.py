"""Every output of a model file on a batch, as float32 arrays: what per-output parity and
the measurement of a several-output model (a detector, a two-headed regressor) need.

A single-input, single-output file runs through its runtime's `run` (edgeconv.runtimes:
the boundary quantisation every bench uses). The Runtime interface runs one output only,
so a file with several is run here on the engine the runtime loaded (its session or
interpreter), one sample at a time for a batch of one, each output dequantised with its
own scale and zero-point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeconv._capture import captured_output
from edgeconv.errors import EdgeconvError, one_line


def run_outputs(path: Path, x: np.ndarray) -> tuple[list[np.ndarray], object]:
    """(outputs, runtime description) of the file at `path` on `x`; the description is
    (name, inputs, outputs) as TensorInfo lists."""
    from edgeconv.runtimes import open_runtime
    from edgeconv.runtimes.base import quantize

    # LiteRT announces its XNNPACK delegate on fd 2; the user sees our table instead.
    with captured_output(), open_runtime(path) as runtime:
        inputs, outputs = runtime.inputs(), runtime.outputs()
        name = f"{runtime.name} {getattr(runtime, 'version', '')}".strip()
        try:
            if len(inputs) == 1 and len(outputs) == 1:
                return [np.asarray(runtime.run(x), dtype=np.float32)], (name, inputs, outputs)
            if len(inputs) != 1:
                raise EdgeconvError(f"{path.name} has {len(inputs)} inputs; edgeconv measures"
                                    " single-input models")
            q = quantize(x, inputs[0])
            if hasattr(runtime, "_session"):
                raw = _onnx_all(runtime, q)
            elif hasattr(runtime, "_interpreter"):
                raw = _litert_all(runtime, q)
            else:
                raise EdgeconvError(f"{runtime.name} runs single-output models only")
        except EdgeconvError:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine's refusal to run the file
            raise EdgeconvError(f"{path.name} does not run in {name}: {one_line(exc)[:300]}"
                                ) from None
    from edgeconv.runtimes.base import dequantize

    return [dequantize(r, info) for r, info in zip(raw, outputs)], (name, inputs, outputs)


def _batches(runtime, x: np.ndarray):
    step = 1 if runtime.inputs()[0].shape[0] == 1 else runtime.max_batch
    for i in range(0, len(x), step):
        yield x[i:i + step]


def _onnx_all(runtime, x: np.ndarray) -> list[np.ndarray]:
    session, name = runtime._session, runtime.inputs()[0].name
    parts = [session.run(None, {name: batch}) for batch in _batches(runtime, x)]
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def _litert_all(runtime, x: np.ndarray) -> list[np.ndarray]:
    interpreter = runtime._interpreter
    index = interpreter.get_input_details()[0]["index"]
    outs = [d["index"] for d in interpreter.get_output_details()]
    parts = []
    for batch in _batches(runtime, x):
        if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
            interpreter.resize_tensor_input(index, batch.shape, strict=True)
            interpreter.allocate_tensors()
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        parts.append([interpreter.get_tensor(i) for i in outs])
    return [np.concatenate([p[i] for p in parts]) for i in range(len(outs))]
