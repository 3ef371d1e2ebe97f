"""`edgeconv report` on a real untrained fcn-mnist export and its real cpu bench, plus
hand-written manifests and results.json for what this machine cannot produce quickly
(a dense-mnist vs fcn-mnist latency pair, an MCU row). Arithmetic (Keras) is switched off
in most runs: the claims that need it must then say why they are not measurable."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeconv.cli import app
from edgeconv.report.claims import CLAIMS, VERDICTS, claim_ids

EDGECONV = [sys.executable, "-m", "edgeconv"]
runner = CliRunner()


@pytest.fixture(scope="module")
def run(benched_fcn) -> Path:
    return benched_fcn


@pytest.fixture(scope="module")
def report(run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report"
    done = runner.invoke(app, ["report", str(run), str(run / "results.json"), "-o", str(out),
                               "--no-arithmetic", "--summary", str(out.parent / "summary.md")])
    assert done.exit_code == 0, done.output
    return out


def test_report_dir_holds_markdown_html_and_plots(report):
    names = {p.name for p in report.iterdir()}
    assert {"report.md", "report.html", "pair-A-fcn.png"} <= names
    md = (report / "report.md").read_text()
    assert "fcn-mnist 28x28" in md and "untrained" in md
    # untrained accuracy is never shown as a figure
    assert "(untrained)" in md


def test_summary_is_the_report_text_without_title_or_plots(report):
    summary = (report.parent / "summary.md").read_text()
    md = (report / "report.md").read_text()
    assert not summary.startswith("# ") and "![" not in summary and "![" in md
    assert summary.splitlines()[0] == "## What this report is built from"
    for claim_id in claim_ids():
        assert f"| {claim_id} |" in summary
    # every line of the summary is in the report, in the same order
    kept = iter(md.splitlines())
    assert all(line in kept for line in summary.splitlines())


def test_every_claim_has_a_verdict_and_a_figure_or_a_reason(report):
    md = (report / "report.md").read_text()
    lines = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()
             if line.startswith("| ") and " | **" in line}
    assert set(claim_ids()) <= set(lines)
    for claim in CLAIMS:
        cells = [c.strip() for c in lines[claim.id].strip("|").split(" | ")]
        measured, verdict, why = cells[4], cells[5].strip("*"), cells[7]
        assert verdict in VERDICTS, claim.id
        assert measured != "-" or not why.startswith("rule:"), claim.id  # a reason when no figure
    # Keras switched off: arithmetic claims say so instead of inventing a count
    assert "arithmetic skipped (--no-arithmetic)" in lines["A-dense-params"]


def test_html_is_self_contained_and_every_image_is_a_png(report):
    html = (report / "report.html").read_text()
    sources = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert sources and len(sources) == html.count("<img")
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        import matplotlib.image

        assert matplotlib.image.imread(io.BytesIO(png)).ndim == 3
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from outside


# Counts the page's images and those the browser decoded, once everything has loaded.
_COUNT_IMAGES = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const shown = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", images.length + "/" + shown);
});
</script>"""


def _chromium() -> str | None:
    import shutil

    return next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


def _images_shown(browser: str, html: Path) -> tuple[int, int]:
    """(images, images decoded) as headless Chromium sees the page, with no network at all."""
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000",
         "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'data-images="(\d+)/(\d+)"', done.stdout)
    if not found and done.returncode != 0:  # the browser itself cannot start on this machine
        pytest.skip(f"chromium exited {done.returncode}: {done.stderr.strip()[-300:]}")
    assert found, done.stderr[-2000:]
    return int(found[1]), int(found[2])


@pytest.mark.skipif(_chromium() is None, reason="no Chromium here (apt-get install chromium)")
def test_html_opens_offline_in_headless_chromium_with_every_image_shown(report, tmp_path):
    page = tmp_path / "report.html"  # a copy alone in its folder: nothing beside it to load
    page.write_text((report / "report.html").read_text() + _COUNT_IMAGES)
    images, shown = _images_shown(_chromium(), page)
    assert images >= 1 and shown == images
    # The check can fail: a broken image is counted as not shown.
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace('src="data:image/png;base64,iVBOR',
                                               'src="data:image/png;base64,AAAA', 1))
    assert _images_shown(_chromium(), broken) == (images, images - 1)


def test_report_imports_no_runtime(run, tmp_path):
    code = ("import sys; from typer.testing import CliRunner; from edgeconv.cli import app;"
            f"r = CliRunner().invoke(app, ['report', {str(run)!r}, '-o', {str(tmp_path)!r},"
            " '--no-arithmetic', '--json']); assert r.exit_code == 0, r.output;"
            "print(sorted(m for m in ('tensorflow', 'keras', 'ai_edge_litert', 'onnxruntime',"
            " 'tflite_micro', 'tflite_runtime') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_json_lists_every_claim(run, tmp_path):
    done = runner.invoke(app, ["report", str(run), "-o", str(tmp_path), "--no-arithmetic",
                               "--no-plots", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert [c["id"] for c in data["claims"]] == claim_ids()
    assert not any(p.suffix == ".png" for p in tmp_path.iterdir())


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "nope", "does not exist"),
    (lambda tmp: _write(tmp / "foreign.json", {"foo": 1}), "not an edgeconv manifest"),
    (lambda tmp: _write(tmp / "results.json", {"schema_version": 9, "results": []}),
     "schema_version 9"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no manifest.json or results.json"),
    (lambda tmp: _write(tmp / "results.json", {"schema_version": 1, "results": [{"sha256": 1}]}),
     "results.json: results[0].artifact is missing"),
    (lambda tmp: _write(tmp / "results.json", "{"), "not valid JSON"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, make, message):
    done = runner.invoke(app, ["report", str(make(tmp_path)), "-o", str(tmp_path / "out")])
    assert done.exit_code == 2
    assert message in done.output and len(done.output.strip().splitlines()) == 1


def test_a_summary_path_that_is_a_directory_is_refused_before_any_work(run, tmp_path):
    out = tmp_path / "out"
    done = runner.invoke(app, ["report", str(run), "-o", str(out), "--no-arithmetic",
                               "--summary", str(tmp_path)])
    assert done.exit_code == 2
    assert "is a directory; give a file path" in done.output
    assert len(done.output.strip().splitlines()) == 1
    assert not (out / "report.md").exists()


def test_an_output_path_that_is_a_file_is_refused(run, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    done = runner.invoke(app, ["report", str(run), "-o", str(taken), "--no-arithmetic"])
    assert done.exit_code == 2
    assert "is a file, not a folder" in done.output
    assert len(done.output.strip().splitlines()) == 1 and taken.read_text() == "mine"


def test_an_atomic_write_onto_a_directory_is_one_clear_error(tmp_path):
    from edgeconv import _atomic
    from edgeconv.errors import EdgeconvError

    with pytest.raises(EdgeconvError, match="is a directory"):
        _atomic.write_bytes(tmp_path, b"x")
    assert list(tmp_path.iterdir()) == [] and not list(tmp_path.parent.glob(".*partial*"))


# --- hand-written inputs: rules that need figures this machine would take long to make ---

def _write(path: Path, data: dict | str) -> Path:
    """`data` as JSON, or a str as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _sha(text: str) -> str:
    """A sha256 as edgeconv writes one (64 lowercase hex digits), standing in for a file's."""
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _export(root: Path, model: str, size: int, input_shape=(28, 28, 1)) -> str:
    sha = _sha(f"{model}-{size}")
    _write(root / model / "manifest.json", {
        "schema_version": 1, "model": {"name": model, "options": {
            "input_shape": list(input_shape), "classes": 10}, "trained": True},
        "dataset": {"name": "digits"}, "float_accuracy": 0.9,
        "artifacts": [{"path": f"{model}_fp32.tflite", "format": "tflite", "precision": "fp32",
                       "size_bytes": size, "sha256": sha, "accuracy": 0.9,
                       "outputs": [{"shape": [1, 10]}]}]})
    return sha


def _row(sha: str, model: str, target: str, p50: float, **extra) -> dict:
    return {"artifact": f"{model}/{model}_fp32.tflite", "sha256": sha, "format": "tflite",
            "precision": "fp32", "runtime": "litert", "target": target, "threads": 1,
            "status": "ok", "latency_ms": _latency(p50), **extra}


def _latency(p50: float) -> dict:
    return {"p50": p50, "p90": p50 * 1.2, "p99": p50 * 1.5, "mean": p50 * 1.1, "std": p50 / 10,
            "min": p50 * 0.9}


def test_a_contradicting_measurement_says_not_reproduced(tmp_path):
    dense = _export(tmp_path, "dense-mnist", 11_000_000)
    fcn = _export(tmp_path, "fcn-mnist", 220_000)
    gap = {hw: _export(tmp_path / str(hw), "gap-mnist", 21_000, (hw, hw, 1)) for hw in (28, 56)}
    rows = [_row(dense, "dense-mnist", "cpu", 0.05), _row(fcn, "fcn-mnist", "cpu", 0.08)]
    rows += [_row(sha, "gap-mnist", "cpu", 0.1 * hw / 28) for hw, sha in gap.items()]
    rows.append(_row(fcn, "fcn-mnist", "stm32h7", 1.0, timed_on="host", arena_bytes=70_000,
                     flash_bytes=250_000, fits=True))
    env = {"cpu": "test", "target": {"kind": "host"}}
    _write(tmp_path / "results-cpu.json", {"schema_version": 1, "environment": env,
                                           "results": rows[:-1]})
    _write(tmp_path / "results-mcu.json", {"schema_version": 1, "environment": {
        "target": {"kind": "mcu", "sram_bytes": 1 << 20, "flash_bytes": 2 << 20}},
        "results": rows[-1:]})
    done = runner.invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "out"),
                               "--no-arithmetic", "--json"])
    assert done.exit_code == 0, done.output
    verdicts = {c["id"]: c for c in json.loads(done.stdout)["claims"]}
    # dense-mnist measured faster than both compact models: the claim is contradicted
    assert verdicts["A-fc-most-time"]["verdict"] == "not reproduced"
    assert "0.050 ms" in verdicts["A-fc-most-time"]["measured"]
    # files without p50 intervals: compared as points, and the verdict says so
    assert "no interval: point comparison for 2 of 2" in verdicts["A-fc-most-time"]["evidence"]
    assert "0.62x, slower (no interval: point comparison)" in \
        verdicts["A-fc-most-time"]["measured"]
    assert verdicts["A-fc-memory"]["verdict"] == "reproduced"  # 50x and 524x smaller
    assert verdicts["A-any-size"]["verdict"] == "reproduced"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "stm32h7" in md and "mcu-stm32h7.png" in md and "gap-mnist-sizes.png" in md


def test_mobilenet_grid_gets_its_table_and_plot_and_pairs_show_only_the_model_size(tmp_path):
    rows = []
    for alpha in (1.0, 0.5):
        for side in (224, 128):
            name, sha = f"mobilenet-a{alpha}-{side}", _sha(f"a{alpha}-{side}")
            _write(tmp_path / name / "manifest.json", {
                "schema_version": 1, "model": {"name": "mobilenet", "trained": False, "options": {
                    "input_shape": [side, side, 3], "alpha": alpha, "classes": 10}},
                "dataset": {"name": "digits"}, "float_accuracy": 0.1,
                "artifacts": [{"path": "mobilenet_fp32.tflite", "format": "tflite",
                               "precision": "fp32", "size_bytes": int(1e6 * alpha),
                               "sha256": sha, "accuracy": 0.1,
                               "outputs": [{"shape": [1, 10]}]}]})
            macs = int(569e6 * alpha ** 2 * (side / 224) ** 2)
            rows.append({**_row(sha, "mobilenet", "cpu", macs / 5e7), "macs": macs,
                         "artifact": f"{name}/mobilenet_fp32.tflite"})
    _write(tmp_path / "results.json", {"schema_version": 1, "results": rows,
                                       "environment": {"target": {"kind": "host"}}})
    out = tmp_path / "out"
    done = runner.invoke(app, ["report", str(tmp_path), "-o", str(out), "--no-arithmetic"])
    assert done.exit_code == 0, done.output
    md = (out / "report.md").read_text()
    grid = md.split("## MobileNet v1: width (alpha) x resolution grid")[1].split("\n## ")[0]
    assert len([line for line in grid.splitlines() if line.startswith("| 0.5 ")]) == 2
    assert "mobilenet-grid.png" in grid
    import matplotlib.image

    assert matplotlib.image.imread(out / "mobilenet-grid.png").ndim == 3
    # The width-multiplier pair shows each alpha at the model's own 224x224 only: the
    # untrained 128x128 points belong to the grid above.
    alpha_pair = md.split("## [C-mobilenet-alpha]")[1].split("\n## ")[0]
    assert "a=0.5 224x224" in alpha_pair and "128x128" not in alpha_pair
    resolution_pair = md.split("## [C-mobilenet-resolution]")[1].split("\n## ")[0]
    assert "a=1 128x128" in resolution_pair and "a=0.5" not in resolution_pair


# --- files as edgeconv writes them today: the readers must keep loading them -------------

def _todays_run(root: Path) -> Path:
    """manifest.json, train.json (before it had a schema_version), a cpu results.json and an
    stm32h7 one, with every field today's export, train and bench write."""
    run = root / "fcn"
    prep = {"input_shape": [28, 28, 1], "scale": 1 / 255, "offset": 0.0, "resize": "pad"}

    def artifact(fmt, precision, size, accuracy, **extra):
        return {"path": f"fcn-mnist_{precision}.{fmt}", "format": fmt, "precision": precision,
                "size_bytes": size, "sha256": _sha(f"{fmt}{precision}"),
                "accuracy": accuracy, "agreement": 0.99, "max_abs_diff": 0.01,
                "runtime": "ai-edge-litert 1.2.0", "inputs": [{"name": "x", "shape": [1, 28, 28, 1],
                                                             "dtype": "float32"}],
                "outputs": [{"name": "y", "shape": [1, 10], "dtype": "float32"}],
                "options": {}, "quantization": None, "micro": None, **extra}

    artifacts = [artifact("keras", "fp32", 700_000, 0.95),
                 artifact("tflite", "fp32", 225_000, 0.95),
                 artifact("tflite", "int8", 62_000, 0.94, micro={"ok": True, "arena_bytes": 18_768,
                                                               "error": None}),
                 artifact("onnx", "fp32", 226_000, 0.95)]
    _write(run / "manifest.json", {
        "schema_version": 1, "created": "2025-01-01T00:00:00+00:00",
        "model": {"name": "fcn-mnist", "options": {"input_shape": [28, 28, 1], "classes": 10},
                  "trained": True},
        "input": {"shape": [None, 28, 28, 1], "layout": "NHWC", "dtype": "float32",
                  "normalisation": {"scale": 1 / 255, "offset": 0.0,
                                    "formula": "x = uint8_pixel * scale + offset"},
                  "preprocessing": prep},
        "labels": [str(i) for i in range(10)],
        "dataset": {"name": "digits", "train": 1078, "val": 360, "test": 359, "seed": 0,
                    "evaluated_on": "test"},
        "float_accuracy": 0.95, "versions": {"edgeconv": "0.1.0", "python": "3.11.9"},
        "artifacts": artifacts})
    _write(run / "train.json", {
        "run_dir": str(run), "model": "fcn-mnist", "model_options": {"input_shape": [28, 28, 1]},
        "recipe": {"epochs": 3}, "dataset": {"name": "digits"}, "epochs_run": 3, "best_epoch": 2,
        "best_val_accuracy": 0.93, "test_accuracy": 0.95, "stopped_early": False,
        "history": [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.8 + e / 20, "val_loss": 1.0,
                     "val_accuracy": 0.8 + e / 25, "seconds": 2.0 + e} for e in (1, 2, 3)],
        "seconds": 12.0, "config": {"model": "fcn-mnist", "dataset": "digits", "seed": 0},
        "preprocessing": prep, "labels": [str(i) for i in range(10)], "versions": {}})

    def row(a, target, runtime, p50, **extra):
        return {"artifact": f"fcn/{a['path']}", "sha256": a["sha256"], "format": a["format"],
                "precision": a["precision"], "runtime": runtime, "target": target, "threads": 1,
                "status": "ok", "error": None, "latency_ms": _latency(p50), "timed_on": "target",
                "init_ms": 3.1, "first_ms": 0.4, "runs": 200, "throughput_ips": 1000 / p50,
                "macs": 1_140_000, "gmac_per_s": 20.1, "peak_rss_bytes": 90_000_000,
                "size_bytes": a["size_bytes"], "accuracy": a["accuracy"], "agreement": 1.0,
                "arena_bytes": None, "flash_bytes": None, "fits": None, "notes": [], **extra}

    def environment(target):
        return {"host": "ci", "cpu": "Test CPU", "cores": 2, "machine": "x86_64",
                "os": "Linux", "python": "3.11.9", "edgeconv": "0.1.0", "runtimes": {},
                "created": "2025-01-01T00:00:00+00:00", "target": target}

    _, fp32, int8, onnx = artifacts
    _write(run / "results.json", {
        "schema_version": 1, "config": {"runs": 200}, "notes": [],
        "environment": environment({"name": "cpu", "kind": "host", "runtimes": ["litert"],
                                    "threads": [1], "description": "this machine"}),
        "results": [row(fp32, "cpu", "litert", 0.031), row(int8, "cpu", "litert", 0.022),
                    {**row(onnx, "cpu", "onnxruntime", 1.0), "status": "failed",
                     "error": "onnxruntime is not installed", "latency_ms": None,
                     "init_ms": None, "first_ms": None, "runs": None, "throughput_ips": None,
                     "gmac_per_s": None, "peak_rss_bytes": None, "accuracy": None,
                     "agreement": None}]})
    _write(root / "results-stm32h7.json", {
        "schema_version": 1, "config": {}, "notes": [],
        "environment": environment({"name": "stm32h7", "kind": "mcu", "runtimes": ["tflite-micro"],
                                    "threads": [1], "sram_bytes": 1 << 20,
                                    "flash_bytes": 2 << 20}),
        "results": [row(int8, "stm32h7", "tflite-micro", 1.25, timed_on="host",
                        arena_bytes=18_768, flash_bytes=84_000, fits=True)]})
    return run


def test_todays_files_load_unchanged_in_report_and_gate(tmp_path):
    from edgeconv.gate import run_gate
    from edgeconv.report.collect import collect

    run = _todays_run(tmp_path)
    data = collect([tmp_path])
    [export] = data.exports
    assert (export.model, export.trained, export.dataset, export.float_accuracy) == \
        ("fcn-mnist", True, "digits", 0.95)
    assert export.train.best_epoch == 2 and export.train.epoch_seconds == [3.0, 4.0, 5.0]
    figures = {(r.row.target, r.file): (r.row.status, r.p50_ms, r.precision) for r in data.rows}
    assert figures == {("cpu", "fcn-mnist_fp32.tflite"): ("ok", 0.031, "fp32"),
                       ("cpu", "fcn-mnist_int8.tflite"): ("ok", 0.022, "int8"),
                       ("cpu", "fcn-mnist_fp32.onnx"): ("failed", None, "fp32"),
                       ("stm32h7", "fcn-mnist_int8.tflite"): ("ok", 1.25, "int8")}
    assert all(r.export is export for r in data.rows) and not data.notes

    done = runner.invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "out"),
                               "--no-arithmetic", "--no-plots"])
    assert done.exit_code == 0, done.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| fcn-mnist 28x28 | trained (digits) |" in md
    assert "0.031 (0.037)" in md and "0.022 (0.026)" in md  # cpu p50 (p90), fp32 and int8
    assert "fcn-mnist 28x28 on digits (3 epochs)" in md
    # the stm32h7 table: an older row (host interpreter, the old flash guess), said so
    assert ("| fcn-mnist 28x28 int8 | ok | 1.250 (x86 host, reference kernels) |  | 18.3 KiB"
            " |  | 82.0 KiB (old estimate) | yes |") in md

    policy = tmp_path / "gate.toml"
    policy.write_text('[[rule]]\nname = "int8"\nprecision = "int8"\nmax_accuracy_drop = 1.5\n'
                      'must_run_on = ["cpu", "stm32h7"]\n'
                      '[[rule]]\nname = "mcu"\ntarget = "stm32h7"\nmust_fit = true\n'
                      'max_p50_ms = 2\n[[rule]]\nname = "cpu"\ntarget = "cpu"\nmax_p90_ms = 1\n')
    report = run_gate(policy, [run, tmp_path / "results-stm32h7.json"])
    checks = {(c.rule, c.subject, c.budget, str(c.limit)): (c.passed, c.value, c.reason)
              for c in report.checks}
    assert checks == {
        ("int8", "fcn/fcn-mnist_int8.tflite", "max_accuracy_drop", "1.5"):
            (True, pytest.approx(1.0), None),
        ("int8", "fcn/fcn-mnist_int8.tflite", "must_run_on", "cpu"): (True, "ok", None),
        ("int8", "fcn/fcn-mnist_int8.tflite", "must_run_on", "stm32h7"): (True, "ok", None),
        ("mcu", "fcn/fcn-mnist_int8.tflite @ stm32h7 (tflite-micro x1)", "must_fit", "True"):
            (True, True, None),
        ("mcu", "fcn/fcn-mnist_int8.tflite @ stm32h7 (tflite-micro x1)", "max_p50_ms", "2.0"):
            (True, 1.25, "host time of TFLite Micro on the bench machine, not board time"),
        ("cpu", "fcn/fcn-mnist_fp32.tflite @ cpu (litert x1)", "max_p90_ms", "1.0"):
            (True, pytest.approx(0.0372), None),
        ("cpu", "fcn/fcn-mnist_int8.tflite @ cpu (litert x1)", "max_p90_ms", "1.0"):
            (True, pytest.approx(0.0264), None),
        ("cpu", "fcn/fcn-mnist_fp32.onnx @ cpu (onnxruntime x1)", "max_p90_ms", "1.0"):
            (False, None, "did not run: failed: onnxruntime is not installed")}
    assert not report.notes


def test_an_unreadable_train_json_is_a_note_not_an_error(tmp_path):
    from edgeconv.report.collect import collect

    run = _todays_run(tmp_path)
    (run / "train.json").write_text('{"model": "fcn-mnist"}')
    data = collect([run])
    assert data.exports[0].train is None
    [note] = data.notes
    assert str(run / "train.json") in note and "not measurable" in note


# --- how sure the figures are: intervals, within noise, datasets, published points --------

N = 10_000  # Fashion-MNIST's test images


def _wilson(right: int, n: int = N) -> list[float]:
    from edgeconv import stats

    interval = stats.wilson(right, n)
    return [interval.low, interval.high]


def _measured_export(root: Path, model: str, right: int, *, input_shape=(28, 28, 1),
                     only_float: int = 100, only_int8: int = 20, dataset="fashion_mnist",
                     channels: str = "none", epochs: list[float] | None = None) -> dict:
    """A trained export as export writes it since it records how sure its figures are: Keras
    right on `right` of N images, an fp32 TFLite file and an int8 one that only float gets
    right on `only_float` images and only it on `only_int8`; a train.json when `epochs`
    (seconds per epoch) are given. Returns the files' sha256 by precision."""
    from edgeconv import stats

    both = right - only_float
    paired = stats.paired_counts(both, only_float, only_int8, N - both - only_float - only_int8)
    versus = {**paired.to_dict(), "drop_interval": [paired.drop_interval.low,
                                                    paired.drop_interval.high],
              "confidence": 0.95, "method": paired.drop_interval.method}
    same = {**versus, "reference_only": 0, "candidate_only": 0, "both_right": right,
            "drop": 0.0, "drop_interval": [-0.0004, 0.0004], "mcnemar_p": 1.0}

    def artifact(fmt, precision, correct, **extra):
        return {"path": f"{model}_{precision}.{fmt}", "format": fmt, "precision": precision,
                "size_bytes": 100_000, "sha256": _sha(f"{root}{model}{fmt}{precision}"),
                "accuracy": correct / N, "eval_samples": N, "accuracy_interval": _wilson(correct),
                "outputs": [{"shape": [1, 10]}], **extra}

    prep = {"input_shape": list(input_shape), "scale": 1 / 255, "offset": 0.0,
            "resize": "bilinear" if input_shape[0] != 28 else "none", "channels": channels}
    _write(root / model / "manifest.json", {
        "schema_version": 1, "model": {"name": model, "trained": True, "options": {
            "input_shape": list(input_shape), "classes": 10}},
        "input": {"preprocessing": prep},
        "dataset": {"name": dataset}, "float_accuracy": right / N,
        "artifacts": [artifact("keras", "fp32", right),
                      artifact("tflite", "fp32", right, versus_float=same),
                      artifact("tflite", "int8", both + only_int8, versus_float=versus)]})
    if epochs:
        _write(root / model / "train.json", {
            "schema_version": 1, "model": model, "model_options": {},
            "config": {"dataset": dataset, "seed": 0}, "preprocessing": prep,
            "epochs_run": len(epochs), "best_epoch": len(epochs),
            "history": [{"epoch": i, "loss": 1.0, "accuracy": 0.9, "val_loss": 1.0,
                         "val_accuracy": 0.88, "seconds": s} for i, s in enumerate(epochs, 1)]})
    return {p: _sha(f"{root}{model}tflite{p}") for p in ("fp32", "int8")}


def _timed(sha: str, model: str, target: str, p50: float, low: float | None,
           high: float | None, **extra) -> dict:
    return {**_row(sha, model, target, p50, **extra),
            "latency_ms": {**_latency(p50), "p50_low": low, "p50_high": high}}


def _speed_report(tmp_path: Path, fcn: tuple, gap: tuple) -> dict:
    """dense-mnist at 0.100 ms [0.095, 0.105] against fcn-mnist and gap-mnist at the
    (p50, low, high) given: the A-fc-most-time verdict."""
    shas = {m: _measured_export(tmp_path, m, 9000)["fp32"]
            for m in ("dense-mnist", "fcn-mnist", "gap-mnist")}
    rows = [_timed(shas["dense-mnist"], "dense-mnist", "cpu", 0.100, 0.095, 0.105),
            _timed(shas["fcn-mnist"], "fcn-mnist", "cpu", *fcn),
            _timed(shas["gap-mnist"], "gap-mnist", "cpu", *gap)]
    _write(tmp_path / "results.json", {"schema_version": 1, "results": rows,
                                       "environment": {"target": {"kind": "host"}}})
    done = runner.invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "out"),
                               "--no-arithmetic", "--no-plots", "--json"])
    assert done.exit_code == 0, done.output
    return next(c for c in json.loads(done.stdout)["claims"] if c["id"] == "A-fc-most-time")


@pytest.mark.parametrize("fcn, gap, verdict", [
    # both ratios' intervals above 1 (1.25x, 1.43x): faster, beyond the noise
    ((0.080, 0.076, 0.084), (0.070, 0.066, 0.074), "reproduced"),
    # both include 1 (1.02x, 0.98x): neither faster nor slower than the noise shows
    ((0.098, 0.090, 0.106), (0.102, 0.094, 0.110), "within noise"),
    # one clearly faster, one within noise
    ((0.080, 0.076, 0.084), (0.098, 0.090, 0.106), "partly"),
    # one clearly slower (0.67x), one within noise: contradicted
    ((0.150, 0.140, 0.160), (0.098, 0.090, 0.106), "not reproduced"),
])
def test_a_faster_verdict_needs_the_ratio_interval_to_exclude_1(tmp_path, fcn, gap, verdict):
    claim = _speed_report(tmp_path, fcn, gap)
    assert claim["verdict"] == verdict, claim
    # every comparison with its ratio and the ratio's interval, none by the point
    assert claim["measured"].count("x [") == 2
    assert "0.100 [0.095, 0.105] ms p50 on cpu" in claim["measured"]
    assert "point comparison" not in claim["evidence"]


def test_a_faster_verdict_without_intervals_compares_points_and_says_so(tmp_path):
    claim = _speed_report(tmp_path, (0.080, None, None), (0.070, 0.066, 0.074))
    assert claim["verdict"] == "reproduced"
    assert "fcn-mnist 0.080 ms vs dense-mnist 0.100 [0.095, 0.105] ms p50 on cpu: 1.25x," \
           " faster (no interval: point comparison)" in claim["measured"]
    assert "no interval: point comparison for 1 of 2" in claim["evidence"]


README = """# Fashion-MNIST
## Benchmark
| Classifier | Preprocessing | Fashion test accuracy | MNIST test accuracy | Submitter| Code |
|------------|---------------|-----------------------|---------------------|---|---|
|2 Conv+pooling | None | 0.876 | - | [Someone](https://example.org) | [:link:](x) |
|3 Conv+BN+pooling|None|0.921|0.992|[Other](https://example.org)|[:link:](y)|
|MobileNet | augmentation (horizontal flips)| 0.950|- | [Third](https://example.org)| x |
|Human Performance| Crowd-sourced evaluation | 0.835 | - | Leo | - |
|GRU+SVM | None| 0.888 | 0.965 | [Fourth](https://example.org) | x |

## Next section
"""


def _fashion_runs(root: Path) -> None:
    """fcn-mnist and article B's VGG pair trained on Fashion-MNIST (the VGGs at 32x32, grey
    replicated to 3 channels), with a cpu bench and an emulated-board bench of fcn-mnist."""
    fcn = _measured_export(root, "fcn-mnist", 9000)
    for model, right in (("vgg-cifar", 9200), ("separable-vgg-cifar", 9150)):
        _measured_export(root, model, right, input_shape=(32, 32, 3), channels="gray_to_rgb",
                         epochs=[9.0, 5.0, 5.1, 4.9, 5.0, 5.2, 5.1, 5.0])
    _write(root / "results.json", {"schema_version": 1, "environment": {
        "target": {"kind": "host"}, "cores": 2, "load_before": [3.0, 2.0, 1.0],
        "load_after": [1.0, 1.0, 1.0]}, "results": [
            _timed(fcn["fp32"], "fcn-mnist", "cpu", 0.031, 0.030, 0.033),
            _timed(fcn["int8"], "fcn-mnist", "cpu", 0.022, 0.021, 0.024)
            | {"precision": "int8", "artifact": "fcn-mnist/fcn-mnist_int8.tflite"}]})
    _write(root / "results-rpi.json", {"schema_version": 1, "environment": {
        "target": {"kind": "ssh"}}, "results": [
            _timed(fcn["fp32"], "fcn-mnist", "rpi5", 3.1, 3.0, 3.3, timed_on="emulated")]})


def _report_md(root: Path, *args: str) -> str:
    out = root / "out"
    done = runner.invoke(app, ["report", str(root / "runs"), "-o", str(out), "--no-arithmetic",
                               "--no-plots", *args])
    assert done.exit_code == 0, done.output
    return (out / "report.md").read_text()


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}")[1].split("\n## ")[0]


def test_accuracy_shows_interval_images_and_dataset_and_emulated_times_stay_out(tmp_path):
    _fashion_runs(tmp_path / "runs")
    readme = _write(tmp_path / "README.md", README)
    md = _report_md(tmp_path, "--baselines", str(readme))
    fcn = [line for line in _section(md, "[A-fcn]").splitlines()
           if line.startswith("| fcn-mnist 28x28 |")][0]
    # float, int8 and the drop, each with its interval, its images and its data
    assert "| 90.0% [89.4, 90.6] (Fashion-MNIST, 10,000 images) |" in fcn
    assert "| 89.2% [88.6, 89.8] (Fashion-MNIST, 10,000 images) |" in fcn
    assert "| +0.80 pt [+0.59, +1.02]; 100 only float, 20 only int8, of 10,000; McNemar p" in fcn
    assert "| 0.031 [0.030, 0.033] (0.037) | 0.022 [0.021, 0.024] (0.026) |" in fcn
    # a bench on a machine busier than its cores is flagged where the machine is named
    assert "| 3.00 / 1.00 (**busy**: over 2 cores) |" in md
    # the emulated board's 3.1 ms is no board time: in no latency table, said once
    assert "rpi5" not in _section(md, "[A-fcn]") and "3.100" not in md
    assert "1 bench row(s) on rpi5 were timed on an emulated board (qemu)" in md
    pareto = _section(md, "Accuracy vs latency, per target")
    assert "**cpu**, accuracy on Fashion-MNIST: Pareto front" in pareto
    assert "89.2% [88.6, 89.8] (Fashion-MNIST, 10,000 images)" in pareto

    claims = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()
              if line.startswith("| ") and " | **" in line}
    # a CIFAR-10 claim measured on Fashion-MNIST says so, and is at most partly reproduced
    accuracy = claims["B-vgg-accuracy"]
    assert "**partly**" in accuracy and "92.0% [91.5, 92.5] (Fashion-MNIST, 10,000" in accuracy
    assert ("measured on Fashion-MNIST (28x28 grey clothing images), resized to 32x32 and grey"
            " replicated to 3 channels, not CIFAR-10 (32x32 colour photos)") in accuracy
    assert "not CIFAR-10" in claims["B-vgg-overfit"]
    # 7 epochs each after the first: a median with its interval, within noise here
    epochs = claims["B-vgg-epoch-time"]
    assert "**within noise**" in epochs and "median, first epoch excluded; on Fashion-MNIST" \
        in epochs


def test_published_points_stand_next_to_a_fashion_mnist_model(tmp_path):
    _fashion_runs(tmp_path / "runs")
    readme = _write(tmp_path / "README.md", README)
    md = _report_md(tmp_path, "--baselines", str(readme))
    published = _section(md, "Published reference points (Fashion-MNIST)")
    assert f"`{readme}`, 5 entries" in published and "have not verified" in published
    [fcn] = [line for line in published.splitlines() if line.startswith("| fcn-mnist 28x28 |")]
    # comparable: the submitted small CNNs, best first; not the MobileNet, not GRU+SVM
    assert "| small CNNs (2-5 conv layers) | best 92.1%, median 89.9% of 2 |" in fcn
    assert "3 Conv+BN+pooling 92.1%; 2 Conv+pooling 87.6%" in fcn
    assert "MobileNet" not in fcn and "GRU" not in fcn
    assert "human baseline: 83.5%" in published

    # the benchmark's own baselines.json: scikit-learn classifiers and grids, no accuracy
    grid = _write(tmp_path / "baselines.json", {"common": {}, "classifiers": {
        "SVC": [{"C": [1.0, 10.0]}], "KNeighborsClassifier": [{"n_neighbors": [1, 5]}]}})
    md = _report_md(tmp_path, "--baselines", str(grid))
    published = _section(md, "Published reference points (Fashion-MNIST)")
    assert "the 2 classifiers it ran (SVC, KNeighborsClassifier)" in published
    assert "It records no accuracy" in published and "| fcn-mnist" not in published
    # its results, one JSON object a line as its runner logs them: context, not CNNs
    results = _write(tmp_path / "sklearn.json", "\n".join(json.dumps(e) for e in (
        {"name": "SVC", "parameter": "{}", "mean_accuracy": 0.897},
        {"name": "SVC", "parameter": "{'C': 10}", "mean_accuracy": 0.88},
        {"name": "GaussianNB", "parameter": "{}", "mean_accuracy": 0.511})))
    md = _report_md(tmp_path, "--baselines", str(results))
    assert "best 89.7%, median 70.4% of 2. These are classical classifiers on raw pixels" \
        in md


def test_no_published_section_without_the_files_or_a_fashion_mnist_model(tmp_path,
                                                                         monkeypatch):
    from edgeconv.report import baselines

    monkeypatch.setattr(baselines, "DEFAULT_FILES", (tmp_path / "none" / "README.md.gz",))
    _fashion_runs(tmp_path / "runs")
    assert "Published reference points" not in _report_md(tmp_path)
    # the package's files are read by default when they are there (gzip too)
    import gzip

    packaged = tmp_path / "doc" / "README.md.gz"
    packaged.parent.mkdir()
    packaged.write_bytes(gzip.compress(README.encode()))
    monkeypatch.setattr(baselines, "DEFAULT_FILES", (packaged,))
    assert "Published reference points" in _report_md(tmp_path)
    # digits only: nothing to compare with
    digits = tmp_path / "digits"
    _measured_export(digits / "runs", "fcn-mnist", 340, dataset="digits")
    assert "Published reference points" not in _report_md(digits)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("hello", "neither the Fashion-MNIST README"),
    ('{"classifiers": {}}', "its 'classifiers' table is empty"),
    ("| Classifier | Fashion test accuracy |\n|---|---|\n| x | - |\n",
     "its 'Fashion test accuracy' table has no figures"),
])
def test_a_bad_baselines_file_is_one_line_and_exit_2(tmp_path, content, message):
    _fashion_runs(tmp_path / "runs")
    path = tmp_path / "baselines.json"
    if content is not None:
        path.write_text(content)
    done = runner.invoke(app, ["report", str(tmp_path / "runs"), "-o", str(tmp_path / "out"),
                               "--no-arithmetic", "--baselines", str(path)])
    assert done.exit_code == 2
    assert message in done.output and len(done.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_mcu_rows_show_the_estimate_ram_flash_and_op_breakdown(tmp_path):
    """An MCU bench with the firmware (stm32h7: emulated, estimated) and without it
    (esp32s3: the host interpreter): each figure says how it was obtained, and neither
    reaches a latency column named after the board."""
    run = _todays_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["path"].endswith("int8.tflite"))
    base = {"artifact": f"fcn/{int8['path']}", "sha256": int8["sha256"], "format": "tflite",
            "precision": "int8", "runtime": "tflite-micro", "threads": 1, "status": "ok",
            "size_bytes": int8["size_bytes"], "notes": []}
    firmware = {**base, "target": "stm32h7", "timed_on": "emulated", "latency_ms": None,
                "arena_bytes": 15_000, "stack_bytes": 1_000, "ram_bytes": 16_600,
                "flash_bytes": 140_000, "fits": True,
                "estimate_ms": {"low": 0.21, "mid": 0.26, "high": 0.32, "cpi_low": 0.67,
                                "cpi_mid": 0.84, "cpi_high": 1.01,
                                "basis": "estimate: emulated instructions x 0.67-1.01"},
                "mcu": {"core": "cortex-m7", "kernels": "cmsis-nn", "machine": "mps2-an500",
                        "invoke_instructions": 150_000, "runtime_flash_bytes": 78_000,
                        "model_bytes": 62_000, "static_bytes": 600},
                "ops": [{"index": 0, "op": "CONV_2D", "instructions": 120_000, "share": 0.8,
                         "macs": 60_000, "instructions_per_mac": 2.0},
                        {"index": 1, "op": "MEAN", "instructions": 30_000, "share": 0.2}],
                "parity": {"inputs": 8, "values": 80, "differing": 0, "max_abs_diff": 0,
                           "equal": True, "reference": "x86_64 tflite-micro host interpreter"},
                "reference_parity": {"inputs": 8, "values": 80, "differing": 2,
                                     "max_abs_diff": 1, "equal": False}}
    host = {**base, "target": "esp32s3", "timed_on": "host", "latency_ms": _latency(0.9),
            "arena_bytes": 18_768, "flash_bytes": None, "fits": True}
    env = {"target": {"kind": "mcu", "sram_bytes": 1 << 20, "flash_bytes": 2 << 20}}
    _write(tmp_path / "results-stm32h7.json", {"schema_version": 1, "environment": env,
                                               "results": [firmware]})
    _write(tmp_path / "results-esp32s3.json", {"schema_version": 1, "environment": env,
                                               "results": [host]})
    done = runner.invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "out"),
                               "--no-arithmetic"])
    assert done.exit_code == 0, done.output
    md = (tmp_path / "out" / "report.md").read_text()
    section = md[md.index("## Microcontrollers"):]
    assert ("| fcn-mnist 28x28 int8 | ok | ~0.260 [0.210–0.320] (emulated, estimate) | 0.15M |"
            " 14.6 KiB | 16.2 KiB | 136.7 KiB | yes | bit-exact (8) / 2/80 differ, max 1 |")\
        in section
    assert "0.900 (x86 host, reference kernels)" in section  # esp32s3: labelled, not a board time
    assert "CONV_2D 80%, 2.0 instr/MAC" in section and "mcu-ops-stm32h7.png" in section
    assert (tmp_path / "out" / "mcu-ops-stm32h7.png").stat().st_size > 0
    # no latency column named after an MCU; the firmware row is not an "emulated board"
    assert "stm32h7 int8 p50" not in md and "esp32s3 int8 p50" not in md
    assert "Emulated boards" not in md and "Boards against x86" not in md
