"""Issue 12, the bench side: target files, SSH and the bench harness. Each hostile input is
one line on stderr and exit 2 (or the right result), never a traceback or a hang, and no file
outside the run changes (`sentinel`).

Defects (numbers of the issue): 2 (absolute manifest paths over SSH), 3 (a target file in
the working directory), 4 (the file checked is the file measured), 5 (a quadratic
flatbuffer), 7 (host-key checking), 8/11 (numbers, names, non-regular and huge files),
9b (truncated models), 10 (target files validated), and `bench --out` checked up front.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_ssh import NO_TF, _board, serve_sshd
from typer.testing import CliRunner

from edgeconv.bench import BenchConfig, run_bench
from edgeconv.bench.plan import Artifact
from edgeconv.bench.remote import _stage, parse_host
from edgeconv.bench.validate import (
    MAX_MODEL_BYTES,
    check_model_file,
    check_onnx,
    check_tflite,
    copy_verified,
)
from edgeconv.cli import app
from edgeconv.errors import EdgeconvError
from edgeconv.manifest import load_manifest
from edgeconv.runtimes import RuntimeEntry, register, unregister
from edgeconv.runtimes.litert import LiteRTRuntime
from edgeconv.targets import get_target, load_targets

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MODEL = MODELS / "tflite-micro" / "hello_world_int8.tflite"
FAST = ["--runs", "3", "--warmup", "1", "--min-time", "0"]
needs_models = pytest.mark.skipif(not MODEL.is_file(), reason="../shared/models not present")
runner = CliRunner()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on the loopback: (its folder, its port)."""
    yield from serve_sshd(tmp_path_factory)


def cli(*args, cwd: Path | None = None):
    """edgeconv in this process (fast): for errors raised before any child runs."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, [str(a) for a in args])
    finally:
        os.chdir(old)


def edgeconv(*args, cwd: Path | None = None, timeout: float = 120):
    """edgeconv in its own process, arguments as given (bytes for a non-UTF-8 name)."""
    return subprocess.run([sys.executable, "-m", "edgeconv", *args], capture_output=True,
                          cwd=cwd, check=False, timeout=timeout)


def one_line_error(result, *messages: str) -> str:
    """Exit 2 and one line on stderr holding every message, no traceback."""
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    stderr = result.stderr
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    assert code == 2, (code, stderr, getattr(result, "exception", None))
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr and stderr.startswith("error: ")
    for message in messages:
        assert message in stderr, (message, stderr)
    return stderr


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def model(tmp_path) -> Path:
    if not MODEL.is_file():
        pytest.skip("../shared/models not present")
    copy = tmp_path / "work" / "m.tflite"
    copy.parent.mkdir()
    shutil.copyfile(MODEL, copy)
    return copy


# --- defect 10: target files are validated against a closed schema ------------------------

TARGET = 'kind = "host"\nruntimes = ["litert"]\n'


@pytest.mark.parametrize("text, message", [
    (TARGET + 'threads = "12"\n', "threads must be a list"),
    ('kind = "host"\nruntimes = "litert"\n', "runtimes must be a list"),
    (TARGET + "threads = [-1]\n", "threads[0] must be an integer from 1 to 256; got -1"),
    (TARGET + "threads = [100000]\n", "threads[0] must be an integer from 1 to 256"),
    (TARGET + "threads = [1, 1]\n", "threads[1] must be unlike the items before it"),
    (TARGET + 'cores = "many"\n', "cores must be an integer"),
    (TARGET + "cores = 0\n", "cores must be an integer from 1"),
    (TARGET + "clock_mhz = 0\n", "clock_mhz must be a number of MHz > 0; got 0"),
    (TARGET + "clock_mhz = nan\n", "clock_mhz must be a finite number"),
    ('kind = "mcu"\nruntimes = ["tflite-micro"]\n[budgets]\nsram_bytes = "1 MiB"\n'
     "flash_bytes = 1\n", "budgets.sram_bytes must be an integer >= 1"),
    ('kind = "mcu"\nruntimes = ["tflite-micro"]\n[budgets]\nsram_bytes = -1\nflash_bytes = 1\n',
     "budgets.sram_bytes must be an integer >= 1"),
    ('kind = "mcu"\nruntimes = ["tflite-micro"]\n[budgets]\nsram_bytes = 1\nflashbytes = 1\n',
     "budgets.flashbytes is not a known key (did you mean 'flash_bytes'?"),
    (TARGET + "thread = [1]\n", "thread is not a known key (did you mean 'threads'?"),
    ('kind = "toaster"\nruntimes = ["litert"]\n', "kind must be one of host, gpu, board, mcu"),
    ('kind = "host"\nruntimes = ["litrt"]\n', "did you mean 'litert'"),
    ('kind = "host"\nruntimes = []\n', "runtimes must be a list of 1 to 64 items; got a list of 0"),
    ('kind = "host"\n', "runtimes is missing"),
    (TARGET + 'description = "two\\nlines"\n', "description must be"),
    (TARGET + 'aliases = "cpu2"\n', "aliases must be a list"),
    (TARGET + 'remote_edgeconv = "edgeconv \'unclosed"\n', "remote_edgeconv must be a command"),
    (TARGET + "a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    (TARGET + "= broken\n", "not a readable TOML target"),
])
def test_target_files_are_validated(tmp_path, text, message):
    (tmp_path / "box.toml").write_text(text)
    with pytest.raises(EdgeconvError) as error:
        load_targets(tmp_path)
    line = str(error.value)
    assert line.startswith(f"{tmp_path / 'box.toml'}: ") and message in line, line
    assert "\n" not in line


def test_a_bad_target_file_is_one_line_from_the_command(tmp_path):
    (tmp_path / "box.toml").write_text(TARGET + 'threads = "12"\n')
    one_line_error(cli("targets", "--targets-dir", tmp_path), f"{tmp_path / 'box.toml'}: threads")
    assert "threads must be a list" in cli("bench", "x.tflite", "--target", "box",
                                           "--targets-dir", tmp_path).stderr


def test_target_files_that_are_not_small_regular_files_are_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo.toml")  # read_text() would block here
    one_line_error(cli("targets", "--targets-dir", tmp_path), "fifo.toml is a FIFO")
    os.unlink(tmp_path / "fifo.toml")
    (tmp_path / "big.toml").write_text(TARGET + "#" * (2 << 20) + "\n")
    one_line_error(cli("targets", "--targets-dir", tmp_path), "big.toml is 2 MiB")
    os.unlink(tmp_path / "big.toml")
    (tmp_path / "a b.toml").write_text(TARGET)
    one_line_error(cli("targets", "--targets-dir", tmp_path), "a target file's name is")


def test_shipped_targets_pass_the_schema_and_keep_their_values():
    targets = load_targets()
    assert targets["cpu"].threads == (1,) and targets["rpi"].threads == (1, 4)
    assert targets["stm32h7"].clock_mhz == 480 and targets["rpi5"].cores == 4


# --- defect 3: a target file in the working directory cannot run commands or redirect ---

REPO_FILES = {
    "host and ProxyCommand": ('host = "root@127.0.0.1:1"\n'
                              'ssh_options = ["ProxyCommand=touch pwned"]\n', [],
                              "targets/cpu.toml: host is not allowed in a target file picked up"
                              " from ./targets/"),
    "ProxyCommand for a --host bench": ('ssh_options = ["ProxyCommand=touch pwned"]\n',
                                        ["--host", "root@127.0.0.1:1"],
                                        "targets/cpu.toml: ssh_options[0] 'ProxyCommand=touch"
                                        " pwned': ProxyCommand runs a command on this machine"),
    "LocalCommand": ('ssh_options = ["PermitLocalCommand=yes", "LocalCommand=touch pwned"]\n',
                     ["--host", "root@127.0.0.1:1"], "PermitLocalCommand runs a command"),
    "KnownHostsCommand": ('ssh_options = ["KnownHostsCommand=/bin/touch pwned"]\n',
                          ["--host", "root@127.0.0.1:1"], "KnownHostsCommand runs a command"),
    "Match exec": ('ssh_options = ["Match exec \\"touch pwned\\""]\n',
                   ["--host", "root@127.0.0.1:1"], "Match runs a command"),
    "HostName redirect": ('ssh_options = ["HostName=127.0.0.2"]\n',
                          ["--host", "root@127.0.0.1:1"],
                          "a target file picked up from ./targets/ may set only"),
    "known_hosts": ('ssh_options = ["UserKnownHostsFile=kh"]\n', ["--host", "root@127.0.0.1:1"],
                    "may set only"),
    "remote_edgeconv": ('remote_edgeconv = "touch pwned"\n', ["--host", "root@127.0.0.1:1"],
                        "remote_edgeconv is not allowed in a target file picked up from"),
}


@needs_models
@pytest.mark.parametrize("case", list(REPO_FILES))
def test_a_working_dir_target_cannot_redirect_a_bench_or_run_commands(tmp_path, sentinel, case):
    extra, args, message = REPO_FILES[case]
    repo = sentinel.root / "repo"  # a cloned repository, beside the files that must not change
    (repo / "targets").mkdir(parents=True)
    (repo / "targets" / "cpu.toml").write_text(TARGET + extra)
    shutil.copyfile(MODEL, repo / "m.tflite")
    sentinel.before = sentinel.snapshot()
    start = time.monotonic()
    done = edgeconv("bench", "m.tflite", *args, *FAST, cwd=repo, timeout=60)
    one_line_error(done, message)
    assert time.monotonic() - start < 30  # refused on reading the file, nothing dialled
    assert not (repo / "pwned").exists() and sentinel.unchanged()


def test_a_targets_dir_the_user_names_may_set_host_but_never_a_command(tmp_path):
    named = tmp_path / "lab"
    named.mkdir()
    (named / "pi.toml").write_text('kind = "board"\narch = "aarch64"\nruntimes = ["litert"]\n'
                                   'host = "pi@board.local:2222"\n'
                                   'ssh_options = ["IdentityFile=~/.ssh/pi", "ProxyJump=gw"]\n'
                                   'remote_edgeconv = "~/.venv/bin/edgeconv"\n')
    pi = get_target("pi", named)
    assert pi.host == "pi@board.local:2222" and pi.extra["ssh_options"][1] == "ProxyJump=gw"
    (named / "evil.toml").write_text(TARGET + 'ssh_options = ["proxycommand nc %h %p"]\n')
    with pytest.raises(EdgeconvError, match="proxycommand runs a command on this machine; a"
                                            " target file may not set it"):
        load_targets(named)
    # ./targets/ named with --targets-dir is a folder the user chose: host is allowed there
    (tmp_path / "targets").mkdir()
    (named / "evil.toml").unlink()
    shutil.copyfile(named / "pi.toml", tmp_path / "targets" / "pi.toml")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert get_target("pi", "targets").host == "pi@board.local:2222"
        with pytest.raises(EdgeconvError, match="host is not allowed"):
            get_target("pi")
    finally:
        os.chdir(old)


def test_a_typed_ssh_option_may_run_a_command_but_not_loosen_host_keys():
    host = parse_host("pi@board", ("ProxyCommand=ssh -W %h:%p gw",),
                      ("IdentityFile=~/.ssh/pi",))
    argv = host.ssh("true")
    assert "ProxyCommand=ssh -W %h:%p gw" in argv and "IdentityFile=~/.ssh/pi" in argv
    assert argv.index("ProxyCommand=ssh -W %h:%p gw") < argv.index("IdentityFile=~/.ssh/pi")
    assert argv[1:5] == ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]


# --- defect 7: host-key checking cannot be turned off -------------------------------------

@needs_models
@pytest.mark.parametrize("options, message", [
    (["StrictHostKeyChecking=accept-new", "UserKnownHostsFile=/dev/null"],
     "'UserKnownHostsFile=/dev/null': host keys must be checked against a file that keeps"),
    (["UserKnownHostsFile=/dev/null"], "host keys must be checked against a file"),
    (["UserKnownHostsFile=~/kh /dev/null"], "host keys must be checked against a file"),
    (["UserKnownHostsFile=none"], "not none or a device"),
    (['UserKnownHostsFile=""'], "give its path"),
    (["UserKnownHostsFile=/dev/stdin"], "not none or a device"),
    (["StrictHostKeyChecking=accept-new", "UserKnownHostsFile=/nowhere/known_hosts"],
     "with StrictHostKeyChecking=accept-new: its folder does not exist"),
    (["StrictHostKeyChecking=accept-new", "UserKnownHostsFile=/etc"],
     "it is not a writable regular file"),
    (["StrictHostKeyChecking=accept-new", "UserKnownHostsFile=/tmp/kh-%h"],
     "its name is expanded by ssh"),
    (["StrictHostKeyChecking=no"], "host-key checking stays on (yes or accept-new)"),
    (["StrictHostKeyChecking=off"], "host-key checking stays on"),
    (["NoHostAuthenticationForLocalhost=yes"], "host-key checking stays on, for localhost too"),
    (["BatchMode=no"], "BatchMode stays yes"),
])
def test_host_key_checking_cannot_be_turned_off(model, options, message):
    args = [a for option in options for a in ("--ssh-option", option)]
    start = time.monotonic()
    one_line_error(cli("bench", model, "--target", "rpi", "--host", "nobody@127.0.0.1:1",
                       *args), message)
    assert time.monotonic() - start < 10  # refused before dialling


def test_accept_new_with_a_known_hosts_file_that_keeps_keys_is_allowed(tmp_path):
    host = parse_host("pi@board", ("StrictHostKeyChecking=accept-new",
                                   f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
                                   "GlobalKnownHostsFile=/dev/null"))
    assert "StrictHostKeyChecking=accept-new" in host.ssh("true")


# --- defect 4: the file checked is the file measured ---------------------------------------


class SpyRuntime(LiteRTRuntime):
    """LiteRT that notes what it was handed (path, mode, sha256 of the bytes) and, on its
    first load, copies another model over the user's file (EDGECONV_SPY_SWAP = victim and
    replacement): the swap of the issue, at the worst moment, every time the same."""

    name = "spy"

    def __init__(self, path, *, threads: int | None = None) -> None:
        data = Path(path).read_bytes()
        victim, replacement = os.environ["EDGECONV_SPY_SWAP"].split(os.pathsep)
        if Path(victim).read_bytes() != Path(replacement).read_bytes():
            shutil.copyfile(replacement, victim)
        with open(os.environ["EDGECONV_SPY_LOG"], "a") as log:
            log.write(json.dumps({"path": str(path), "sha256": sha256(data),
                                  "mode": stat.S_IMODE(os.stat(path).st_mode)}) + "\n")
        super().__init__(path, threads=threads)


def test_the_child_loads_a_private_copy_of_the_checked_bytes(benched_fcn, tmp_path,
                                                             monkeypatch):
    run = tmp_path / "fcn"
    shutil.copytree(benched_fcn, run)
    (run / "results.json").unlink(missing_ok=True)
    listed = {a.path: a.sha256 for a in load_manifest(run).artifacts}
    victim = run / "fcn-mnist_int8.tflite"
    other = tmp_path / "other.tflite"
    shutil.copyfile(run / "fcn-mnist_fp32.tflite", other)
    log = tmp_path / "spy.jsonl"
    here = str(Path(__file__).parent)
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{here}{os.pathsep}{path}" if path else here)
    monkeypatch.setenv("EDGECONV_SPY_SWAP", f"{victim}{os.pathsep}{other}")
    monkeypatch.setenv("EDGECONV_SPY_LOG", str(log))
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "spybox.toml").write_text(
        'kind = "host"\nruntimes = ["spy"]\nthreads = [1, 2]\n')
    register(RuntimeEntry("spy", f"{SpyRuntime.__module__}:SpyRuntime", ("tflite",),
                          "LiteRT noting what it loads", options=("threads",)))
    try:
        report = run_bench(BenchConfig(paths=(run,), target="spybox",
                                       targets_dir=str(tmp_path / "targets"), warmup=1, runs=3,
                                       min_time=0))
    finally:
        unregister("spy")
    assert victim.read_bytes() == other.read_bytes()  # the swap happened mid-bench
    loads = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(loads) == 4  # two .tflite files x threads 1, 2
    for load in loads:
        assert load["mode"] == 0o600 and not load["path"].startswith(str(run)), load
        assert load["sha256"] in listed.values(), load
    int8 = [r for r in report.results if r.artifact == "fcn/fcn-mnist_int8.tflite"]
    assert [r.threads for r in int8] == [1, 2] and all(r.ok for r in int8), int8
    assert {r.sha256 for r in int8} == {listed["fcn-mnist_int8.tflite"]}
    assert sum(load["sha256"] == listed["fcn-mnist_int8.tflite"] for load in loads) == 2
    assert int8[0].accuracy == int8[1].accuracy  # both rows measured the same bytes


def test_a_copy_that_does_not_hash_to_the_manifest_is_refused(tmp_path, model):
    with pytest.raises(EdgeconvError, match="does not match the manifest's 000000000000"):
        copy_verified(model, tmp_path / "copy.tflite", "0" * 64)
    assert not (tmp_path / "copy.tflite").exists()
    _, size = copy_verified(model, tmp_path / "copy.tflite", sha256(model.read_bytes()))
    assert size == model.stat().st_size
    assert stat.S_IMODE((tmp_path / "copy.tflite").stat().st_mode) == 0o600


# --- defect 5: the pre-load walk is linear and bounded ------------------------------------


def crafted_tflite(n: int) -> bytes:
    """The issue's file: a model whose n subgraph offsets all point at one subgraph table,
    whose tensor vector holds n offsets to one tensor table (flatbuffer bytes by hand)."""
    out = bytearray(struct.pack("<I4s", 0, b"TFL3"))
    model_vtable = len(out)
    out += struct.pack("<5H2x", 10, 8, 0, 0, 4)  # fields 0, 1 absent; 2 (subgraphs) at +4
    subgraph_vtable = len(out)
    out += struct.pack("<3H2x", 6, 8, 4)  # field 0 (tensors) at +4
    tensor_vtable = len(out)
    out += struct.pack("<2H", 4, 4)  # no fields
    model = len(out)
    out += struct.pack("<iI", model - model_vtable, 0)
    subgraphs = len(out)
    out += struct.pack("<I", n) + bytes(4 * n)
    subgraph = len(out)
    out += struct.pack("<iI", subgraph - subgraph_vtable, 0)
    tensors = len(out)
    out += struct.pack("<I", n) + bytes(4 * n)
    tensor = len(out)
    out += struct.pack("<i", tensor - tensor_vtable)
    for i in range(n):  # offsets are forward, from where each is stored
        struct.pack_into("<I", out, subgraphs + 4 + 4 * i, subgraph - (subgraphs + 4 + 4 * i))
        struct.pack_into("<I", out, tensors + 4 + 4 * i, tensor - (tensors + 4 + 4 * i))
    struct.pack_into("<I", out, 0, model)
    struct.pack_into("<I", out, model + 4, subgraphs - (model + 4))
    struct.pack_into("<I", out, subgraph + 4, tensors - (subgraph + 4))
    return bytes(out)


@pytest.mark.parametrize("n", [2_000, 100_000])  # 16 KB: 3.8 s before; 800 KB: a hang
def test_a_crafted_flatbuffer_is_refused_within_a_second(n):
    data = crafted_tflite(n)
    start = time.monotonic()
    with pytest.raises(ValueError, match="reached more often than"):
        check_tflite(data)
    assert time.monotonic() - start < 1.0


def test_a_crafted_flatbuffer_is_one_line_from_bench(tmp_path):
    (tmp_path / "crafted.tflite").write_bytes(crafted_tflite(100_000))
    start = time.monotonic()
    done = edgeconv("bench", str(tmp_path / "crafted.tflite"), "--timeout", "1", timeout=60)
    one_line_error(done, "crafted.tflite is not a complete TFLite flatbuffer")
    assert time.monotonic() - start < 30


# --- defect 9b: a truncated model is one line and exit 2 ----------------------------------

TRUNCATED = sorted(MODELS.glob("*/*.tflite")) + sorted(MODELS.glob("onnx/*.onnx"))


@needs_models
@pytest.mark.parametrize("source", TRUNCATED, ids=lambda p: p.name)
def test_a_truncated_model_is_refused(tmp_path, source):
    data = source.read_bytes()
    check = check_tflite if source.suffix == ".tflite" else check_onnx
    check(data)  # whole: passes
    for cut in (1, 10, 100, len(data) // 2):
        model = tmp_path / f"cut{cut}{source.suffix}"
        model.write_bytes(data[:len(data) - cut])
        with pytest.raises(EdgeconvError, match="is not a complete .* truncated or corrupt"):
            check_model_file(model)


@needs_models
def test_a_model_one_byte_short_is_one_line_from_bench(tmp_path):
    data = (MODELS / "mlcommons-tiny" / "vww_96_int8.tflite").read_bytes()
    (tmp_path / "vww.tflite").write_bytes(data[:-1])
    one_line_error(cli("bench", tmp_path / "vww.tflite", *FAST),
                   "vww.tflite is not a complete TFLite flatbuffer")


# --- defect 2 (bench side): names sent over SSH are ours, whatever the manifest says ------

def test_staging_sends_only_our_names(benched_fcn, tmp_path):
    manifest = load_manifest(benched_fcn)
    entry = next(a for a in manifest.artifacts if a.path == "fcn-mnist_int8.tflite")
    outside = tmp_path / "elsewhere" / "a b;$(touch pwned)" / "m.tflite"
    outside.parent.mkdir(parents=True)
    shutil.copyfile(benched_fcn / entry.path, outside)
    copy = tmp_path / "private.tflite"
    copy_verified(outside, copy, entry.sha256)
    artifact = Artifact(outside, "tflite", "int8", entry.sha256, copy.stat().st_size,
                        manifest, copy, entry.path)
    staged = _stage([artifact], get_target("rpi"), tmp_path / "scratch")
    files = sorted(str(p.relative_to(staged.folder)) for p in staged.folder.rglob("*")
                   if p.is_file())
    assert files == ["0/f0.tflite", "0/manifest.json", "targets/rpi4.toml"]
    sent = json.loads((staged.folder / "0" / "manifest.json").read_text())
    assert [a["path"] for a in sent["artifacts"]] == ["f0.tflite"]
    assert staged.names["0/f0.tflite"] == str(outside) and staged.runs == ["0"]


def test_an_absolute_manifest_path_over_ssh_is_no_traceback(sshd, benched_fcn, tmp_path,
                                                            sentinel):
    root, port = sshd
    run = tmp_path / "fcn"
    shutil.copytree(benched_fcn, run)
    outside = sentinel.root / "copied.tflite"
    shutil.copyfile(run / "fcn-mnist_int8.tflite", outside)
    sentinel.before = sentinel.snapshot()
    document = json.loads((run / "manifest.json").read_text())
    for entry in document["artifacts"]:
        if entry["path"] == "fcn-mnist_int8.tflite":
            entry["path"] = str(outside)
    (run / "manifest.json").write_text(json.dumps(document))
    targets = _board(root, port, tmp_path / "targets")
    done = subprocess.run([sys.executable, "-c", NO_TF, "bench", str(run), "--target",
                           "loopback", "--targets-dir", str(targets), "--json", *FAST],
                          capture_output=True, text=True, check=False, timeout=300)
    assert "Traceback" not in done.stderr and done.returncode in (0, 2), done.stderr
    if done.returncode == 2:  # the manifest's own check refuses the path: one line
        one_line_error(done, "manifest.json")
    else:
        rows = json.loads(done.stdout)["results"]
        assert all(r["status"] == "ok" for r in rows if r["runtime"] == "litert"), rows
    assert sentinel.unchanged()


# --- defects 8/11 (bench side): numbers, names, files -------------------------------------

@needs_models
@pytest.mark.parametrize("args, message", [
    (["--timeout", "inf"], "--timeout must be a finite number from 1 to 86,400; got inf"),
    (["--timeout", "nan"], "--timeout must be a finite number"),
    (["--timeout", "0.5"], "--timeout must be a finite number from 1"),
    (["--min-time", "inf"], "--min-time must be a finite number from 0 to 3600"),
    (["--min-time", "-1"], "--min-time must be a finite number from 0"),
    (["--threads", "100000"], "--threads[0] must be an integer from 1 to 256; got 100000"),
    (["--threads", "0"], "--threads[0] must be an integer from 1 to 256; got 0"),
    (["--threads", "1,1"], "--threads[1] must be unlike the items before it"),
    (["--threads", "1;2"], "--threads takes positive integers like 1,2,4"),
    (["--runs", "1000000000000"], "--runs must be an integer from 1 to 100,000"),
    (["--warmup", "-1"], "--warmup must be an integer from 0 to 100,000"),
    (["--host", "pi@board\n:22"], "--host must be a non-empty name on one line"),
    (["--host", "pi@board;rm -rf ~"], "--host 'pi@board;rm -rf ~' is not user@host"),
    (["--host", "pi@board:99999"], "port 1 to 65535"),
    (["--target", "cp\nu"], "--target must be a non-empty name on one line"),
    (["--runtime", "lit\nert"], "--runtime must be a non-empty name on one line"),
    (["--target", "rpi", "--host", "pi@board", "--ssh-option", "ConnectTimeout=nan"],
     "ConnectTimeout must be a whole number of seconds from 1 to 3600"),
    (["--target", "rpi", "--host", "pi@board", "--ssh-option", "ConnectTimeout=-100"],
     "ConnectTimeout must be a whole number of seconds"),
    (["--target", "rpi", "--host", "pi@board", "--ssh-option", "IdentityFile=a\nProxyCommand=x"],
     "--ssh-option must be a non-empty name on one line"),
])
def test_bench_numbers_and_names_are_one_line(model, args, message):
    one_line_error(cli("bench", model, *args), message)


def test_bench_config_checks_every_caller():
    for wrong in ({"timeout": float("inf")}, {"min_time": float("nan")}, {"runs": True},
                  {"threads": (1, 100_000)}, {"warmup": 10**400}):
        with pytest.raises(EdgeconvError):
            BenchConfig(**wrong)


@pytest.mark.parametrize("make, message", [
    (lambda p: os.mkfifo(p), "is a FIFO, not a regular file"),
    (lambda p: os.symlink("/proc/self/mem", p), "is a kernel or device file"),
    (lambda p: os.symlink("/dev/null", p), "is a kernel or device file"),
    (lambda p: os.truncate(p.open("wb").name, 40 * 1024**3), "is 40 GiB (42,949,672,960 bytes); edgeconv reads a"
                                                              " model file of at most 2 GiB"),
    (lambda p: p.write_bytes(b""), "is empty, not a model file"),
    (lambda p: p.mkdir(), "has no manifest.json"),
], ids=["fifo", "proc-self-mem", "dev-null", "sparse-40GB", "empty", "directory"])
def test_non_regular_and_huge_model_files_are_refused_unread(tmp_path, make, message):
    model = tmp_path / "model.tflite"
    make(model)
    start = time.monotonic()
    one_line_error(cli("bench", model), message)
    assert time.monotonic() - start < 10
    assert MAX_MODEL_BYTES == 2 * 1024**3


@needs_models
@pytest.mark.parametrize("name", [b"\xff\xfe model.tflite", b"new\nline.tflite"],
                         ids=["non-utf8", "newline"])
def test_odd_file_names_bench(tmp_path, name):
    path = os.path.join(os.fsencode(tmp_path), name)
    shutil.copyfile(MODEL, path)
    done = edgeconv(b"bench", path, b"--json", *[a.encode() for a in FAST])
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "ok" and row["artifact"].startswith(str(tmp_path)), row
    assert "\n" not in row["artifact"]  # one line in tables and messages: \xff, \n escaped
    done = edgeconv(b"bench", os.path.join(os.fsencode(tmp_path), b"missing\n\xff.tflite"))
    one_line_error(done, "missing\\n\\xff.tflite does not exist")


# --- bench --out is checked before any work ------------------------------------------------

def test_bench_out_is_checked_before_any_work(model, tmp_path):
    (tmp_path / "afile").write_text("x")
    start = time.monotonic()
    one_line_error(cli("bench", model, "--out", tmp_path / "afile" / "results.json"),
                   "--out", "is a file, not a folder")
    one_line_error(cli("bench", model, "--out", "/proc/results.json"), "cannot write in /proc")
    one_line_error(cli("bench", model, "--out", tmp_path), "is a directory")
    assert time.monotonic() - start < 10  # nothing was benched
