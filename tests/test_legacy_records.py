"""Manifests and results written before the export restructuring (commit 3693e51, issue 20)
still load: `bench`, `gate`, `report` and `quant-report` of today on the literal files the old
code wrote (tests/fixtures/legacy: a trained zoo export, a user's Keras model, a user's ONNX
model, each with its cpu results.json). Each check compares what the command read with what
the old files say, so a loader that rejects or misreads the old schema fails here."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.runtimes.onnxrt import UNFUSED_QDQ_NOTE

# Whole commands on real files: out of the quick suite, run by CI (`-m e2e`).
pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "legacy"
FOLDERS = ("zoo", "user", "user-onnx")
EDGECONV = [sys.executable, "-m", "edgeconv"]


def edgeconv(*args, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, as a user runs it."""
    return subprocess.run([*EDGECONV, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, check=False)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def legacy(tmp_path):
    """A private copy of one fixture folder (commands may write beside it, never into the
    repository): legacy(name) -> (the folder, its manifest, its results, as the old code
    wrote them)."""

    def copy(name: str) -> tuple[Path, dict, dict]:
        run = shutil.copytree(FIXTURES / name, tmp_path / name)
        return run, _json(run / "manifest.json"), _json(run / "results.json")

    return copy


def test_the_fixtures_are_the_files_the_old_code_wrote():
    listed = {}
    for line in (FIXTURES / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    present = {str(p.relative_to(FIXTURES)) for folder in FOLDERS
               for p in (FIXTURES / folder).rglob("*") if p.is_file()}
    assert present == set(listed), "tests/fixtures/legacy changed: see its README"
    for name, digest in listed.items():
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest, name
    for folder in FOLDERS:  # and every file a manifest lists is the one it vouches for
        manifest = _json(FIXTURES / folder / "manifest.json")
        assert manifest["schema_version"] == 1 and manifest["versions"]["edgeconv"] == "0.1.0"
        for artifact in manifest["artifacts"]:
            data = (FIXTURES / folder / artifact["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"], artifact["path"]


# (folder, runtime): every runtime the old bench measured there, without the Keras rows
# (TensorFlow in a child would double the time; report and gate read the old Keras rows)
BENCHES = [("zoo", "litert"), ("zoo", "onnxruntime"), ("user", "litert"),
           ("user", "onnxruntime"), ("user-onnx", "onnxruntime")]


@pytest.mark.parametrize("name, runtime", BENCHES)
def test_bench_measures_an_old_export(legacy, tmp_path, name, runtime):
    run, manifest, _ = legacy(name)
    out = tmp_path / "bench.json"  # not in the run: report and gate read the old results
    done = edgeconv("bench", run, "--target", "cpu", "--runtime", runtime, "--runs", "3",
                    "--warmup", "1", "--min-time", "0", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _json(out)["results"]
    by_sha = {a["sha256"]: a for a in manifest["artifacts"]}
    formats = {"litert": "tflite", "onnxruntime": "onnx"}
    expected = {a["path"] for a in manifest["artifacts"] if a["format"] == formats[runtime]}
    assert {Path(r["artifact"]).name for r in rows} == expected
    for row in rows:
        artifact = by_sha[row["sha256"]]  # linked to the old manifest's file
        assert row["status"] == "ok" and row["runtime"] == runtime, row
        assert row["latency_ms"]["p50"] > 0
        # on the export's recorded evaluation images (old dataset record), as export measured
        one_image = 1 / artifact["eval_samples"]
        if _saturated_when_recorded(artifact):
            # recorded through onnxruntime's fused int8 kernels, which saturate on this x86
            # CPU (no VNNI); the file now runs unfused, its own arithmetic, and says so
            assert row["accuracy"] >= artifact["accuracy"] - 1.5 * one_image
            assert UNFUSED_QDQ_NOTE in row["notes"]
            continue
        assert row["accuracy"] == pytest.approx(artifact["accuracy"], abs=1.5 * one_image)


def _policy(tmp_path: Path, model: str, extra: str = "") -> Path:
    path = tmp_path / "gate.toml"
    path.write_text(f"""
[[rule]]
name = "int8 figures"
model = "{model}"
precision = "int8"
min_agreement = 0.5
max_accuracy_drop = 20.0
min_eval_samples = 300
max_size_bytes = "64 KiB"
min_cosine = 0.5

[[rule]]
name = "int8 runs on cpu"
model = "{model}"
precision = "int8"
must_run_on = "cpu"

[[rule]]
name = "cpu latency"
model = "{model}"
target = "cpu"
max_p50_ms = 1000
at_confidence = 0.95
{extra}""")
    return path


@pytest.mark.parametrize("name", FOLDERS)
def test_gate_decides_on_old_records(legacy, tmp_path, name):
    run, manifest, results = legacy(name)
    model = manifest["model"]["name"]
    done = edgeconv("gate", run, run / "results.json", "--policy", _policy(tmp_path, model),
                    "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["passed"] and report["failed"] == 0 and report["undecided"] == 0
    assert report["notes"] == []  # e.g. rows that link to no export
    checks: dict[tuple[str, str], dict] = {}
    for check in report["checks"]:
        subject = Path(check["subject"].split(" @ ")[0]).name
        checks[(subject, check["budget"])] = check

    int8 = [a for a in manifest["artifacts"] if a["precision"] == "int8"]
    assert int8
    for artifact in int8:  # the manifest's figures, read as the old export recorded them
        figure = lambda budget: checks[(artifact["path"], budget)]["value"]  # noqa: E731
        assert figure("min_agreement") == pytest.approx(artifact["agreement"])
        drop = 100 * (manifest["float_accuracy"] - artifact["accuracy"])
        assert figure("max_accuracy_drop") == pytest.approx(drop)
        assert figure("min_eval_samples") == artifact["eval_samples"]
        assert figure("max_size_bytes") == artifact["size_bytes"]
        worst = min(o["cosine"] for o in artifact["output_parity"])
        assert figure("min_cosine") == pytest.approx(worst)
        assert figure("must_run_on") == "ok"  # an old bench row, linked by sha256
    latency = {s: c for (s, budget), c in checks.items() if budget == "max_p50_ms"}
    rows = [r for r in results["results"] if r["status"] == "ok"]
    assert len(latency) == len(rows)  # every old row linked to the model by sha256
    for row in rows:
        check, recorded = latency[Path(row["artifact"]).name], row["latency_ms"]
        assert check["point"] == pytest.approx(recorded["p50"])
        assert check["interval"] == pytest.approx([recorded["p50_low"], recorded["p50_high"]])

    broken = _policy(tmp_path, model, '[[rule]]\nname = "int8 tiny"\nprecision = "int8"\n'
                                      'max_size_bytes = "1 KiB"\n')
    failed = edgeconv("gate", run, run / "results.json", "--policy", broken, "--json",
                      cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr[-2000:]  # a decision, not a load error
    report = json.loads(failed.stdout)
    assert {c["rule"] for c in report["checks"] if not c["passed"]} == {"int8 tiny"}
    assert report["failed"] == len(int8)


@pytest.mark.parametrize("name", FOLDERS)
def test_report_renders_old_records(legacy, tmp_path, name):
    run, manifest, results = legacy(name)
    out = tmp_path / "report"
    done = edgeconv("report", run, "-o", out, "--no-arithmetic", "--no-plots", "--json",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    notes = json.loads(done.stdout)["notes"]
    assert not [n for n in notes if name in n], notes  # nothing of the run was unreadable
    md = (out / "report.md").read_text()
    assert "from 1 export(s) and 1 results.json file(s)" in md
    model = manifest["model"]["name"]
    accuracy = f"{100 * manifest['float_accuracy']:.1f}%"
    if name == "zoo":
        train = _json(run / "train.json")
        assert f"{model} 28x28 on digits ({train['epochs_run']} epochs)" in md  # train.json
        [row] = [line for line in md.splitlines() if line.startswith(f"| {model} 28x28 |")]
        assert "trained (digits)" in row and accuracy in row
        assert "McNemar" in row  # the int8 drop from the old paired comparison
        [front] = [line for line in md.splitlines() if line.startswith("**cpu**")]
        assert model in front  # the old bench rows, linked to the export
        return
    section = md[md.index("## Your models"):]
    source = manifest["model"]["source"]
    assert f"**{model}** ({name}/): from `{source['file']}` ({source['kind']})" in section
    assert f"Float accuracy {accuracy}" in section
    benched = {Path(r["artifact"]).name for r in results["results"] if r["status"] == "ok"}
    for artifact in manifest["artifacts"]:
        [row] = [line for line in section.splitlines()
                 if line.startswith(f"| `{artifact['path']}` | {artifact['format']} |")]
        assert row.endswith("(measured) |") == (artifact["path"] in benched), row


runner = CliRunner()


@pytest.mark.parametrize("name", FOLDERS)
def test_quant_report_reads_old_int8_files(legacy, tmp_path, name, monkeypatch):
    # In this process, as tests/test_export.py runs it: the TFLite side imports TensorFlow,
    # once for both folders that have a .tflite
    run, manifest, _ = legacy(name)
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["quant-report", str(run), "--json", "--top", "0"])
    assert done.exit_code == 0, done.output[-2000:]
    report = json.loads(done.stdout)
    int8 = {a["path"]: a for a in manifest["artifacts"] if a["precision"] == "int8"}
    assert report["model"] == manifest["model"]["name"]
    assert {a["artifact"] for a in report["artifacts"]} == set(int8)
    recorded = {a["options"]["calibration"]["samples"] for a in int8.values()}
    assert {report["calibration_samples"]} == recorded  # the recorded calibration redrawn
    assert report["warnings"] == []
    for errors in report["artifacts"]:
        assert errors["warnings"] == [], errors  # the old quantisation record checks out
        sqnr = [layer["sqnr_db"] for layer in errors["layers"]]
        assert sqnr and sqnr == sorted(sqnr)  # worst first
        # a trained 8-bit layer on the right calibration images: tens of dB
        assert 15 < sqnr[0] < 100 and not math.isnan(sqnr[0]), errors


def _saturated_when_recorded(artifact: dict) -> bool:
    """An int8 ONNX file's recorded figure came from the fused kernels that saturate on an
    x86 CPU without VNNI (the fixtures were made on one: tests/fixtures/legacy/README.md)."""
    from edgeconv.runtimes.onnxrt import _fused_int8_saturates

    return artifact["format"] == "onnx" and artifact["precision"] == "int8" \
        and _fused_int8_saturates()
