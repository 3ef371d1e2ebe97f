"""Keras as the float reference the exported files are checked against.

The reference runs compiled by default: an eager `model(x)` call at batch 1 is mostly
Python overhead (MobileNet v1 at 224x224: ~80 ms eager, ~15 ms as one tf.function on a
2-core x86-64 VM), which would flatter every exported file compared with it. `mode`:

- "eager": `model(x, training=False)` op by op, as Keras runs it interactively;
- "function": the call traced once into a `tf.function` graph (TensorFlow's own graph
  optimiser and oneDNN kernels);
- "xla": the same graph compiled by XLA (`jit_compile=True`); a model XLA cannot compile
  is refused with one line;
- "auto" (default): XLA and plain tf.function both built and run on one sample, the faster
  kept; plain tf.function when XLA does not compile the model. XLA is not always faster on
  a CPU: MobileNet v1 at 224x224 ran 4.7x slower under XLA (62 ms) than under plain
  tf.function here, so preferring it blindly would make the baseline unfair the other way.

What ran is in `backend` ("keras/tensorflow tf.function+XLA", "keras/tensorflow
tf.function", "keras/tensorflow eager") and, with the reason, in `compiled_note`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeconv._lazy import keras
from edgeconv.errors import EdgeconvError, one_line
from edgeconv.files import MAX_MODEL_BYTES, open_regular
from edgeconv.records import MAX_RECORD_BYTES
from edgeconv.runtimes.base import Runtime, TensorInfo


MODES = ("auto", "xla", "function", "eager")
# What each compiled form is called in `backend` (after "keras/tensorflow ").
_LABELS = {"xla": "tf.function+XLA", "function": "tf.function", "eager": "eager"}
_PROBE_ROUNDS = 5  # auto: calls of each form timed on one sample (after one warm-up call)
_PROBE_SECONDS = 2.0  # auto: stop timing after this long once two rounds are in


class KerasRuntime(Runtime):
    """A .keras file loaded in safe mode: code stored in the file (Lambda layers) never runs.

    `mode` says how the model is called: "auto" (default), "xla", "function" or "eager"
    (the module's docstring). The form that runs is in `backend` and `compiled_note`.
    """

    name = "keras"

    def __init__(self, path: str | Path, *, mode: str = "auto") -> None:
        super().__init__(path)
        if mode not in MODES:
            raise EdgeconvError(f"unknown Keras mode '{mode}'; choose from {', '.join(MODES)}")
        k = keras()
        self._backend_name, self.version = f"keras/{k.backend.backend()}", k.__version__
        self._model = load_model(self.path)
        convert, flatten = k.ops.convert_to_numpy, k.tree.flatten
        # every output as numpy, in the order of model.outputs (a dict of outputs flattens
        # in the same key order as the model's own list)
        self._to_numpy = lambda result: [convert(y) for y in flatten(result)]
        self._inputs = [_tensor_info(t) for t in self._model.inputs]
        self._outputs = [_tensor_info(t) for t in self._model.outputs]
        self.mode = mode
        self._call: Callable | None = None  # set by _settle: the form that runs
        self._pending: dict[str, Callable] = {}  # auto/xla: candidates not yet tried
        if mode == "eager" or k.backend.backend() != "tensorflow":
            if mode in ("function", "xla"):
                raise EdgeconvError(f"Keras mode '{mode}' needs the TensorFlow backend;"
                                    f" Keras runs on {k.backend.backend()} here")
            why = ("asked for" if mode == "eager"
                   else f"tf.function needs the TensorFlow backend, not {k.backend.backend()}")
            self._use("eager", self._eager, why)
        elif mode == "function":
            self._use("function", self._graph(xla=False), "asked for")
        else:
            self._pending = {"xla": self._graph(xla=True)}
            if mode == "auto":
                self._pending["function"] = self._graph(xla=False)
            self.compiled = "xla" if mode == "xla" else "auto"
            self.backend = f"{self._backend_name} ({mode}: chosen on the first inference)"
            self.compiled_note = f"not run yet: mode {mode} chooses on the first inference"
            sample = self._sample()
            if sample is not None:  # fixed input size: choose now, so loading pays for it
                self._settle(sample)

    # -- the forms a model can be called in ------------------------------------------------

    def _eager(self, x):
        return self._model(x, training=False)

    def _graph(self, *, xla: bool) -> Callable:
        import tensorflow as tf

        source = self._inputs[0] if len(self._inputs) == 1 else None
        signature = None
        if source is not None:  # one trace for every batch size (XLA compiles per shape)
            signature = [tf.TensorSpec((None, *source.shape[1:]), source.dtype)]
        model = self._model
        return tf.function(lambda x: model(x, training=False), input_signature=signature,
                           jit_compile=xla, reduce_retracing=signature is None)

    def _sample(self) -> np.ndarray | None:
        """One zero sample when the input's size is fixed (else the first real batch)."""
        if len(self._inputs) != 1 or None in self._inputs[0].shape[1:]:
            return None
        info = self._inputs[0]
        return np.zeros((1, *info.shape[1:]), dtype=info.dtype)

    def _use(self, form: str, call: Callable, why: str) -> None:
        self._call, self._pending, self.compiled = call, {}, form
        self.backend = f"{self._backend_name} {_LABELS[form]}"
        self.compiled_note = f"Keras ran as {_LABELS[form]} ({why})"

    def _settle(self, x: np.ndarray) -> None:
        """auto / xla: compile on `x` (one sample of it) and keep the form that will run."""
        sample = x[:1]
        xla = self._pending["xla"]
        try:
            self._to_numpy(xla(sample))
        except Exception as exc:  # noqa: BLE001 - XLA's refusals have no common type
            reason = one_line(exc)[:200]
            if self.mode == "xla":
                raise EdgeconvError(f"XLA cannot compile {self.path.name}: {reason}; use"
                                    " Keras mode 'function' or 'auto'") from None
            self._use("function", self._pending["function"],
                      f"auto: XLA did not compile it: {reason}")
            return
        if self.mode == "xla":
            self._use("xla", xla, "asked for")
            return
        graph = self._pending["function"]
        self._to_numpy(graph(sample))
        best = _fastest({"xla": xla, "function": graph}, sample, self._to_numpy)
        form = min(best, key=best.get)
        self._use(form, xla if form == "xla" else graph,
                  f"auto: fastest on one sample, min of up to {_PROBE_ROUNDS} calls:"
                  f" tf.function+XLA {best['xla']:.3g} ms, tf.function {best['function']:.3g} ms")

    # -- Runtime -------------------------------------------------------------------------

    def _invoke_all(self, x: np.ndarray) -> list[np.ndarray]:
        if self._call is None:
            self._settle(x)
        return self._to_numpy(self._call(x))  # Runtime chunks large batches

    def prepared(self, x: np.ndarray) -> Callable[[], object]:
        """The input made a tensor once (as LiteRT sets its input once); each call runs the
        model and reads its outputs (which waits for a GPU to finish)."""
        self.run_raw_all(x)  # checks dtype and shape, compiles for this shape
        # the call returns what it computed: the output of a single-output model, else all
        single = len(self._outputs) == 1
        if self.compiled == "eager":
            return (lambda: self._invoke(x)) if single else (lambda: self._invoke_all(x))
        import tensorflow as tf

        tensor, call, to_numpy = tf.constant(x), self._call, self._to_numpy
        if single:
            return lambda: to_numpy(call(tensor))[0]
        return lambda: to_numpy(call(tensor))

    def close(self) -> None:
        self._model = self._call = None
        self._pending = {}


def _fastest(forms: dict[str, Callable], sample: np.ndarray,
             to_numpy: Callable) -> dict[str, float]:
    """Each form's fastest call on `sample` in ms, the forms called in turn (so a burst of
    other work on the machine hits both), at most _PROBE_ROUNDS rounds or _PROBE_SECONDS."""
    import tensorflow as tf

    tensor = tf.constant(sample)
    best = dict.fromkeys(forms, float("inf"))
    started = time.perf_counter()
    for round_ in range(_PROBE_ROUNDS):
        for name, call in forms.items():
            start = time.perf_counter_ns()
            to_numpy(call(tensor))
            best[name] = min(best[name], (time.perf_counter_ns() - start) / 1e6)
        if round_ >= 1 and time.perf_counter() - started > _PROBE_SECONDS:
            break
    return best


# A .keras file is a zip that Keras decompresses as it reads: bounds checked on the archive's
# directory first, so a small crafted file cannot make it inflate gigabytes (Keras' own guard
# starts at 4 GiB per member). Keras writes config.json and metadata.json (kilobytes) and
# model.weights.h5 (the weights, stored uncompressed).
MAX_JSON_MEMBER_BYTES = MAX_RECORD_BYTES
MAX_ARCHIVE_BYTES = 2 * MAX_MODEL_BYTES  # all members together, decompressed
MAX_MEMBERS = 10_000


def load_model(path: str | Path):
    """Load a .keras file in safe mode: code stored in the file (Lambda layers) never runs."""
    path = Path(path)
    if not os.path.exists(path):
        raise EdgeconvError(f"{path} does not exist")
    with open_regular(path, MAX_MODEL_BYTES):  # not a FIFO, a device or /proc; bounded
        pass
    _check_archive(path)
    try:
        return keras().saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - zip, JSON, unknown-layer, unsafe-lambda errors
        reason = ("it contains Python code (a Lambda layer), which safe mode refuses to run"
                  if "safe_mode" in str(exc) else one_line(exc)[:300])
        raise EdgeconvError(f"cannot load {path} with Keras: {reason}") from None


def _check_archive(path: Path) -> None:
    """One line, before Keras reads it, for a .keras whose members would decompress past
    the bounds above (the sizes are the zip directory's; Python's zipfile never inflates a
    member past its listed size)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise EdgeconvError(f"cannot load {path} with Keras: not a .keras archive (a zip):"
                            f" {one_line(exc)[:200]}") from None
    if len(members) > MAX_MEMBERS:
        raise EdgeconvError(f"cannot load {path} with Keras: {len(members):,} archive members,"
                            f" over the {MAX_MEMBERS:,} edgeconv reads")
    for member in members:
        if member.filename.endswith(".json") and member.file_size > MAX_JSON_MEMBER_BYTES:
            raise EdgeconvError(
                f"cannot load {path} with Keras: {member.filename[:100]} would decompress to"
                f" {member.file_size:,} bytes, over the {MAX_JSON_MEMBER_BYTES:,} edgeconv"
                " reads")
    total = sum(m.file_size for m in members)
    if total > MAX_ARCHIVE_BYTES:
        raise EdgeconvError(f"cannot load {path} with Keras: it would decompress to"
                            f" {total:,} bytes, over the {MAX_ARCHIVE_BYTES:,} edgeconv reads")


def _tensor_info(tensor) -> TensorInfo:
    return TensorInfo(name=tensor.name, shape=tuple(tensor.shape),
                      dtype=np.dtype(tensor.dtype).name)


def use_gpu(options: dict) -> str | None:
    """Keras places work on TensorFlow's GPU by itself when TensorFlow sees one; without
    one it would quietly run on the CPU, which is not a GPU figure."""
    keras()
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return None
    return "TensorFlow sees no GPU here (install tensorflow[and-cuda] in place of tensorflow-cpu)"
