"""The plan's executors on this machine: the host one measures every row, the firmware one
makes the rows an MCU core takes (rows of its own, never the host's patched); and the notes
the CLI acts on carry a kind (records.Note), so that their wording changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from edgeconv.bench import firmware, local
from edgeconv.bench.plan import BenchConfig, collect, make_plan
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress
from edgeconv.records import (
    HOST_TIME, NO_FIRMWARE, BenchReport, BenchRow, Note, results_from_dict,
)
from edgeconv.targets import get_target

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlcommons-tiny"
FAST = ["--runs", "3", "--warmup", "0", "--min-time", "0"]

needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason="../shared/models not present")


def _no_tools(monkeypatch, tmp_path) -> None:
    """Neither the Arm toolchain nor the emulator on PATH (whatever this machine has)."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@needs_models
def test_the_firmware_executor_makes_rows_of_its_own(tmp_path, monkeypatch):
    """A core with two kernel sets: the int8 file goes to the firmware executor, which makes
    one row per set (here, with no toolchain, each saying so by kind) and leaves the host
    executor's row as it was; the fp32 file stays the host executor's, saying why no
    firmware takes it."""
    (tmp_path / "m7both.toml").write_text(
        'kind = "mcu"\nruntimes = ["tflite-micro"]\ncore = "cortex-m7"\nclock_mhz = 480\n'
        'kernels = ["cmsis-nn", "reference"]\n'
        '[budgets]\nsram_bytes = 1048576\nflash_bytes = 2097152\n')
    target = get_target("m7both", tmp_path)
    config = BenchConfig(target="m7both", runs=3, warmup=0, min_time=0)
    files = [MODELS / "ad01_int8.tflite", MODELS / "ad01_fp32.tflite"]
    int8_file, fp32_file = collect(files, tmp_path / "files")
    # a bare file's precision is unknown (the firmware tries it): this one as its export's
    # manifest would list it
    fp32_file = replace(fp32_file, precision="fp32")
    plan = make_plan([int8_file, fp32_file], target, config)
    work = local.prepare(plan, config, tmp_path)
    int8, fp32 = local.bench_here(plan, config, Progress(), work)

    assert [firmware.takes(p, target) for p in plan.rows] == [True, False]
    # the host's row of the routed file: as measured, for the firmware executor
    assert int8.status == "ok" and int8.latency_ms is not None and not int8.caveats
    # the other file's row is final: the host interpreter's figures, and why no firmware
    assert [c.kind for c in fp32.caveats] == [NO_FIRMWARE, HOST_TIME]
    assert "int8 and int16x8 .tflite" in fp32.caveats[0].text and fp32.flash_bytes is None

    _no_tools(monkeypatch, tmp_path)
    before = int8.to_dict()
    [made] = firmware.bench_firmware([(plan.rows[0], int8)], target, config, work)
    assert int8.to_dict() == before  # read, never patched
    assert len(made) == 2 and all(row is not int8 for row in made)
    for row in made:
        assert row.artifact == int8.artifact and row.accuracy == int8.accuracy
        assert [c.kind for c in row.caveats] == [NO_FIRMWARE, HOST_TIME]
        assert "qemu-system-arm" in row.caveats[0].text or "gcc-arm-none-eabi" in \
            row.caveats[0].text
        assert row.timed_on == "host" and row.flash_bytes is None and row.fits is None
        assert row.mcu is None and row.estimate_ms is None
    assert made[0] is not made[1]  # each kernel set's row its own


@needs_models
def test_a_missing_toolchain_is_said_once_by_its_kind(tmp_path):
    """The CLI: one `no firmware run` line naming the fix, and no host time under the board's
    name (with --wide, its own column and one host-time line); in results.json they are the
    row's caveats, not also among its free notes."""
    model = str(MODELS / "ad01_int8.tflite")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EDGECONV_TFLM_TREE")},
           "PATH": str(tmp_path)}
    cmd = [sys.executable, "-m", "edgeconv", "bench", model, "--target", "nrf52840", *FAST]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("no firmware run") == 1, done.stderr
    assert "gcc-arm-none-eabi" in done.stderr
    assert "x86 host" not in done.stderr + done.stdout, done.stderr
    done = subprocess.run([*cmd, "--wide"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("no firmware run") == 1, done.stderr
    assert done.stderr.count("latency: x86 host, reference kernels") == 1, done.stderr
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300,
                          env=env)
    (row,) = json.loads(done.stdout)["results"]
    assert [c["kind"] for c in row["caveats"]] == [NO_FIRMWARE, HOST_TIME]
    assert not any("no firmware run" in note or "x86 host" in note for note in row["notes"])


def _mcu_report(caveats: list[Note], notes: list[str]) -> BenchReport:
    from edgeconv.records import Latency

    row = BenchRow(artifact="m.tflite", sha256="0" * 64, format="tflite", precision="int8",
                   runtime="tflite-micro", target="nrf52840", threads=1, status="ok",
                   timed_on="host", arena_bytes=1000, notes=notes, caveats=caveats,
                   latency_ms=Latency(p50=1.0, p90=1.0, p99=1.0, mean=1.0, std=0.0, min=1.0))
    env = {"cpu": "x", "cores": 1, "target": {"name": "nrf52840", "kind": "mcu",
                                              "description": "d"}}
    return BenchReport(environment=env, config={}, results=[row], notes=[])


def _printed_notes(capsys, report: BenchReport) -> list[str]:
    from edgeconv.commands.bench import _mcu_output

    _mcu_output("title", report, None, wide=True)  # wide: the host time is shown
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]


def test_the_cli_selects_notes_by_kind_not_by_wording(capsys):
    """The same caveats in other words print the same lines, in those words; a free note
    worded like one, or a caveat of a kind this edgeconv does not know, prints nothing."""
    lure = ["no firmware run: a free note in a caveat's words", "latency: x86 lookalike"]
    old = _printed_notes(capsys, _mcu_report(
        [Note(NO_FIRMWARE, "no firmware run: no toolchain"),
         Note(HOST_TIME, "latency: x86 host, reference kernels")], lure))
    new = _printed_notes(capsys, _mcu_report(
        [Note(NO_FIRMWARE, "the firmware was skipped: no toolchain"),
         Note(HOST_TIME, "timed by the host interpreter"),
         Note("some-newer-kind", "not this edgeconv's to show")], lure))
    assert old == ["note: m.tflite: no firmware run: no toolchain",
                   "note: m.tflite: latency: x86 host, reference kernels"]
    assert new == ["note: m.tflite: the firmware was skipped: no toolchain",
                   "note: m.tflite: timed by the host interpreter"]


def test_caveats_round_trip_and_old_rows_load_without_them(tmp_path):
    row = _mcu_report([Note(NO_FIRMWARE, "no firmware run: why")], ["free"]).results[0]
    data = {"schema_version": 1, "results": [row.to_dict()]}
    (loaded,) = results_from_dict(json.loads(json.dumps(data)), "r.json").results
    assert loaded == row and loaded.caveats_of(NO_FIRMWARE)[0].text == "no firmware run: why"
    old = {k: v for k, v in row.to_dict().items() if k != "caveats"}
    old["notes"] = ["no firmware run: an old file's note"]  # before caveats: a free note
    (loaded,) = results_from_dict({"schema_version": 1, "results": [old]}, "old.json").results
    assert loaded.caveats == [] and loaded.notes == old["notes"]
    for bad in ({"kind": "No Firmware", "text": "x"}, {"kind": NO_FIRMWARE}, "text"):
        broken = {**row.to_dict(), "caveats": [bad]}
        with pytest.raises(EdgeconvError, match=r"caveats\[0\]"):
            results_from_dict({"schema_version": 1, "results": [broken]}, "bad.json")


def test_the_tree_variable_is_defined_once(monkeypatch):
    """The bench reads the source-tree variable edgeconv.mcu.sources defines."""
    from edgeconv.mcu import sources

    assert not hasattr(firmware, "TREE_ENV")
    monkeypatch.setenv(sources.TREE_ENV, "/some/tree.tgz")
    assert firmware.tree_option(None) == "/some/tree.tgz"
    assert firmware.tree_option("/given") == "/given"
