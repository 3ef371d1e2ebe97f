"""How sure each figure is, end to end: the intervals export writes into manifest.json, the
ones bench writes into results.json (here and from a board over SSH), what the tables show,
and the warning about a busy machine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeconv import render
from edgeconv.bench import BenchConfig, run_bench
from edgeconv.bench.child import latency_stats
from edgeconv.cli import app
from edgeconv.commands.export import _versus_float, percent_with_interval
from edgeconv.manifest import load_manifest
from edgeconv.records import VERSUS_FLOAT
from edgeconv.stats import load_note, mcnemar_exact, median_interval, paired_counts, wilson

EDGECONV = [sys.executable, "-m", "edgeconv"]
LITERT = ["--target", "cpu", "--runtime", "litert", "--threads", "1", "--warmup", "1",
          "--min-time", "0"]


def edgeconv(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGECONV, *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def inside(value: float, interval: list[float]) -> bool:
    low, high = interval
    return low <= value <= high


# --- export: manifest.json ------------------------------------------------------------------


def test_every_artifact_has_its_images_and_an_interval_around_its_accuracy(benched_fcn):
    manifest = json.loads((benched_fcn / "manifest.json").read_text())
    n = manifest["dataset"]["test_subset"]["samples"]
    for a in manifest["artifacts"]:
        assert a["eval_samples"] == n, a["path"]
        assert inside(a["accuracy"], a["accuracy_interval"]), a["path"]
        right = round(a["accuracy"] * n)
        expected = wilson(right, n)  # the interval is Wilson's for these very counts
        assert a["accuracy_interval"] == pytest.approx([expected.low, expected.high])
        if a["format"] == "keras":  # the reference: nothing to compare with
            assert a["versus_float"] is None and a["agreement_interval"] is None
        else:
            assert inside(a["agreement"], a["agreement_interval"]), a["path"]


def test_versus_float_is_the_paired_comparison_on_the_same_images(benched_fcn):
    manifest = json.loads((benched_fcn / "manifest.json").read_text())
    float_accuracy = manifest["float_accuracy"]
    converted = [a for a in manifest["artifacts"] if a["format"] != "keras"]
    assert {a["precision"] for a in converted} == {"fp32", "int8"}
    for a in converted:
        v = a["versus_float"]
        VERSUS_FLOAT.check(v, "versus_float")
        n, b, c = v["n"], v["reference_only"], v["candidate_only"]
        assert n == a["eval_samples"]
        # the counts are the two accuracies, image by image
        assert v["both_right"] + b == round(float_accuracy * n)
        assert v["both_right"] + c == round(a["accuracy"] * n)
        assert v["drop"] == pytest.approx((b - c) / n)
        assert v["drop"] == pytest.approx(float_accuracy - a["accuracy"])
        assert inside(v["drop"], v["drop_interval"])
        assert v["mcnemar_p"] == pytest.approx(mcnemar_exact(b, c))
        assert v["confidence"] == 0.95 and "Newcombe" in v["method"]
        if a["precision"] == "fp32":  # the float file computes what Keras computes
            assert b == c == 0 and v["drop"] == 0
    # read back through the validating reader: the fields survive
    loaded = load_manifest(benched_fcn).find("tflite", "int8")
    assert loaded.versus_float == next(a for a in converted if a["path"] == loaded.path
                                       )["versus_float"]


def test_export_table_shows_the_images_and_the_drop_with_its_interval(tmp_path):
    done = edgeconv("export", "fcn-mnist", "--untrained", "--int8", "--formats", "tflite",
                    "--eval-samples", "40", "--wide", "--out", tmp_path / "fcn")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "fcn" / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["precision"] == "int8")
    assert "measured on 40 test images" in done.stdout
    (line,) = [ln for ln in done.stdout.splitlines() if "fcn-mnist_int8.tflite" in ln]
    assert render.percent_interval(int8["accuracy"], int8["accuracy_interval"]) in line
    assert _versus_float(int8["versus_float"]) in line
    assert re.search(r"[+-]\d+\.\d\d \[[+-][\d.]+, [+-][\d.]+\] pt, p=", line), line
    (keras,) = [ln for ln in done.stdout.splitlines() if "model.keras" in ln]
    assert "reference" in keras and "pt, p=" not in keras
    assert "McNemar" in done.stdout and "Wilson" in done.stdout  # how they were obtained


def test_the_table_formats_say_what_the_numbers_are():
    # 5 images only float gets right, 2 only the file: 3 of 359 images lost
    versus = paired_counts(340, 5, 2, 12).to_record()
    low, high = (-100 * v for v in reversed(versus["drop_interval"]))
    assert _versus_float(versus) == (f"-0.84 [{low:+.1f}, {high:+.1f}] pt,"
                                     f" p={mcnemar_exact(5, 2):.2g} (5/2)")
    assert _versus_float(paired_counts(300, 0, 0, 59).to_record()).startswith("+0.00 [")
    assert percent_with_interval(0.9, [0.826, 0.945]) == "90.00% [82.6, 94.5]"
    # a narrow interval keeps the digits that show its width
    assert percent_with_interval(0.9, [0.895, 0.9049]) == "90.00% [89.50, 90.49]"
    assert percent_with_interval(None, None) == "" and percent_with_interval(0.5, None) == \
        "50.00%"


# --- bench: results.json ------------------------------------------------------------------


def test_bench_rows_carry_accuracy_intervals_on_the_exports_images(benched_fcn):
    manifest = load_manifest(benched_fcn)
    report = json.loads((benched_fcn / "results.json").read_text())
    for row in report["results"]:
        artifact = next(a for a in manifest.artifacts if row["artifact"].endswith(a.path))
        assert row["eval_samples"] == artifact.eval_samples == 32
        assert inside(row["accuracy"], row["accuracy_interval"])
        assert row["accuracy_interval"] == artifact.accuracy_interval  # same images, runtime
        assert row["agreement"] is None and row["agreement_interval"] is None  # no Keras row
        # 5 timed runs: too few for a 95% interval of the median, and none is claimed
        assert row["runs"] == 5 and row["latency_ms"]["p50_low"] is None
        assert row["latency_ms"]["p50_high"] is None
    env = report["environment"]
    for key in ("load_before", "load_after"):
        assert len(env[key]) == 3 and all(load >= 0 for load in env[key])


def test_enough_runs_give_a_p50_interval_in_the_record_and_the_table(benched_fcn, tmp_path):
    out = tmp_path / "results.json"
    done = edgeconv("bench", benched_fcn, *LITERT, "--runs", "12", "--out", out)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["results"]
    assert rows
    for row in rows:
        latency = row["latency_ms"]
        assert row["runs"] >= 12
        assert latency["p50_low"] <= latency["p50"] <= latency["p50_high"]
        assert latency["min"] <= latency["p50_low"]
    lines = [ln for ln in done.stdout.splitlines() if ".tflite" in ln]
    assert len(lines) == len(rows)
    assert all(re.search(r"\d \[[\d.]+–[\d.]+\]", ln) for ln in lines), done.stdout
    assert "order statistics" in done.stdout


def test_too_few_runs_claim_no_interval_anywhere(benched_fcn, tmp_path):
    out = tmp_path / "results.json"
    done = edgeconv("bench", benched_fcn, *LITERT, "--runs", "3", "--out", out)
    assert done.returncode == 0, done.stderr
    for row in json.loads(out.read_text())["results"]:
        assert row["runs"] == 3
        assert row["latency_ms"]["p50_low"] is None and row["latency_ms"]["p50_high"] is None
    lines = [ln for ln in done.stdout.splitlines() if ".tflite" in ln]
    # the p50 cell (file, runtime, p50, ...) has no interval; the accuracy cell has its own
    assert lines and not any("–" in ln.split("│")[3] for ln in lines), done.stdout
    assert "none below 6 runs" in done.stdout  # the legend says why


def test_latency_stats_interval_is_the_order_statistics_of_the_runs():
    samples_ns = [1_000_000 + 10_000 * i for i in range(100)]  # 1.00 .. 1.99 ms
    stats = latency_stats(samples_ns)
    expected = median_interval([s / 1e6 for s in samples_ns])
    assert (stats["p50_low"], stats["p50_high"]) == pytest.approx((expected.low, expected.high))
    assert (stats["p50_low"], stats["p50_high"]) == pytest.approx((1.39, 1.60))  # ranks 40, 61
    assert stats["p50_low"] <= stats["p50"] <= stats["p50_high"]
    few = latency_stats(samples_ns[:5])
    assert few["p50_low"] is None and few["p50_high"] is None and few["p50"] > 0


# --- a busy machine -----------------------------------------------------------------------


def test_load_note_when_the_load_exceeds_the_cores():
    note = load_note([3.5, 2.0, 1.0], [1.2, 1.0, 1.0], 2)
    assert note == ("the machine was busy: 1-minute load 3.50 before / 1.20 after on 2 cores;"
                    " latencies may be inflated")
    assert "2.50 after" in load_note([0.1, 0, 0], [2.5, 0, 0], 2)
    assert load_note([2.0, 9, 9], [1.9, 9, 9], 2) is None  # the 1-minute load decides
    assert load_note([1.0, 1, 1], [1.5, 1, 1], 16) is None
    assert load_note(None, None, 2) is None and load_note([9.0, 9, 9], None, None) is None
    assert "9.00 before on 4 cores" in load_note([9.0, 9, 9], None, 4)


def test_a_busy_machine_is_recorded_and_said_on_stderr(benched_fcn, monkeypatch):
    import edgeconv.bench.local as local

    monkeypatch.setattr(local.os, "getloadavg", lambda: (64.0, 32.0, 16.0))
    monkeypatch.setattr(local.os, "cpu_count", lambda: 4)
    result = CliRunner().invoke(app, ["bench", str(benched_fcn), *LITERT, "--runs", "1"])
    assert result.exit_code == 0, result.output
    assert "note: the machine was busy: 1-minute load 64.00 before / 64.00 after on 4 cores;" \
           " latencies may be inflated" in " ".join(result.stderr.split())
    report = run_bench(BenchConfig(paths=(benched_fcn,), runtime="litert", threads=(1,),
                                   runs=1, warmup=0, min_time=0))
    assert report.environment["load_before"] == report.environment["load_after"] == [
        64.0, 32.0, 16.0]
    assert any(n.startswith("the machine was busy") for n in report.notes)


def test_a_quiet_machine_gets_no_note(benched_fcn, monkeypatch):
    import edgeconv.bench.local as local

    monkeypatch.setattr(local.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    report = run_bench(BenchConfig(paths=(benched_fcn,), runtime="litert", threads=(1,),
                                   runs=1, warmup=0, min_time=0))
    assert report.environment["load_before"] == [0.5, 0.5, 0.5]
    assert not any("busy" in n for n in report.notes)


# --- the same fields from a board over SSH ----------------------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    from loopback_ssh import serve_sshd

    yield from serve_sshd(tmp_path_factory)


def test_a_board_over_ssh_sends_the_intervals_and_its_load_back(sshd, benched_fcn,
                                                                 tmp_path):
    from loopback_ssh import NO_TF, _board

    root, port = sshd
    targets = _board(root, port, tmp_path / "targets")
    done = subprocess.run([sys.executable, "-c", NO_TF, "bench", str(benched_fcn), "--target",
                           "loopback", "--targets-dir", str(targets), "--runs", "8",
                           "--warmup", "1", "--min-time", "0", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["environment"]["load_before"]) == 3
    assert len(report["environment"]["load_after"]) == 3
    rows = [r for r in report["results"] if r["status"] == "ok"]
    assert {Path(r["artifact"]).name for r in rows} == {"fcn-mnist_fp32.tflite",
                                                        "fcn-mnist_int8.tflite"}
    for row in rows:
        assert row["eval_samples"] == 32 and inside(row["accuracy"], row["accuracy_interval"])
        latency = row["latency_ms"]
        assert latency["p50_low"] <= latency["p50"] <= latency["p50_high"]
