"""What the firmware tests compare the emulated boards with: seeded random inputs of a model's
own input type, and the host TFLite Micro Python interpreter's outputs for them (reference
kernels). Shared by tests/test_mcu.py, tests/test_mcu_cores.py, tests/test_int16x8_firmware.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def random_inputs(path: Path, n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` inputs spanning the whole range of the model's (integer) input type."""
    from edgeconv.mcu import read_ops

    spec = read_ops(path).inputs[0]
    info = np.iinfo(spec.dtype)
    rng = np.random.default_rng(seed)
    return [rng.integers(info.min, info.max + 1, size=spec.shape, dtype=spec.dtype)
            for _ in range(n)]


def host_outputs(path: Path, samples: list[np.ndarray]) -> list[np.ndarray]:
    """The host TFLite Micro Python interpreter's first output for each sample."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(path.read_bytes())
    outputs = []
    for x in samples:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0))
    return outputs
