"""TFLite Micro on an emulated Cortex-M4/M7 (edgeconv.mcu).

The `mcu` tests build libtflm.a per (core, kernel set) with the Arm GNU toolchain (minutes the
first time, then cached under the MCU cache) and run firmwares in qemu-system-arm: run them
with `scripts/test -m mcu`. The unmarked ones need no build and stay in the quick suite.

Reference figures: the prototype's table (instructions per invoke, arena on the target) for
TFLM 90b983c2 + CMSIS-NN 4ab83cc3, gcc 12.2, QEMU 7.2; docs/mcu.md has ours beside them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.mcu import ToolMissing, cache, check_tools, find_tree, read_ops, run_firmware
from edgeconv.mcu.cores import FLASH_SIZE
from edgeconv.mcu.ops import RESOLVER_CALLS
from tests.micro_reference import host_outputs, random_inputs

SHARED = Path(__file__).resolve().parents[2] / "shared"
MODELS = SHARED / "models"
TREES = SHARED / "third_party"
HAVE_TOOLS = bool(shutil.which("arm-none-eabi-g++") and shutil.which("qemu-system-arm"))

needs_shared = pytest.mark.skipif(not MODELS.is_dir() or not TREES.is_dir(),
                                  reason="../shared (models, TFLM trees) not here")
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="Arm GNU toolchain or qemu-system-arm "
                                 "missing")

# model -> (MACs, {(core, kernels): instructions per invoke}, arena with CMSIS-NN)
TABLE = {
    "mlcommons-tiny/vww_96_int8": (7.49e6, {("cortex-m7", "reference"): 101.2e6,
                                            ("cortex-m7", "cmsis-nn"): 24.03e6,
                                            ("cortex-m4", "cmsis-nn"): 24.10e6}, 100_708),
    "mlcommons-tiny/kws_ref_model": (2.66e6, {("cortex-m7", "reference"): 43.6e6,
                                              ("cortex-m7", "cmsis-nn"): 7.65e6,
                                              ("cortex-m4", "cmsis-nn"): 7.70e6}, 22_820),
    "mlcommons-tiny/pretrainedResnet_quant": (12.50e6, {("cortex-m7", "reference"): 108.7e6,
                                                        ("cortex-m7", "cmsis-nn"): 30.03e6,
                                                        ("cortex-m4", "cmsis-nn"): 29.86e6},
                                              54_996),
    "mlcommons-tiny/ad01_int8": (0.26e6, {("cortex-m7", "reference"): 1.95e6,
                                          ("cortex-m7", "cmsis-nn"): 0.58e6,
                                          ("cortex-m4", "cmsis-nn"): 0.58e6}, 2_580),
    "tflite-micro/person_detect": (7.16e6, {("cortex-m7", "reference"): 96.6e6,
                                            ("cortex-m7", "cmsis-nn"): 22.7e6,
                                            ("cortex-m4", "cmsis-nn"): 22.9e6}, 82_308),
}
# Reference kernels run 4-5x the instructions: two models keep the third library's cost low.
CASES = [(m, "cortex-m7", "cmsis-nn") for m in TABLE] + \
        [(m, "cortex-m4", "cmsis-nn") for m in TABLE] + \
        [(m, "cortex-m7", "reference") for m in ("mlcommons-tiny/ad01_int8",
                                                  "mlcommons-tiny/kws_ref_model")]


def _model(name: str) -> Path:
    return MODELS / f"{name}.tflite"


def _tree(kernels: str) -> Path:
    return TREES / f"tflm-tree-{kernels}.tgz"


# ---- quick: no toolchain, no build ---------------------------------------------------------

@needs_shared
def test_ops_reads_operators_macs_and_tensors():
    kws = read_ops(_model("mlcommons-tiny/kws_ref_model"))
    assert kws.op_names == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE",
                            "FULLY_CONNECTED", "SOFTMAX"]
    assert kws.macs == pytest.approx(2.66e6, rel=0.005)
    assert [(t.shape, t.dtype) for t in kws.inputs] == [((1, 49, 10, 1), "int8")]
    assert [(t.shape, t.dtype) for t in kws.outputs] == [((1, 12), "int8")]
    assert all((op.macs is None) == (op.op not in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                   "FULLY_CONNECTED")) for op in kws.ops)
    assert [op.index for op in kws.ops] == list(range(len(kws.ops)))
    for name, (macs, _, _) in TABLE.items():
        assert read_ops(_model(name)).macs == pytest.approx(macs, abs=0.005e6), name
    assert kws.int8_only("CONV_2D") and not read_ops(
        _model("mlcommons-tiny/vww_96_float")).int8_only("CONV_2D")


@needs_shared
def test_ops_names_the_operator_tflm_lacks():
    broken = _model("invalid/model_invoking_error")
    assert read_ops(broken).unsupported() == ["fake-op-double"]
    with pytest.raises(EdgeconvError, match="no kernel for operator fake-op-double"):
        read_ops(broken).check_supported(broken)


def test_ops_refuses_a_file_that_is_not_a_model(tmp_path):
    junk = tmp_path / "x.tflite"
    junk.write_bytes(b"\0\0\0\0TFL3" + b"\xff" * 40)
    with pytest.raises(EdgeconvError, match="x.tflite: the model has no subgraph"):
        read_ops(junk)
    junk.write_bytes(b"\xf0\xff\0\0TFL3" + b"\xff" * 40)  # root table past the end
    with pytest.raises(EdgeconvError, match="cannot read the TFLite flatbuffer"):
        read_ops(junk)
    junk.write_bytes(b"not a model at all")
    with pytest.raises(EdgeconvError, match="not a TFLite flatbuffer"):
        read_ops(junk)


@needs_shared
def test_resolver_table_matches_the_tree():
    """Every Add* call ops.py emits exists in the pinned tree's MicroMutableOpResolver."""
    import re

    with tarfile.open(_tree("cmsis-nn")) as tar:
        member = next(m for m in tar.getmembers()
                      if m.name.endswith("tensorflow/lite/micro/micro_mutable_op_resolver.h"))
        header = tar.extractfile(member).read().decode()
    declared = dict((op, call) for call, op in re.findall(
        r"TfLiteStatus (Add\w+)\([^{]*\{\s*return AddBuiltin\(\s*BuiltinOperator_(\w+)",
        header, re.S))
    assert declared == RESOLVER_CALLS


@needs_shared
def test_find_tree_says_how_to_get_one(monkeypatch, tmp_path):
    for env in ("EDGECONV_TFLM_TREE", "EDGECONV_TFLM_TREES", "EDGECONV_TFLM_TREE_CMSIS_NN",
                "EDGECONV_TFLM_TREE_REFERENCE"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("EDGECONV_MCU_CACHE", str(tmp_path / "empty-cache"))  # no fetched tree
    with pytest.raises(EdgeconvError, match="create_tflm_tree.py"):
        find_tree("cmsis-nn")
    with pytest.raises(EdgeconvError, match="not a TFLite Micro tree"):
        find_tree("cmsis-nn", tmp_path)
    monkeypatch.setenv("EDGECONV_MCU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGECONV_TFLM_TREE", str(TREES))  # a folder of trees
    tree = find_tree("reference")
    assert tree.kernels == "reference" and len(tree.content_hash) == 64
    assert tree.label.startswith("tflite-micro 90b983c2")
    assert find_tree("reference", TREES).content_hash == tree.content_hash
    with pytest.raises(EdgeconvError, match="reference kernels only"):
        find_tree("cmsis-nn", _tree("reference"))


def test_no_toolchain_names_the_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="apt-get install gcc-arm-none-eabi "
                       "libnewlib-arm-none-eabi libstdc\\+\\+-arm-none-eabi-newlib"):
        check_tools()
    with pytest.raises(ToolMissing):
        run_firmware(Path("any.tflite"), core="cortex-m7")


@needs_tools
def test_no_emulator_names_the_package(monkeypatch, tmp_path):
    for tool in ("gcc", "g++", "ar", "size"):
        (tmp_path / f"arm-none-eabi-{tool}").symlink_to(shutil.which(f"arm-none-eabi-{tool}"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="apt-get install qemu-system-arm"):
        check_tools()


@needs_tools
@needs_shared
def test_run_refuses_before_building(tmp_path, monkeypatch):
    """An op TFLM lacks and a model over the flash are refused before any build."""
    monkeypatch.setenv("EDGECONV_MCU_CACHE", str(tmp_path / "cache"))
    with pytest.raises(EdgeconvError, match="fake-op-double"):
        run_firmware(_model("invalid/model_invoking_error"), core="cortex-m7",
                     tree=_tree("cmsis-nn"))
    big = tmp_path / "big.tflite"  # a valid flatbuffer followed by padding: 4 MB + 1 KB
    data = _model("mlcommons-tiny/ad01_int8").read_bytes()
    big.write_bytes(data + bytes(FLASH_SIZE + 1024 - len(data)))
    with pytest.raises(EdgeconvError, match="larger than the emulated flash"):
        run_firmware(big, core="cortex-m7", tree=_tree("cmsis-nn"))
    assert not (tmp_path / "cache" / "lib").exists()
    with pytest.raises(EdgeconvError, match="unknown core"):
        run_firmware(big, core="cortex-m3")


def test_emulator_report_parsing_and_fault_reason():
    from edgeconv.mcu import emulator

    text = ("EDGECONV setup_ticks 100\nEDGECONV arena_used_bytes 2580\nEDGECONV invoke 0 9 700\n"
            "EDGECONV op 0 0 0 5 FULLY_CONNECTED\nDidn't find op for builtin opcode\n"
            "\nEDGECONV fault ipsr=00000003 pc=0000028a cfsr=00008200\n")
    report = emulator.parse(text)
    assert (report.setup_ticks, report.arena_used_bytes, report.invokes, report.ops) == \
        (100, 2580, [(9, 700)], [(0, 5, "FULLY_CONNECTED")])
    assert not report.done
    assert emulator._reason(report).startswith("fault ipsr=00000003 pc=0000028a")


def test_cache_entry_is_complete_or_absent(tmp_path, monkeypatch):
    """A build that fails or is interrupted leaves no entry under the final name, and the
    partial folder a killed build leaves is removed by the next build of that key."""
    monkeypatch.setenv("EDGECONV_MCU_CACHE", str(tmp_path))

    def interrupted(folder: Path) -> None:
        (folder / "half.o").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.entry("lib", "k1", interrupted, lambda d: (d / "done").is_file())
    assert list((tmp_path / "lib").iterdir()) == [tmp_path / "lib" / ".k1.lock"]
    stale = tmp_path / "lib" / ".k1.partial-999999"  # what kill -9 leaves
    stale.mkdir()
    built = cache.entry("lib", "k1", lambda d: (d / "done").write_text("ok"),
                        lambda d: (d / "done").is_file())
    assert built == tmp_path / "lib" / "k1" and (built / "done").is_file()
    assert not stale.exists()


def test_cache_entry_is_built_once_by_concurrent_builders(tmp_path, monkeypatch):
    """Two builders of one key: the second waits on the lock and takes the first's entry."""
    import threading

    monkeypatch.setenv("EDGECONV_MCU_CACHE", str(tmp_path))
    calls, started = [], threading.Event()

    def slow(folder: Path) -> None:
        calls.append(folder)
        started.set()
        time.sleep(0.5)
        (folder / "done").write_text("ok")

    done = lambda d: (d / "done").is_file()  # noqa: E731
    results: list[Path] = []
    first = threading.Thread(target=lambda: results.append(cache.entry("lib", "k", slow, done)))
    first.start()
    started.wait(5)
    results.append(cache.entry("lib", "k", slow, done))
    first.join()
    assert len(calls) == 1 and results[0] == results[1] == tmp_path / "lib" / "k"


# ---- mcu: real builds and emulator runs ----------------------------------------------------

@pytest.mark.mcu
@needs_tools
@needs_shared
@pytest.mark.parametrize("name,core,kernels", CASES, ids=[f"{m.split('/')[1]}-{c}-{k}"
                                                          for m, c, k in CASES])
def test_instructions_arena_and_outputs_match(name, core, kernels):
    path = _model(name)
    samples = random_inputs(path, 3)
    run = run_firmware(path, core=core, kernels=kernels, inputs=samples, tree=_tree(kernels))
    expected = TABLE[name][1][(core, kernels)]
    assert run.invoke_instructions == pytest.approx(expected, rel=0.05)
    # the same count on every invoke, whatever the input
    assert max(run.invoke_instructions_each) - min(run.invoke_instructions_each) <= 0.001 * \
        run.invoke_instructions
    if kernels == "cmsis-nn":
        assert run.arena_bytes == TABLE[name][2]
    assert 0 < run.stack_bytes < 8192
    assert run.setup_instructions > 0
    assert run.tree.startswith("tflite-micro 90b983c2") and run.machine in ("mps2-an500",
                                                                           "mps2-an386")
    ops = read_ops(path)
    assert [c.op for c in run.ops] == [op.op for op in ops.ops]
    assert sum(c.instructions for c in run.ops) == pytest.approx(run.invoke_instructions,
                                                                 rel=0.02)
    assert run.model_bytes == path.stat().st_size
    assert 30_000 < run.runtime_flash_bytes < 200_000
    host = host_outputs(path, samples)
    for got, want in zip(run.outputs, host):
        assert got[0].dtype == want.dtype and got[0].shape == want.shape
        np.testing.assert_array_equal(got[0], want)


@pytest.mark.mcu
@needs_tools
@needs_shared
def test_model_just_over_the_flash_fails_at_link(tmp_path):
    """Under 4 MB itself, but not with the runtime beside it: the linker's verdict, one line."""
    big = tmp_path / "almost.tflite"
    data = _model("mlcommons-tiny/ad01_int8").read_bytes()
    big.write_bytes(data + bytes(FLASH_SIZE - 8 * 1024 - len(data)))
    with pytest.raises(EdgeconvError, match="does not fit the emulated flash .* over by"):
        run_firmware(big, core="cortex-m7", tree=_tree("cmsis-nn"))


@pytest.mark.mcu
@needs_tools
@needs_shared
def test_arena_too_small_and_hang_are_one_line():
    kws = _model("mlcommons-tiny/kws_ref_model")
    with pytest.raises(EdgeconvError,
                       match=r"AllocateTensors failed \(arena 4096 bytes\); .*failed to prepare"):
        run_firmware(kws, core="cortex-m7", tree=_tree("cmsis-nn"), arena_bytes=4096)
    with pytest.raises(EdgeconvError, match="did not finish in 0 s"):
        run_firmware(kws, core="cortex-m7", tree=_tree("cmsis-nn"), timeout=0.01)


def _with_softmax_input_scale(path: Path, scale: float) -> bytes:
    """The model's bytes with its SOFTMAX input's quantisation scale overwritten in place."""
    import struct

    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    data = bytearray(path.read_bytes())
    model = schema.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == schema.BuiltinOperator.SOFTMAX:
            quant = graph.Tensors(op.Inputs(0)).Quantization()
            struct.pack_into("<f", data, quant._tab.Vector(quant._tab.Offset(8)), scale)
            return bytes(data)
    raise AssertionError("no SOFTMAX")


@pytest.mark.mcu
@needs_tools
@needs_shared
def test_an_abort_in_tflite_micro_names_the_function(tmp_path):
    """Logits quantised with a tiny scale (an untrained model's, ~1e-8) make TFLM's softmax
    set-up abort without a word; the firmware says where, in one line."""
    odd = tmp_path / "tiny_logit_scale.tflite"
    odd.write_bytes(_with_softmax_input_scale(_model("tflite-micro/person_detect"), 1e-9))
    with pytest.raises(EdgeconvError, match=r"abort\(\) called in TFLite Micro during "
                       r"AllocateTensors in tflite::PreprocessSoftmaxScaling"):
        run_firmware(odd, core="cortex-m7", tree=_tree("cmsis-nn"))


@pytest.mark.mcu
@needs_tools
@needs_shared
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_library_build_leaves_no_complete_entry(tmp_path, how):
    """A real library build stopped half-way: nothing under the final name; Ctrl-C also
    removes its partial folder and stops its compilers."""
    env = {**os.environ, "EDGECONV_MCU_CACHE": str(tmp_path)}
    code = ("from edgeconv.mcu import find_tree\nfrom edgeconv.mcu.library import build_library\n"
            f"build_library('cortex-m4', find_tree('reference', {str(_tree('reference'))!r}))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lib = tmp_path / "lib"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until objects are being written
        objs = list(lib.glob(".*.partial-*/obj/*.o")) if lib.is_dir() else []
        if len(objs) >= 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the build never started compiling")
    os.killpg(proc.pid, how) if how == signal.SIGKILL else proc.send_signal(how)
    proc.wait(timeout=60)
    finals = [p for p in lib.iterdir() if not p.name.startswith(".")]
    assert finals == []
    partials = list(lib.glob(".*.partial-*"))
    if how == signal.SIGINT:
        assert partials == [] and proc.returncode != 0
    else:
        assert len(partials) == 1 and not (partials[0] / "build.json").exists()
