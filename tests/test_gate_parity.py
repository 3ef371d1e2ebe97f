"""`edgeconv gate` on output parity budgets (min_cosine, min_snr_db, max_rmse, max_abs_diff)
and on models exported without labels: manifests written here from figures that
edgeconv.quant.output_parity computes on arrays (no TensorFlow), then a real user export of
a two-output Keras model with no labels when `edgeconv export PATH` can make one."""

from __future__ import annotations

import hashlib
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.quant.output_parity import output_parity
from test_gate import gate, policy  # the gate command and a policy file, as test_gate runs them

runner = CliRunner()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _outputs(seed: int = 0, images: int = 200) -> list[np.ndarray]:
    """A detector-like float reference: boxes (images, 4, 4) and scores (images, 3)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(images, 4, 4)).astype(np.float32),
            rng.uniform(size=(images, 3)).astype(np.float32)]


def _quantised(outputs: list[np.ndarray], step: float) -> list[np.ndarray]:
    """What an int8 file returns once dequantised: each output rounded to a grid of `step`."""
    return [np.round(o / step) * step for o in outputs]


def _artifact(fmt: str, precision: str, parity: list[dict] | None, **extra) -> dict:
    return {"path": f"det_{precision}.{fmt}", "format": fmt, "precision": precision,
            "size_bytes": 10_000, "sha256": _sha(f"{fmt}{precision}"), "accuracy": None,
            "agreement": None, "eval_samples": 200, "output_parity": parity, **extra}


def _write(run: Path, artifacts: list[dict], *, name: str = "det", **top) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "model": {"name": name, "trained": True}, "artifacts": artifacts,
        **top}, allow_nan=False))
    return run


NAMES = ["boxes", "scores"]


@pytest.fixture
def detector(tmp_path) -> tuple[Path, dict[str, dict]]:
    """A no-label two-output export: the Keras reference, an fp32 TFLite equal to it, an
    int8 TFLite on a 1/64 grid (boxes, spread ~3, lose more than scores in [0, 1])."""
    ref = _outputs()
    int8 = output_parity(ref, _quantised(ref, 1 / 64), NAMES)
    fp32 = output_parity(ref, [o.copy() for o in ref], NAMES)
    run = _write(tmp_path / "det", [_artifact("keras", "fp32", None),
                                    _artifact("tflite", "fp32", fp32),
                                    _artifact("tflite", "int8", int8)])
    return run, {e["output"]: e for e in int8}


def _checks(done) -> list[dict]:
    return json.loads(done.stdout)["checks"]


def test_parity_budgets_judge_the_worst_output_and_name_it(tmp_path, detector):
    run, int8 = detector
    worst_snr = min(e["snr_db"] for e in int8.values())
    worst_cos = min(e["cosine"] for e in int8.values())
    worst_rmse = max(e["rmse"] for e in int8.values())
    assert math.isfinite(worst_snr) and worst_cos < 1
    text = (f'[[rule]]\nname = "int8 close to float"\nprecision = "int8"\n'
            f"min_cosine = {worst_cos - 1e-6}\nmin_snr_db = {worst_snr - 0.01}\n"
            f"max_rmse = {worst_rmse * 1.01}\nmax_abs_diff = {1 / 128 + 1e-6}\n")
    done = gate(run, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 0, done.output
    checks = {c["budget"]: c for c in _checks(done)}
    assert set(checks) == {"min_cosine", "min_snr_db", "max_rmse", "max_abs_diff"}
    assert checks["min_snr_db"]["value"] == pytest.approx(worst_snr)
    assert checks["min_cosine"]["value"] == pytest.approx(worst_cos)
    assert checks["max_rmse"]["value"] == pytest.approx(worst_rmse)
    snr_worst = min(int8.values(), key=lambda e: e["snr_db"])["output"]
    assert checks["min_snr_db"]["output"] == snr_worst
    assert f"output '{snr_worst}' (worst of 2 outputs)" in checks["min_snr_db"]["reason"]

    # one dB more than the worst output gives: fails, on that output
    stricter = text.replace(f"min_snr_db = {worst_snr - 0.01}", f"min_snr_db = {worst_snr + 1}")
    failed = gate(run, "--policy", policy(tmp_path, stricter), "--json")
    assert failed.exit_code == 1, failed.output
    [bad] = [c for c in _checks(failed) if not c["passed"]]
    assert bad["budget"] == "min_snr_db" and bad["result"] == "FAIL"
    assert bad["output"] == snr_worst and bad["subject"] == "det/det_int8.tflite"
    table = gate(run, "--policy", policy(tmp_path, stricter))
    assert table.exit_code == 1
    assert f"{worst_snr:.2f} dB" in table.stdout and f"output '{snr_worst}'" in table.stdout
    assert "'int8 close to float'" in table.stdout.splitlines()[-1]


def test_a_coarser_int8_fails_where_a_finer_one_passes(tmp_path):
    # the same budget, two quantisation grids: the figures, not the test, decide
    ref = _outputs(seed=3)
    rule = '[[rule]]\nname = "snr"\nprecision = "int8"\nmin_snr_db = 30\nmin_cosine = 0.999\n'
    results = {}
    for step in (1 / 128, 1 / 4):
        run = _write(tmp_path / f"s{int(1 / step)}", [
            _artifact("keras", "fp32", None),
            _artifact("tflite", "int8", output_parity(ref, _quantised(ref, step), NAMES))])
        results[step] = gate(run, "--policy", policy(tmp_path, rule)).exit_code
    assert results == {1 / 128: 0, 1 / 4: 1}


def test_equal_outputs_and_the_reference_itself_pass_any_budget(tmp_path, detector):
    run, _ = detector
    text = ('[[rule]]\nname = "float files"\nprecision = "fp32"\nmin_snr_db = 1000\n'
            "min_cosine = 1\nmax_rmse = 0\nmax_abs_diff = 0\n")
    done = gate(run, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 0, done.output
    by_file = {}
    for c in _checks(done):
        by_file.setdefault(c["subject"], {})[c["budget"]] = c
    tflite, keras = by_file["det/det_fp32.tflite"], by_file["det/det_fp32.keras"]
    assert tflite["min_snr_db"]["value"] == "inf"  # JSON has no infinity: the SNR is "inf"
    assert "equal to the float reference's" in tflite["min_snr_db"]["reason"]
    assert tflite["max_rmse"]["value"] == 0.0
    assert keras["min_snr_db"]["value"] == "inf"
    assert "the float reference itself" in keras["min_cosine"]["reason"]
    table = gate(run, "--policy", policy(tmp_path, text))
    assert "inf dB (equal)" in table.stdout


def test_nan_outputs_and_an_all_zero_reference_fail_with_the_reason(tmp_path):
    ref = _outputs(seed=4, images=10)
    broken = [ref[0].copy(), ref[1].copy()]
    broken[1][0, 0] = np.nan
    zero_ref = [np.zeros((10, 4, 4), np.float32), ref[1]]
    run = _write(tmp_path / "bad", [
        _artifact("keras", "fp32", None),
        _artifact("tflite", "int8", output_parity(ref, broken, NAMES)),
        _artifact("onnx", "int8", output_parity(zero_ref, [ref[0], ref[1]], NAMES))])
    done = gate(run, "--policy", policy(tmp_path, '[[rule]]\nname = "p"\nprecision = "int8"\n'
                                                  "min_snr_db = 10\nmax_rmse = 1e6\n"), "--json")
    assert done.exit_code == 1, done.output
    checks = {(c["subject"], c["budget"]): c for c in _checks(done)}
    nan = checks[("bad/det_int8.tflite", "min_snr_db")]
    assert nan["result"] == "FAIL" and nan["value"] is None and nan["output"] == "scores"
    assert "1 of 30 values of the file are NaN or infinite" in nan["reason"]
    assert checks[("bad/det_int8.tflite", "max_rmse")]["result"] == "FAIL"
    zero = checks[("bad/det_int8.onnx", "min_snr_db")]
    assert zero["result"] == "FAIL" and zero["value"] == "-inf" and zero["output"] == "boxes"
    assert "all zero" in zero["reason"]
    # rmse is still defined there, and within its budget
    assert checks[("bad/det_int8.onnx", "max_rmse")]["result"] == "PASS"


def test_a_manifest_without_parity_leaves_parity_budgets_undecided(tmp_path):
    old = _write(tmp_path / "old", [
        {k: v for k, v in _artifact("tflite", "int8", None, accuracy=0.9).items()
         if k != "output_parity"}], float_accuracy=0.91)
    done = gate(old, "--policy", policy(tmp_path, '[[rule]]\nname = "p"\nmin_cosine = 0.9\n'),
                "--json")
    assert done.exit_code == 1, done.output
    [check] = _checks(done)
    assert check["result"] == "UNDECIDED" and not check["passed"]
    assert "no output parity recorded" in check["reason"]
    assert f"{old / 'manifest.json'}; re-export with this edgeconv" in check["reason"]
    # a file missing its parity beside files that have it is said so
    ref = _outputs(seed=5, images=5)
    newer = _write(tmp_path / "new", [
        _artifact("tflite", "int8", output_parity(ref, ref, NAMES)),
        _artifact("onnx", "int8", None)])
    done = gate(newer, "--policy", policy(tmp_path, '[[rule]]\nname = "p"\nmin_cosine = 0.9\n'),
                "--json")
    assert done.exit_code == 1
    undecided = [c for c in _checks(done) if c["undecided"]]
    assert [c["subject"] for c in undecided] == ["new/det_int8.onnx"]
    assert "though other files of its manifest have it" in undecided[0]["reason"]


def test_accuracy_budgets_do_not_apply_to_a_model_without_labels(tmp_path, detector):
    run, _ = detector
    only_accuracy = '[[rule]]\nname = "acc"\nprecision = "int8"\nmin_accuracy = 0.9\n'
    done = gate(run, "--policy", policy(tmp_path, only_accuracy))
    assert done.exit_code == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert "rule 'acc' judges min_accuracy but selects only files of models exported" \
           " without labels (1: det/det_int8.tflite)" in line
    assert "min_cosine" in line

    # beside a parity budget: the accuracy budget is skipped with a note, parity judged
    mixed = ('[[rule]]\nname = "int8"\nprecision = "int8"\nmin_agreement = 0.97\n'
             "max_accuracy_drop = 1\nmin_cosine = 0.9\n")
    done = gate(run, "--policy", policy(tmp_path, mixed), "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert [c["budget"] for c in report["checks"]] == ["min_cosine"]
    assert any("min_agreement not applicable to 1 file(s) of models exported without labels"
               in n for n in report["notes"])
    assert any("max_accuracy_drop not applicable" in n for n in report["notes"])


def test_a_labelled_and_an_unlabelled_export_gate_together(tmp_path, detector):
    """One policy over a zoo-like classifier (accuracy and parity) and the detector (parity
    only): the classifier is judged on both, the detector on parity, a note for the rest."""
    run, _ = detector
    ref = [np.random.default_rng(6).normal(size=(100, 10)).astype(np.float32)]
    classifier = _write(tmp_path / "cls", [
        _artifact("keras", "fp32", None, accuracy=0.92),
        _artifact("tflite", "int8", output_parity(ref, _quantised(ref, 1 / 32), ["logits"]),
                  accuracy=0.91, agreement=0.98)], name="fcn-mnist", float_accuracy=0.92)
    text = ('[[rule]]\nname = "int8"\nprecision = "int8"\nmin_agreement = 0.97\n'
            "min_cosine = 0.99\n")
    done = gate(classifier, run, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 0, done.output
    checks = [(c["subject"], c["budget"]) for c in _checks(done)]
    assert checks == [("cls/det_int8.tflite", "min_agreement"),
                      ("cls/det_int8.tflite", "min_cosine"),
                      ("det/det_int8.tflite", "min_cosine")]
    # a classifier whose accuracy is missing still fails (it has labels: a missing figure)
    broken = _write(tmp_path / "cls2", [
        _artifact("tflite", "int8", output_parity(ref, ref, ["logits"]), agreement=0.99)],
        float_accuracy=0.9)
    done = gate(broken, "--policy", policy(tmp_path, '[[rule]]\nname = "a"\nmin_accuracy = 0.5\n'),
                "--json")
    assert done.exit_code == 1
    [check] = _checks(done)
    assert check["result"] == "FAIL" and "no accuracy recorded" in check["reason"]


def test_min_eval_samples_guards_parity_too(tmp_path, detector):
    run, _ = detector
    text = ('[[rule]]\nname = "p"\nprecision = "int8"\nmin_cosine = 0.5\n'
            "min_eval_samples = 1000\n")
    done = gate(run, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 1
    checks = {c["budget"]: c for c in _checks(done)}
    assert checks["min_cosine"]["result"] == "UNDECIDED"
    assert "fewer than the rule's min_eval_samples 1,000" in checks["min_cosine"]["reason"]
    assert checks["min_eval_samples"]["result"] == "FAIL"


@pytest.mark.parametrize("text, message", [
    ("[[rule]]\nname = 'x'\nmin_cosine = 1.5", "min_cosine takes a number >= 0 and <= 1"
                                               " (a cosine similarity)"),
    ("[[rule]]\nname = 'x'\nmin_cosine = '99%'", "min_cosine takes a number"),
    ("[[rule]]\nname = 'x'\nmin_snr_db = -3", "min_snr_db takes a number >= 0 and <= 1,000"
                                              " (decibels)"),
    ("[[rule]]\nname = 'x'\nmin_snr_db = nan", "min_snr_db takes a number"),
    ("[[rule]]\nname = 'x'\nmax_rmse = inf", "max_rmse takes a number >= 0 and <= 1e+30"),
    ("[[rule]]\nname = 'x'\nmax_abs_dif = 1", "did you mean 'max_abs_diff'?"),
    ("[[rule]]\nname = 'x'\ntarget = 'cpu'\nmin_cosine = 0.9",
     "min_cosine judges the output parity with the float model that manifest.json records"),
    ("[[rule]]\nname = 'x'\nmin_snr_db = 30\nat_confidence = 0.95",
     "at_confidence has no budget to act on"),
])
def test_parity_keys_are_checked_with_the_policy(tmp_path, text, message):
    done = gate(tmp_path, "--policy", policy(tmp_path, text))
    assert done.exit_code == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr


def test_junit_and_markdown_show_parity_checks(tmp_path, detector):
    run, int8 = detector
    worst = min(e["cosine"] for e in int8.values())
    text = f'[[rule]]\nname = "cos"\nprecision = "int8"\nmin_cosine = {(worst + 1) / 2}\n'
    junit, markdown = tmp_path / "g.xml", tmp_path / "g.md"
    done = gate(run, "--policy", policy(tmp_path, text), "--junit", junit,
                "--markdown", markdown)
    assert done.exit_code == 1
    [failure] = ET.parse(junit).getroot().findall(".//failure")
    assert failure.get("message").startswith(f"measured {worst:.6f}, budget >= ")
    assert "worst of 2 outputs" in failure.get("message")
    assert "min_cosine" in markdown.read_text() and "worst of 2 outputs" in markdown.read_text()


# --- Check c: a real user export of a two-output Keras model with no labels ----------------

@pytest.fixture
def two_outputs(two_output_export) -> Path:
    """The two-output, no-label export (tests/conftest.py)."""
    return two_output_export[0]


def test_a_user_export_without_labels_gates_on_parity(tmp_path, two_outputs):
    manifest = json.loads((two_outputs / "manifest.json").read_text())
    assert manifest["float_accuracy"] is None
    int8 = [a for a in manifest["artifacts"] if a["precision"] == "int8"]
    assert int8 and all(a["accuracy"] is None and len(a["output_parity"]) == 2 for a in int8)
    worst = min(e["snr_db"] for a in int8 for e in a["output_parity"])
    meets = (f'[[rule]]\nname = "int8 stays close"\nprecision = "int8"\n'
             f"min_cosine = 0.99\nmin_snr_db = {worst - 1:.3f}\nmin_agreement = 0.97\n"
             '[[rule]]\nname = "float files"\nprecision = "fp32"\nmin_snr_db = 60\n')
    done = gate(two_outputs, "--policy", policy(tmp_path, meets), "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    budgets = {(c["subject"].split("/")[-1], c["budget"]) for c in report["checks"]}
    assert ("two_int8.tflite", "min_snr_db") in budgets
    assert ("two_int8.onnx", "min_cosine") in budgets
    assert not any(b == "min_agreement" for _, b in budgets)  # no labels: not applicable
    assert any("min_agreement not applicable" in n for n in report["notes"])

    # one dB above the worst output's SNR: the file with that output fails, naming it
    fails = meets.replace(f"min_snr_db = {worst - 1:.3f}", f"min_snr_db = {worst + 1:.3f}")
    done = gate(two_outputs, "--policy", policy(tmp_path, fails), "--json")
    assert done.exit_code == 1, done.output
    failed = [c for c in json.loads(done.stdout)["checks"] if not c["passed"]]
    assert failed and all(c["budget"] == "min_snr_db" and c["output"] for c in failed)
    assert any(c["value"] == pytest.approx(worst) for c in failed)

    # accuracy alone has nothing to judge there: one line, exit 2
    done = gate(two_outputs, "--policy", policy(
        tmp_path, '[[rule]]\nname = "acc"\nmin_accuracy = 0.5\n'))
    assert done.exit_code == 2 and "exported without labels" in done.stderr


def test_the_report_shows_a_user_export_without_labels(tmp_path, two_outputs):
    out = tmp_path / "report"
    done = runner.invoke(app, ["report", str(two_outputs), "-o", str(out), "--no-arithmetic",
                               "--no-plots"])
    assert done.exit_code == 0, done.output
    md = (out / "report.md").read_text()
    section = md[md.index("## Your models"):]
    assert "**two** (run/): from `two.keras` (keras)" in section
    assert "No labels: no accuracy" in section
    for name in ("two_int8.tflite", "two_int8.onnx", "two_fp32.onnx"):
        assert f"`{name}`" in section


def test_a_zoo_export_gates_on_parity_as_a_user_export_does(tmp_path, benched_fcn):
    """The same budgets on the real fcn-mnist export (labels, and parity on every file):
    judged beside its accuracy budgets, passing and failing on its own figures."""
    manifest = json.loads((benched_fcn / "manifest.json").read_text())
    int8 = [a for a in manifest["artifacts"] if a["precision"] == "int8"]
    assert int8 and all(a["output_parity"] for a in int8)
    snrs = sorted(e["snr_db"] for a in int8 for e in a["output_parity"])
    worst = snrs[0]
    # a bound between the worst file and the next: exactly the worst one fails it
    above = (worst + snrs[1]) / 2 if len(snrs) > 1 else worst + 0.5
    text = (f'[[rule]]\nname = "int8"\nprecision = "int8"\nmin_agreement = 0.5\n'
            f"min_snr_db = {worst - 0.5:.3f}\nmin_cosine = 0.5\n")
    done = gate(benched_fcn, "--policy", policy(tmp_path, text), "--json")
    assert done.exit_code == 0, done.output
    budgets = [c["budget"] for c in _checks(done)]
    assert budgets.count("min_agreement") == len(int8) == budgets.count("min_snr_db")
    done = gate(benched_fcn, "--policy", policy(
        tmp_path, text.replace(f"{worst - 0.5:.3f}", f"{above:.6f}")), "--json")
    assert done.exit_code == 1
    [failed] = [c for c in _checks(done) if not c["passed"]]
    assert failed["budget"] == "min_snr_db" and failed["value"] == pytest.approx(worst)


def test_a_manifest_with_malformed_parity_is_one_line(tmp_path):
    ref = _outputs(seed=7, images=4)
    entries = output_parity(ref, _quantised(ref, 0.1), NAMES)
    entries[1]["cosine"] = 1.5
    run = _write(tmp_path / "bad", [_artifact("tflite", "int8", entries)])
    done = gate(run, "--policy", policy(tmp_path, '[[rule]]\nname = "p"\nmin_cosine = 0.5\n'))
    assert done.exit_code == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert "artifacts[0].output_parity[1].cosine must be a finite number from -1 to 1" in line


def test_a_file_known_only_from_a_bench_row_has_no_parity_to_judge(tmp_path, detector):
    run, _ = detector
    manifest = json.loads((run / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["precision"] == "int8")
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"schema_version": 1, "results": [{
        "artifact": f"det/{int8['path']}", "sha256": int8["sha256"], "format": "tflite",
        "precision": "int8", "runtime": "litert", "target": "cpu", "threads": 1,
        "status": "ok", "timed_on": "target"}]}))
    cosine = policy(tmp_path, '[[rule]]\nname = "p"\nmin_cosine = 0.5\n')
    done = gate(results, "--policy", cosine, "--json")
    assert done.exit_code == 1
    [check] = _checks(done)
    assert check["result"] == "UNDECIDED" and "pass its export directory" in check["reason"]
    # with the export given, the same file is judged on its manifest's figures
    int8_only = policy(tmp_path, '[[rule]]\nname = "p"\nprecision = "int8"\nmin_cosine = 0.5\n')
    done = gate(results, run, "--policy", int8_only, "--json")
    assert done.exit_code == 0, done.output
