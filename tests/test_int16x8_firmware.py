"""int16x8 on the emulated Cortex-M7 with CMSIS-NN: a small CNN made here (convolution,
depthwise, pooling, fully connected, softmax: the ops CMSIS-NN has s16 kernels for),
converted by the export's session at int8, int16x8 and mixed int8/int16x8, each run on the
firmware and compared bit for bit with the host TFLite Micro interpreter, with its
instruction count (edgeconv.mcu, the same firmware `edgeconv bench --target stm32h7` runs).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.micro_reference import host_outputs, random_inputs

pytestmark = pytest.mark.mcu

TREE = Path(__file__).resolve().parents[2] / "shared" / "third_party" / "tflm-tree-cmsis-nn.tgz"
needs = pytest.mark.skipif(
    not TREE.is_file() or not (shutil.which("arm-none-eabi-g++")
                               and shutil.which("qemu-system-arm")),
    reason="the pinned TFLite Micro tree, the Arm GNU toolchain or qemu-system-arm is missing")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from edgeconv._lazy import keras
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.calibration import CalibrationSet
    from edgeconv.quant.settings import Int8Settings

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((16, 16, 1))
    x = k.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = k.layers.DepthwiseConv2D(3, activation="relu", name="depthwise")(x)
    x = k.layers.AveragePooling2D(2, name="pool")(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(4, name="dense")(x)
    model = k.Model(inputs, k.layers.Softmax(name="softmax")(x))
    images = np.random.default_rng(0).random((32, 16, 16, 1), dtype=np.float32)
    session = ConversionSession(model, CalibrationSet(images, np.zeros(32, np.int64), seed=0),
                                Int8Settings())
    root = tmp_path_factory.mktemp("int16x8-firmware")
    made = {"int8": session.make("tflite", "int8"),
            "int16x8": session.make("tflite", "int16x8")}
    try:
        import ai_edge_quantizer  # noqa: F401 - the mixed file's quantiser

        from edgeconv.mcu.ops import parse_ops

        # the layers are named by their output tensors, as the per-layer report names them
        fp32 = parse_ops(session.make("tflite", "fp32").content)
        wide = [op.output_names[0] for op in fp32.ops
                if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
        made["mixed"] = session.make("tflite", "int8", wide=wide)
    except ImportError:
        pass
    paths = {}
    for kind, converted in made.items():
        paths[kind] = root / f"model_{kind}.tflite"
        paths[kind].write_bytes(converted.content)
    return paths


@needs
@pytest.mark.parametrize("kind", ["int8", "int16x8", "mixed"])
def test_integer_files_run_bit_exact_on_the_emulated_m7_with_cmsis_nn(files, kind):
    from edgeconv.mcu import read_ops, run_firmware

    if kind not in files:
        pytest.skip("ai-edge-quantizer is not installed (pip install 'edgeconv[mixed]')")
    path = files[kind]
    spec = read_ops(path).inputs[0]
    samples = random_inputs(path, 3)
    assert spec.dtype == ("int16" if kind == "int16x8" else "int8")
    widths = {d for op in read_ops(path).ops for d in op.output_dtypes}
    assert ("int16" in widths) == (kind != "int8")
    run = run_firmware(path, core="cortex-m7", kernels="cmsis-nn", inputs=samples, tree=TREE)
    for got, want in zip(run.outputs, host_outputs(path, samples)):
        assert got[0].dtype == want.dtype and got[0].shape == want.shape
        np.testing.assert_array_equal(got[0], want)
    # the instruction count: positive, the same on every invoke, the sum of the ops'
    assert run.invoke_instructions > 0
    assert max(run.invoke_instructions_each) - min(run.invoke_instructions_each) <= 0.001 * \
        run.invoke_instructions
    assert sum(c.instructions for c in run.ops) == pytest.approx(run.invoke_instructions,
                                                                 rel=0.02)
    print(f"{kind}: {run.invoke_instructions:,} instructions per invoke,"
          f" arena {run.arena_bytes:,} bytes, model {run.model_bytes:,} bytes")
