"""The Ethos-U NPU through Arm's Vela compiler: compile a model for a target's NPU
configuration and read Vela's cycle estimate, SRAM and flash use, per-layer cycles and which
operators it leaves to the CPU, with its reasons. See docs/npu.md.

    from edgeconv.npu import NpuConfig, compile_for_npu
    run = compile_for_npu(Path("model.tflite"),
                          NpuConfig("ethos-u55-128", "Ethos_U55_High_End_Embedded",
                                    "Shared_Sram", clock_mhz=500))
    run.cycles_total, run.latency_ms, run.sram_bytes, run.flash_bytes, run.cpu_ops

Vela is the `npu` extra (pip install 'edgeconv[npu]'); without it every call is one line
saying so. Importing this package imports neither Vela nor TensorFlow.
"""

from edgeconv.npu.config import ACCELERATORS, NpuConfig
from edgeconv.npu.vela import (
    BASIS,
    PIP_EXTRA,
    Layer,
    NotForNpu,
    Placement,
    VelaMissing,
    VelaRun,
    check_npu_model,
    compile_for_npu,
    vela_installed,
)

__all__ = ["ACCELERATORS", "BASIS", "PIP_EXTRA", "Layer", "NotForNpu", "NpuConfig", "Placement",
           "VelaMissing", "VelaRun", "check_npu_model", "compile_for_npu", "vela_installed"]
