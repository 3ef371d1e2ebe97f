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
    assert "exists and is not a directory" in done.output
    assert len(done.output.strip().splitlines()) == 1 and taken.read_text() == "mine"


def test_an_atomic_write_onto_a_directory_is_one_clear_error(tmp_path):
    from edgeconv import _atomic
    from edgeconv.errors import EdgeconvError

    with pytest.raises(EdgeconvError, match="is a directory"):
        _atomic.write_bytes(tmp_path, b"x")
    assert list(tmp_path.iterdir()) == [] and not list(tmp_path.parent.glob(".*partial*"))


# --- hand-written inputs: rules that need figures this machine would take long to make ---

def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _export(root: Path, model: str, size: int, input_shape=(28, 28, 1)) -> str:
    sha = f"{model}-{size}".ljust(64, "0")
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
            "status": "ok", "latency_ms": {"p50": p50, "p90": p50 * 1.2}, **extra}


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
    assert verdicts["A-fc-memory"]["verdict"] == "reproduced"  # 50x and 524x smaller
    assert verdicts["A-any-size"]["verdict"] == "reproduced"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "stm32h7" in md and "mcu-stm32h7.png" in md and "gap-mnist-sizes.png" in md


def test_mobilenet_grid_gets_its_table_and_plot_and_pairs_show_only_the_model_size(tmp_path):
    rows = []
    for alpha in (1.0, 0.5):
        for side in (224, 128):
            name, sha = f"mobilenet-a{alpha}-{side}", f"a{alpha}-{side}".ljust(64, "0")
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
