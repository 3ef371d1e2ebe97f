"""The bench and export tables fit a 120-column screen (each row on one line), --wide adds the
less-used columns, a missing piece is said once per table, and a folder of bare model files
benches."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeconv import render

# Whole commands on real files: out of the quick suite, run by CI (`-m e2e`).
pytestmark = pytest.mark.e2e

EDGECONV = [sys.executable, "-m", "edgeconv"]
FAST = ["--runs", "5", "--warmup", "1", "--min-time", "0"]
FIT = 120


def edgeconv(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGECONV, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": str(FIT), **env}, check=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    """An export (every format, fp32 + int8) and the table `export` printed."""
    out = tmp_path_factory.mktemp("tables") / "fcn"
    done = edgeconv("export", "fcn-mnist", "--untrained", "--int8", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def rows_of(table: str) -> list[str]:
    """The table's body lines: between its header rule and its bottom rule."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return lines[start + 1:end]


def assert_fits(table: str, names: list[str]) -> None:
    """Every line of the table within FIT columns (the prose under it is the terminal's to
    wrap), and one body line per row, naming its file."""
    assert all(len(line) <= FIT for line in table.splitlines() if line[:1] in "┏┃┡│└"), table
    body = rows_of(table)
    assert len(body) == len(names), table  # a wrapped cell would add a line
    for line, name in zip(body, names):
        assert f" {name} " in line, (name, table)


def test_export_table_fits_and_wide_adds_columns(exported, tmp_path):
    run, table = exported
    manifest = json.loads((run / "manifest.json").read_text())
    assert_fits(table, [a["path"] for a in manifest["artifacts"]])
    assert "vs float pt" in table and "max |diff|" not in table and "p=" not in table
    assert all(re.search(r"│ +\d+\.\d+ \[\d+\.\d+–\d+\.\d+\] │", row) for row in rows_of(table))
    done = edgeconv("export", "fcn-mnist", "--untrained", "--int8", "--formats", "tflite",
                    "--wide", "--out", str(tmp_path / "wide"))
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if "file" in line)
    for column in ("max |diff|", "min cosine", "min SNR dB", "vs float"):
        assert column in header, done.stdout
    assert all(" pt, p=" in line for line in rows_of(done.stdout)[1:]), done.stdout


def test_bench_table_fits_and_wide_adds_columns(exported):
    run, _ = exported
    done = edgeconv("bench", str(run), "--json", *FAST)
    assert done.returncode == 0, done.stderr
    names = [r["artifact"].split("/")[-1] for r in json.loads(done.stdout)["results"]]
    done = edgeconv("bench", str(run), *FAST)
    assert done.returncode == 0, done.stderr
    assert_fits(done.stdout, names)
    assert f"files in {run.name}/" in " ".join(done.stdout.split())  # the folder, once
    assert all(re.search(r"│ +\d+\.\d+ \[\d+\.\d+–\d+\.\d+\] │", row)
               for row in rows_of(done.stdout))  # the accuracy and its interval: one cell
    assert "peak RSS" not in done.stdout and "p90/p99" not in done.stdout
    header = next(line for line in done.stdout.splitlines() if "artifact" in line)
    assert "threads" not in header and ", 1 thread" in " ".join(done.stdout.split())
    wide = edgeconv("bench", str(run), "--wide", *FAST)
    assert wide.returncode == 0, wide.stderr
    header = next(line for line in wide.stdout.splitlines() if "artifact" in line)
    for column in ("p90/p99 ms", "init/first ms", "runs", "inferences/s", "peak RSS",
                   "threads", "precision"):
        assert column in header, wide.stdout
    assert len(rows_of(wide.stdout)) == len(names)  # wider than 120, never wrapped


def _no_toolchain(tmp_path: Path) -> dict[str, str]:
    """PATH without arm-none-eabi-gcc and qemu-system-arm, no TFLM tree: a fresh machine."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECONV_TFLM_TREE")}
    return {**env, "PATH": str(tmp_path / "bin"), "COLUMNS": str(FIT)}


def test_a_missing_toolchain_is_said_once_and_no_board_latency(exported, tmp_path):
    run, _ = exported
    other = tmp_path / "copy_int8.tflite"
    shutil.copyfile(run / "fcn-mnist_int8.tflite", other)
    args = [*EDGECONV, "bench", str(run / "fcn-mnist_int8.tflite"), str(other),
            "--target", "stm32h7", *FAST]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600,
                          env=_no_toolchain(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert output.count("apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
                        " libstdc++-arm-none-eabi-newlib qemu-system-arm") == 1, output
    assert "every row: no firmware run" in done.stderr
    assert all(len(line) <= FIT for line in done.stdout.splitlines() if line[:1] in "┏┃┡│└")
    header = next(line for line in done.stdout.splitlines() if "artifact" in line)
    assert "ms" not in header and "latency" not in header and "arena" in header
    assert "x86 host" not in output  # no host time shown, so nothing to label
    # the host time stays in the record, and --wide shows it under its own label
    wide = subprocess.run([*args, "--wide"], capture_output=True, text=True, timeout=600,
                          env=_no_toolchain(tmp_path), check=False)
    assert wide.returncode == 0, wide.stderr
    header = next(line for line in wide.stdout.splitlines() if "artifact" in line)
    assert "x86 host ms" in header and "latency ms" not in header
    assert wide.stderr.count("x86 host, reference kernels") == 1  # the host-time caveat, once


def test_a_folder_of_bare_model_files_benches_them_all(exported, tmp_path):
    run, _ = exported
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("fcn-mnist_int8.tflite", "fcn-mnist_fp32.onnx", "fcn-mnist_fp32.tflite"):
        shutil.copyfile(run / name, folder / name)
    (folder / "notes.txt").write_text("not a model")
    done = edgeconv("bench", str(folder), "--json", *FAST)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]
    assert [r["artifact"] for r in rows] == [str(folder / n) for n in (
        "fcn-mnist_fp32.onnx", "fcn-mnist_fp32.tflite", "fcn-mnist_int8.tflite")]
    assert all(r["status"] == "ok" and r["precision"] is None for r in rows), rows
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a model")
    done = edgeconv("bench", str(empty))
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "has no manifest.json and no .onnx or .tflite" in line


# --- the table helper itself -----------------------------------------------------------


def _text(renderable, width: int = FIT) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width)
    console.print(renderable)
    return console.file.getvalue()


def test_the_shared_folder_goes_to_the_title_and_others_get_a_heading_row():
    names = ["runs/demo/a/a_int8.tflite", "runs/demo/a/a_fp32.tflite", "runs/demo/b/b_int8.tflite"]
    text = _text(render.file_table("t", ["artifact", "size", "empty"],
                                   [[n, "1 KiB", ""] for n in names]))
    assert text.splitlines()[0].rstrip() == "t; files in runs/demo/"
    body = [line.split("│")[1].rstrip() for line in rows_of(text)]
    assert body == [" a/", "   a_int8.tflite", "   a_fp32.tflite", " b/", "   b_int8.tflite"]
    assert "empty" not in text  # a column empty in every row is left out
    same = _text(render.file_table("t", ["artifact"], [["x/one.onnx"], ["x/two.onnx"]]))
    assert "files in x/" in same and [ln.split("│")[1].strip() for ln in rows_of(same)] == [
        "one.onnx", "two.onnx"]
    bare = _text(render.file_table("t", ["artifact"], [["one.onnx"], ["/abs/two.onnx"]]))
    assert "files in" not in bare


def test_an_interval_is_one_compact_cell():
    assert render.percent_interval(0.975, [0.969, 0.980]) == "97.5 [96.9–98.0]"
    assert render.percent_interval(0.9, [0.895, 0.9049]) == "90.00 [89.50–90.49]"
    assert render.percent_interval(0.5, None) == "50.00"
    assert render.percent_interval(None, None) == ""
