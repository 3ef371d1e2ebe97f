"""Issue 26 (part A): what edgeconv's child processes import, what they and boards answer,
and what reading a small file costs.

- Every Python edgeconv starts (the bench child, the TFLite Micro probe, parity and firmware
  runs, the board's wheel build) starts without the working directory on its sys.path: a
  folder holding numpy.py or pip/__main__.py, as a cloned repository might, never runs.
- A child's or a board's answer is bounded in size and nesting depth before it is parsed:
  a reply nested 200,000 deep or larger than the bound is one line, never a traceback.
- Readers ask for what a file holds, never for their upper bound, and bound what an archive
  unpacks to: under a 2.5 GB address-space limit (a small board) a tiny file is read, and a
  tiny archive promising more (labels up to 10**12, a member that unpacks past its declared
  size, a gzip or tar bomb) is one line.

Real processes, real files: tiny models built with the onnx helper API or shipped in
shared/, an OpenSSH server on the loopback for the board's answer.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import resource
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.errors import EdgeconvError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT.parent / "shared/models/tflite-micro/hello_world_int8.tflite"
runner = CliRunner()

# Modules a planted folder shadows: the ones every child imports (stdlib modules that are
# not frozen into the interpreter, numpy, edgeconv itself, the runtimes) and pip.
PLANTED = ("numpy", "json", "edgeconv", "ai_edge_litert", "tflite_micro", "onnxruntime",
           "dataclasses", "typing", "pip")
SMALL_BOARD_BYTES = int(2.5e9)  # RLIMIT_AS of a process playing a Raspberry Pi


def plant(folder: Path, names=PLANTED) -> Path:
    """Modules in `folder` that record, in folder/markers, that they were imported (as a
    package with __main__.py too, so `python -m NAME` would run it). Returns the markers."""
    markers = folder / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    for name in names:
        package = folder / name
        package.mkdir(exist_ok=True)
        code = f"open({str(markers / name)!r}, 'a').write('imported\\n')\n"
        (package / "__init__.py").write_text(code)
        (package / "__main__.py").write_text(code)
    return markers


def imported(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


def one_error_line(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def tiny(tmp_path) -> Path:
    if not TINY.is_file():
        pytest.skip(f"{TINY} is not there")
    return TINY


# --- children never import from the working directory --------------------------------------


def test_the_bench_child_never_imports_from_the_working_directory(tiny, tmp_path,
                                                                   monkeypatch):
    cwd = tmp_path / "clone"
    markers = plant(cwd)
    monkeypatch.chdir(cwd)
    result = runner.invoke(app, ["bench", str(tiny), "--target", "cpu", "--runs", "1",
                                 "--warmup", "0", "--min-time", "0", "--json"])
    assert imported(markers) == [], result.output
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["status"] == "ok", row


def test_the_tflite_micro_probe_never_imports_from_the_working_directory(tiny, tmp_path,
                                                                         monkeypatch):
    from edgeconv.runtimes.micro import probe

    markers = plant(tmp_path / "clone")
    monkeypatch.chdir(tmp_path / "clone")
    found = probe(tiny, timeout=120)
    assert imported(markers) == []
    assert found.ok, found.error


def test_the_board_wheel_build_never_runs_pip_from_the_working_directory(tmp_path,
                                                                         monkeypatch):
    """`board create` runs as root: a pip/__main__.py in the folder it is run from must not
    run. pip gets no index here (the build may fail offline: only what ran matters)."""
    from edgeconv.board import wheel

    if wheel.checkout() is None:
        pytest.skip("edgeconv is not running from a checkout")
    markers = plant(tmp_path / "clone", names=("pip",))
    monkeypatch.chdir(tmp_path / "clone")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv(wheel.WHEEL_ENV, raising=False)
    try:
        wheel.build(tmp_path / "out")
    except EdgeconvError:
        pass
    assert imported(markers) == []


def test_every_python_edgeconv_starts_goes_through_python_command():
    """A new child cannot forget the isolation: `sys.executable` appears in edgeconv/_child.py
    only (python_command); Pythons inside a board's root run there with / as their folder."""
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for path in sorted((ROOT / "edgeconv").rglob("*.py"))
                 if path.name != "_child.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if "sys.executable" in line.split("#")[0]]
    assert offenders == []


def test_a_child_keeps_pythonpath_but_not_its_empty_entry(tmp_path, monkeypatch):
    """`PYTHONPATH=$PYTHONPATH:/x` with none set leaves an empty entry, which Python reads
    as the working directory: dropped; a relative entry is made absolute."""
    from edgeconv._child import child_env

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{os.pathsep}rel{os.pathsep}/abs")
    entries = child_env()["PYTHONPATH"].split(os.pathsep)
    assert "" not in entries and entries[1:] == [str(tmp_path / "rel"), "/abs"]


@pytest.mark.mcu
def test_the_firmware_path_never_imports_from_the_working_directory(tiny, tmp_path,
                                                                    monkeypatch):
    """The firmware row's host children (TFLite Micro here, LiteRT's reference kernels),
    which give its parity, run in the folder the bench was run from."""
    trees = ROOT.parent / "shared/third_party"
    if not (trees / "tflm-tree-cmsis-nn.tgz").is_file():
        pytest.skip(f"no TFLite Micro trees in {trees}")
    markers = plant(tmp_path / "clone")
    monkeypatch.chdir(tmp_path / "clone")
    result = runner.invoke(app, ["bench", str(tiny), "--target", "stm32h7", "--runs", "1",
                                 "--warmup", "0", "--min-time", "0", "--json",
                                 "--tflm-tree", str(trees)])
    assert imported(markers) == [], result.output
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert any(r["timed_on"] == "emulated" and r["status"] == "ok" and r.get("parity")
               for r in rows), rows


# --- a child's answer is bounded before it is parsed ----------------------------------------

HOSTILE_CHILD = """
import sys
mode = sys.argv[1]
if mode == "deep":
    print('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
elif mode == "huge":
    sys.stdout.write('{"a": "' + "x" * (20 << 20) + '"}\\n')
elif mode == "chatty":
    for _ in range(40):
        sys.stdout.write("x" * (1 << 20) + "\\n")
    print('{"status": "ok"}')
"""


@pytest.fixture
def hostile_child(tmp_path, monkeypatch) -> str:
    """A child module on PYTHONPATH that answers as `mode` says."""
    folder = tmp_path / "children"
    folder.mkdir()
    (folder / "hostile_reply.py").write_text(HOSTILE_CHILD)
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return "hostile_reply"


def test_a_child_answer_nested_200000_deep_is_a_reason(hostile_child):
    from edgeconv._child import run_child

    outcome = run_child(hostile_child, ["deep"], what="the child", timeout=120)
    assert not outcome.ok
    assert outcome.error.startswith("the child answered JSON nested more than")


def test_a_child_answer_past_the_bound_is_a_reason_and_chatter_before_it_is_not(
        hostile_child):
    from edgeconv._child import MAX_REPLY_BYTES, run_child

    assert MAX_REPLY_BYTES < 20 << 20
    outcome = run_child(hostile_child, ["huge"], what="the child", timeout=120)
    assert not outcome.ok and outcome.error == "the child answered more than 16 MiB"
    # 40 MiB printed before a small answer: only the tail is kept, the answer stands
    outcome = run_child(hostile_child, ["chatty"], what="the child", timeout=120)
    assert outcome.payload == {"status": "ok"}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    from loopback_ssh import serve_sshd

    yield from serve_sshd(tmp_path_factory)


def test_a_board_answer_nested_200000_deep_is_one_line_naming_the_host(sshd, tiny,
                                                                       tmp_path):
    from loopback_ssh import _board

    deep = "print('{\"results\": ' + '[' * 200000 + ']' * 200000 + '}')"
    folder = _board(*sshd, tmp_path / "targets",
                    remote_edgeconv=f"{sys.executable} -c {json.dumps(deep)}")
    result = runner.invoke(app, ["bench", str(tiny), "--target", "loopback", "--targets-dir",
                                 str(folder), "--runs", "1", "--min-time", "0"])
    line = one_error_line(result)
    assert "127.0.0.1" in line and "nested more than" in line, line


def test_parity_over_ssh_never_imports_from_the_working_directory(sshd, tiny, tmp_path,
                                                                  monkeypatch):
    """The bench over SSH runs the same file here for parity, in the folder it was run
    from: a planted module there never runs."""
    from loopback_ssh import _board

    folder = _board(*sshd, tmp_path / "targets")
    markers = plant(tmp_path / "clone")
    monkeypatch.chdir(tmp_path / "clone")
    result = runner.invoke(app, ["bench", str(tiny), "--target", "loopback", "--targets-dir",
                                 str(folder), "--runs", "1", "--min-time", "0", "--json"])
    assert imported(markers) == [], result.output
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["status"] == "ok" and row.get("parity"), row


# --- readers on a small machine, archives that promise more than they hold -----------------


def tiny_image_onnx(path: Path) -> Path:
    """x (N, 8, 8, 1) float -> softmax(reshape(x) @ W) (N, 3): a 3-class image model."""
    from onnx import TensorProto, helper, numpy_helper

    init = [numpy_helper.from_array(np.array([-1, 64], np.int64), "shape"),
            numpy_helper.from_array(np.ones((64, 3), np.float32) / 64, "W")]
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["h"]),
             helper.make_node("Softmax", ["h"], ["y"], axis=-1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def on_a_small_board(args: list[str], cwd: Path, timeout: float = 300
                     ) -> subprocess.CompletedProcess:
    """`python ARGS` with its address space limited to SMALL_BOARD_BYTES."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (SMALL_BOARD_BYTES, SMALL_BOARD_BYTES))

    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, check=False)


def test_a_tiny_npz_with_labels_up_to_10_12_is_one_line_on_a_small_board(tmp_path):
    """Reading the .npz asked for 8 GiB + 1 up front (a MemoryError traceback under the
    limit); labels reaching 10**12 then built 10**12 class names (killed by the kernel)."""
    model = tiny_image_onnx(tmp_path / "tiny.onnx")
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez(tmp_path / "labels.npz", x=x, y=np.array([0, 1, 2, 10**12], np.int64))
    assert (tmp_path / "labels.npz").stat().st_size < 8 << 10
    done = on_a_small_board(["-m", "edgeconv", "export", str(model), "--data",
                             str(tmp_path / "labels.npz"), "--measure-only", "--out",
                             str(tmp_path / "run")], cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "1,000,000,000,000" in lines[-1], lines[-1]
    assert "labels name classes 0 to 99,999" in lines[-1]


def test_readers_ask_for_the_file_not_the_bound_on_a_small_board(tmp_path):
    """read(MAX_MODEL_BYTES + 1) asked for 2 GiB + 1 to read a 3 KB model, and the 8 GiB
    bound of an image archive likewise: under the limit each tiny file is read."""
    model = tiny_image_onnx(tmp_path / "tiny.onnx")
    np.savez(tmp_path / "images.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    script = (
        "from pathlib import Path\n"
        "from edgeconv.files import MAX_MODEL_BYTES, read_regular\n"
        "from edgeconv.data.user import _read_npz\n"
        f"model = Path({str(model)!r})\n"
        "assert len(read_regular(model, MAX_MODEL_BYTES)) == model.stat().st_size\n"
        f"_, classes, test, _, _ = _read_npz(Path({str(tmp_path / 'images.npz')!r}))\n"
        "assert classes == ('0', '1', '2', '3') and test.x.shape == (4, 8, 8, 1)\n"
        "print('read')\n")
    done = on_a_small_board(["-c", script], cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "read", done.stderr[-3000:]


def test_read_upto_reads_a_file_that_grew_in_chunks_up_to_the_bound(tmp_path):
    from edgeconv.files import read_upto

    path = tmp_path / "grows.bin"
    path.write_bytes(b"a" * 10)
    with open(path, "rb") as fh:
        with open(path, "ab") as more:  # grows after fstat would have been read
            more.write(b"b" * 5000)
        assert read_upto(fh, 100_000) == b"a" * 10 + b"b" * 5000
    with open(path, "rb") as fh:
        assert len(read_upto(fh, 1000)) == 1001  # past the bound: the caller refuses it


def _zeros_npz(path: Path, n: int) -> Path:
    """An .npz whose x holds n zero bytes: it compresses a thousandfold."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.zeros((n // 64, 8, 8), np.uint8))
        archive.writestr("x.npy", buffer.getvalue())
    return path


def test_an_npz_is_bounded_by_what_it_unpacks_to(tmp_path):
    from edgeconv.data.sources import read_npz_arrays

    path = _zeros_npz(tmp_path / "bomb.npz", 10 << 20)
    assert path.stat().st_size < 100 << 10  # 10 MiB unpacked from a file of some KB
    with pytest.raises(EdgeconvError, match=r"unpack to 10,485,\d+ bytes; edgeconv reads at"
                                             r" most 1,048,576"):
        read_npz_arrays(path, ("x",), limit=1 << 20)
    arrays, names = read_npz_arrays(path, ("x", "y"), limit=64 << 20)
    assert names == {"x"} and arrays["x"].shape == ((10 << 20) // 64, 8, 8)


def _patch_sizes(path: Path, declared: int) -> None:
    """Make the member of a one-member zip declare `declared` bytes unpacked, with the CRC of
    its first `declared` bytes (local header and central directory alike), its data as it
    was: a reader trusting the stream would unpack all of it."""
    import zlib

    with zipfile.ZipFile(path) as archive:
        head = archive.open(archive.infolist()[0]).read(declared)
    crc = zlib.crc32(head).to_bytes(4, "little")
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    data[local + 14:local + 18] = crc
    data[local + 22:local + 26] = declared.to_bytes(4, "little")
    central = data.index(b"PK\x01\x02")
    data[central + 16:central + 20] = crc
    data[central + 24:central + 28] = declared.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_an_npz_member_that_unpacks_past_its_declared_size_is_refused(tmp_path):
    """The zip says 1 KiB, the .npy header and the data say 10 MiB: refused from the header
    before an array is made (and zipfile never unpacks past the declared size)."""
    from edgeconv.data.sources import read_npz_arrays

    path = _zeros_npz(tmp_path / "liar.npz", 10 << 20)
    _patch_sizes(path, 1 << 10)
    with pytest.raises(EdgeconvError, match=r"x\.npy declares \(163840, 8, 8\) uint8"
                                             r" \(10,485,760 bytes\) but holds"):
        read_npz_arrays(path, ("x",))


def test_an_npy_header_promising_10_12_elements_is_refused_before_allocating(tmp_path):
    from edgeconv.data.sources import read_npz_arrays

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (10**12,)})
    with zipfile.ZipFile(tmp_path / "promise.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 16)
    with pytest.raises(EdgeconvError, match=r"declares \(1000000000000,\) uint8"):
        read_npz_arrays(tmp_path / "promise.npz", ("x",))


def test_an_npz_listing_a_million_entries_is_refused_before_they_are_read(tmp_path):
    from edgeconv.data.sources import MAX_NPZ_MEMBERS, read_npz_arrays

    with zipfile.ZipFile(tmp_path / "many.npz", "w") as archive:
        for k in range(MAX_NPZ_MEMBERS + 1):
            archive.writestr(f"a{k}.npy", b"")
    with pytest.raises(EdgeconvError, match=f"lists {MAX_NPZ_MEMBERS + 1:,} entries"):
        read_npz_arrays(tmp_path / "many.npz", ("x",))


def test_an_idx_file_is_bounded_by_what_it_unpacks_to(tmp_path, monkeypatch):
    from edgeconv.data import sources

    monkeypatch.setattr(sources, "MAX_IDX_BYTES", 1 << 20)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    n = 8 << 20
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(n)))
    with pytest.raises(EdgeconvError, match="unpacks to more than 1,048,576 bytes"):
        sources._read_idx(path, ndim=1)


def test_a_tflm_tree_tarball_is_bounded_by_what_it_unpacks_to(tmp_path, monkeypatch):
    from edgeconv.mcu import sources

    monkeypatch.setenv("EDGECONV_MCU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "MAX_TREE_BYTES", 1 << 20)
    tgz = tmp_path / "tree.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        member = tarfile.TarInfo("tree/tensorflow/lite/micro/big.cc")
        member.size = 8 << 20
        tar.addfile(member, io.BytesIO(bytes(member.size)))
    assert tgz.stat().st_size < 100 << 10
    with pytest.raises(EdgeconvError, match=re.escape(f"{tgz} unpacks to more than")):
        sources._unpacked(tgz)
    assert not list((tmp_path / "cache").rglob("big.cc"))
