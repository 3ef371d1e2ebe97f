"""The interface every inference engine implements, and the (de)quantisation at its boundary.

A runtime loads one artifact, describes its tensors and runs it. Everything that costs time
(allocation, resizing, picking a backend) happens when the model loads or when the input
shape changes, so that `run_raw` is what a benchmark should time.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from edgeconv.errors import EdgeconvError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11; edgeconv supports 3.10


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as its runtime sees it."""

    name: str
    shape: tuple[int | None, ...]  # None: a dynamic dimension
    dtype: str  # numpy dtype name: "float32", "int8", ...
    scale: float | None = None  # real = scale * (q - zero_point); None for a float tensor
    zero_point: int | None = None


class Runtime(ABC):
    """A loaded model in one inference engine.

    Subclasses load in `__init__`, set `backend`, `version`, `_inputs` and `_outputs`, and
    implement `_invoke_all` (every output) for a batch whose shape the model accepts as it
    is; a runtime for single-output models only may implement `_invoke` (one array) instead.
    """

    name: ClassVar[str]
    max_batch: ClassVar[int] = 32  # samples per engine call when the batch is free
    backend: str  # the library that runs the model, e.g. "ai_edge_litert"
    version: str  # that library's version
    _inputs: list[TensorInfo]
    _outputs: list[TensorInfo]

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgeconvError(f"{self.path} does not exist")

    def inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def signature_names(self) -> list[str | None]:
        """Per output (in the order of `outputs()`), the name the file's serving signature
        gives it, where the format keeps one apart from the tensor's name (TFLite: a Keras
        model's output name, or output_0, output_1, ... in the model's order); else None."""
        return [None] * len(self._outputs)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Float32 batch in the model's layout -> float32 output, quantising at the boundary.
        For a single-output model; `run_all` runs every output."""
        self._single_io()
        return self.run_all(x)[0]

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """A batch already in the input's dtype -> the output as the engine returns it.
        For a single-output model; `run_raw_all` runs every output."""
        self._single_io()
        return self.run_raw_all(x)[0]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Float32 batch -> every output as float32, in the order of `outputs()`, each
        dequantised with its own scale and zero point."""
        source = self._single_input()
        return [dequantize(y, info)
                for y, info in zip(self.run_raw_all(quantize(x, source)), self._outputs)]

    def run_raw_all(self, x: np.ndarray) -> list[np.ndarray]:
        """A batch already in the input's dtype -> every output as the engine returns it,
        in the order of `outputs()`."""
        source = self._single_input()
        if x.dtype != source.dtype:
            raise EdgeconvError(f"{self.path.name} takes {source.dtype} input, got {x.dtype}"
                                + ("; run() quantises float input" if source.scale else ""))
        check_shape(x.shape, source.shape, self.path.name)
        # A fixed batch of one runs one sample at a time; a free batch runs in chunks, which
        # bounds the activations held at once (a 224x224 model on a whole test split in one
        # call takes gigabytes).
        step = 1 if source.shape[0] == 1 else self.max_batch
        if x.shape[0] <= step:
            return list(self._invoke_all(x))
        parts = [self._invoke_all(x[i:i + step]) for i in range(0, x.shape[0], step)]
        return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]

    def prepared(self, x: np.ndarray) -> Callable[[], object]:
        """One inference on `x` as a call with no arguments, everything else done up front:
        what a benchmark times (TFLite's benchmark_model times invoke() alone). The call runs
        the whole graph: every output."""
        self.run_raw_all(x)  # checks dtype and shape, and sizes the engine for x
        if len(self._outputs) == 1:  # returns the output, as run_raw would
            return lambda: self._invoke(x)
        return lambda: self._invoke_all(x)

    def _invoke_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Run one batch of a shape the model takes (resizing first if it is new): every
        output, in the order of `outputs()`. A runtime implements this, or `_invoke` alone
        when it only ever loads single-output models."""
        return [self._invoke(x)]

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        """The first output of `_invoke_all` (a single-output runtime may implement this)."""
        return self._invoke_all(x)[0]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # each default calls the other: a runtime (a class with a name) implements one
        if (cls._invoke_all is Runtime._invoke_all and cls._invoke is Runtime._invoke
                and "name" in cls.__dict__):
            raise TypeError(f"{cls.__name__} implements neither _invoke_all nor _invoke")

    def arena_used_bytes(self) -> int | None:
        """The working memory the engine planned for the model, where it reports one
        (TFLite Micro's tensor arena); None elsewhere."""
        return None

    def close(self) -> None:
        """Release the engine's memory; the runtime is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _single_io(self) -> tuple[TensorInfo, TensorInfo]:
        """For callers that need one output (a classifier's top-1): the one input and output."""
        if len(self._inputs) != 1 or len(self._outputs) != 1:
            raise EdgeconvError(
                f"{self.path.name} has {len(self._inputs)} inputs and {len(self._outputs)} "
                "outputs; run() handles single-input, single-output models (run_all() runs"
                " every output)")
        return self._inputs[0], self._outputs[0]

    def _single_input(self) -> TensorInfo:
        if len(self._inputs) != 1:
            raise EdgeconvError(f"{self.path.name} has {len(self._inputs)} inputs; edgeconv"
                                " runs single-input models")
        return self._inputs[0]


def check_shape(got: tuple[int, ...], expected: tuple[int | None, ...], model: str) -> None:
    """Fail with one line unless `got` fits `expected` (None: any size; a batch of one: any N)."""
    batch_ok = expected[:1] in ((None,), (1,)) or got[:1] == expected[:1]
    fits = (len(got) == len(expected) >= 1 and got[0] > 0 and batch_ok
            and all(e is None or e == g for g, e in zip(got[1:], expected[1:])))
    if not fits:
        shown = ["N" if i == 0 and e in (None, 1) else "?" if e is None else str(e)
                 for i, e in enumerate(expected)]
        raise EdgeconvError(f"{model} takes input of shape ({', '.join(shown)}), got {tuple(got)}")


def quantize(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Float values -> the tensor's dtype with its own scale and zero point (round, clip)."""
    if info.scale is None:
        return np.asarray(x, dtype=info.dtype)
    limits = np.iinfo(info.dtype)
    q = np.round(np.asarray(x, dtype=np.float32) / np.float32(info.scale)) + info.zero_point
    return np.clip(q, limits.min, limits.max).astype(info.dtype)


def dequantize(y: np.ndarray, info: TensorInfo) -> np.ndarray:
    """The tensor's values as float32 (real = scale * (q - zero_point))."""
    if info.scale is None:
        return y.astype(np.float32, copy=False)
    return (y.astype(np.float32) - np.float32(info.zero_point)) * np.float32(info.scale)
