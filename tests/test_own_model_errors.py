"""Bring your own model, check e: every error a user's model or data can cause is one line
on stderr naming the cause, exit 2, and no run directory left behind.

Most cases use small ONNX graphs built here with onnx.helper (no TensorFlow in the process
edgeconv runs in); the Keras cases (a Lambda, an unregistered custom layer) are in
test_own_model.py, beside the tiny .keras files they share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_own_model import MNIST_ONNX, colour_folder, edgeconv, write_png


def onnx_model(path: Path, input_shape: list[int], *, op: str | None = None,
               domain: str = "") -> Path:
    """A one-node ONNX graph: float NHWC input of `input_shape` -> the mean over height and
    width, (N, C): a classifier's output of C classes; or `op` (another domain makes an
    operator no runtime has)."""
    import onnx
    from onnx import TensorProto, helper

    if op is None:
        node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 2], keepdims=0)
    else:
        node = helper.make_node(op, ["x"], ["y"], domain=domain)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)
    return path


def refused(tmp_path: Path, *args, blocked: bool = True) -> str:
    """Run export into tmp_path/run; it must fail with one line and exit 2, leaving
    nothing there; returns the line."""
    out = tmp_path / "run"
    done = edgeconv("export", *args, "--out", out,
                    blocked_log=tmp_path / "blocked.log" if blocked else None)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    return lines[0]


@pytest.fixture
def folder(tmp_path) -> Path:
    return colour_folder(tmp_path / "images", per_class=3)


def test_a_file_that_is_no_model(tmp_path, folder):
    (tmp_path / "model.pt").write_bytes(b"\x80\x02torch pickle")
    assert "is not a model file edgeconv reads" in refused(tmp_path, tmp_path / "model.pt",
                                                           "--data", folder)


@pytest.mark.parametrize("suffix, title", [(".onnx", "ONNX protobuf"),
                                           (".tflite", "TFLite flatbuffer")])
def test_an_unreadable_model_file(tmp_path, folder, suffix, title):
    """Refused by the structural check (edgeconv.export.intake), before any runtime."""
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(b"not a model at all")
    line = refused(tmp_path, bad, "--data", folder)
    assert f"{bad} is not a complete {title}" in line


def test_a_corrupt_keras_file(tmp_path, folder):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK but not a zip")
    assert "not a .keras archive" in refused(tmp_path, bad, "--data", folder)


def test_an_operator_the_runtime_cannot_take_is_named(tmp_path, folder):
    model = onnx_model(tmp_path / "custom.onnx", [1, 16, 16, 3], op="MyNms", domain="my.ops")
    line = refused(tmp_path, model, "--data", folder)
    assert "MyNms" in line


@pytest.mark.skipif(not MNIST_ONNX.is_file(), reason="../shared/models not here")
def test_label_count_must_match_the_output_width(tmp_path, folder):
    line = refused(tmp_path, MNIST_ONNX, "--data", folder)
    assert "has 3 classes (class0, class1, class2) but the model outputs 10 values" in line


def test_the_layout_guess_refuses_when_ambiguous(tmp_path, folder):
    model = onnx_model(tmp_path / "cube.onnx", [1, 3, 3, 3])
    line = refused(tmp_path, model, "--data", folder)
    assert "cannot tell whether the input (1, 3, 3, 3) is NHWC or NCHW" in line
    assert "--layout" in line


def test_channels_that_cannot_feed_the_model(tmp_path):
    data = tmp_path / "rgba.npz"
    np.savez(data, x=np.zeros((4, 16, 16, 4), np.uint8), y=np.array([0, 1, 2, 0]))
    model = onnx_model(tmp_path / "rgb.onnx", [1, 16, 16, 3])
    line = refused(tmp_path, model, "--data", data)
    assert "the images have 4 channels and the model takes 3" in line


def test_a_size_the_model_cannot_take(tmp_path, folder):
    model = onnx_model(tmp_path / "big.onnx", [1, 32, 32, 3])
    assert "--resize none cannot feed it" in refused(tmp_path, model, "--data", folder,
                                                     "--resize", "none")
    assert "--input-shape height 20 does not fit" in refused(
        tmp_path, model, "--data", folder, "--input-shape", "20,20,3")


def test_an_empty_or_one_class_folder(tmp_path):
    model = onnx_model(tmp_path / "m.onnx", [1, 16, 16, 3])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in refused(tmp_path, model, "--data", empty)
    one = tmp_path / "one"
    write_png(one / "cat" / "a.png", np.zeros((16, 16, 3), np.uint8))
    assert "need at least 2" in refused(tmp_path, model, "--data", one)


def test_an_unlabelled_folder_where_labels_are_needed(tmp_path):
    images = colour_folder(tmp_path / "loose", per_class=2, labelled=False)
    model = onnx_model(tmp_path / "m.onnx", [1, 16, 16, 3])
    line = refused(tmp_path, model, "--data", images, "--int8", "--max-drop", "1")
    assert "--max-drop needs labelled images" in line


def test_a_user_model_needs_data(tmp_path):
    model = onnx_model(tmp_path / "m.onnx", [1, 16, 16, 3])
    assert "needs --data" in refused(tmp_path, model)


def test_tflite_from_onnx_is_refused_with_the_reason(tmp_path, folder):
    model = onnx_model(tmp_path / "m.onnx", [1, 16, 16, 3])
    assert "docs/own-model.md" in refused(tmp_path, model, "--data", folder, "--fp16")
