"""onnxruntime for .onnx files, on the CPU or a GPU execution provider."""

from __future__ import annotations

import functools
import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeconv._lazy import require
from edgeconv.errors import EdgeconvError, did_you_mean, one_line
from edgeconv.runtimes.base import Runtime, TensorInfo

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}

# ONNX element types whose numpy name differs from the ONNX one
_DTYPES = {"float": "float32", "double": "float64"}

# On an x86 CPU without VNNI, onnxruntime's fused int8 kernels (QDQ folded into QLinearConv /
# MatMulInteger) multiply u8 x s8 with VPMADDUBSW, whose 16-bit sums saturate: measured here on
# an AVX2 EPYC, an int8 QDQ CNN's outputs were off by 35% of their scale while the same file
# run unfused (each DequantizeLinear -> float op -> QuantizeLinear, the file's own
# arithmetic) was off by 0.4%, as TFLite's int8 file of the same model. onnxruntime's guide
# answers with 7-bit weights (reduce_range), which would make the file depend on the machine
# that made it; edgeconv keeps the file and runs it unfused on such a CPU, and says so.
UNFUSED_QDQ_NOTE = ("onnxruntime ran this int8 QDQ file unfused (session.disable_quant_qdq):"
                    " this x86 CPU has no VNNI, where its fused u8s8 kernels saturate; latency"
                    " is that of the unfused graph")
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


class OnnxRuntime(Runtime):
    """An .onnx file in an onnxruntime InferenceSession.

    `providers` takes short names ("cpu", "cuda", "tensorrt") or onnxruntime's own provider
    strings, in order of preference; the CPU provider is always added last so that nodes a GPU
    provider cannot take still run.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int | None = None,
                 providers: str | Sequence[str] | None = None) -> None:
        super().__init__(path)
        ort = require("onnxruntime", extra="onnx")
        self.backend, self.version = "onnxruntime", ort.__version__
        wanted = _provider_names(providers, ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings are about graph details, not ours
        if threads is not None:
            if threads < 1:
                raise EdgeconvError(f"threads must be >= 1; got {threads}")
            options.intra_op_num_threads = threads
        self.run_note: str | None = None  # how the file ran, when that is not the default
        if _fused_int8_saturates() and _has_qdq(self.path):
            options.add_session_config_entry("session.disable_quant_qdq", "1")
            self.run_note = UNFUSED_QDQ_NOTE
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options,
                                                 providers=wanted)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types
            raise EdgeconvError(f"cannot load {self.path} with onnxruntime: {one_line(exc)}"
                                ) from None
        # A GPU provider that fails to initialise (no CUDA/cuDNN) is dropped with only a log line.
        self.providers = self._session.get_providers()
        dropped = [p for p in wanted if p not in self.providers]
        if dropped:
            raise EdgeconvError(f"onnxruntime could not start {', '.join(dropped)} for "
                                f"{self.path.name} (check the CUDA/TensorRT libraries)")
        self._inputs = [_tensor_info(arg) for arg in self._session.get_inputs()]
        self._outputs = [_tensor_info(arg) for arg in self._session.get_outputs()]
        self._input_name = self._inputs[0].name
        self._output_names = [info.name for info in self._outputs]

    def _invoke_all(self, x: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._output_names, {self._input_name: x})

    def close(self) -> None:
        self._session = None


@functools.lru_cache(maxsize=1)
def _fused_int8_saturates() -> bool:
    """An x86-64 CPU without VNNI (see UNFUSED_QDQ_NOTE); False where it cannot be told."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh
                          if line.startswith("flags")), None)
    except OSError:
        return False
    return flags is not None and not any(flag in flags for flag in _VNNI_FLAGS)


def _has_qdq(path: Path) -> bool:
    """Whether the graph holds QuantizeLinear nodes (op types are plain strings in the
    protobuf; the file was checked whole before any runtime opens it)."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:  # not read whole
            return mapped.find(b"QuantizeLinear") != -1


def _provider_names(given: str | Sequence[str] | None, available: list[str]) -> list[str]:
    """onnxruntime provider strings for the user's names, checked against this install."""
    names = [given] if isinstance(given, str) else list(given or ["cpu"])
    full_names = {p.lower(): p for p in available} | {p.lower(): p for p in PROVIDERS.values()}
    resolved = []
    for name in names:
        provider = PROVIDERS.get(name.lower()) or full_names.get(name.lower())
        if provider is None:
            raise EdgeconvError(f"unknown onnxruntime provider '{name}'"
                                f"{did_you_mean(name.lower(), PROVIDERS)}; "
                                f"choose from {', '.join(PROVIDERS)}")
        if provider not in available:
            hint = " (pip install 'edgeconv[gpu]')" if provider != PROVIDERS["cpu"] else ""
            raise EdgeconvError(f"this onnxruntime has no {provider}; available: "
                                f"{', '.join(available)}{hint}")
        resolved.append(provider)
    if PROVIDERS["cpu"] not in resolved:
        resolved.append(PROVIDERS["cpu"])
    return resolved


def _tensor_info(arg) -> TensorInfo:
    # arg.type reads "tensor(float)"; symbolic dimensions come as strings (e.g. "batch")
    element = arg.type.removeprefix("tensor(").removesuffix(")")
    return TensorInfo(
        name=arg.name,
        shape=tuple(d if isinstance(d, int) else None for d in arg.shape),
        dtype=_DTYPES.get(element, element),
    )


def use_gpu(options: dict) -> str | None:
    """Run on the GPU: TensorRT first when it is installed (onnxruntime falls back to CUDA
    per node), else CUDA. onnxruntime-gpu lists TensorRT as available even without
    TensorRT's libraries, and a provider that then fails to start fails the row, so look for
    them. (The gpu target's reachability check has already found a CUDA provider.)"""
    import ctypes.util
    import importlib.util

    ort = require("onnxruntime", extra="gpu")
    tensorrt = ("TensorrtExecutionProvider" in ort.get_available_providers()
                and (importlib.util.find_spec("tensorrt") is not None
                     or ctypes.util.find_library("nvinfer") is not None))
    options["providers"] = ["tensorrt", "cuda"] if tensorrt else ["cuda"]
    return None
