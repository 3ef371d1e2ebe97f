"""TFLite Micro, the microcontroller interpreter, run on the host through its Python wheel.

The host interpreter gives the arena a board needs, and the outputs of the reference kernels
a board runs unless it has optimised ones (CMSIS-NN and the like). It trusts the file: a
malformed one can crash the whole process, so untrusted files go through `probe`, which
loads and invokes them in a child process first.

Run as `python -m edgeconv.runtimes.micro MODEL [--arena-size N]`, this module is that child:
it prints one JSON line with the probe's result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeconv._child import REASON_CHARS, run_child
from edgeconv._lazy import require
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.runtimes.base import Runtime, TensorInfo
from edgeconv.runtimes.registry import installed_version

_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


class MicroRuntime(Runtime):
    """A .tflite file in the TFLite Micro interpreter: fixed shapes, one sample per invoke.

    `arena_size` is the tensor arena to allocate in bytes (TFLM's default: 10x the file).
    """

    name = "tflite-micro"

    def __init__(self, path: str | Path, *, arena_size: int | None = None) -> None:
        super().__init__(path)
        runtime = require("tflite_micro.python.tflite_micro.runtime", extra="micro")
        self.backend, self.version = "tflite_micro", installed_version("tflite-micro") or "unknown"
        model = self.path.read_bytes()
        # A foreign file makes TFLM read past its buffer; refuse it before TFLM sees it.
        if model[4:8] != b"TFL3":
            raise EdgeconvError(f"cannot load {self.path} with TFLite Micro: "
                                "not a TFLite flatbuffer")
        # A check TFLM makes by abort() (no message, the process dies): say it instead.
        from edgeconv.convert.tflite import softmax_inputs_below_tflm_floor
        if below := softmax_inputs_below_tflm_floor(model, runtime.schema_fb):
            raise EdgeconvError(f"cannot load {self.path} with TFLite Micro: "
                                f"{below[0].reason()}")
        with _native_stderr() as printed:
            try:
                self._interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
            except (RuntimeError, ValueError) as exc:
                failure = exc
            else:
                failure = None
        if failure is not None:
            # TFLM prints the reason ("Failed to resize buffer...") and raises a generic error
            reason = "; ".join([*printed, one_line(failure)])[:REASON_CHARS]
            raise EdgeconvError(f"cannot load {self.path} with TFLite Micro: {reason}")
        graph = runtime.schema_fb.Model.GetRootAsModel(model, 0).Subgraphs(0)
        for i in range(graph.InputsLength()):
            signature = graph.Tensors(graph.Inputs(i)).ShapeSignatureAsNumpy()
            # TFLM cannot resize an input: it would run the stored 1x1 placeholder instead.
            if not isinstance(signature, int) and (signature[1:] < 0).any():
                raise EdgeconvError(
                    f"cannot load {self.path} with TFLite Micro: its input size is free"
                    f" ({signature.tolist()}); TFLite Micro cannot resize an input, so it"
                    " needs a model built for a fixed size")
        self._inputs = [_tensor_info(graph, graph.Inputs(i), self._interpreter.get_input_details(i))
                        for i in range(graph.InputsLength())]
        self._outputs = [
            _tensor_info(graph, graph.Outputs(i), self._interpreter.get_output_details(i))
            for i in range(graph.OutputsLength())]

    def _invoke_all(self, x: np.ndarray) -> list[np.ndarray]:
        self._interpreter.set_input(x, 0)
        try:
            self._interpreter.invoke()
        except RuntimeError as exc:  # TFLM has printed its reason on stderr
            raise EdgeconvError(f"TFLite Micro failed to run {self.path}: {one_line(exc)}"
                                ) from None
        # fresh arrays per call
        return [self._interpreter.get_output(i) for i in range(len(self._outputs))]

    def invoke_on_zeros(self) -> None:
        """Invoke once with every input zero (in its own dtype), keeping TFLM's printed reason."""
        for index, info in enumerate(self._inputs):
            self._interpreter.set_input(np.zeros(info.shape, dtype=info.dtype), index)
        with _native_stderr() as printed:
            try:
                self._interpreter.invoke()
            except RuntimeError as exc:
                failure = exc
            else:
                return
        reason = "; ".join([*printed, one_line(failure)])[:REASON_CHARS]
        raise EdgeconvError(f"TFLite Micro failed to run {self.path}: {reason}")

    def arena_used_bytes(self) -> int:
        """Bytes of the tensor arena the model really uses: the figure a board must provide."""
        # TFLM's only report of it is the recording allocator's printout on stderr.
        with _native_stderr() as printed:
            self._interpreter.print_allocations()
        for line in printed:
            if match := _ARENA_TOTAL.search(line):
                return int(match.group(1))
        raise RuntimeError(f"TFLite Micro {self.version} printed no arena total: {printed[:1]}")

    def close(self) -> None:
        self._interpreter = None


@dataclass(frozen=True)
class MicroProbe:
    """Whether TFLite Micro loads and runs a file, and the arena it used."""

    ok: bool
    arena_bytes: int | None = None
    error: str | None = None


def probe(path: str | Path, *, arena_size: int | None = None,
          timeout: float = 60.0) -> MicroProbe:
    """Load `path` in TFLite Micro and invoke it once, in a child process.

    A crash or a hang of the interpreter becomes `ok=False` with the reason; the caller lives.
    """
    args = [str(path)] + (["--arena-size", str(arena_size)] if arena_size is not None else [])
    outcome = run_child("edgeconv.runtimes.micro", args, what="TFLite Micro", timeout=timeout)
    if not outcome.ok:
        return MicroProbe(ok=False, error=outcome.error)
    try:
        return MicroProbe(**outcome.payload)
    except TypeError:
        return MicroProbe(ok=False, error=f"TFLite Micro probe answered {outcome.payload!r}")


def _probe_here(path: str, arena_size: int | None) -> MicroProbe:
    """The child's side of `probe`: load, invoke on zeros, read the arena."""
    try:
        with MicroRuntime(path, arena_size=arena_size) as runtime:
            runtime.invoke_on_zeros()
            return MicroProbe(ok=True, arena_bytes=runtime.arena_used_bytes())
    except EdgeconvError as exc:
        return MicroProbe(ok=False, error=str(exc))


def _tensor_info(graph, tensor_index: int, details: dict) -> TensorInfo:
    quantization = details["quantization_parameters"]
    scales, zero_points = quantization["scales"], quantization["zero_points"]
    quantized = len(scales) > 0 and scales[0] != 0
    name = graph.Tensors(tensor_index).Name()
    return TensorInfo(
        name=name.decode() if name else f"tensor{tensor_index}",
        shape=tuple(int(d) for d in details["shape"]),  # TFLM has no dynamic dimensions
        dtype=np.dtype(details["dtype"]).name,
        scale=float(scales[0]) if quantized else None,
        zero_point=int(zero_points[0]) if quantized else None,
    )


@contextlib.contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """Collect the non-empty lines C++ code writes to fd 2 inside the block."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                sink.seek(0)
                text = sink.read().decode(errors="replace")
                lines.extend(line.strip() for line in text.splitlines() if line.strip())
    finally:
        os.close(saved)


def _main() -> None:
    parser = argparse.ArgumentParser(description="Probe a .tflite file in TFLite Micro.")
    parser.add_argument("model")
    parser.add_argument("--arena-size", type=int)
    args = parser.parse_args()
    print(json.dumps(asdict(_probe_here(args.model, args.arena_size))), flush=True)


if __name__ == "__main__":
    _main()
