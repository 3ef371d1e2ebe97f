"""`edgeconv fit` end to end (issue 23): a tiny space on digits, pruned, trained by
successive halving over two rungs, its finalists exported and run in TFLite Micro firmware
on the emulated Cortex-M4 of nucleo-l4r5zi; the same study through Ray; a study killed with
SIGKILL and resumed; and the refusals.

Marked `fit` (a few minutes: CI runs them after the `mcu` tests, whose Cortex-M4 library
they reuse from ~/.cache/edgeconv/mcu). Without the Arm toolchain the finalists' rows are
the host interpreter's (the study still finishes; the firmware checks skip).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.fit
pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[1]
TREES = ROOT.parent / "shared" / "third_party"
HAVE_FIRMWARE = bool(shutil.which("arm-none-eabi-g++") and shutil.which("qemu-system-arm")
                     and TREES.is_dir())
TARGET = "nucleo-l4r5zi"
# Four small candidates: gap-mnist at four input sizes (MACs grow with the size) and one
# MobileNet that the latency ceiling (60 ms; its band starts near 260 ms) rules out
# before training.
SPACE = ["gap-mnist:size=8,12,16,20", "mobilenet:alpha=0.5:size=64"]
ARGS = ["--target", TARGET, "--data", "digits", "--max-latency-ms", "60",
        "--min-epochs", "1", "--max-epochs", "2", "--reduction-factor", "2",
        "--brackets", "2", "--workers", "2", "--eval-samples", "120"]
for entry in SPACE:
    ARGS += ["--space", entry]


def fit(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGECONV_CONVERSION_CACHE": "off"}
    if TREES.is_dir():
        env["EDGECONV_TFLM_TREE"] = str(TREES)
    done = subprocess.run([sys.executable, "-m", "edgeconv", "fit", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900, check=False,
                          **kwargs)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def study_of(folder: Path) -> dict:
    from edgeconv.fit.record import load_study

    return load_study(folder)


@pytest.fixture(scope="module")
def local_study(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("fit") / "study"
    return folder, fit(*ARGS, "--out", str(folder))


def test_a_tiny_study_prunes_halves_and_draws_a_front(local_study):
    folder, done = local_study
    doc = study_of(folder)
    assert doc["status"] == "finished"
    # pruning: the MobileNet is out on its latency band before any epoch, with its reason
    verdicts = {v["candidate"]: v for v in doc["pruning"]}
    mobilenet = next(v for k, v in verdicts.items() if k.startswith("mobilenet"))
    assert not mobilenet["kept"] and any("ms" in r for r in mobilenet["reasons"])
    assert not (folder / "trials" / mobilenet["candidate"]).exists()
    kept = [k for k, v in verdicts.items() if v["kept"]]
    assert len(kept) == 4
    for key in kept:  # sized before training: MACs, activations, the planner's arena
        footprint = verdicts[key]["footprint"]
        assert footprint["macs"] > 0 and footprint["arena_bytes"] > 0
    # two rungs, 1 then 2 epochs; every kept candidate ran the first, some the second
    assert [r["epochs"] for r in doc["rungs"]] == [1, 2]
    assert sorted(doc["rungs"][0]["scores"]) == sorted(kept)
    promoted = doc["rungs"][0]["promoted"]
    assert promoted and set(doc["rungs"][1]["scores"]) == set(promoted)
    for key in promoted:  # trained on for the second rung: two epochs in its run
        state = json.loads((folder / "trials" / key / "state.json").read_text())
        assert state["epoch"] == 2 and state["planned_epochs"] == 2
    for key in set(kept) - set(promoted):
        assert doc["trials"][key]["state"] == "stopped"
    # finalists: exported int8 and benched, with the figures a single bench gives
    assert doc["finalists"] and doc["front"] and set(doc["front"]) <= \
        {p["id"] for p in doc["finalists"]}
    for point in doc["finalists"]:
        assert (folder / point["file"]).is_file() and (folder / point["results"]).is_file()
        assert point["accuracy_low"] <= point["accuracy"] <= point["accuracy_high"]
        assert point["test_images"] == 120
    out = done.stdout
    assert "recommended:" in out or "no finalist meets" in out
    if doc["winner"]:
        assert doc["verdict"] and "on nucleo-l4r5zi" in doc["verdict"]


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="Arm toolchain, qemu-system-arm or ../shared"
                                              " TFLM trees missing")
def test_the_predicted_arena_is_within_10_percent_of_the_firmware(local_study):
    folder, _ = local_study
    doc = study_of(folder)
    worst = max(doc["finalists"], key=lambda p: abs(p["predicted_arena_bytes"] /
                                                     p["arena_bytes"] - 1))
    error = worst["predicted_arena_bytes"] / worst["arena_bytes"] - 1
    print(f"\nworst arena prediction: {worst['id']} predicted"
          f" {worst['predicted_arena_bytes']:,} B, firmware {worst['arena_bytes']:,} B"
          f" ({100 * error:+.1f}%)")
    for point in doc["finalists"]:
        assert point["latency_kind"] == "estimated" and point["latency"]["low"] > 0
        assert point["ram_bytes"] and point["flash_bytes"]
    assert abs(error) <= 0.10


def test_the_same_study_through_ray_gives_the_same_front(local_study, tmp_path):
    pytest.importorskip("ray")
    folder, _ = local_study
    other = tmp_path / "ray-study"
    fit(*ARGS, "--out", str(other), "--ray", "local")
    local, ray = study_of(folder), study_of(other)
    assert ray["request"]["executor"] == "ray"
    for mine, theirs in zip(local["rungs"], ray["rungs"]):
        assert mine["promoted"] == theirs["promoted"]
        assert {k: s["val_accuracy"] for k, s in mine["scores"].items()} == \
            {k: s["val_accuracy"] for k, s in theirs["scores"].items()}
    assert local["front"] == ray["front"] and local["winner"] == ray["winner"]
    # the trial folders came back from the Ray tasks into the study folder
    for key in ray["rungs"][0]["scores"]:
        assert (other / "trials" / key / "train.json").is_file()


def test_a_killed_study_resumes_without_retraining_finished_trials(tmp_path):
    folder = tmp_path / "study"
    env = {**os.environ, "EDGECONV_CONVERSION_CACHE": "off"}
    process = subprocess.Popen([sys.executable, "-m", "edgeconv", "fit", *ARGS, "--out",
                                str(folder)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    study = folder / "study.json"
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:  # kill -9 once a first rung result is recorded
            if study.is_file() and any(r["scores"] for r in json.loads(
                    study.read_text()).get("rungs", [])):
                break
            assert process.poll() is None, "the study ended before it could be killed"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # the workers died with the study: nothing in its folder changes after the kill
    def snapshot() -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}

    time.sleep(2)
    settled = snapshot()
    time.sleep(6)
    assert snapshot() == settled
    before = json.loads(study.read_text())
    done_before = {k: s for k, s in before["rungs"][0]["scores"].items()}
    assert done_before and before["status"] == "running"
    stamps = {k: (folder / "trials" / k / "last.keras").stat().st_mtime_ns
              for k in done_before if k not in before["rungs"][0]["promoted"]}

    refused = fit(*ARGS, "--out", str(folder), check=False)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    fit(*ARGS, "--out", str(folder), "--resume")
    after = study_of(folder)
    assert after["status"] == "finished"
    for key, score in done_before.items():  # recorded results kept, not trained again
        assert after["rungs"][0]["scores"][key] == score
    for key, stamp in stamps.items():
        assert (folder / "trials" / key / "last.keras").stat().st_mtime_ns == stamp
    # a resume must ask the same question
    other = fit(*[("50" if a == "60" else a) for a in ARGS], "--out", str(folder), "--resume",
                check=False)
    assert other.returncode == 2
    assert other.stderr.strip().splitlines() == [
        f"error: cannot resume {folder}: it was started with --max-latency-ms 60, not 50"]


def test_nothing_to_resume_is_one_line_and_makes_no_folder(tmp_path):
    done = fit(*ARGS, "--out", str(tmp_path / "s"), "--resume", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        (f"error: nothing to resume in {tmp_path / 's'}: no study.json there; run without"
         " --resume to start")]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, message", [
    (["--space", "mobilenet:alpah=0.5"], "'alpah' is not a knob of mobilenet"),
    (["--space", "mobilenett"], "unknown model"),
    (["--precisions", "int4"], "--precisions"),
    (["--time-budget", "soon"], "--time-budget"),
    (["--min-epochs", "3", "--max-epochs", "2"], "--min-epochs"),
    (["--data", "no-such-dataset"], "no-such-dataset"),
])
def test_bad_requests_are_one_line(tmp_path, args, message):
    done = fit("--target", TARGET, *args, "--out", str(tmp_path / "s"), check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()  # refused before the study folder was made


def test_an_impossible_budget_says_what_binds(tmp_path):
    # MobileNet alpha 0.25 at 224x224: 216 K parameters fit the 1 MiB of flash, but its
    # activations need an arena of ~320 KiB
    done = fit("--target", "nrf52840", "--space", "mobilenet:alpha=0.25:size=224",
               "--out", str(tmp_path / "s"), check=False)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error: nothing in the space fits nrf52840's 256 KiB RAM:"
                           " the smallest arena is "), line
    assert line.endswith("(mobilenet alpha 0.25 at 224x224)"), line
    assert study_of(tmp_path / "s")["status"] == "nothing-fits"
