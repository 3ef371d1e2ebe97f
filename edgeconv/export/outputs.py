"""Every output of a model file on a batch, as float32 arrays: what per-output parity and
the measurement of a several-output model (a detector, a two-headed regressor) need.

The file runs through its runtime's `run_all` (edgeconv.runtimes: the boundary quantisation
every bench uses, each output dequantised with its own scale and zero-point).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeconv._capture import captured_output
from edgeconv.errors import EdgeconvError, one_line


def run_outputs(path: Path, x: np.ndarray) -> tuple[list[np.ndarray], object]:
    """(outputs, runtime description) of the file at `path` on `x`; the description is
    (name, inputs, outputs, signature names, run note): TensorInfo lists, per output the
    name the file's signature gives it or None (Runtime.signature_names), and how the
    runtime ran the file when that is not its default (or None)."""
    from edgeconv.runtimes import open_runtime

    # LiteRT announces its XNNPACK delegate on fd 2; the user sees our table instead.
    with captured_output(), open_runtime(path) as runtime:
        inputs, outputs = runtime.inputs(), runtime.outputs()
        name = f"{runtime.name} {getattr(runtime, 'version', '')}".strip()
        signature = runtime.signature_names()
        run_note = getattr(runtime, "run_note", None)
        if run_note:
            name += " (unfused)"
        try:
            got = runtime.run_all(x)
        except EdgeconvError:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine's refusal to run the file
            raise EdgeconvError(f"{path.name} does not run in {name}: {one_line(exc)[:300]}"
                                ) from None
    return ([np.asarray(y, dtype=np.float32) for y in got],
            (name, inputs, outputs, signature, run_note))
