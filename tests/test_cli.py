"""The command line: fast, TensorFlow-free start, JSON for scripts, one-line errors."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from edgeconv import __version__
from edgeconv.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def edgeconv(*args):
    """The real entry point, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "edgeconv", *args], capture_output=True,
                          text=True, timeout=300)


def test_version_via_module_and_flag():
    proc = edgeconv("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"edgeconv {__version__}"


def test_cli_import_leaves_tensorflow_out():
    code = ("import sys, edgeconv.cli, edgeconv.zoo; edgeconv.zoo.list_models();"
            "heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime', 'tf2onnx', 'numpy')"
            " if m in sys.modules]; print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_models_json_lists_the_zoo_without_tensorflow():
    code = ("import sys; from edgeconv.cli import app; from typer.testing import CliRunner;"
            "r = CliRunner().invoke(app, ['models', '--json']); print(r.stdout);"
            "print('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    out, tf_loaded = proc.stdout.rsplit("\n", 2)[0], proc.stdout.split()[-1]
    assert tf_loaded == "False"
    models = {m["name"]: m for m in json.loads(out)}
    assert {"dense-mnist", "fcn-mnist", "gap-mnist", "lenet5", "vgg-cifar",
            "separable-vgg-cifar", "alexnet", "vgg16", "squeezenet", "mobilenet", "mobilenetv2",
            "conv3x3-rgb64", "separable3x3-rgb64", "inception5x5-naive",
            "inception5x5-bottleneck"} <= set(models)
    assert models["gap-mnist"]["default_input_shape"] == [None, None, 1]
    assert models["mobilenet"]["options"] == ["input_shape", "classes", "alpha"]
    assert all(m["description"] and m["family"] for m in models.values())


def test_models_table():
    result = run("models")
    assert result.exit_code == 0
    assert "separable-vgg-cifar" in result.stdout and "2,770,634" in result.stdout


@pytest.mark.parametrize("args,params,macs", [
    (["dense-mnist"], 2_770_634, None),
    (["fcn-mnist"], 55_338, None),
    (["gap-mnist"], 5_130, None),
    (["vgg16"], 138_357_544, None),
    (["squeezenet", "--version", "1.0"], 1_248_424, None),
    (["squeezenet", "--version", "1.1"], 1_235_496, None),
    (["mobilenet"], 4_253_864, None),
    (["mobilenetv2"], 3_538_984, None),
    (["conv3x3-rgb64"], 1_792, None),
    (["separable3x3-rgb64"], 286, None),
    (["inception5x5-naive"], None, 120_422_400),
    (["inception5x5-bottleneck"], None, 12_443_648),
])
def test_inspect_json_gives_the_articles_figures(args, params, macs):
    result = run("inspect", *args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data["params"], int) and isinstance(data["macs"], int)
    assert isinstance(data["layers"], list) and data["layers"]
    if params is not None:
        assert data["params"] == params
    if macs is not None:
        assert data["macs"] == macs
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]
    assert sum(layer["macs"] for layer in data["layers"]) == data["macs"]


def test_inspect_options_change_the_model():
    data = json.loads(run("inspect", "mobilenet", "--alpha", "0.5", "--input-shape", "128,128,3",
                          "--classes", "10", "--json").stdout)
    assert data["options"] == {"input_shape": [128, 128, 3], "classes": 10, "alpha": 0.5}
    assert data["layers"][-1]["output_shape"] == [10]
    assert data["input_shape"] == [128, 128, 3]


def test_inspect_free_size_model_reports_macs_at_nominal_size():
    data = json.loads(run("inspect", "gap-mnist", "--json").stdout)
    assert data["input_shape"] == [None, None, 1]
    assert data["analysed_shape"] == [28, 28, 1]
    assert data["macs"] == 28 * 28 * (16 * 9 + 32 * 16 * 9) + 32 * 10
    data = json.loads(run("inspect", "gap-mnist", "--input-shape", "64,48,1", "--json").stdout)
    assert data["analysed_shape"] == [64, 48, 1]


def test_inspect_table_has_layers_and_totals():
    result = run("inspect", "separable3x3-rgb64")
    assert result.exit_code == 0
    for text in ("depthwise3x3", "pointwise1x1", "DepthwiseConv2D", "286", "matches"):
        assert text in result.stdout


def test_compare_json_one_comparison():
    result = run("compare", "B-vgg", "--json")
    assert result.exit_code == 0, result.output
    (table,) = json.loads(result.stdout)
    assert [r["params"] for r in table["rows"]] == [1_189_962, 178_405]
    assert table["rows"][1]["macs"] < table["rows"][0]["macs"] / 8


@pytest.mark.parametrize("args,message", [
    (["inspect", "mobilnet"], "error: unknown model 'mobilnet'; did you mean 'mobilenet'?"),
    (["inspect", "mobilenet", "--alpha", "0"], "--alpha must be a number > 0"),
    (["inspect", "mobilenet", "--alpha", "-0.5"], "got -0.5"),
    (["inspect", "fcn-mnist", "--input-shape", "32,32,1"], "takes only 28x28 inputs"),
    (["inspect", "mobilenet", "--input-shape", "16,16,3"], "needs H and W >= 32; got 16,16,3"),
    (["inspect", "mobilenet", "--input-shape", "a,b"], "must be H,W,C integers"),
    (["inspect", "mobilenet", "--input-shape", "0,32,3"], "values must be >= 1"),
    (["inspect", "lenet5", "--classes", "1"], "--classes must be an integer >= 2; got 1"),
    (["inspect", "lenet5", "--version", "1.1"], "does not take --version"),
    (["inspect", "squeezenet", "--version", "2.0"], "must be one of 1.0, 1.1; got '2.0'"),
    (["compare", "C-mobilenet"], "unknown comparison 'C-mobilenet'; did you mean"),
])
def test_user_errors_are_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_user_error_from_the_real_entry_point_has_no_traceback():
    proc = edgeconv("inspect", "mobilnet")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown model 'mobilnet'; did you mean 'mobilenet'?"
    assert proc.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["inspect"], "error: missing argument 'name' (see '"),
    (["no-such-command"], "error: no such command 'no-such-command' (see '"),
    (["inspec", "fcn-mnist"], "error: no such command 'inspec'; did you mean 'inspect'?"),
    (["--bogus"], "error: no such option: --bogus"),
    (["bench", "--runz", "3"], "error: no such option: --runz; did you mean --runs"),
    (["bench", "--runs", "x"], "error: invalid value for '--runs': "),
    (["bench", "--runs", "0"], "error: --runs must be an integer from 1 to 100,000; got 0"),
    (["bench", "--warmup", "-1"], "error: --warmup must be an integer from 0 to 100,000"),
    (["bench", "--timeout", "x"], "error: invalid value for '--timeout': "),
    (["bench", "--threads"], "error: option '--threads' requires an argument"),
    (["inspect", "fcn-mnist", "--classes", "x"], "error: invalid value for '--classes': "),
    (["inspect", "fcn-mnist", "--classes", "1\n2"], "error: invalid value for '--classes'"),
    (["inspect", "fcn-mnist", "--cla\nsses", "2"],
     "error: no such option: --cla\\x0asses; did you"),
    (["data", "digits", "--seed", "1.5"], "error: invalid value for '--seed': "),
])
def test_usage_errors_are_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line
    assert "Usage:" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, shown", [
    (["inspect", "fcn\nmnist"], "error: unknown model 'fcn\\nmnist'"),
    (["train", "x\ny"], "'x\\ny'"),
    (["inspect", "fcn\r\x1b[31m\u2028mnist"], "'fcn\\r\\x1b[31m\\u2028mnist'"),
    (["data", "a\x0bb"], "a\\x0bb"),
])
def test_a_line_break_in_a_name_stays_one_line(args, shown):
    result = run(*args)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert shown in line, line
    assert "\x1b" not in line  # control characters are shown escaped, never sent


def test_a_range_error_of_click_is_one_line():
    """Typer's own range checks (`min=`) raise during parsing, inside the group's invoke."""
    import typer

    from edgeconv.cli import _Group

    tiny = typer.Typer(cls=_Group)

    @tiny.command()
    def count(runs: int = typer.Option(1, min=1)) -> None:
        typer.echo(runs)

    @tiny.command()
    def other() -> None:  # two commands: `count` is a subcommand, parsed in invoke
        pass

    nested = typer.Typer(no_args_is_help=True)
    nested.command("count")(count)
    nested.command("other")(other)
    tiny.add_typer(nested, name="nested")

    for args in (["count", "--runs", "0"], ["nested", "count", "--runs", "0"]):
        result = runner.invoke(tiny, args)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.startswith("error: invalid value for '--runs': ")
        assert len(result.stderr.splitlines()) == 1
    bare = runner.invoke(tiny, ["nested"])  # a group with no command: its help, not an error
    assert "count" in bare.output and "error:" not in bare.output


def test_a_usage_error_from_the_real_entry_point_is_one_line():
    proc = edgeconv("bench", "--runs", "x")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("error: invalid value for '--runs': Input should be a valid integer,"
                           " unable to parse string as an integer (see 'python -m edgeconv"
                           " bench --help')\n")


def test_help_still_works():
    assert "Usage:" in run("--help").stdout and run("--help").exit_code == 0
    assert "--runs" in run("bench", "-h").stdout and run("bench", "-h").exit_code == 0
    bare = run()  # no command: the help, as before
    assert "Commands" in bare.output and bare.exit_code == 2


def test_data_digits_json_summarises_the_split():
    result = run("data", "digits", "--input-shape", "16,16,3", "--seed", "3", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["num_classes"] == 10
    assert sum(s["count"] for s in summary["splits"].values()) == 1797
    assert summary["preprocessing"]["input_shape"] == [16, 16, 3]
    assert summary["preprocessing"]["channels"] == "gray_to_rgb"
    assert summary["calibration_samples"] == 100
    assert summary["seed"] == 3


def test_data_table():
    result = run("data")
    assert result.exit_code == 0
    assert "scikit-learn" in result.stdout and "total" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["data", "mnst"], "unknown dataset 'mnst'"),
    (["data", "digits", "--input-shape", "8,8,2"], "cannot convert 1-channel images to 2"),
    (["data", "digits", "--normalisation", "z"], "unknown normalisation 'z'"),
    (["data", "digits", "--calibration-samples", "0"], "calibration"),
])
def test_data_user_errors(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_data_missing_and_corrupt_files_name_the_path(tmp_path):
    result = run("data", "mnist", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert str(tmp_path / "mnist.npz") in result.stderr and "--data-dir" in result.stderr
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file at all")
    result = run("data", "mnist", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert str(tmp_path / "mnist.npz") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
