"""The kernel table (edgeconv/kernels.py) against the pinned TFLite Micro trees: a CMSIS-NN
function the table names is one the op's cmsis_nn kernel calls, an int16 CMSIS-NN path
the tree has is one the table names, and TFLite Micro's reference kernel takes int16 where
the table says so and nowhere else. Then the one-line notes a file gets from the table."""

import re
import tarfile
from pathlib import Path

import pytest

from edgeconv.kernels import MICRO_KERNELS, kernel_notes, micro_notes
from edgeconv.mcu.ops import RESOLVER_CALLS

TREES = Path(__file__).resolve().parents[2] / "shared" / "third_party"
KERNELS = "tensorflow/lite/micro/kernels"


def _tree(tmp_path_factory, kernels: str) -> Path:
    archive = TREES / f"tflm-tree-{kernels}.tgz"
    if not archive.is_file():
        pytest.skip(f"the pinned TFLite Micro tree {archive.name} is not beside the checkout")
    root = tmp_path_factory.mktemp(f"tree-{kernels}")
    with tarfile.open(archive) as tar:
        tar.extractall(root, members=[m for m in tar.getmembers()
                                      if f"/{KERNELS}/" in m.name and m.isfile()],
                       filter="data")
    (found,) = {p.parent for p in root.rglob(f"{KERNELS}/conv_common.cc")}
    return found


@pytest.fixture(scope="module")
def cmsis_kernels(tmp_path_factory) -> Path:
    return _tree(tmp_path_factory, "cmsis-nn") / "cmsis_nn"


@pytest.fixture(scope="module")
def reference_kernels(tmp_path_factory) -> Path:
    return _tree(tmp_path_factory, "reference")


def _source(folder: Path, stems: tuple[str, ...]) -> str:
    files = [folder / f"{stem}{end}" for stem in stems for end in (".cc", "_common.cc", ".h")]
    return "\n".join(f.read_text() for f in files if f.is_file())


def test_every_cmsis_nn_function_the_table_names_is_called_by_that_kernel(cmsis_kernels):
    for kernels in MICRO_KERNELS.values():
        text = _source(cmsis_kernels, kernels.sources)
        for function in (kernels.cmsis_s8, kernels.cmsis_s16):
            if function:
                assert re.search(rf"\b{function}\b", text), f"{kernels.op}: no {function}"


def test_every_int16_cmsis_nn_path_of_the_tree_is_in_the_table(cmsis_kernels):
    files = {stem for k in MICRO_KERNELS.values() for stem in k.sources
             if (cmsis_kernels / f"{stem}.cc").is_file()}
    assert {"conv", "depthwise_conv", "fully_connected", "pooling", "softmax"} <= files
    for stem in files:
        called = {name for name in re.findall(r"\barm_\w+?_s16\b",
                                              (cmsis_kernels / f"{stem}.cc").read_text())
                  if "_s8_" not in name}  # arm_softmax_s8_s16: int8 in, int16 out
        named = {k.cmsis_s16 for k in MICRO_KERNELS.values() if stem in k.sources} - {None}
        assert called == named, f"cmsis_nn/{stem}.cc calls {called}, the table names {named}"


def test_tflm_reference_kernels_take_int16_where_the_table_says(reference_kernels):
    for kernels in MICRO_KERNELS.values():
        text = _source(reference_kernels, kernels.sources)
        assert text, f"{kernels.op}: no kernel source {kernels.sources}"
        assert ("kTfLiteInt16" in text) == kernels.tflm_int16, kernels.op


def test_every_op_in_the_table_is_one_the_firmware_can_register():
    assert set(MICRO_KERNELS) <= set(RESOLVER_CALLS)


def test_micro_notes_name_each_failure_and_slow_kernel_once():
    notes = micro_notes([("CONV_2D", "int16"), ("PAD", "int16"), ("PAD", "int16"),
                         ("HARD_SWISH", "int16"), ("CONV_2D", "int8"), ("NO_SUCH_OP", "int8"),
                         ("FULLY_CONNECTED", "float32"), ("RESHAPE", "float32")])
    assert notes == [
        ("PAD at int16: TFLite Micro's reference kernel; CMSIS-NN optimises it at int8 only"
        " (arm_pad_s8)"),
        "HARD_SWISH at int16: TFLite Micro has no int16 kernel for it; the file fails to load",
        "NO_SUCH_OP: TFLite Micro has no kernel for it; the file fails to load",
        ("FULLY_CONNECTED in float32: TFLite Micro's reference float kernel (CMSIS-NN has none;"
        " no FPU: software float)")]
    assert micro_notes([("PAD", "int16")], cmsis_nn=False) == []


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_an_int16x8_file_says_which_ops_lose_their_fast_kernel_and_int8_says_nothing(
        conversion_session, fmt, tmp_path):
    _, session = conversion_session
    suffix = {"tflite": ".tflite", "onnx": ".onnx"}[fmt]
    notes = {}
    for precision in ("int8", "int16x8"):
        path = tmp_path / f"model_{precision}{suffix}"
        path.write_bytes(session.make(fmt, precision).content)
        notes[precision] = kernel_notes(path, fmt)
    assert notes["int8"] == []
    # conv, max pool and fully connected have CMSIS-NN s16 kernels: only the host runtime's
    # int16 path is slower (LiteRT: no XNNPACK; onnxruntime: float between 16-bit QDQ)
    runtime = {"tflite": "LiteRT: ", "onnx": "onnxruntime: "}[fmt]
    assert notes["int16x8"] and all(n.startswith(runtime) for n in notes["int16x8"])
    assert any("CONV_2D at int16" in n or "Conv at int16" in n for n in notes["int16x8"])
    assert len(set(notes["int16x8"])) == len(notes["int16x8"]) >= 2  # once per op


def test_cmsis_nn_int16_fully_connected_still_refuses_per_channel_weights(cmsis_kernels):
    """Why int16x8 dense layers are converted with one weight scale each
    (edgeconv/convert/tflite.py, tflite_mixed.py): the pinned tree's int16 FULLY_CONNECTED
    fails AllocateTensors on per-channel weights. When the tree lifts it, so can we."""
    text = (cmsis_kernels / "fully_connected.cc").read_text()
    assert re.search(r"is_per_channel\s*&&\s*input->type == kTfLiteInt8", text)


def test_an_int16_fully_connected_with_per_channel_weights_is_named(conversion_session,
                                                                    tmp_path):
    """edgeconv's int16x8 files give dense layers one weight scale (CMSIS-NN refuses more);
    the same model with per-channel dense weights, as other converters make it, is named as
    a file that fails to load on a Cortex-M with CMSIS-NN."""
    from edgeconv._capture import captured_output
    from edgeconv.convert.tflite import tflite_converter
    from edgeconv.kernels import PER_CHANNEL_INT16_FC, per_channel_int16_fc, runtime_notes

    model, session = conversion_session
    ours = session.make("tflite", "int16x8").content
    assert not per_channel_int16_fc(ours)
    converter = tflite_converter(model, "int16x8", session.calibration, float_io=False,
                                 per_channel=True)
    converter._experimental_disable_per_channel_quantization_for_dense_layers = False
    with captured_output():
        theirs = converter.convert()
    assert per_channel_int16_fc(theirs)
    path = tmp_path / "theirs.tflite"
    path.write_bytes(theirs)
    assert PER_CHANNEL_INT16_FC in runtime_notes(path, "tflite", "tflite-micro")
    assert PER_CHANNEL_INT16_FC not in runtime_notes(path, "tflite", "tflite-micro",
                                                     cmsis_nn=False)
    assert any(PER_CHANNEL_INT16_FC in n for n in kernel_notes(path, "tflite"))
