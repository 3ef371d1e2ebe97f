"""`edgeconv bench --host`: a real OpenSSH server on 127.0.0.1 (tests/loopback_ssh.py: a free
port, a temporary host key, key pair and known_hosts) plays the board, reached with the
system ssh/scp client.

Skipped with the reason when sshd or the client is missing (`.ci/run` installs Debian's
openssh-server) or when sshd cannot start here (e.g. not root and no /run/sshd).
"""

from __future__ import annotations

import getpass
import json
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_ssh import NO_TF, _board, _keygen, serve_sshd

from edgeconv.bench.remote import parse_host, remote_command
from edgeconv.errors import EdgeconvError

FAST = ["--runs", "5", "--warmup", "1", "--min-time", "0"]
# This side too: edgeconv with TensorFlow unimportable (a desktop without it may drive a board).
EDGECONV = [sys.executable, "-c", NO_TF]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on the loopback: (its folder, its port)."""
    yield from serve_sshd(tmp_path_factory)


def bench(*args: str, cwd: Path | None = None, timeout: float = 300):
    return subprocess.run([*EDGECONV, "bench", *args], capture_output=True, text=True,
                          cwd=cwd, check=False, timeout=timeout)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("remote") / "fcn"
    subprocess.run([sys.executable, "-m", "edgeconv", "export", "fcn-mnist", "--untrained",
                    "--int8", "--out", str(out), "--json"], capture_output=True, check=True,
                   timeout=300)
    return out


def _leftovers() -> set[Path]:
    return set(Path("/tmp").glob("edgeconv-remote.*"))


def test_bench_over_ssh_measures_on_the_board(sshd, export_dir, tmp_path):
    root, port = sshd
    targets = _board(root, port, tmp_path / "targets")
    before = _leftovers()
    results = tmp_path / "results.json"
    done = bench(str(export_dir), "--target", "loopback", "--targets-dir", str(targets),
                 "--json", "--out", str(results), *FAST)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert json.loads(results.read_text()) == report
    env = report["environment"]
    assert env["ssh"] == {"host": f"{getpass.getuser()}@127.0.0.1:{port}",
                          "from": platform.node()}
    assert env["cpu"] and env["machine"] == platform.machine() and env["runtimes"]
    rows = {r["artifact"]: r for r in report["results"]}
    assert set(rows) == {f"fcn/{name}" for name in (
        "model.keras", "fcn-mnist_fp32.tflite", "fcn-mnist_int8.tflite", "fcn-mnist_fp32.onnx",
        "fcn-mnist_int8.onnx")}
    for name, row in rows.items():
        if name.endswith(".tflite"):
            assert row["status"] == "ok" and row["runtime"] == "litert", row
            assert row["latency_ms"]["min"] <= row["latency_ms"]["p50"] and row["runs"] >= 5
            assert row["target"] == "loopback" and row["timed_on"] == "target"
            # the test images went with the job (the board loads no dataset), and the
            # board's outputs came back: this machine against itself, bit-exact
            assert row["accuracy"] is not None and row["eval_samples"] == 32, row
            parity = row["parity"]
            assert parity["equal"] and parity["differing"] == 0, parity
            assert parity["inputs"] == 32 and parity["on"] == "test images", parity
        else:  # not sent: the board's runtimes do not run them
            assert row["status"] == "unsupported" and row["latency_ms"] is None, row
    assert _leftovers() == before  # the remote temp dir is gone


def test_paths_with_shell_metacharacters_run_nothing(sshd, export_dir, tmp_path):
    root, port = sshd
    targets = _board(root, port, tmp_path / "targets")
    weird = tmp_path / "a b;$(touch pwned)`touch pwned`'\""
    shutil.copytree(export_dir, weird / "fcn")
    model = weird / "fcn" / "fcn-mnist_int8.tflite"
    done = bench(str(weird / "fcn"), str(model), "--target", "loopback", "--targets-dir",
                 str(targets), "--runtime", "litert", "--json", *FAST, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]
    assert [r["artifact"] for r in rows] == [
        "fcn/fcn-mnist_fp32.tflite", "fcn/fcn-mnist_int8.tflite", str(model)]
    assert all(r["status"] == "ok" for r in rows), rows
    for place in (tmp_path, Path.home(), Path("/"), Path.cwd(), weird):
        assert not (place / "pwned").exists()


def test_host_key_mismatch_is_one_line(sshd, export_dir, tmp_path):
    root, port = sshd
    other_type, other_key = _keygen(tmp_path / "other")
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{port} {other_type} {other_key}\n")
    targets = _board(root, port, tmp_path / "targets", known_hosts=wrong)
    results = tmp_path / "results.json"
    done = bench(str(export_dir), "--target", "loopback", "--targets-dir", str(targets),
                 "--out", str(results), *FAST)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        (f"error: cannot reach {getpass.getuser()}@127.0.0.1:{port} over SSH:"
         " Host key verification failed.")]
    assert not results.exists()


@pytest.mark.parametrize("board, message", [
    ({"arch": "riscv64"}, f"is {platform.machine()}, not an riscv64 board like loopback"),
    ({"remote_edgeconv": "/nowhere/edgeconv"}, "is edgeconv installed there?"),
], ids=["wrong-arch", "no-edgeconv-there"])
def test_board_side_failure_is_one_line(sshd, export_dir, tmp_path, board, message):
    root, port = sshd
    targets = _board(root, port, tmp_path / "targets", **board)
    before = _leftovers()
    done = bench(str(export_dir), "--target", "loopback", "--targets-dir", str(targets), *FAST)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {getpass.getuser()}@127.0.0.1:{port}: ")
    assert _leftovers() == before


@pytest.mark.parametrize("listening", [False, True], ids=["closed-port", "silent-server"])
def test_unreachable_host_is_one_line_in_bounded_time(export_dir, tmp_path, listening):
    if not shutil.which("ssh"):
        pytest.skip("OpenSSH client not installed")
    with socket.socket() as silent:  # accepts, never says a word: ConnectTimeout must end it
        silent.bind(("127.0.0.1", 0))
        if listening:
            silent.listen()
        port = silent.getsockname()[1]
        start = time.monotonic()
        done = bench(str(export_dir), "--target", "rpi", "--host", f"nobody@127.0.0.1:{port}",
                     "--ssh-option", "ConnectTimeout=3", "--ssh-option",
                     f"UserKnownHostsFile={tmp_path / 'none'}", timeout=60)
        elapsed = time.monotonic() - start
    assert done.returncode == 2 and elapsed < 15, (elapsed, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach nobody@127.0.0.1:{port} over SSH: "), line


def test_ssh_arguments_keep_checks_on_and_quote_everything():
    host = parse_host("pi@board.local:2222", ("StrictHostKeyChecking=accept-new",
                                              "BatchMode=yes", "IdentityFile=~/.ssh/pi"))
    argv = host.ssh("true")
    assert argv[:5] == ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
    assert "Port=2222" in argv and argv[-3:] == ["--", "pi@board.local", "true"]
    assert argv.count("BatchMode=yes") == 1
    assert parse_host("[::1]:22").scp(Path("/x"), "/tmp/d")[-1] == "[::1]:/tmp/d/"
    for bad in ("-oProxyCommand=x", "pi@host; rm -rf ~", "pi@host:port", ""):
        with pytest.raises(EdgeconvError):
            parse_host(bad)
    for option in ("StrictHostKeyChecking=no", "BatchMode=no", "-o"):
        with pytest.raises(EdgeconvError):
            parse_host("pi@board", (option,))
    assert remote_command(["~/.venv/bin/edgeconv", "a b;$(x)", "it's"]) == (
        "\"$HOME\"/.venv/bin/edgeconv 'a b;$(x)' 'it'\"'\"'s'")


def test_local_and_host_together_are_refused(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"")
    done = bench(str(tmp_path / "m.onnx"), "--target", "rpi", "--local", "--host", "pi@board")
    assert done.returncode == 2 and "pick one" in done.stderr


# A board without scikit-learn (as `pip install 'edgeconv[litert]'` leaves a Pi): digits
# cannot be loaded there, so any accuracy it measures is on the split this side sent.
NO_DATASETS = NO_TF.replace("sys.modules['tensorflow'] = None;",
                            "sys.modules['tensorflow'] = None; sys.modules['sklearn'] = None;")


def test_the_board_measures_accuracy_on_the_split_sent(sshd, export_dir, tmp_path):
    root, port = sshd
    targets = _board(root, port, tmp_path / "targets",
                     remote_edgeconv=f"{sys.executable} -c {json.dumps(NO_DATASETS)}")
    here = bench(str(export_dir), "--target", "cpu", "--runtime", "litert", "--threads", "1",
                 "--json", *FAST)
    there = bench(str(export_dir), "--target", "loopback", "--targets-dir", str(targets),
                  "--runtime", "litert", "--json", *FAST)
    assert here.returncode == 0 and there.returncode == 0, (here.stderr, there.stderr)
    accuracy = {r["artifact"]: r["accuracy"] for r in json.loads(here.stdout)["results"]}
    rows = json.loads(there.stdout)["results"]
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows), rows
    for row in rows:
        assert row["accuracy"] == accuracy[row["artifact"]] is not None, (row, accuracy)
        assert row["parity"]["equal"] and row["parity"]["on"] == "test images", row


def test_a_staged_split_is_checked_before_use(export_dir, tmp_path):
    """What the board checks of the test split a manifest names (plan.staged_split)."""
    import hashlib

    import numpy as np

    from edgeconv.bench.plan import BENCH_DATA, staged_split
    from edgeconv.manifest import load_manifest

    folder = tmp_path / "fcn"
    shutil.copytree(export_dir, folder)
    data = json.loads((folder / "manifest.json").read_text())
    shape = data["input"]["preprocessing"]["input_shape"]

    def stage(x, y, **entry):
        np.savez(folder / "test-data.npz", x=x, y=y)
        raw = (folder / "test-data.npz").read_bytes()
        data[BENCH_DATA] = {"path": "test-data.npz", "sha256": hashlib.sha256(raw).hexdigest(),
                            **entry}
        (folder / "manifest.json").write_text(json.dumps(data))
        return load_manifest(folder)

    good_x, good_y = np.zeros((4, *shape), np.float32), np.arange(4, dtype=np.int64)
    assert staged_split(stage(good_x, good_y)) == folder / "test-data.npz"
    manifest = stage(good_x, good_y)
    (folder / "test-data.npz").write_bytes((folder / "test-data.npz").read_bytes() + b"x")
    with pytest.raises(EdgeconvError, match="sha256 does not match"):
        staged_split(manifest)
    for x, y in ((good_x.astype(np.float64), good_y), (good_x, good_y.astype(np.int32)),
                 (good_x[:, :2], good_y), (good_x, good_y[:3])):
        with pytest.raises(EdgeconvError, match="a test split is x float32"):
            staged_split(stage(x, y))
    with pytest.raises(EdgeconvError, match="not a test split"):  # a pickle is never loaded
        staged_split(stage(np.array([object()], dtype=object), good_y))
    with pytest.raises(EdgeconvError, match="bench_data"):
        staged_split(stage(good_x, good_y, path="../outside.npz"))
    manifest = stage(good_x, good_y)  # then the file becomes a link to one elsewhere
    (tmp_path / "elsewhere.npz").write_bytes((folder / "test-data.npz").read_bytes())
    (folder / "test-data.npz").unlink()
    (folder / "test-data.npz").symlink_to(tmp_path / "elsewhere.npz")
    with pytest.raises(EdgeconvError, match="not a file beside the manifest"):
        staged_split(manifest)
