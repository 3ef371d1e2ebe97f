"""ONNX files with external data (`model.onnx` + `model.onnx.data`, as torch.onnx.export
writes them): taken in, checked, hashed and inlined into the private copy
(edgeconv.onnx_external), so an export and a bench of such a file give the figures of the
same model saved inline; every data file that is not a bounded regular file inside the
model's folder is one line and exit 2, with nothing written.

Real files throughout: a tiny classifier built with onnx.helper and saved by the `onnx`
package's own external-data writer (what PyTorch's exporter calls), real exports and
benches in fresh interpreters without TensorFlow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeconv.bench.plan import collect
from edgeconv.errors import EdgeconvError
from edgeconv.manifest import load_manifest
from edgeconv.onnx_external import inline_external_data
from tests.test_own_model import colour_folder, edgeconv
from tests.test_own_model_errors import refused

# Whole commands on real files: out of the quick suite, run by CI (`-m e2e`).
pytestmark = pytest.mark.e2e

onnx = pytest.importorskip("onnx")
DATA = "model.onnx.data"


def classifier():
    """16x16 RGB NHWC -> 3 classes: a 1x1 convolution (weights near the identity) and the
    mean over the image, plus a Constant node: initializers and an attribute tensor."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = (np.eye(3) * 2 + rng.normal(0, 0.1, (3, 3))).astype(np.float32).reshape(3, 3, 1, 1)
    b = rng.normal(0, 0.01, 3).astype(np.float32)
    shift = numpy_helper.from_array(np.full((1, 3, 1, 1), 0.5, np.float32), "shift")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w", "b"], ["c"]),
             helper.make_node("Constant", [], ["k"], value=shift),
             helper.make_node("Add", ["c", "k"], ["s"]),
             helper.make_node("ReduceMean", ["s"], ["y"], axes=[2, 3], keepdims=0)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16, 16, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save_external(folder: Path, location: str = DATA) -> Path:
    """The classifier as `folder/model.onnx` with every tensor in one external data file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(classifier(), path, save_as_external_data=True,
                    all_tensors_to_one_file=True, location=location, size_threshold=0,
                    convert_attribute=True)  # the Constant's tensor too
    return path


def rewrite(path: Path, **entries: str) -> None:
    """Set these external_data entries (location, offset, length) on every external tensor
    of the model at `path`: a hostile file, written as bytes."""
    model = onnx.load(path, load_external_data=False)
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node
                                               for a in n.attribute if a.HasField("t")]
    for tensor in tensors:
        for entry in tensor.external_data:
            if entry.key in entries:
                entry.value = entries[entry.key]
        for key in set(entries) - {e.key for e in tensor.external_data}:
            tensor.external_data.add(key=key, value=entries[key])
    path.write_bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return colour_folder(tmp_path_factory.mktemp("ext-images") / "images", per_class=6)


def test_the_writer_puts_every_tensor_outside(tmp_path):
    """The test's premise: the model file holds no weights, onnxruntime needs the data."""
    path = save_external(tmp_path / "m")
    model = onnx.load(path, load_external_data=False)
    tensors = [*model.graph.initializer, *(a.t for n in model.graph.node for a in n.attribute
                                           if a.HasField("t"))]
    assert len(tensors) == 3
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)
    assert (tmp_path / "m" / DATA).stat().st_size > 0


def test_export_with_external_data_gives_the_inlined_models_figures(tmp_path, images):
    inline = tmp_path / "inline" / "model.onnx"
    inline.parent.mkdir()
    onnx.save_model(classifier(), inline)
    external = save_external(tmp_path / "external")
    made = {}
    for name, path in (("inline", inline), ("external", external)):
        out = tmp_path / f"run-{name}"
        done = edgeconv("export", path, "--data", images, "--int8", "--out", out,
                        blocked_log=tmp_path / "blocked.log")
        assert done.returncode == 0, done.stderr
        made[name] = load_manifest(out)
    assert not (tmp_path / "blocked.log").exists()  # no TensorFlow either way
    inlined, given = made["inline"], made["external"]
    for a, b in zip(inlined.artifacts, given.artifacts, strict=True):
        assert (a.path, a.precision) == (b.path, b.precision)
        # the private copy is the inlined model byte for byte: so is every file made from it
        assert a.sha256 == b.sha256 and a.size_bytes == b.size_bytes
        assert a.accuracy == b.accuracy and a.output_parity == b.output_parity
    assert inlined.float_accuracy == given.float_accuracy >= 0.9
    source = given.model_info.source
    data = (tmp_path / "external" / DATA).read_bytes()
    import hashlib

    assert source["sha256"] == hashlib.sha256(external.read_bytes()).hexdigest()
    assert source["external_data"] == [{"file": DATA, "size_bytes": len(data),
                                        "sha256": hashlib.sha256(data).hexdigest()}]
    assert "external_data" not in inlined.model_info.source
    # the export's files are self-contained: each loads with no data file beside it
    for artifact in given.artifacts:
        loaded = onnx.load(given.directory / artifact.path, load_external_data=False)
        assert all(t.data_location != onnx.TensorProto.EXTERNAL
                   for t in loaded.graph.initializer)


def test_bench_of_a_file_with_external_data(tmp_path):
    path = save_external(tmp_path / "m")
    done = edgeconv("bench", path, "--target", "cpu", "--runs", "3", "--warmup", "0",
                    "--min-time", "0", "--json", blocked_log=tmp_path / "blocked.log")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "ok", row
    # what was measured: the model with its data inlined, as it would have been saved
    assert row["size_bytes"] == len(classifier().SerializeToString())


def test_collect_inlines_into_the_copy_and_leaves_nothing_else(tmp_path):
    path = save_external(tmp_path / "m")
    scratch = tmp_path / "scratch"
    (artifact,) = collect([path], scratch)
    assert [d.file for d in artifact.external_data] == [DATA]
    assert artifact.loaded.read_bytes() == classifier().SerializeToString()
    assert sorted(p.name for p in scratch.iterdir()) == [artifact.loaded.name]
    assert oct(artifact.loaded.stat().st_mode & 0o777) == "0o600"


def test_an_exports_file_naming_external_data_is_refused(tmp_path, images):
    """An export writes self-contained files: one that names external data was not made
    by it, and is refused rather than read with data no sha256 covers."""
    inline = tmp_path / "model.onnx"
    onnx.save_model(classifier(), inline)
    out = tmp_path / "run"
    assert edgeconv("export", inline, "--data", images, "--out", out).returncode == 0
    doc = json.loads((out / "manifest.json").read_text())
    entry = doc["artifacts"][0]
    swapped = save_external(tmp_path / "swap")
    (out / entry["path"]).write_bytes(swapped.read_bytes())
    (out / DATA).write_bytes((tmp_path / "swap" / DATA).read_bytes())
    import hashlib

    entry["sha256"] = hashlib.sha256(swapped.read_bytes()).hexdigest()
    entry["size_bytes"] = swapped.stat().st_size
    (out / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(EdgeconvError, match="an export's files are self-contained"):
        collect([out], tmp_path / "scratch")


# --- hostile data files: one line, exit 2, nothing written ---------------------------------


def _dotdot(folder: Path) -> Path:
    path = save_external(folder / "m")
    (folder / DATA).write_bytes((folder / "m" / DATA).read_bytes())
    rewrite(path, location=f"../{DATA}")
    return path


def _absolute(folder: Path) -> Path:
    path = save_external(folder / "m")
    rewrite(path, location=str(folder / "m" / DATA))
    return path


def _symlink_out(folder: Path) -> Path:
    path = save_external(folder / "m")
    (folder / "outside").mkdir()
    os.replace(folder / "m" / DATA, folder / "outside" / DATA)
    (folder / "m" / DATA).symlink_to(Path("..") / "outside" / DATA)
    return path


def _missing(folder: Path) -> Path:
    path = save_external(folder / "m")
    (folder / "m" / DATA).unlink()
    return path


def _directory(folder: Path) -> Path:
    path = save_external(folder / "m")
    (folder / "m" / DATA).unlink()
    (folder / "m" / DATA).mkdir()
    return path


def _fifo(folder: Path) -> Path:
    path = save_external(folder / "m")
    (folder / "m" / DATA).unlink()
    os.mkfifo(folder / "m" / DATA)
    return path


def _too_large(folder: Path) -> Path:
    path = save_external(folder / "m")
    os.truncate(folder / "m" / DATA, 3 * 1024**3)  # sparse: refused before a byte is read
    return path


def _too_large_together(folder: Path) -> Path:
    """Each tensor within a 1.5 GiB data file, all of them past the 2 GiB one file holds."""
    path = save_external(folder / "m")
    os.truncate(folder / "m" / DATA, 3 * 1024**3 // 2)
    rewrite(path, offset="0", length=str(1024**3))
    return path


def _past_the_end(folder: Path) -> Path:
    path = save_external(folder / "m")
    rewrite(path, length="100000")
    return path


def _no_number(folder: Path) -> Path:
    path = save_external(folder / "m")
    rewrite(path, offset="-5")
    return path


HOSTILE = {
    "dotdot": (_dotdot, "outside the model's folder (../model.onnx.data: '..')"),
    "absolute": (_absolute, "by an absolute path"),
    "symlink": (_symlink_out, "leads outside the model's folder"),
    "missing": (_missing, "model.onnx.data does not exist"),
    "directory": (_directory, "is a directory, not a regular file (a data file must be one)"),
    "fifo": (_fifo, "is a FIFO, not a regular file (a data file must be one)"),
    "too-large": (_too_large, "edgeconv reads a data file of at most 2 GiB"),
    "too-large-together": (_too_large_together, "which holds at most 2 GiB"),
    "past-the-end": (_past_the_end, "of its external data 'model.onnx.data', which holds"),
    "not-a-number": (_no_number, "offset as '-5', not a byte count"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_external_data_is_one_line(tmp_path, images, case):
    make, expected = HOSTILE[case]
    path = make(tmp_path / "given")
    line = refused(tmp_path, path, "--data", images, "--int8")
    assert expected in line and "model.onnx" in line, line


@pytest.mark.parametrize("case", ["dotdot", "symlink", "past-the-end"])
def test_bench_refuses_hostile_external_data(tmp_path, case):
    make, expected = HOSTILE[case]
    path = make(tmp_path / "given")
    out = tmp_path / "results.json"
    done = edgeconv("bench", path, "--target", "cpu", "--runs", "1", "--out", out)
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line, line
    assert not out.exists()


def test_a_model_without_external_data_is_not_rewritten(tmp_path):
    """No `location` entry: the copy is left byte for byte (and `onnx` is not needed)."""
    path = tmp_path / "model.onnx"
    onnx.save_model(classifier(), path)
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())
    assert inline_external_data(copy, tmp_path, "model.onnx") == ()
    assert copy.read_bytes() == path.read_bytes()
