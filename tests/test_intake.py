"""A user's .onnx / .tflite is checked before anything opens it (issue 20, deliver 4):
read once, hashed, private copy, structural check, then opened only in a probe child
(edgeconv.export.intake.take_in, edgeconv.export.probe).

Real files throughout: tiny ONNX graphs built with the onnx helper API, tiny TFLite files
converted by TensorFlow in a subprocess (once per module), and the third-party int8 TFLite
of ../shared/models when that folder is there. `intake.run_child` is patched only to record
that no child was started: the seam between the checks and the runtime.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.export import intake
from edgeconv.export.intake import take_in
from tests.test_own_model import BLOCK_TF

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
RESNET_INT8 = SHARED / "mlcommons-tiny" / "pretrainedResnet_quant.tflite"
RUNTIME_MODULES = ("onnxruntime", "onnx", "ai_edge_litert", "tflite_runtime", "tensorflow",
                   "keras")


# --- real model files -----------------------------------------------------------------------


def tiny_onnx(*, int8: bool = False, fp16: bool = False, two_inputs: bool = False,
              op: str = "MatMul") -> bytes:
    """x (N, 4) float -> softmax(x @ W) (N, 3): fp32; with QuantizeLinear / DequantizeLinear
    on x (int8); with W stored as float16 and cast (fp16); x + z (two inputs); or an
    operator onnxruntime has no kernel for (`op`)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    init, nodes, source = [], [], "x"
    if two_inputs:
        inputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4]))
        nodes.append(helper.make_node("Add", ["x", "z"], ["xz"]))
        source = "xz"
    if int8:
        init += [numpy_helper.from_array(np.array(0.02, np.float32), "s"),
                 numpy_helper.from_array(np.array(0, np.int8), "zp")]
        nodes += [helper.make_node("QuantizeLinear", [source, "s", "zp"], ["xq"]),
                  helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"])]
        source = "xd"
    if fp16:
        init.append(numpy_helper.from_array(weights.astype(np.float16), "W16"))
        nodes.append(helper.make_node("Cast", ["W16"], ["W"], to=TensorProto.FLOAT))
    else:
        init.append(numpy_helper.from_array(weights, "W"))
    nodes += [helper.make_node(op, [source, "W"], ["h"]),
              helper.make_node("Softmax", ["h"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "tiny", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


# Two outputs (a signature naming them); fp32, float16 weights, int8 weights (dynamic range).
_TFLITE = """
import sys
from pathlib import Path

import keras
import tensorflow as tf

out = Path(sys.argv[1])
keras.utils.set_random_seed(0)
inp = keras.Input((8, 8, 3), name="image")
x = keras.layers.Conv2D(64, 3, activation="relu")(inp)  # weights the converter quantises
x = keras.layers.GlobalAveragePooling2D()(x)            # (1,024 values at least)
model = keras.Model(inp, [keras.layers.Dense(3, name="boxes")(x),
                          keras.layers.Dense(1, name="score")(x)])
for name, optimise, types in (("fp32", False, None), ("fp16", True, [tf.float16]),
                              ("dynamic", True, None)):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if optimise:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if types:
        converter.target_spec.supported_types = types
    (out / f"{name}.tflite").write_bytes(converter.convert())
"""


@pytest.fixture(scope="module")
def tflite_files(tmp_path_factory) -> Path:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: no converter for the TFLite files")
    out = tmp_path_factory.mktemp("tflite")
    done = subprocess.run([sys.executable, "-c", _TFLITE, str(out)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture
def no_child(monkeypatch) -> list:
    """Records every probe child take_in would start (none are started)."""
    calls: list = []

    def started(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError(f"a probe child was started: {args}")

    monkeypatch.setattr(intake, "run_child", started)
    return calls


def one_line(exc: pytest.ExceptionInfo, *parts: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text, text
    for part in parts:
        assert part in text, (part, text)
    return text


def leftovers(workdir: Path) -> list[Path]:
    return sorted(workdir.rglob("*")) if workdir.exists() else []


# --- files taken in, with what their runtime says ----------------------------------------


def test_an_onnx_file_is_taken_in_as_a_private_copy(tmp_path):
    user = tmp_path / "my model.onnx"
    user.write_bytes(tiny_onnx())
    taken = take_in(user, "onnx", tmp_path / "work")
    content = user.read_bytes()
    assert taken.shown == str(user) and taken.format == "onnx" and taken.opset == 13
    assert taken.sha256 == hashlib.sha256(content).hexdigest()
    assert taken.size_bytes == len(content)
    assert taken.precision == "fp32"
    assert taken.inputs == [{"name": "x", "shape": (None, 4), "dtype": "float32",
                             "scale": None, "zero_point": None}]
    assert [(o["name"], o["shape"], o["dtype"]) for o in taken.outputs] == \
        [("y", (None, 3), "float32")]
    assert taken.signature == [None]
    # the copy is ours: under workdir, private, the very bytes hashed
    assert taken.copy != user and (tmp_path / "work") in taken.copy.parents
    assert taken.copy.read_bytes() == content
    assert stat.S_IMODE(taken.copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(taken.copy.parent.stat().st_mode) == 0o700
    user.write_bytes(b"replaced after it was taken in")
    assert hashlib.sha256(taken.copy.read_bytes()).hexdigest() == taken.sha256
    mi = taken.model_input()
    assert (mi.shape, mi.dtype, mi.name, mi.scale) == ((None, 4), "float32", "x", None)


def test_the_same_workdir_takes_in_several_files(tmp_path):
    for name in ("a.onnx", "b.onnx"):
        (tmp_path / name).write_bytes(tiny_onnx())
    first = take_in(tmp_path / "a.onnx", "onnx", tmp_path / "work")
    second = take_in(tmp_path / "b.onnx", "onnx", tmp_path / "work")
    assert first.copy != second.copy and first.copy.is_file() and second.copy.is_file()


@pytest.mark.parametrize("kind, precision", [({"int8": True}, "int8"), ({}, "fp32")])
def test_onnx_precision_is_read_from_the_file(tmp_path, kind, precision):
    (tmp_path / "m.onnx").write_bytes(tiny_onnx(**kind))
    assert take_in(tmp_path / "m.onnx", "onnx", tmp_path / "w").precision == precision


def test_a_float16_onnx_is_refused_naming_the_users_file(tmp_path):
    (tmp_path / "half.onnx").write_bytes(tiny_onnx(fp16=True))
    with pytest.raises(EdgeconvError) as exc:
        take_in(tmp_path / "half.onnx", "onnx", tmp_path / "w")
    one_line(exc, f"{tmp_path / 'half.onnx'}: its weights are float16")
    assert not leftovers(tmp_path / "w")


def test_two_inputs_are_refused_by_model_input(tmp_path):
    (tmp_path / "two.onnx").write_bytes(tiny_onnx(two_inputs=True))
    taken = take_in(tmp_path / "two.onnx", "onnx", tmp_path / "w")
    assert [i["name"] for i in taken.inputs] == ["x", "z"]
    with pytest.raises(EdgeconvError) as exc:
        taken.model_input()
    one_line(exc, "two.onnx has 2 inputs; edgeconv measures single-input models")


def test_tflite_files_are_described_as_their_runtime_sees_them(tflite_files, tmp_path):
    from edgeconv.runtimes import open_runtime

    for precision in ("fp32", "fp16", "dynamic"):
        user = tflite_files / f"{precision}.tflite"
        taken = take_in(user, "tflite", tmp_path / "w")
        assert taken.precision == precision and taken.opset is None
        with open_runtime(user) as runtime:  # what this process's LiteRT says, to compare
            expected_in = [i.__dict__ for i in runtime.inputs()]
            expected_out = [o.__dict__ for o in runtime.outputs()]
            signature = runtime.signature_names()
        assert taken.inputs == expected_in and taken.outputs == expected_out
        assert taken.signature == signature and len(signature) == 2
        assert sorted(signature) == ["output_0", "output_1"]  # Keras 3 names by position
        assert taken.model_input().shape == taken.inputs[0]["shape"]
        assert taken.inputs[0]["shape"][1:] == (8, 8, 3)


@pytest.mark.skipif(not RESNET_INT8.is_file(), reason="../shared/models not here")
def test_a_third_party_int8_tflite_is_taken_in(tmp_path):
    taken = take_in(RESNET_INT8, "tflite", tmp_path / "w")
    assert taken.precision == "int8"
    (first,) = taken.inputs
    assert first["shape"][1:] == (32, 32, 3) and first["dtype"] == "int8"
    assert first["scale"] > 0 and isinstance(first["zero_point"], int)
    assert [o["shape"][1:] for o in taken.outputs] == [(10,)]
    mi = taken.model_input()
    assert (mi.dtype, mi.scale, mi.zero_point) == ("int8", first["scale"], first["zero_point"])


# --- refused by the structural check before any runtime opens it --------------------------

# An ONNX ModelProto: ir_version 8, then a graph field (7) declaring 2**40 bytes.
ABSURD_LENGTH = b"\x08\x08\x3a" + bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x20])


@pytest.mark.parametrize("name, make, message", [
    ("cut.onnx", lambda: tiny_onnx()[:-7], "is not a complete ONNX protobuf"),
    ("absurd.onnx", lambda: ABSURD_LENGTH, "is not a complete ONNX protobuf"),
    ("text.onnx", lambda: b"this is not a model\n" * 4, "is not a complete ONNX protobuf"),
    ("cut.tflite", lambda: b"\x1c\x00\x00\x00TFL3" + bytes(12),
     "is not a complete TFLite flatbuffer"),
], ids=["truncated", "absurd-length", "text", "tflite-flatbuffer"])
def test_a_crafted_file_is_refused_before_any_runtime(tmp_path, no_child, name, make,
                                                       message):
    user = tmp_path / name
    user.write_bytes(make())
    with pytest.raises(EdgeconvError) as exc:
        take_in(user, Path(name).suffix[1:], tmp_path / "w")
    one_line(exc, f"{user} {message}")
    assert no_child == []  # no probe: no runtime opened it
    assert not leftovers(tmp_path / "w")


# In a fresh process: the structural refusal leaves every runtime unimported there too.
_FRESH = """
import json, sys
from pathlib import Path
from edgeconv.errors import EdgeconvError
from edgeconv.export import intake
calls = []
intake.run_child = lambda *a, **k: calls.append(a)
try:
    intake.take_in(Path(sys.argv[1]), "onnx", Path(sys.argv[2]))
    error = None
except EdgeconvError as exc:
    error = str(exc)
print(json.dumps({"error": error, "children": len(calls),
                  "imported": [m for m in json.loads(sys.argv[3]) if m in sys.modules]}))
"""


def test_a_crafted_onnx_imports_no_runtime(tmp_path):
    user = tmp_path / "absurd.onnx"
    user.write_bytes(ABSURD_LENGTH)
    done = subprocess.run([sys.executable, "-c", _FRESH, str(user), str(tmp_path / "w"),
                           json.dumps(RUNTIME_MODULES)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert "is not a complete ONNX protobuf" in answer["error"]
    assert answer["children"] == 0 and answer["imported"] == []


# --- files that are not regular, bounded files: one line, unread --------------------------


@pytest.mark.parametrize("make, message", [
    (lambda p: os.mkfifo(p), "is a FIFO, not a regular file"),
    (lambda p: os.symlink("/proc/self/mem", p), "is a kernel or device file"),
    (lambda p: os.symlink("/dev/zero", p), "is a kernel or device file"),
    (lambda p: os.symlink(p.parent / "gone.onnx", p), "does not exist"),
    (lambda p: p.mkdir(), "is a directory, not a regular file"),
    (lambda p: p.write_bytes(b""), "is empty, not a model file"),
    (lambda p: os.truncate(p.open("wb").name, 40 * 1024**3),
     "is 40 GiB (42,949,672,960 bytes); edgeconv reads a model file of at most 2 GiB"),
], ids=["fifo", "proc-self-mem", "dev-zero", "dangling-symlink", "directory", "empty",
        "sparse-40GB"])
def test_non_regular_and_huge_files_are_one_line(tmp_path, no_child, make, message):
    user = tmp_path / "model.onnx"
    make(user)
    with pytest.raises(EdgeconvError) as exc:
        take_in(user, "onnx", tmp_path / "w")
    one_line(exc, message)
    assert no_child == [] and not leftovers(tmp_path / "w")


def test_a_symlink_to_a_model_is_followed_as_bench_does(tmp_path):
    (tmp_path / "real.onnx").write_bytes(tiny_onnx())
    os.symlink(tmp_path / "real.onnx", tmp_path / "link.onnx")
    taken = take_in(tmp_path / "link.onnx", "onnx", tmp_path / "w")
    assert taken.shown.endswith("link.onnx") and not taken.copy.is_symlink()


def test_a_file_that_changes_while_it_is_read_is_refused(tmp_path, monkeypatch, no_child):
    user = tmp_path / "growing.onnx"
    user.write_bytes(tiny_onnx())
    real_collect = intake.collect

    def collect_while_written(paths, scratch):  # another program appends meanwhile
        found = real_collect(paths, scratch)
        with open(user, "ab") as fh:
            fh.write(b"\x00" * 16)
        return found

    monkeypatch.setattr(intake, "collect", collect_while_written)
    with pytest.raises(EdgeconvError) as exc:
        take_in(user, "onnx", tmp_path / "w")
    one_line(exc, f"{user} changed while it was being read")
    assert no_child == [] and not leftovers(tmp_path / "w")


def test_a_suffix_other_than_the_format_is_refused(tmp_path, no_child):
    (tmp_path / "m.onnx").write_bytes(tiny_onnx())
    with pytest.raises(EdgeconvError) as exc:
        take_in(tmp_path / "m.onnx", "tflite", tmp_path / "w")
    one_line(exc, "m.onnx is not a .tflite file")
    assert no_child == []


# --- what goes wrong in the child: one line naming the user's file ------------------------


def test_a_file_its_runtime_refuses_is_one_line_naming_the_users_file(tmp_path):
    user = tmp_path / "odd op.onnx"
    user.write_bytes(tiny_onnx(op="NoSuchOperator"))  # structurally whole
    with pytest.raises(EdgeconvError) as exc:
        take_in(user, "onnx", tmp_path / "w")
    text = one_line(exc, f"cannot load {user} with onnxruntime", "NoSuchOperator")
    assert "intake-" not in text  # the private copy's name never shows
    assert not leftovers(tmp_path / "w")


def test_a_child_that_hangs_is_one_line(tmp_path):
    user = tmp_path / "slow.onnx"
    user.write_bytes(tiny_onnx())
    with pytest.raises(EdgeconvError) as exc:
        take_in(user, "onnx", tmp_path / "w", timeout=0.01)
    one_line(exc, f"opening {user} in onnxruntime timed out after 0.01 s")
    assert not leftovers(tmp_path / "w")


def test_a_child_that_crashes_is_one_line(tmp_path, monkeypatch):
    # The child's interpreter dies of SIGSEGV as it starts (a sitecustomize on its path):
    # from the parent's side, the same as a runtime's segfault on a hostile file.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os, signal\n"
                                           "os.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    user = tmp_path / "crash.onnx"
    user.write_bytes(tiny_onnx())
    with pytest.raises(EdgeconvError) as exc:
        take_in(user, "onnx", tmp_path / "w")
    one_line(exc, f"opening {user} in onnxruntime crashed (signal 11 SIGSEGV)")
    assert not leftovers(tmp_path / "w")



def test_the_onnx_probe_never_imports_tensorflow(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_TF)  # logs and refuses any TensorFlow import
    log = tmp_path / "blocked.log"
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("EDGECONV_BLOCK_LOG", str(log))
    (tmp_path / "q.onnx").write_bytes(tiny_onnx(int8=True))
    taken = take_in(tmp_path / "q.onnx", "onnx", tmp_path / "w")
    assert taken.precision == "int8"
    assert not log.exists(), f"TensorFlow was imported: {log.read_text()}"
