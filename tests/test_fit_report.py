"""`edgeconv report STUDY` and `edgeconv gate STUDY` on hand-written study folders (the layout
`edgeconv fit` writes): the report's sections, table, verdict and plot, the articles'
MobileNet trade, and the gate of the recommended model's trial folder. The trial folder the
gate reads is a hand-written manifest.json and results.json, as tests/test_gate.py does for
what this machine cannot produce quickly. No TensorFlow: quick."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import fit_docs
from edgeconv.cli import app

runner = CliRunner()
WINNER = fit_docs.FINAL[1]  # the squeezenet point study() recommends


def report(*args):
    return runner.invoke(app, ["report", *map(str, args)])


def gate(*args):
    return runner.invoke(app, ["gate", *map(str, args)])


def test_report_of_a_study_has_its_sections_table_verdict_and_plot(tmp_path):
    study = fit_docs.write(tmp_path / "demo", fit_docs.study())
    done = report(study, "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    md = (tmp_path / "out" / "report.md").read_text()
    verdict = ("squeezenet version 1.1 at 48x48, int8: 90.0% [88.0, 92.0], ~60 ms [48-72] on"
               " nucleo-l4r5zi, 98 KiB RAM, 293 KiB flash")
    assert f"study demo: {verdict}" in done.stdout  # the console's one line
    assert f"**Recommended**: {verdict}" in md
    for title in ("## Study demo: which model fits nucleo-l4r5zi",
                  "## Study demo: pruned before training", "## Study demo: successive halving",
                  "## Study demo: the answer",
                  "## Study demo: MobileNet width and resolution, measured"):
        assert title in md
    assert "## The articles' claims, measured" not in md  # a study alone: no claims
    # the request, and the pruning by reason kind
    assert "| latency ceiling | 100 ms |" in md and "| precisions | int8 |" in md
    assert "**2 pruned**, 5 kept. Pruned by RAM 1, flash 1, latency 1" in md
    assert "| mobilenet alpha 0.5 at 48x48 | int8 |" in md and "2048 KiB flash" in md
    # the rungs: epochs, trials, promoted, the best validation score
    assert "| 1 | 1 | 5 | 3 | squeezenet version 1.1 at 48x48: 70.0% |" in md
    assert "| 2 | 3 | 3 | 0 | mobilenet alpha 0.5 at 32x32: 88.0% |" in md
    # the Pareto table: front marks, the recommended one, the interval, band and its kind
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()
            if line.startswith("| ") and " int8 | " in line and "**F**" in line
            or "| mobilenet alpha 0.5 at 32x32 | int8 | 80.0%" in line}
    assert "**recommended**" in rows["squeezenet version 1.1 at 48x48"]
    assert "90.0% [88.0, 92.0] (180 images)" in rows["squeezenet version 1.1 at 48x48"]
    assert "~60 ms [48-72] (estimated)" in rows["squeezenet version 1.1 at 48x48"]
    assert "**F**" in rows["mobilenet alpha 0.25 at 48x48"]
    assert "**F**" not in rows["mobilenet alpha 0.5 at 32x32"]  # dominated
    assert "78.1 KiB (82.0 KiB, +5.0%)" in rows["mobilenet alpha 0.25 at 48x48"]
    assert "worst 5.0% off" in md
    # the plot: a PNG beside the report, embedded in the HTML
    png = tmp_path / "out" / "study-demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![study demo: accuracy vs latency](study-demo.png)" in md
    assert "data:image/png;base64," in (tmp_path / "out" / "report.html").read_text()


def test_the_mobilenet_trade_quotes_the_papers_macs_next_to_the_studys(tmp_path):
    study = fit_docs.write(tmp_path / "demo", fit_docs.study())
    assert report(study, "-o", tmp_path / "out", "--no-plots").exit_code == 0
    md = (tmp_path / "out" / "report.md").read_text()
    trade = md[md.index("MobileNet width and resolution, measured"):]
    # each table at the size (alpha) where the most candidates were trained: at 32 all three
    # alphas have a validation accuracy, at 48 only one; at alpha 0.25 both sizes do
    assert "**Width** at 32x32:" in trade and "**Resolution** at alpha 0.25:" in trade
    assert "| 1 | 6.00M | 1.00 | 6,000 | 50.0% (1 epoch(s)) | not a finalist | 569M (1.00) |" \
        " 1.00 |" in trade
    assert ("| 0.5 | 4.00M | 0.67 | 4,000 | 88.0% (3 epoch(s)) | int8 80.0% [78.0, 82.0] |"
            " 149M (0.26) | 0.25 |") in trade
    assert ("| 48x48 | 3.00M | 1.00 | 3,000 | 80.0% (3 epoch(s)) | int8 85.0% [83.0, 87.0] |"
            " 1.00 |") in trade
    assert "| 32x32 | 2.00M | 0.67 | 2,000 | 65.0% (1 epoch(s)) | not a finalist | 0.44 |" \
        in trade
    assert "[C] the paper's MACs at alpha 1 (ImageNet, 1000 classes): 569M at 224x224" in trade
    assert "../shared" not in md and "ARTICLES.md" not in md


def test_a_study_without_mobilenet_grid_has_no_trade_section(tmp_path):
    doc = fit_docs.study()
    keep = {"squeezenet-version1.1-48", "mobilenet-alpha0.25-48"}
    doc["space"]["candidates"] = [c for c in doc["space"]["candidates"] if c["key"] in keep]
    doc["pruning"] = [v for v in doc["pruning"] if v["candidate"] in keep]
    doc["rungs"] = [{"epochs": 1, "scores": {k: doc["rungs"][1]["scores"][k] for k in keep},
                     "promoted": []}]
    doc["trials"] = {k: v for k, v in doc["trials"].items() if k in keep}
    doc["finalists"] = [p for p in doc["finalists"] if p["candidate"] in keep]
    doc["front"] = [p["id"] for p in doc["finalists"]]
    study = fit_docs.write(tmp_path / "demo", doc)
    done = report(study, "-o", tmp_path / "out", "--no-plots")
    assert done.exit_code == 0, done.output
    assert "MobileNet width" not in (tmp_path / "out" / "report.md").read_text()


def test_a_study_without_a_winner_says_why(tmp_path):
    doc = fit_docs.study(winner=None, request={**fit_docs.study()["request"],
                                               "max_latency_ms": 30.0})
    doc["trials"][fit_docs.FINAL[2]]["error"] = "export failed:\nint8 calibration diverged"
    study = fit_docs.write(tmp_path / "slow", doc)
    done = report(study, "-o", tmp_path / "out", "--no-plots", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)["studies"][0]
    assert summary["winner"] is None
    assert summary["verdict"] == ("no finalist meets the request; the nearest, mobilenet alpha"
                                  " 0.25 at 48x48, int8, ~40 ms [32-48] > 30 ms")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**No recommendation**: no finalist meets the request" in md
    assert ("Trials with an error: mobilenet alpha 0.5 at 32x32: export failed: int8"
            " calibration diverged") in md  # free text, on one line


def test_a_study_with_other_runs_gets_the_claims_and_its_own_sections(tmp_path):
    study = fit_docs.write(tmp_path / "demo", fit_docs.study())
    run = _trial_run(tmp_path / "runs" / "fcn")
    done = report(study, run, "-o", tmp_path / "out", "--no-plots", "--no-arithmetic")
    assert done.exit_code == 0, done.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## The articles' claims, measured" in md and "## Study demo: the answer" in md
    assert "from 1 export(s)" in md  # the run; the study's trials are not collected again


def test_a_folder_of_studies_is_read_as_studies_and_their_trials_not_as_runs(tmp_path):
    study = fit_docs.write(tmp_path / "studies" / "demo", fit_docs.study())
    _trial_run(study / "trials" / WINNER)
    (tmp_path / "studies" / "notes").mkdir()  # a study.json edgeconv did not write: ignored
    (tmp_path / "studies" / "notes" / "study.json").write_text('{"title": "mine"}')
    done = report(tmp_path / "studies", "-o", tmp_path / "out", "--no-plots")
    assert done.exit_code == 0, done.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Study demo: the answer" in md and "## The articles' claims" not in md
    # with a run beside the studies: the claims too, from that run only
    _trial_run(tmp_path / "studies" / "fcn")
    done = report(tmp_path / "studies", "-o", tmp_path / "out", "--no-plots",
                  "--no-arithmetic")
    assert done.exit_code == 0, done.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## The articles' claims, measured" in md and "## Study demo: the answer" in md
    assert "from 1 export(s) and 1 results.json file(s)" in md


def test_a_hostile_study_is_one_line_and_writes_no_report(tmp_path):
    doc = fit_docs.study()
    doc["finalists"][0]["file"] = "../../../etc/passwd"
    study = fit_docs.write(tmp_path / "bad", doc)
    done = report(study, "-o", tmp_path / "out")
    assert done.exit_code == 2
    assert done.stderr.strip() == (f"error: {study / 'study.json'}: finalists[0].file must be"
                                   " a relative path inside the folder; got"
                                   " '../../../etc/passwd'")
    assert not (tmp_path / "out" / "report.md").exists()


# --- gate ---------------------------------------------------------------------------------

POLICY = """
[[rule]]
name = "int8 on the board"
precision = "int8"
min_accuracy = 0.85
max_size_bytes = "100 KiB"
"""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _trial_run(run: Path, accuracy: float = 0.9) -> Path:
    """A run folder as export and bench leave it: manifest.json (files not copied: judged on
    what it records) and a results.json row of its int8 file."""
    run.mkdir(parents=True)
    artifact = {"path": "squeezenet_int8.tflite", "format": "tflite", "precision": "int8",
                "size_bytes": 62_000, "sha256": _sha("int8"), "accuracy": accuracy,
                "agreement": 0.99}
    (run / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "model": {"name": "squeezenet", "trained": True},
        "dataset": {"name": "digits"}, "float_accuracy": 0.91, "artifacts": [artifact]}))
    (run / "results.json").write_text(json.dumps({"schema_version": 1, "results": [{
        "artifact": f"{run.name}/squeezenet_int8.tflite", "sha256": _sha("int8"),
        "format": "tflite", "precision": "int8", "runtime": "tflite-micro",
        "target": fit_docs.TARGET, "threads": None, "status": "ok", "timed_on": "emulated",
        "arena_bytes": 80_000, "ram_bytes": 100_000, "flash_bytes": 300_000, "fits": True}]}))
    return run


def _policy(tmp_path: Path, text: str = POLICY) -> Path:
    (tmp_path / "gate.toml").write_text(text)
    return tmp_path / "gate.toml"


def test_gate_of_a_study_gates_its_recommended_model(tmp_path):
    study = fit_docs.write(tmp_path / "demo", fit_docs.study())
    _trial_run(study / "trials" / WINNER)
    done = gate(study, "--policy", _policy(tmp_path), "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["passed"] and {c["subject"] for c in result["checks"]} == {
        f"{WINNER}/squeezenet_int8.tflite"}
    assert result["notes"][0] == (
        f"{study}: gating study demo's recommended model, squeezenet version 1.1 at 48x48,"
        f" int8 ({study / 'trials' / WINNER})")
    # the same file through study.json itself, and a budget it breaks: exit 1
    strict = _policy(tmp_path, POLICY.replace("0.85", "0.95"))
    assert gate(study / "study.json", "--policy", strict).exit_code == 1


def test_gate_of_a_study_without_a_winner_is_one_line_exit_2(tmp_path):
    doc = fit_docs.study(winner=None, status="finished",
                         verdict="no finalist meets the request; the nearest, x, 40 ms > 30 ms")
    study = fit_docs.write(tmp_path / "slow", doc)
    done = gate(study, "--policy", _policy(tmp_path))
    assert done.exit_code == 2
    assert done.stderr.strip() == (
        f"error: {study}: study demo (finished) recommends no model: no finalist meets the"
        " request; the nearest, x, 40 ms > 30 ms; nothing to gate")
    doc = fit_docs.study(winner=None, status="nothing-fits", finalists=[], front=[])
    done = gate(fit_docs.write(tmp_path / "none", doc), "--policy", _policy(tmp_path))
    assert done.exit_code == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.strip().endswith(
        "(nothing-fits) recommends no model: nothing in the space fits nucleo-l4r5zi: every"
        " point was pruned before training; nothing to gate")


def test_gate_refuses_a_trial_folder_that_leads_outside_the_study(tmp_path):
    study = fit_docs.write(tmp_path / "demo", fit_docs.study())
    (study / "trials").mkdir()
    os.symlink(_trial_run(tmp_path / "elsewhere"), study / "trials" / WINNER)
    done = gate(study, "--policy", _policy(tmp_path))
    assert done.exit_code == 2 and "leads outside" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_gate_of_a_study_imports_no_runtime(tmp_path):
    """A CI job gates a study on its JSON files alone, as it gates a run."""
    study = fit_docs.write(tmp_path / "demo", fit_docs.study())
    _trial_run(study / "trials" / WINNER)
    code = ("import sys; from edgeconv.cli import app; from typer.testing import CliRunner;"
            f"r = CliRunner().invoke(app, ['gate', {str(study)!r}, '--policy',"
            f" {str(_policy(tmp_path))!r}]); print(r.exit_code,"
            " [m for m in ('tensorflow', 'numpy', 'onnxruntime', 'ai_edge_litert', 'optuna')"
            " if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.stdout.split("\n")[-2] == "0 []", done.stdout + done.stderr
