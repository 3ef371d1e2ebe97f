"""Issue 26, part B: hostile numbers on the command line, folders nested 1,100 deep, /proc,
images that cannot fit in memory, duplicate JSON keys and ssh options in target files. Each is
one line `error: ...` and exit 2 (or, inside a bench, one row's or note's reason), never a
traceback, and is refused before TensorFlow is imported where it is a command-line value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.errors import EdgeconvError
from edgeconv.files import MAX_FOLDER_DEPTH

runner = CliRunner()
MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MNIST_ONNX = MODELS / "onnx" / "mnist.onnx"
HELLO_TFLITE = MODELS / "tflite-micro" / "hello_world_int8.tflite"
needs_models = pytest.mark.skipif(not MNIST_ONNX.is_file() or not HELLO_TFLITE.is_file(),
                                  reason="../shared/models not present")
MISSING = "/nonexistent-edgeconv-issue-26"
DEEP = 1100  # folders, past Python's recursion limit (1,000)


def refused(result, *messages: str) -> str:
    """Exit 2, nothing on stdout, one `error:` line on stderr holding every message."""
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    assert code == 2, (code, result.stderr, getattr(result, "exception", None))
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for message in messages:
        assert message in line, (message, line)
    return line


def assert_nothing_written(out: Path) -> None:
    """No file in the run directory a refused command was given (an empty folder made
    before the check is not an artifact)."""
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


def edgeconv(*args, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "edgeconv", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


# --- every option that takes a count, a seed or a number -----------------------------------

# What each command is given before the hostile option: a name or path that does not exist,
# so that code which lets the value through fails fast, with another message, not on it.
BEFORE = {
    "export": ["export", f"{MISSING}/m.onnx"],
    "quant-report": ["quant-report", MISSING],
    "train": ["train", "no-such-model-26"],
    "data": ["data", MISSING],
    "bench": ["bench", f"{MISSING}/m.tflite"],
    "inspect": ["inspect", "alexnet"],
    "board start": ["board", "start", "no-such-board-26"],
    "fit": ["fit", "--target", "no-such-target-26"],
}
COUNT = [("0", "must be > 0"), ("-1", "must be > 0"), (str(10**30), "must be at most")]
SEED = [("-5", "must be an integer >= 0"),
        (str(2**63), "must be at most 9,223,372,036,854,775,807; got 9223372036854775808"),
        ("1208925819614629174706176", "must be at most 9,223,372,036,854,775,807")]
NOT_FINITE = [("inf", "must be a finite number"), ("nan", "must be a finite number"),
              ("-inf", "must be a finite number")]
HOSTILE: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("export", "--calibration-samples"): COUNT,
    ("export", "--eval-samples"): COUNT,
    ("export", "--seed"): SEED,
    ("export", "--max-drop"): [*NOT_FINITE, ("-1e308", "must be >= 0"),
                               ("1e308", "must be at most 100")],
    ("export", "--scale"): [*NOT_FINITE, ("0", "must not be 0"),
                            ("1e-320", "must be at least 1e-06 in magnitude"),
                            ("-1e308", "must be at most 1,000,000 in magnitude")],
    ("export", "--offset"): [*NOT_FINITE, ("-1e308", "must be >= -1e+06"),
                             ("1e308", "must be at most 1,000,000")],
    ("export", "--mean"): [("0.5,inf,0.5", "must be a finite number"),
                           ("nan", "must be a finite number"), ("1e308", "must be at most"),
                           ("0.5,x", "takes numbers separated by commas")],
    ("export", "--std"): [("1e-320", "must be >= 1e-06; got 1e-320"), ("0", "must be > 0"),
                          ("-1", "must be > 0"), ("0.2,nan,0.2", "must be a finite number"),
                          ("inf", "must be a finite number")],
    ("export", "--calibration-method"): [("foo", "unknown calibration method 'foo'")],
    ("export", "--alpha"): [("nan", ""), ("inf", ""), ("-1e308", "")],
    ("export", "--groups"): [("0", ""), ("-1", ""), (str(10**30), "")],
    ("export", "--blocks"): [("0", "must be > 0"), ("-1", "must be > 0"),
                             ("5", "must be at most 4"), (str(10**30), "must be at most 4")],
    ("export", "--kernel"): [("1", "must be an integer >= 3"), ("-1", "must be > 0"),
                             ("9", "must be at most 7"), (str(10**30), "must be at most 7")],
    ("quant-report", "--top"): [("-1", "must be an integer >= 0"),
                                (str(10**30), "must be at most")],
    ("fit", "--max-latency-ms"): [*NOT_FINITE, ("0", "must be a number > 0"),
                                  ("1e308", "must be at most")],
    ("fit", "--min-accuracy"): [*NOT_FINITE, ("-0.1", "must be >= 0"), ("2", "must be at most 1")],
    ("fit", "--workers"): COUNT,
    ("fit", "--train-samples"): COUNT,
    ("fit", "--eval-samples"): COUNT,
    ("fit", "--min-epochs"): COUNT,
    ("fit", "--max-epochs"): COUNT,
    ("fit", "--reduction-factor"): [("1", "must be an integer >= 2"), ("0", "must be > 0"),
                                    (str(10**30), "must be at most")],
    ("fit", "--brackets"): COUNT,
    ("fit", "--seed"): SEED,
    ("train", "--epochs"): COUNT,
    ("train", "--batch-size"): COUNT,
    ("train", "--train-samples"): COUNT,
    ("train", "--lr"): [*NOT_FINITE, ("0", "must be > 0"), ("-1e308", "must be > 0"),
                        ("1e-320", "must be >= 1e-12"), ("1e308", "must be at most 10")],
    ("train", "--seed"): SEED,
    ("train", "--classes"): [("0", ""), ("-1", ""), (str(10**30), "")],
    ("train", "--alpha"): [("nan", ""), ("inf", "")],
    ("train", "--groups"): [("0", ""), (str(10**30), "")],
    ("train", "--blocks"): [("0", "must be > 0"), (str(10**30), "must be at most 4")],
    ("train", "--kernel"): [("2", "must be an integer >= 3"), ("8", "must be at most 7")],
    ("data", "--seed"): SEED,
    ("data", "--calibration-samples"): COUNT,
    ("data", "--val-fraction"): [*NOT_FINITE, ("-0.1", "must be >= 0"),
                                 ("1", "must be at most 0.99")],
    ("data", "--test-fraction"): [*NOT_FINITE, ("-1e308", "must be >= 0"),
                                  ("1e308", "must be at most 0.99")],
    # checked before issue 26 (bench's LIMITS, the zoo's options, Click's range): kept here
    # so that every numeric option of every command is in this table
    ("bench", "--runs"): [("0", ""), ("-1", ""), (str(10**30), "")],
    ("bench", "--warmup"): [("-1", ""), (str(10**30), "")],
    ("bench", "--min-time"): [*[(v, "") for v, _ in NOT_FINITE], ("-1e308", "")],
    ("bench", "--timeout"): [*[(v, "") for v, _ in NOT_FINITE], ("0", ""), ("1e-320", "")],
    ("bench", "--eval-samples"): COUNT,
    ("inspect", "--classes"): [("0", ""), ("-1", ""), (str(10**30), "")],
    ("inspect", "--alpha"): [("nan", ""), ("inf", ""), ("-1e308", "")],
    ("inspect", "--groups"): [("0", ""), ("-1", ""), (str(10**30), "")],
    ("inspect", "--blocks"): [("0", "must be > 0"), ("-1", "must be > 0"),
                              ("5", "must be at most 4"), (str(10**30), "must be at most 4")],
    ("inspect", "--kernel"): [("0", "must be > 0"), ("1", "must be an integer >= 3"),
                              ("9", "must be at most 7"), (str(10**30), "must be at most 7")],
    ("board start", "--port"): [("0", ""), ("-1", ""), ("70000", "")],
}
CASES = [pytest.param(command, option, value, message, id=f"{command} {option} {value[:12]}")
         for (command, option), values in HOSTILE.items() for value, message in values]


@pytest.mark.parametrize("command, option, value, message", CASES)
def test_a_hostile_number_is_one_line_naming_its_option(command, option, value, message):
    result = runner.invoke(app, [*BEFORE[command], option, value])
    refused(result, option, message)


def _numeric_options():
    """(command, option) of every option whose value is an int or a float, and of the
    options that take a list of numbers, in every command of the CLI."""
    def commands(group, prefix=()):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from commands(command, (*prefix, name))
            else:
                yield " ".join((*prefix, name)), command

    for name, command in commands(typer.main.get_command(app)):
        for param in command.params:
            if param.param_type_name != "option" or param.hidden:
                continue
            if param.type_descriptor.annotation in (int, float) \
                    or param.opts[0] in ("--mean", "--std", "--calibration-method"):
                yield name, param.opts[0]


def test_every_numeric_option_of_every_command_is_in_the_table():
    """A new option taking a number must be added to HOSTILE (and bounded) to pass."""
    missing = sorted(set(_numeric_options()) - set(HOSTILE))
    assert not missing, f"numeric options with no hostile cases: {missing}"


def test_the_seed_bound_is_the_records_own():
    """A seed the command line accepts is one every record's schema accepts (issue 26:
    --seed 2**80 exported a manifest its own schema then refused)."""
    from edgeconv.commands._options import SEEDS
    from edgeconv.records import SEED

    assert (SEEDS.low, SEEDS.high) == (SEED.min, SEED.max)
    SEED.check(SEEDS.high, "seed")


def test_numbers_are_refused_before_tensorflow_is_imported():
    code = ("import sys; from typer.testing import CliRunner; from edgeconv.cli import app;"
            f"r = CliRunner().invoke(app, ['export', '{MISSING}.keras', '--seed', '-5',"
            " '--int8']); print(r.exit_code, r.stderr.strip());"
            "print([m for m in ('tensorflow', 'keras', 'onnxruntime') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    first, modules = proc.stdout.strip().splitlines()
    assert first == "2 error: --seed must be an integer >= 0; got -5"
    assert modules == "[]"


@needs_models
@pytest.mark.parametrize("args, message", [
    (["--int8", "--calibration-samples", "0"], "--calibration-samples must be > 0; got 0"),
    (["--seed", "-5"], "--seed must be an integer >= 0; got -5"),
    (["--seed", "1208925819614629174706176"], "--seed must be at most"),
])
def test_the_issues_export_commands_are_one_line(args, message, tmp_path):
    """The issue's commands, as typed: each a traceback (or an export whose manifest its
    own schema refuses) before; nothing is written now."""
    result = edgeconv("export", MNIST_ONNX, "--data", "digits", *args, "--out", tmp_path / "o")
    refused(result, message)
    assert_nothing_written(tmp_path / "o")


# --- folders nested 1,100 deep, and /proc --------------------------------------------------


_CHAINS: list[list[str]] = []


def _nest(folder: Path, depth: int = DEEP) -> Path:
    """`folder`/d/d/.../d, `depth` folders below it (made one at a time: Path.mkdir with
    parents=True recurses too); `unnest` removes them after the test."""
    path = str(folder)
    os.makedirs(path, exist_ok=True)
    chain = []
    for _ in range(depth):
        path = os.path.join(path, "d")
        os.mkdir(path)
        chain.append(path)
    _CHAINS.append(chain)
    return Path(path)


@pytest.fixture(autouse=True)
def unnest():
    """Deep chains removed leaf first: pytest's tmp_path cleanup (shutil.rmtree) recurses,
    and would fail on them in this run or a later one."""
    yield
    while _CHAINS:
        for path in reversed(_CHAINS.pop()):
            for name in os.listdir(path):  # a file the test left at the bottom
                os.unlink(os.path.join(path, name))
            os.rmdir(path)


def _image(path: Path, size: int = 28) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), 128, np.uint8)).save(path)


@pytest.fixture
def deep_classes(tmp_path) -> Path:
    """Two class folders of one image each; the second holds a chain 1,100 folders deep."""
    root = tmp_path / "classes"
    for name in ("a", "b"):
        _image(root / name / "x.png")
    _nest(root / "b")
    return root


def test_walk_files_is_iterative_and_bounded(tmp_path):
    from edgeconv.files import walk_files

    _image(tmp_path / "ok" / "a" / "b" / "x.png")
    _image(tmp_path / "ok" / ".hidden" / "y.png")
    found = walk_files(tmp_path / "ok", skip_hidden=True)
    assert [p.name for p in found] == ["x.png"]
    _nest(tmp_path / "exactly", MAX_FOLDER_DEPTH)
    assert walk_files(tmp_path / "exactly") == []
    _nest(tmp_path / "deep")
    with pytest.raises(EdgeconvError, match=f"nested more than {MAX_FOLDER_DEPTH} folders"):
        walk_files(tmp_path / "deep")
    with pytest.raises(EdgeconvError, match="kernel or device folder"):
        walk_files("/proc")


def test_data_folder_nested_deep_is_one_line(deep_classes):
    refused(edgeconv("data", deep_classes), f"nested more than {MAX_FOLDER_DEPTH} folders")


@needs_models
def test_export_data_and_calibration_data_nested_deep_are_one_line(deep_classes, tmp_path):
    out = tmp_path / "o"
    refused(edgeconv("export", MNIST_ONNX, "--data", deep_classes, "--out", out),
            "nested more than")
    refused(edgeconv("export", MNIST_ONNX, "--data", "digits", "--int8", "--calibration-data",
                     deep_classes / "b", "--out", out), "nested more than")
    assert_nothing_written(out)


@needs_models
@pytest.mark.parametrize("flag", ["--calibration-data", "--data"])
def test_a_proc_folder_is_one_line(flag, tmp_path):
    extra = ["--data", "digits", "--int8"] if flag == "--calibration-data" else []
    refused(edgeconv("export", MNIST_ONNX, *extra, flag, "/proc", "--out", tmp_path / "o"),
            "/proc", "is a kernel or device folder")
    assert_nothing_written(tmp_path / "o")


def _tflm_tree(folder: Path) -> Path:
    """The smallest folder find_tree takes for a tree with the CMSIS-NN kernels (the set
    an stm32h7 target builds)."""
    source = folder / "tensorflow" / "lite" / "micro" / "micro_interpreter.cc"
    source.parent.mkdir(parents=True)
    source.write_text("// not built: the walk fails first\n")
    (folder / "third_party" / "cmsis_nn").mkdir(parents=True)
    return folder


def test_tflm_tree_nested_deep_is_one_line(tmp_path):
    from edgeconv.mcu.sources import find_tree

    tree = _tflm_tree(tmp_path / "tree")
    _nest(tree / "tensorflow")
    with pytest.raises(EdgeconvError, match="TFLite Micro tree .* nested more than"):
        find_tree("cmsis-nn", tree)


@needs_models
def test_bench_on_an_mcu_target_says_why_a_deep_tree_builds_no_firmware(tmp_path):
    tree = _tflm_tree(tmp_path / "tree")
    _nest(tree / "tensorflow")
    done = edgeconv("bench", HELLO_TFLITE, "--target", "stm32h7", "--tflm-tree", tree,
                    "--runs", "1", "--warmup", "0", "--min-time", "0", "--json")
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
    assert done.returncode in (0, 2), done.stderr
    assert "nested more than" in done.stdout + done.stderr


@needs_models
def test_a_manifests_user_folder_nested_deep_is_one_note_in_bench(tmp_path):
    """dataset.user names a folder that is nested deep by the time bench reads it: the rows
    are measured, the images are not read, and the reason is one note. (An MCU target reads
    them through the same bench.local.load_split; this export holds ONNX files only, which
    an MCU target does not run, so it is benched on the host.)"""
    images = tmp_path / "images"
    for digit in range(10):  # the model's ten classes, one image each
        _image(images / str(digit) / "x.png")
    run = tmp_path / "run"
    done = edgeconv("export", MNIST_ONNX, "--data", images, "--out", run)
    assert done.returncode == 0, done.stderr
    _nest(images / "9")
    bench = edgeconv("bench", run, "--runs", "1", "--warmup", "0", "--min-time", "0",
                     "--json", timeout=600)
    assert "Traceback" not in bench.stderr and "RecursionError" not in bench.stderr
    assert bench.returncode in (0, 2), bench.stderr
    assert "nested more than" in bench.stdout + bench.stderr, bench.stderr


def test_report_and_bench_walks_of_runs_are_bounded(tmp_path):
    _nest(tmp_path / "runs")
    refused(runner.invoke(app, ["report", str(tmp_path / "runs"), "--out",
                                str(tmp_path / "r"), "--no-plots", "--no-arithmetic"]),
            "nested more than")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        refused(runner.invoke(app, ["bench"]), "nested more than")
    finally:
        os.chdir(old)


# --- memory -----------------------------------------------------------------------------------


def _free_size_onnx(path: Path) -> Path:
    """An fp32 ONNX model taking (batch, height, width, 1): any image size."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                      ["batch", "height", "width", 1])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["input", "axes"], ["output"],
                                                keepdims=0)],
                              "free", [x], [y], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_input_shape_4096_on_a_free_size_model_is_the_memory_line(tmp_path):
    """20,000 tiny images at --input-shape 4096,4096,1 need terabytes: one line before a
    byte is allocated (a MemoryError traceback before)."""
    model = _free_size_onnx(tmp_path / "free.onnx")
    np.savez(tmp_path / "many.npz", x=np.zeros((20_000, 1, 1), np.uint8))
    refused(edgeconv("export", model, "--data", tmp_path / "many.npz", "--input-shape",
                     "4096,4096,1", "--out", tmp_path / "o"),
            "images at 4096x4096x1 need", "GiB as float32")
    assert_nothing_written(tmp_path / "o")


def test_a_huge_fixed_model_input_is_the_memory_line(tmp_path):
    """A model whose input is 1,000,000 x 1,000,000: refused from the shape, not by numpy."""
    from edgeconv.data.user import ModelInput, PrepFlags, load_user_data

    np.savez(tmp_path / "two.npz", x=np.zeros((2, 8, 8), np.uint8))
    model = ModelInput(shape=(1, 1_000_000, 1_000_000, 1))
    with pytest.raises(EdgeconvError, match="need .* GiB as float32; this machine has"):
        load_user_data(str(tmp_path / "two.npz"), model, PrepFlags())


def test_preprocessing_that_overflows_float32_is_refused():
    """The library's own check (a manifest may hold these too): a scale of -1e308 or a std
    float32 holds as 0 would feed the model inf or NaN."""
    from edgeconv.data.preprocess import Preprocessing

    base = {"input_shape": (8, 8, 1), "source_shape": (8, 8, 1), "resize": "none",
            "channels": "none", "scale": 1 / 255, "offset": 0.0}
    Preprocessing(**base)
    for change in ({"scale": -1e308}, {"std": (1e-320,)}, {"mean": (1e300,)},
                   {"offset": 3e38, "scale": 1e36}):
        with pytest.raises(EdgeconvError, match="overflow float32"):
            Preprocessing(**{**base, **change})


# --- duplicate JSON keys ------------------------------------------------------------------------


def test_a_duplicate_key_in_a_record_is_one_line(tmp_path):
    from edgeconv.records import read_json

    file = tmp_path / "manifest.json"
    file.write_text('{"schema_version": 1, "artifacts": [{"path": "m.tflite"}],'
                    ' "artifacts": []}')
    with pytest.raises(EdgeconvError, match="names key 'artifacts' twice"):
        read_json(file)
    nested = tmp_path / "results.json"
    nested.write_text('{"results": [{"status": "ok", "status": "failed"}]}')
    with pytest.raises(EdgeconvError, match="names key 'status' twice"):
        read_json(nested)


def test_bench_refuses_a_manifest_whose_second_key_empties_it(tmp_path):
    """The issue's case: a second `artifacts` emptied the list, and bench exited 0 having
    measured nothing."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(
        '{"schema_version": 1, "artifacts": [{"path": "m.tflite"}], "artifacts": []}')
    refused(runner.invoke(app, ["bench", str(run)]), "names key 'artifacts' twice")


# --- ssh options in --targets-dir files ---------------------------------------------------------


@pytest.mark.parametrize("option", [
    "ForwardAgent=yes", "LocalForward=8080 127.0.0.1:80", "RemoteForward 9000 localhost:22",
    "DynamicForward=1080", "GatewayPorts=yes", "PermitRemoteOpen=any", "Tunnel=yes",
    "TunnelDevice=any:any", "SendEnv=AWS_*", "forwardagent=yes",
])
def test_a_named_target_file_may_not_forward(option, tmp_path):
    folder = tmp_path / "targets"
    folder.mkdir()
    (folder / "pi.toml").write_text(
        'kind = "board"\nruntimes = ["litert"]\nhost = "pi@127.0.0.1"\n'
        f"ssh_options = [{json.dumps(option)}]\n")
    line = refused(runner.invoke(app, ["targets", "--targets-dir", str(folder)]),
                   "ssh_options[0]", "a target file may not set it")
    assert "board" in line
    # typed on the command line, it is the user's to give
    from edgeconv.bench.ssh_rules import COMMAND_LINE, check_options

    assert check_options([option], COMMAND_LINE, "--ssh-option")
