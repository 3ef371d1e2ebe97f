"""TFLite Micro on the emulated Cortex-M33 (QEMU mps3-an524, CMSIS-NN's DSP kernels) and
Cortex-M55 (QEMU mps3-an547, CMSIS-NN's Helium kernels), and the Ethos-U targets' CPU side.

All `mcu`: the first run builds libtflm.a per (core, kernel set), then cached. To keep a
fresh CI machine's first run short, every library here is built from the "mlperf-tiny"
subset of the tree (edgeconv.mcu.subset: the files these models link, so the same firmware
as the whole tree's; the corstone-300 bench takes it through BenchConfig.tflm_subset).
Build times: docs/mcu.md. Run with
`scripts/test -m mcu`; `-s` shows the printed figures (instructions, the MVE/reference ratio).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeconv.mcu import read_ops, run_firmware
from tests.micro_reference import host_outputs, random_inputs
from tests.npu_models import fallback_model

SHARED = Path(__file__).resolve().parents[2] / "shared"
MODELS = SHARED / "models" / "mlcommons-tiny"
TREES = SHARED / "third_party"
HAVE_TOOLS = bool(shutil.which("arm-none-eabi-g++") and shutil.which("qemu-system-arm"))

pytestmark = [
    pytest.mark.mcu,
    pytest.mark.skipif(not HAVE_TOOLS, reason="Arm GNU toolchain or qemu-system-arm missing"),
    pytest.mark.skipif(not MODELS.is_dir() or not TREES.is_dir(),
                       reason="../shared (models, TFLM trees) not here"),
]

CASES = [(model, core) for core in ("cortex-m33", "cortex-m55")
         for model in ("vww_96_int8", "kws_ref_model")]
MACHINES = {"cortex-m33": "mps3-an524", "cortex-m55": "mps3-an547"}
SUBSET = "mlperf-tiny"  # the libraries' source subset (module docstring)


@pytest.mark.parametrize("name,core", CASES, ids=[f"{m}-{c}" for m, c in CASES])
def test_bit_exact_on_the_new_cores(name, core):
    path = MODELS / f"{name}.tflite"
    samples = random_inputs(path, 3)
    run = run_firmware(path, core=core, kernels="cmsis-nn", inputs=samples,
                       tree=TREES / "tflm-tree-cmsis-nn.tgz", subset=SUBSET)
    print(f"\n{name} on {core} ({run.machine}), cmsis-nn: {run.invoke_instructions:,}"
          f" instructions per invoke, arena {run.arena_bytes:,} B, stack {run.stack_bytes:,} B,"
          f" flash without the model {run.runtime_flash_bytes:,} B; library built in"
          f" {run.library_seconds:.0f} s")
    assert run.machine == MACHINES[core]
    assert run.invoke_instructions > 0.1 * run.macs  # a real count, not a stub
    # nearly input-independent: a few data-dependent branches in the kernels (KWS: up to
    # 0.13% between inputs on the M55, 0.03% on the M33; VWW none)
    each = run.invoke_instructions_each
    assert max(each) - min(each) <= 0.005 * run.invoke_instructions
    assert [c.op for c in run.ops] == [op.op for op in read_ops(path).ops]
    assert sum(c.instructions for c in run.ops) == pytest.approx(run.invoke_instructions,
                                                                 rel=0.02)
    assert 0 < run.stack_bytes < 8192 and 30_000 < run.runtime_flash_bytes < 200_000
    for got, want in zip(run.outputs, host_outputs(path, samples)):
        np.testing.assert_array_equal(got[0], want)


def test_helium_kernels_need_fewer_instructions_than_reference_on_the_m55():
    path = MODELS / "kws_ref_model.tflite"
    samples = random_inputs(path, 2)
    runs = {kernels: run_firmware(path, core="cortex-m55", kernels=kernels, inputs=samples,
                                  tree=TREES / f"tflm-tree-{kernels}.tgz",
                                  subset=SUBSET)
            for kernels in ("cmsis-nn", "reference")}
    mve, ref = runs["cmsis-nn"].invoke_instructions, runs["reference"].invoke_instructions
    print(f"\nkws_ref_model on the emulated Cortex-M55: reference kernels {ref:,}, CMSIS-NN"
          f" (MVE) {mve:,} instructions per invoke: {ref / mve:.2f}x fewer with Helium")
    assert mve < ref
    for run in runs.values():  # both bit-exact with the host interpreter
        for got, want in zip(run.outputs, host_outputs(path, samples)):
            np.testing.assert_array_equal(got[0], want)


def test_npu_target_costs_the_cpu_fallback_on_the_m55_firmware(tmp_path):
    """corstone-300: the M55 firmware row, then the NPU row, whose CPU-fallback operator
    (DEPTH_TO_SPACE) is costed with the firmware's count for that operator."""
    pytest.importorskip("ethosu.vela")
    from edgeconv.bench.harness import run_bench
    from edgeconv.bench.plan import BenchConfig

    model = fallback_model(tmp_path / "fallback.tflite")
    report = run_bench(BenchConfig(paths=(model,), target="corstone-300", runs=1, warmup=0,
                                   min_time=0.0, tflm_tree=str(TREES),
                                   tflm_subset=SUBSET))
    (cpu,) = [r for r in report.results if r.mcu]
    (npu,) = [r for r in report.results if r.runtime == "ethos-u"]
    assert cpu.mcu["core"] == "cortex-m55" and cpu.parity and cpu.parity["equal"]
    fallback = npu.npu["cpu_fallback"]
    counted = {op["op"]: op["instructions"] for op in cpu.ops}
    assert [op["op"] for op in fallback["ops"]] == ["DEPTH_TO_SPACE"]
    assert fallback["instructions"] == counted["DEPTH_TO_SPACE"] > 0
    assert fallback["core"] == "cortex-m55"
