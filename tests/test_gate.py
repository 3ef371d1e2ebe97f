"""`edgeconv gate` on a real export and its real cpu bench, plus hand-written results.json rows
for what this machine cannot produce quickly (an MCU row that does not fit, missing figures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.errors import EdgeconvError
from edgeconv.gate.policy import load_policy, parse_size

ROOT = Path(__file__).resolve().parents[1]
EDGECONV = [sys.executable, "-m", "edgeconv"]
runner = CliRunner()

# Met by an untrained fcn-mnist export (seeded weights): int8 agreement ~0.77, int8 files
# 60-66 KiB, sub-millisecond on any cpu.
MET = """
[[rule]]
name = "int8 keeps top-1"
precision = "int8"
min_agreement = 0.5
max_size_bytes = "80 KiB"

[[rule]]
name = "fp32 conversions compute what Keras computes"
format = ["tflite", "onnx"]
precision = "fp32"
min_agreement = "99.9%"
max_accuracy_drop = 0.01

[[rule]]
name = "int8 tflite runs on cpu"
artifact = "*_int8.tflite"
must_run_on = "cpu"

[[rule]]
name = "cpu latency"
format = ["tflite", "onnx"]
target = "cpu"
max_p50_ms = 1000
max_p90_ms = 1000
"""
MET_CHECKS = 2 * 2 + 2 * 2 + 1 + 2 * 2  # (rule budgets) x (files or cpu rows selected)


@pytest.fixture(scope="module")
def run(benched_fcn) -> Path:
    return benched_fcn


def gate(*args: str | Path):
    return runner.invoke(app, ["gate", *map(str, args)])


def policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    return path


def test_a_policy_the_model_meets_exits_0(run, tmp_path):
    done = gate(run, "--policy", policy(tmp_path, MET), "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["passed"] and report["failed"] == 0
    assert len(report["checks"]) == MET_CHECKS
    drops = [c for c in report["checks"] if c["budget"] == "max_accuracy_drop"]
    assert [c["value"] for c in drops] == [0.0, 0.0]
    table = gate(run, "--policy", policy(tmp_path, MET))
    assert table.exit_code == 0 and "FAIL" not in table.stdout
    assert "gate passed" in table.stdout


def test_a_broken_budget_exits_1_and_names_the_rule(run, tmp_path):
    broken = MET + '\n[[rule]]\nname = "int8 tflite tiny"\nartifact = "*_int8.tflite"\n' \
                   'max_size_bytes = "10 KiB"\n'
    done = gate(run, "--policy", policy(tmp_path, broken))
    assert done.exit_code == 1
    assert "FAIL" in done.stdout and "'int8 tflite tiny'" in done.stdout.splitlines()[-1]
    report = json.loads(gate(run, "--policy", policy(tmp_path, broken), "--json").stdout)
    [failed] = [c for c in report["checks"] if not c["passed"]]
    assert failed["rule"] == "int8 tflite tiny" and failed["limit"] == 10240
    assert failed["value"] > failed["limit"]


@pytest.mark.parametrize("text, message", [
    ("[[rule]\nname = 'x'", "not valid TOML"),
    ("[[rule]]\nname = 'x'\nmax_sise_bytes = 1", "did you mean 'max_size_bytes'?"),
    ("[[rules]]\nname = 'x'\nmin_accuracy = 0.9", "did you mean 'rule'?"),
    ("[[rule]]\nname = 'x'\nmin_agreement = 'high'", "takes a number >= 0"),
    ("[[rule]]\nname = 'x'\nmin_agreement = 'high%'", "not a percentage"),
    ("[[rule]]\nname = 'x'\nmin_agreement = true", "takes a number"),
    ("[[rule]]\nname = 'x'\nmin_accuracy = 95", "fraction of 1"),
    ("[[rule]]\nname = 'x'\nmax_size_bytes = '80 KB'", "unknown unit 'KB'"),
    ("[[rule]]\nname = 'x'\nmust_fit = false", "takes true"),
    ("[[rule]]\nname = 'x'\nprecision = 8\nmin_accuracy = 0.9", "takes a glob pattern"),
    ("[[rule]]\nname = 'x'\nprecision = 'int8'", "no budget"),
    ("[[rule]]\nname = 'x'\nprecision = 'imt8'\nmin_accuracy = 0.9",
     "'imt8' matches no precision edgeconv knows; did you mean 'int8'?"),
    ("[[rule]]\nname = 'x'\nformat = ['tflite', 'onxx']\nmin_accuracy = 0.9",
     "'onxx' matches no format edgeconv knows; did you mean 'onnx'?"),
    ("[[rule]]\nmin_accuracy = 0.9", "needs a name"),
    ("[[rule]]\nname = 'x'\ntarget = 'cpu'\nmust_run_on = 'cpu'", "must_run_on checks"),
    ("[[rule]]\nname = 'x'\nmin_accuracy = 0.9\n[[rule]]\nname = 'x'\nmin_accuracy = 0.8",
     "two rules are named 'x'"),
])
def test_a_malformed_policy_exits_2_with_one_line(tmp_path, text, message):
    # no run needed: the policy is read before any input
    done = gate(tmp_path, "--policy", policy(tmp_path, text))
    assert done.exit_code == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr


BIG = "9" * 400


@pytest.mark.parametrize("text, message", [
    ("[[rule]]\nname = 'x'\nmin_accuracy = nan", "min_accuracy takes a number >= 0"),
    ("[[rule]]\nname = 'x'\nmax_accuracy_drop = -inf", "max_accuracy_drop takes a number"),
    ("[[rule]]\nname = 'x'\nmin_agreement = 'nan%'", "min_agreement takes a number"),
    ("[[rule]]\nname = 'x'\nmax_p50_ms = inf", "max_p50_ms takes a number >= 0 and <="),
    ("[[rule]]\nname = 'x'\nmax_p99_ms = 1e400", "max_p99_ms takes a number"),
    (f"[[rule]]\nname = 'x'\nmax_size_bytes = {BIG}", "from 0 to 1 TiB; got 99999"),
    (f"[[rule]]\nname = 'x'\nmax_arena_bytes = '{BIG[:90]} GiB'", "from 0 to 1 TiB"),
    (f"[[rule]]\nname = 'x'\nmax_flash_bytes = '{BIG} KiB'", "max_flash_bytes takes bytes"),
    ("[[rule]]\nname = 'x'\nmax_accuracy_drop = 101", "<= 100 (points)"),
    ("[[rule]]\nname = 'x'\nthreads = [-1]\nmax_p50_ms = 1", "threads takes a glob pattern"),
    ("[[rule]]\nname = 'x'\nthreads = 1.5\nmax_p50_ms = 1", "threads takes a glob pattern"),
    ("[[rule]]\nname = 'x'\nmodel = []\nmin_accuracy = 0.9", "model takes a glob pattern"),
    ("[[rule]]\nname = 'x'\nmodel = ''\nmin_accuracy = 0.9", "model takes a glob pattern"),
    ("[[rule]]\nname = 'x'\nmodel = \"a\\nb\"\nmin_accuracy = 0.9", "model takes a glob"),
    ("[[rule]]\nname = 'x'\nmodel = [{a = 1}]\nmin_accuracy = 0.9", "model takes a glob"),
    ("[[rule]]\nname = 'x'\nmust_run_on = [1]", "must_run_on takes a glob pattern"),
    ("[[rule]]\nname = 'x'\nmust_fit = 'yes'", "must_fit takes true"),
    ("[[rule]]\nname = \"a\\nb\"\nmin_accuracy = 0.9", "rule 1: name must be one line"),
    (f"[[rule]]\nname = '{'n' * 300}'\nmin_accuracy = 0.9", "rule 1: name must be one line"),
    ("[[rule]]\nname = 'x'\n\"min\\naccuracy\" = 0.9", "'min\\naccuracy' is not a known key"),
    ("[[rule]]\nname = 'x'\nmin_acuracy = 0.9", "rule 'x': min_acuracy is not a known key"
                                                   " (did you mean 'min_accuracy'?"),
    ("rule = 'x'", "no rules"),
    ("rule = [1, 2]", "no rules"),
    ("x = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ("[[rule]]\nname = 'x'\nmin_accuracy = " + "9" * 5000, "not valid TOML"),
    ("\n".join(f"[[rule]]\nname = 'r{i}'\nmin_accuracy = 0.1" for i in range(1001)),
     "1001 rules; a policy has at most 1000"),
])
def test_policy_values_are_finite_bounded_and_typed(tmp_path, text, message):
    done = gate(tmp_path, "--policy", policy(tmp_path, text))
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'gate.toml'}: ") and message in line, line
    assert "Traceback" not in done.output


def test_a_huge_or_unreadable_policy_is_one_line(tmp_path):
    big = tmp_path / "gate.toml"
    big.write_text("# padding\n" * 200_000)
    done = gate(tmp_path, "--policy", big)
    assert done.exit_code == 2 and "edgeconv reads a file of at most 1 MiB" in done.stderr
    os.mkfifo(tmp_path / "fifo.toml")  # reading it would block: refused unread
    done = gate(tmp_path, "--policy", tmp_path / "fifo.toml")
    assert done.exit_code == 2 and "not a regular file" in done.stderr
    for special in ("/proc/self/environ", tmp_path):
        done = gate(tmp_path, "--policy", special)
        assert done.exit_code == 2 and "not a regular file" in done.stderr, done.stderr
    big.write_bytes(b"[[rule]]\nname = '\xff'\n")
    done = gate(tmp_path, "--policy", big)
    assert done.exit_code == 2 and "not valid TOML" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_policy_values_parse_as_before():
    rules = {r.name: r for r in load_policy_text(
        "[[rule]]\nname = 'a'\nmin_agreement = '97.5%'\nmax_size_bytes = '1 KiB'\n"
        "[[rule]]\nname = 'b'\nthreads = [1, '4']\nmax_p50_ms = 2\nmax_flash_bytes = 0\n"
        "[[rule]]\nname = 'c'\nmust_run_on = 'cpu'\nmin_accuracy = 0\n").rules}
    assert rules["a"].budgets == {"min_agreement": 0.975, "max_size_bytes": 1024}
    assert rules["b"].selectors == {"threads": ("1", "4")}
    assert rules["b"].budgets == {"max_p50_ms": 2.0, "max_flash_bytes": 0}
    assert rules["c"].budgets == {"must_run_on": ("cpu",), "min_accuracy": 0.0}


def load_policy_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gate.toml"
        path.write_text(text)
        return load_policy(path)


@pytest.mark.parametrize("rule, message", [
    ('name = "typo"\nmodel = "fcn-mnsit"\nmin_accuracy = 0.1\n',
     "rule 'typo' selects nothing: no artifact has model fcn-mnsit; did you mean 'fcn-mnist'?"),
    ('name = "no mcu bench"\ntarget = "stm32h7"\nmust_fit = true\n',
     "rule 'no mcu bench' selects nothing: no bench row has target stm32h7 (given: cpu)"),
])
def test_a_rule_that_selects_nothing_is_an_error_with_a_close_match(run, tmp_path, rule,
                                                                    message):
    done = gate(run, "--policy", policy(tmp_path, MET + "[[rule]]\n" + rule))
    assert done.exit_code == 2
    assert done.stderr.strip() == f"error: {message}", done.stderr


def _mcu_results(run: Path, tmp_path: Path) -> Path:
    """A results.json as `bench --target stm32h7` writes it, for this export's int8 file,
    with one row that does not fit and one whose accuracy was not measured."""
    manifest = json.loads((run / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["path"].endswith("_int8.tflite"))
    fp32 = next(a for a in manifest["artifacts"] if a["path"].endswith("_fp32.tflite"))
    onnx = next(a for a in manifest["artifacts"] if a["path"].endswith("_int8.onnx"))

    def row(artifact, **figures):
        return {"artifact": f"fcn/{artifact['path']}", "sha256": artifact["sha256"],
                "format": artifact["format"], "precision": artifact["precision"],
                "runtime": "tflite-micro", "target": "stm32h7", "threads": 1, "status": "ok",
                "error": None, "timed_on": "host", "size_bytes": artifact["size_bytes"],
                "latency_ms": {"p50": 1.2, "p90": 1.3, "p99": 1.4, "mean": 1.25, "std": 0.05,
                               "min": 1.1}, "accuracy": None,
                "agreement": 1.0, **figures}

    document = {"schema_version": 1, "environment": {}, "config": {}, "notes": [], "results": [
        row(int8, arena_bytes=18768, flash_bytes=83840, fits=True),
        row(fp32, arena_bytes=2_000_000, flash_bytes=246864, fits=False),
        row(onnx, status="unsupported", latency_ms=None,
            error="onnx files do not run on stm32h7 (it runs tflite-micro)")]}
    path = tmp_path / "results-stm32h7.json"
    path.write_text(json.dumps(document))
    return path


def test_mcu_budgets_and_missing_figures_fail_with_the_reason(run, tmp_path):
    text = """
[[rule]]
name = "tflite fits the stm32h7"
format = ["tflite", "onnx"]
precision = ["int8", "fp32"]
target = "stm32h7"
must_fit = true
max_arena_bytes = "512 KiB"
min_accuracy = 0.1
"""
    results = _mcu_results(run, tmp_path)
    done = gate(results, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 1
    checks = {(c["subject"].split(" @ ")[0].split("/")[-1], c["budget"]): c
              for c in json.loads(done.stdout)["checks"]}
    assert len(checks) == 3 * 3
    int8, fp32 = "fcn-mnist_int8.tflite", "fcn-mnist_fp32.tflite"
    assert checks[int8, "must_fit"]["passed"] and checks[int8, "max_arena_bytes"]["passed"]
    assert not checks[fp32, "must_fit"]["passed"]
    assert not checks[fp32, "max_arena_bytes"]["passed"]
    # a null accuracy is a failure with its reason, never a pass
    assert not checks[int8, "min_accuracy"]["passed"]
    assert "no accuracy recorded" in checks[int8, "min_accuracy"]["reason"]
    unsupported = checks["fcn-mnist_int8.onnx", "must_fit"]
    assert not unsupported["passed"] and "did not run: unsupported" in unsupported["reason"]


def test_must_run_on_looks_for_an_ok_row_of_that_file(run, tmp_path):
    text = '[[rule]]\nname = "int8 runs"\nprecision = "int8"\nmust_run_on = ["cpu", "stm32h7"]\n'
    done = gate(run, _mcu_results(run, tmp_path), "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 1
    verdicts = {(c["subject"], c["limit"]): (c["passed"], c["value"])
                for c in json.loads(done.stdout)["checks"]}
    assert verdicts == {("fcn/fcn-mnist_int8.tflite", "cpu"): (True, "ok"),
                        ("fcn/fcn-mnist_int8.tflite", "stm32h7"): (True, "ok"),
                        ("fcn/fcn-mnist_int8.onnx", "cpu"): (False, "not benched"),
                        ("fcn/fcn-mnist_int8.onnx", "stm32h7"): (False, "unsupported")}


def test_junit_and_markdown_count_every_check(run, tmp_path):
    text = MET + '[[rule]]\nname = "tiny"\nprecision = "int8"\nmax_size_bytes = 1024\n'
    junit, markdown = tmp_path / "out" / "gate.xml", tmp_path / "summary.md"
    done = gate(run, "--policy", policy(tmp_path, text), "--junit", junit, "--markdown",
                markdown, "--json")
    assert done.exit_code == 1
    checks = json.loads(done.stdout)["checks"]
    failed = [c for c in checks if not c["passed"]]
    assert len(checks) == MET_CHECKS + 2 and len(failed) == 2

    root = ET.parse(junit).getroot()
    cases = root.findall("./testsuite/testcase")
    assert root.tag == "testsuites" and int(root.get("tests")) == len(cases) == len(checks)
    assert int(root.get("failures")) == len(root.findall(".//failure")) == len(failed)
    assert len(root.findall("testsuite")) == 5  # one per rule
    assert all(len({c.get("name") for c in s}) == len(s) for s in root.findall("testsuite"))
    [suite] = [s for s in root.findall("testsuite") if s.get("name") == "tiny"]
    assert "budget <= 1.0 KiB" in suite.find("testcase/failure").get("message")

    text = markdown.read_text()
    assert text.startswith("### edgeconv gate: FAILED")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| result | rule |") and len(table) == 1 + len(checks)
    assert sum("FAIL" in line for line in table) == 2


def test_results_without_a_manifest_have_no_model(run, tmp_path):
    lonely = tmp_path / "elsewhere"
    lonely.mkdir()
    (lonely / "results.json").write_text((run / "results.json").read_text())
    text = '[[rule]]\nname = "by model"\nmodel = "fcn-*"\ntarget = "cpu"\nmax_p50_ms = 1000\n'
    done = gate(lonely, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 2
    assert "rule 'by model' selects nothing: no bench row has model fcn-*" in done.stderr
    linked = gate(lonely, run / "manifest.json", "--policy", policy(tmp_path, text))
    assert linked.exit_code == 0, linked.output


def test_bad_inputs_exit_2(tmp_path):
    path = policy(tmp_path, MET)
    assert "does not exist" in gate(tmp_path / "nope", "--policy", path).stderr
    assert "has no manifest.json or results.json" in gate(tmp_path, "--policy", path).stderr
    (tmp_path / "x.json").write_text('{"schema_version": 9, "results": []}')
    done = gate(tmp_path / "x.json", "--policy", path)
    assert done.exit_code == 2 and "schema_version 9" in done.stderr
    (tmp_path / "x.json").write_text('{"schema_version": 1, "results": [{"artifact": "a"}]}')
    done = gate(tmp_path / "x.json", "--policy", path)
    assert done.exit_code == 2 and len(done.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'x.json'}: results[0].sha256 is missing" in done.stderr
    (tmp_path / "x.json").write_text("{")
    assert "not valid JSON" in gate(tmp_path / "x.json", "--policy", path).stderr
    os.mkfifo(tmp_path / "fifo.json")  # reading it would block: refused unread
    for special in (tmp_path / "fifo.json", "/proc/self/mem", "/dev/null"):
        done = gate(special, "--policy", path)
        assert done.exit_code == 2 and "not a regular file" in done.stderr, done.stderr


def test_sizes():
    assert parse_size(1000) == 1000
    assert parse_size("80 KiB") == 81920 and parse_size("1.5MiB") == 1572864
    assert parse_size("64 kB") == 64000 and parse_size("2 MB") == 2_000_000
    assert parse_size("1 KiB") == 1024 and parse_size("0") == 0
    for bad in ("80 K", "-1", "lots", 1.5, True, None, float("nan"), 10**400, "9" * 400 + " B",
                "2 TiB"):
        with pytest.raises(EdgeconvError):
            parse_size(bad)


def test_the_repository_policy_is_valid():
    """gate.toml at the root is what .ci/run gates the project's own export with."""
    rules = load_policy(ROOT / "gate.toml").rules
    assert rules and all(rule.budgets for rule in rules)


def test_gate_imports_no_runtime(run, tmp_path):
    """A CI job gates on the JSON files alone: no TensorFlow, numpy or runtime needed."""
    code = ("import sys; from edgeconv.cli import app; from typer.testing import CliRunner;"
            f"r = CliRunner().invoke(app, ['gate', {str(run)!r}, '--policy',"
            f" {str(policy(tmp_path, MET))!r}]); print(r.exit_code,"
            " [m for m in ('tensorflow', 'numpy', 'onnxruntime', 'ai_edge_litert')"
            " if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.stdout.split("\n")[-2] == "0 []", done.stdout + done.stderr


# --- how sure a figure is: budgets on an interval's bound (literal files, no TensorFlow) ---

def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _measured_run(root: Path, *, n: int = 1000, only_float: int = 12, only_int8: int = 4,
                  intervals: bool = True, rows: list[dict] | None = None) -> Path:
    """An export as export writes it since it records how sure its figures are: a Keras
    float model right on 900 of `n` images, an int8 file that only it gets right on
    `only_float` of them and only it on `only_int8` (the drop 0.8 points with the defaults,
    its 95% paired interval [-0.02, 1.66]); `intervals=False`: a manifest written before."""
    from edgeconv import stats

    run = root / "fcn"
    float_right = 900 * n // 1000
    both = float_right - only_float
    paired = stats.paired_counts(both, only_float, only_int8, n - both - only_float - only_int8)

    def artifact(fmt, precision, right, **extra):
        accuracy = right / n
        figures = {"eval_samples": n, "accuracy_interval": _wilson(right, n),
                   "agreement_interval": _wilson(n - only_float - only_int8, n)}
        return {"path": f"fcn-mnist_{precision}.{fmt}", "format": fmt, "precision": precision,
                "size_bytes": 62_000, "sha256": _sha(f"{fmt}{precision}"), "accuracy": accuracy,
                "agreement": (n - only_float - only_int8) / n,
                **(figures if intervals else {}), **extra}

    versus = {**paired.to_dict(), "confidence": 0.95,
              "drop_interval": [paired.drop_interval.low, paired.drop_interval.high],
              "method": paired.drop_interval.method}
    artifacts = [artifact("keras", "fp32", float_right),
                 artifact("tflite", "int8", both + only_int8,
                          **({"versus_float": versus} if intervals else {}))]
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "model": {"name": "fcn-mnist", "trained": True},
        "dataset": {"name": "fashion_mnist"}, "float_accuracy": float_right / n,
        "artifacts": artifacts}))
    if rows is not None:
        (run / "results.json").write_text(json.dumps({"schema_version": 1, "results": rows}))
    return run


def _wilson(right: int, n: int) -> list[float]:
    from edgeconv import stats

    interval = stats.wilson(right, n)
    return [interval.low, interval.high]


def _bench_row(target: str, p50: float, low: float | None, high: float | None,
               timed_on: str = "target", runs: int = 50) -> dict:
    return {"artifact": "fcn/fcn-mnist_int8.tflite", "sha256": _sha("tfliteint8"),
            "format": "tflite", "precision": "int8", "runtime": "litert", "target": target,
            "threads": 1, "status": "ok", "timed_on": timed_on, "runs": runs,
            "latency_ms": {"p50": p50, "p90": p50 * 1.2, "p99": p50 * 1.5, "mean": p50,
                           "std": p50 / 10, "min": p50 * 0.9, "p50_low": low, "p50_high": high}}


DROP = '[[rule]]\nname = "int8 drop"\nprecision = "int8"\nmax_accuracy_drop = 1.0\n'


def _checks(done) -> dict[str, dict]:
    return {c["budget"]: c for c in json.loads(done.stdout)["checks"]}


def test_a_drop_within_budget_on_the_point_fails_on_its_upper_bound(tmp_path):
    run = _measured_run(tmp_path)
    point = gate(run, "--policy", policy(tmp_path, DROP), "--json")
    assert point.exit_code == 0, point.output
    check = _checks(point)["max_accuracy_drop"]
    assert check["result"] == "PASS" and check["value"] == pytest.approx(0.8)
    assert check["bound"] is None

    bound = gate(run, "--policy", policy(tmp_path, DROP + "at_confidence = 0.95\n"), "--json")
    assert bound.exit_code == 1, bound.output
    check = _checks(bound)["max_accuracy_drop"]
    # judged on the upper end of the recorded 95% paired interval, 1.66 points
    assert check["result"] == "FAIL" and check["bound"] == "upper"
    assert check["value"] == pytest.approx(1.659, abs=1e-3)
    assert check["point"] == pytest.approx(0.8)
    assert check["interval"] == [pytest.approx(-0.016, abs=1e-3), pytest.approx(1.659, abs=1e-3)]
    assert check["samples"] == 1000 and check["confidence"] == 0.95

    # the reports show the bound the check was judged on
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    table = gate(run, "--policy", policy(tmp_path, DROP + "at_confidence = '95%'\n"),
                 "--junit", junit, "--markdown", markdown)
    assert table.exit_code == 1
    assert "upper 95% bound of [-0.02, 1.66] pt; point 0.80 pt; 1,000 images" in table.stdout
    assert "upper 95% bound of [-0.02, 1.66] pt" in markdown.read_text()
    [failure] = ET.parse(junit).getroot().findall(".//failure")
    assert failure.get("type") == "budget"
    assert failure.get("message").startswith("measured 1.66 pt, budget <= 1.00 pt, judged on"
                                              " the upper 95% bound of [-0.02, 1.66] pt")


def test_a_clear_drop_passes_on_its_bound_and_another_confidence_is_recomputed(tmp_path):
    from edgeconv import stats

    # 10x the images, the same 0.8-point drop: the interval [0.59, 1.02] still straddles 1.0
    run = _measured_run(tmp_path, n=10_000, only_float=100, only_int8=20)
    done = gate(run, "--policy", policy(tmp_path, DROP + "at_confidence = 0.95\n"), "--json")
    assert done.exit_code == 1 and _checks(done)["max_accuracy_drop"]["value"] > 1.0
    # at 90% the upper bound is recomputed from the paired counts, and within the budget
    done = gate(run, "--policy", policy(tmp_path, DROP + "at_confidence = 0.9\n"), "--json")
    assert done.exit_code == 0, done.output
    check = _checks(done)["max_accuracy_drop"]
    expected = stats.paired_counts(8900, 100, 20, 980, 0.9).drop_interval.high * 100
    assert check["value"] == pytest.approx(expected) and check["value"] < 1.0
    assert check["confidence"] == 0.9 and "recomputed" in check["method"]
    # Wilson too: the lower bound of the accuracy at 99% is below the one at 95%
    text = "[[rule]]\nname = \"acc\"\nformat = \"keras\"\nmin_accuracy = 0.893\n"
    at95 = _checks(gate(run, "--policy", policy(tmp_path, text + "at_confidence = 0.95\n"),
                        "--json"))["min_accuracy"]
    at99 = _checks(gate(run, "--policy", policy(tmp_path, text + "at_confidence = 0.99\n"),
                        "--json"))["min_accuracy"]
    assert at95["result"] == "PASS" and at99["result"] == "FAIL"
    assert at99["value"] == pytest.approx(stats.wilson(9000, 10_000, 0.99).low)


def test_without_intervals_a_check_at_confidence_is_undecided_and_fails_the_gate(tmp_path):
    run = _measured_run(tmp_path, intervals=False)  # a manifest written before intervals
    text = DROP + "min_agreement = 0.9\nat_confidence = 0.95\n"
    junit = tmp_path / "gate.xml"
    done = gate(run, "--policy", policy(tmp_path, text), "--json", "--junit", junit)
    assert done.exit_code == 1, done.output
    report = json.loads(done.stdout)
    assert not report["passed"] and report["failed"] == report["undecided"] == 2
    checks = _checks(done)
    assert {c["result"] for c in checks.values()} == {"UNDECIDED"}
    assert checks["max_accuracy_drop"]["point"] == pytest.approx(0.8)
    assert "no paired comparison with the float model (versus_float) recorded" \
           in checks["max_accuracy_drop"]["reason"]
    assert "re-export with this edgeconv" in checks["min_agreement"]["reason"]
    assert {f.get("type") for f in ET.parse(junit).getroot().findall(".//failure")} \
        == {"undecided"}
    table = gate(run, "--policy", policy(tmp_path, text))
    assert "UNDECIDED" in table.stdout
    assert table.stdout.strip().splitlines()[-1].startswith(
        "gate FAILED: 2 of 2 checks fail (2 undecided)")


def test_min_eval_samples_fails_and_leaves_the_accuracy_undecided(tmp_path):
    run = _measured_run(tmp_path)  # 1,000 images
    text = DROP + "min_eval_samples = 5000\n"
    done = gate(run, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 1
    checks = _checks(done)
    assert checks["min_eval_samples"]["result"] == "FAIL"
    assert checks["min_eval_samples"]["value"] == 1000
    assert checks["max_accuracy_drop"]["result"] == "UNDECIDED"
    assert "measured on 1,000 images, fewer than the rule's min_eval_samples 5,000" \
           in checks["max_accuracy_drop"]["reason"]
    done = gate(run, "--policy", policy(tmp_path, DROP + "min_eval_samples = 1000\n"), "--json")
    assert done.exit_code == 0 and _checks(done)["min_eval_samples"]["result"] == "PASS"
    # a manifest that recorded no image count cannot tell
    old = _measured_run(tmp_path / "old", intervals=False)
    done = gate(old, "--policy", policy(tmp_path, DROP + "min_eval_samples = 10\n"), "--json")
    assert done.exit_code == 1
    assert {c["result"] for c in _checks(done).values()} == {"UNDECIDED"}


def test_latency_on_its_bound_and_never_on_an_emulated_board(tmp_path):
    rows = [_bench_row("cpu", 1.0, 0.95, 1.2), _bench_row("rpi5", 90.0, 85.0, 95.0, "emulated")]
    run = _measured_run(tmp_path, rows=rows)
    text = '[[rule]]\nname = "lat"\ntarget = "*"\nmax_p50_ms = 1.1\n'
    done = gate(run, "--policy", policy(tmp_path, text), "--json")
    # the emulated row (90 ms) is not judged: only the cpu row, which passes on its point
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert [c["subject"] for c in report["checks"]] == ["fcn/fcn-mnist_int8.tflite @ cpu"
                                                         " (litert x1)"]
    [note] = report["notes"]
    assert "max_p50_ms skipped for 1 row(s) timed on an emulated board" in note
    done = gate(run, "--policy", policy(tmp_path, text + "at_confidence = 0.95\n"), "--json")
    assert done.exit_code == 1
    check = _checks(done)["max_p50_ms"]
    assert (check["result"], check["value"], check["point"]) == ("FAIL", 1.2, 1.0)
    # a rule whose latency budget selects only emulated rows is an error, not a pass
    emulated = text.replace('"*"', '"rpi5"')
    done = gate(run, "--policy", policy(tmp_path, emulated))
    assert done.exit_code == 2
    assert done.stderr.startswith("error: rule 'lat' judges latency (max_p50_ms) but selects"
                                  " only rows timed on an emulated board (1)")


def test_a_p50_without_an_interval_is_undecided_at_confidence(tmp_path):
    run = _measured_run(tmp_path, rows=[_bench_row("cpu", 1.0, None, None, runs=5)])
    text = '[[rule]]\nname = "lat"\ntarget = "cpu"\nmax_p50_ms = 2\nat_confidence = 0.95\n'
    done = gate(run, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 1
    check = _checks(done)["max_p50_ms"]
    assert check["result"] == "UNDECIDED" and "re-bench with --runs 6 or more" in check["reason"]
    assert gate(run, "--policy", policy(tmp_path, text.replace("at_confidence = 0.95\n", ""))
                ).exit_code == 0


@pytest.mark.parametrize("text, message", [
    (DROP + "at_confidence = 1.0", "at_confidence takes a confidence from 0.5 to 0.999"),
    (DROP + "at_confidence = 95", "at_confidence takes a confidence"),
    (DROP + "at_confidence = 'high'", "at_confidence takes a confidence"),
    (DROP + "at_confidence = true", "at_confidence takes a confidence"),
    ("[[rule]]\nname = 'x'\nmax_size_bytes = 1\nat_confidence = 0.95",
     "at_confidence has no budget to act on (max_size_bytes is judged on the point)"),
    ("[[rule]]\nname = 'x'\nat_confidence = 0.95", "no budget"),
    ("[[rule]]\nname = 'x'\ntarget = 'cpu'\nmax_p50_ms = 1\nat_confidence = 0.9",
     "at_confidence 0.9 cannot judge max_p50_ms: its interval is recorded at 0.95 only"),
    ("[[rule]]\nname = 'x'\ntarget = 'cpu'\nmax_accuracy_drop = 1\nat_confidence = 0.95",
     "max_accuracy_drop at_confidence is judged on the paired comparison"),
    (DROP + "min_eval_samples = 0", "min_eval_samples takes a whole number of images"),
    (DROP + "min_eval_samples = 1.5", "min_eval_samples takes a whole number of images"),
    (DROP + "min_eval_samples = true", "min_eval_samples takes a whole number of images"),
    (DROP + "at_confidance = 0.95", "did you mean 'at_confidence'?"),
])
def test_confidence_keys_are_checked_with_the_policy(tmp_path, text, message):
    done = gate(tmp_path, "--policy", policy(tmp_path, text))
    assert done.exit_code == 2, done.output
    [line] = done.stderr.strip().splitlines()
    assert message in line, line


def test_an_mcu_firmware_row_is_gated_on_exact_memory_and_never_on_its_estimate(run, tmp_path):
    """A row the firmware ran (bench on an MCU target with the toolchain and a TFLM tree):
    timed_on "emulated", no latency_ms, an estimate_ms apart. RAM and flash budgets judge its
    exact figures; a latency budget never judges the estimate."""
    manifest = json.loads((run / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["path"].endswith("_int8.tflite"))
    row = {"artifact": f"fcn/{int8['path']}", "sha256": int8["sha256"], "format": "tflite",
           "precision": "int8", "runtime": "tflite-micro", "target": "stm32h7", "threads": 1,
           "status": "ok", "timed_on": "emulated", "size_bytes": int8["size_bytes"],
           "latency_ms": None, "arena_bytes": 16_000, "ram_bytes": 17_500,
           "stack_bytes": 1_000, "flash_bytes": 140_000, "fits": True,
           "estimate_ms": {"low": 0.2, "mid": 0.25, "high": 0.3, "cpi_low": 0.67,
                           "cpi_mid": 0.84, "cpi_high": 1.01, "basis": "estimate: ..."},
           "mcu": {"core": "cortex-m7", "kernels": "cmsis-nn", "invoke_instructions": 140_000}}
    results = tmp_path / "results-stm32h7.json"
    results.write_text(json.dumps({"schema_version": 1, "results": [row]}))
    fits = policy(tmp_path, '[[rule]]\nname = "fits"\ntarget = "stm32h7"\nmust_fit = true\n'
                            'max_arena_bytes = "16 KiB"\nmax_flash_bytes = "128 KiB"\n')
    done = gate(results, "--policy", fits, "--json")
    assert done.exit_code == 1, done.output
    checks = {c["budget"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["must_fit"]["passed"] and checks["max_arena_bytes"]["passed"]
    assert not checks["max_flash_bytes"]["passed"]  # 140,000 B > 128 KiB: the exact figure
    assert checks["max_flash_bytes"]["value"] == 140_000
    timed = policy(tmp_path, '[[rule]]\nname = "fast"\ntarget = "stm32h7"\nmax_p50_ms = 1\n')
    done = gate(results, "--policy", timed)
    assert done.exit_code == 2 and "emulated" in done.output  # never judged as a measurement
