"""The Ethos-U NPU through Vela (edgeconv.npu, edgeconv.bench.npu).

Vela compiles each MLPerf Tiny model in about a second, so these run in the quick suite; they
need the `npu` extra (ethos-u-vela 5.2.0) and skip without it, except the test that makes Vela
absent on purpose. The bench tests use a target with an NPU and no Arm core (no firmware
build); tests/test_mcu_cores.py benches the shipped M55 + NPU targets with their firmware.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeconv.bench.harness import run_bench
from edgeconv.bench.plan import BenchConfig
from edgeconv.errors import EdgeconvError
from edgeconv.npu import NpuConfig, compile_for_npu
from tests.npu_models import fallback_model

SHARED = Path(__file__).resolve().parents[2] / "shared"
MODELS = SHARED / "models" / "mlcommons-tiny"
FOUR = ("vww_96_int8", "kws_ref_model", "pretrainedResnet_quant", "ad01_int8")
HAVE_VELA = importlib.util.find_spec("ethosu.vela") is not None

needs_vela = pytest.mark.skipif(not HAVE_VELA, reason="ethos-u-vela not installed (npu extra)")
needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason="../shared/models not here")

U55_128 = NpuConfig("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram", 500.0)
TARGET = """
description = "test: an Ethos-U55-128 at Vela's own 500 MHz, no CPU core"
kind = "mcu"
clock_mhz = 500
runtimes = ["tflite-micro"]
threads = [1]
[npu]
accelerator = "ethos-u55-128"
system_config = "SYSTEM"
memory_mode = "Shared_Sram"
clock_mhz = 500
[budgets]
sram_bytes = 4194304
flash_bytes = 8388608
"""


def _targets(tmp_path: Path, system: str = "Ethos_U55_High_End_Embedded") -> Path:
    folder = tmp_path / "targets"
    folder.mkdir()
    (folder / "u55-test.toml").write_text(TARGET.replace("SYSTEM", system))
    return folder


def _vela_itself(model: Path, out: Path) -> dict[str, str]:
    """Vela run by hand for the same configuration, with its own vela.ini: its summary row."""
    ini = Path(importlib.util.find_spec("ethosu").submodule_search_locations[0]) / \
        "config_files" / "Arm" / "vela.ini"
    subprocess.run([sys.executable, "-m", "ethosu.vela", str(model), "--accelerator-config",
                    "ethos-u55-128", "--config", str(ini), "--system-config",
                    "Ethos_U55_High_End_Embedded", "--memory-mode", "Shared_Sram",
                    "--output-dir", str(out)], check=True, capture_output=True, timeout=300)
    (summary,) = out.glob("*_summary_Ethos_U55_High_End_Embedded.csv")
    (row,) = csv.DictReader(summary.open())
    return row


@needs_vela
@needs_models
def test_bench_rows_equal_velas_own_summary(tmp_path):
    """The four MLPerf Tiny models on an Ethos-U55-128: each NPU row's cycles, latency, SRAM
    and flash are those of Vela's own summary file for the same configuration."""
    paths = tuple(MODELS / f"{name}.tflite" for name in FOUR)
    report = run_bench(BenchConfig(paths=paths, target="u55-test",
                                   targets_dir=str(_targets(tmp_path)), runs=1, warmup=0,
                                   min_time=0.0))
    rows = [r for r in report.results if r.runtime == "ethos-u"]
    assert [Path(r.artifact).stem for r in rows] == list(FOUR)
    for path, row in zip(paths, rows):
        theirs = _vela_itself(path, tmp_path / path.stem)
        npu = row.npu
        assert row.ok and row.timed_on == "estimated" and row.latency_ms is None
        assert npu["cycles_total"] == int(theirs["cycles_total"])
        assert npu["cycles_npu"] == int(theirs["cycles_npu"])
        assert npu["latency_ms"] == pytest.approx(float(theirs["inference_time"]) * 1e3,
                                                  rel=1e-12)
        assert npu["sram_bytes"] == round(float(theirs["sram_memory_used"]) * 1024)
        assert npu["flash_bytes"] == round((float(theirs["off_chip_flash_memory_used"])
                                            + float(theirs["on_chip_flash_memory_used"])) * 1024)
        assert npu["macs"] == int(theirs["nn_macs"])
        assert npu["summary"]["cycles_total"] == theirs["cycles_total"]
        # every operator is placed; the reference models run whole on the NPU
        assert npu["cpu_ops"] == 0 and npu["npu_ops"] == len(npu["placement"]) > 0
        assert sum(layer["cycles"] for layer in npu["layers"]) > 0
        assert row.fits is True and row.flash_bytes == npu["compiled_bytes"]
    # the record round-trips through results.json's schema
    from edgeconv.records import BenchRow

    again = BenchRow.from_dict(json.loads(json.dumps(rows[0].to_dict())))
    assert again.npu["cycles_total"] == rows[0].npu["cycles_total"]


@needs_vela
def test_an_operator_the_npu_lacks_runs_on_the_cpu_with_velas_reason(tmp_path):
    model = fallback_model(tmp_path / "fallback.tflite")
    run = compile_for_npu(model, U55_128)
    placed = {p.op: p for p in run.placement}
    assert placed["ADD"].on == "NPU" and placed["ADD"].reason is None
    assert placed["DEPTH_TO_SPACE"].on == "CPU"
    assert placed["DEPTH_TO_SPACE"].reason == "Unsupported opType"  # Vela's own words
    assert [p.op for p in run.cpu_ops] == ["DEPTH_TO_SPACE"]


@needs_vela
def test_bench_shows_the_cpu_operator_and_why(tmp_path):
    model = fallback_model(tmp_path / "fallback.tflite")
    env = {**os.environ, "COLUMNS": "200"}
    results = tmp_path / "results.json"
    out = subprocess.run([sys.executable, "-m", "edgeconv", "bench", str(model), "--target",
                          "u55-test", "--targets-dir", str(_targets(tmp_path)), "--runs", "1",
                          "--warmup", "0", "--min-time", "0", "--out", str(results)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert "Ethos-U NPU (Vela performance estimate)" in out.stdout
    assert "on the CPU: " in out.stdout and "DEPTH_TO_SPACE (operator 1): Unsupported opType" \
        in out.stdout
    assert "Traceback" not in out.stderr
    # the gate's NPU budgets: no CPU-fallback operator (fails here), a ceiling on the estimate
    policy = tmp_path / "gate.toml"
    policy.write_text('[[rule]]\nname = "npu"\nruntime = "ethos-u"\nmax_cpu_fallback_ops = 0\n'
                      'max_npu_estimate_ms = 1.0\n')
    gate = subprocess.run([sys.executable, "-m", "edgeconv", "gate", str(results), "--policy",
                           str(policy), "--json"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert gate.returncode == 1, gate.stderr
    checks = {c["budget"]: c for c in json.loads(gate.stdout)["checks"]}
    assert checks["max_cpu_fallback_ops"]["result"] == "FAIL"
    assert checks["max_cpu_fallback_ops"]["value"] == 1
    assert checks["max_npu_estimate_ms"]["result"] == "PASS"
    # the report's NPU section: the estimate's label, the operator on the CPU with Vela's
    # reason, and the per-layer cycles plot
    report = subprocess.run([sys.executable, "-m", "edgeconv", "report", str(results), "-o",
                             str(tmp_path / "report"), "--no-arithmetic"], capture_output=True,
                            text=True, timeout=300, env=env)
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    section = md[md.index("## Ethos-U NPU"):]
    assert "Vela performance estimate" in section
    assert "| fallback.tflite | 1 | DEPTH_TO_SPACE | Unsupported opType |" in section
    assert (tmp_path / "report" / "npu-layers-u55-test.png").is_file()


@needs_vela
@needs_models
def test_a_float_model_is_refused_in_one_line(tmp_path):
    with pytest.raises(EdgeconvError, match=r"is not an int8 \(or int16x8\) model"):
        compile_for_npu(MODELS / "ad01_fp32.tflite", U55_128)
    report = run_bench(BenchConfig(paths=(fallback_model(tmp_path / "f.tflite", True),),
                                   target="u55-test", targets_dir=str(_targets(tmp_path)),
                                   runs=1, warmup=0, min_time=0.0))
    (row,) = [r for r in report.results if r.runtime == "ethos-u"]
    assert row.status == "unsupported" and "export it with --int8" in row.error
    assert "\n" not in row.error


@needs_vela
def test_a_configuration_vela_does_not_know_is_one_line(tmp_path):
    model = fallback_model(tmp_path / "m.tflite")
    with pytest.raises(EdgeconvError, match="system_config 'Ethos_U55_Nope' is not in Vela's"
                                            " configuration file.*Ethos_U55_High_End_Embedded"):
        compile_for_npu(model, NpuConfig("ethos-u55-128", "Ethos_U55_Nope", "Shared_Sram", 400))
    with pytest.raises(EdgeconvError, match="memory_mode 'Shared_SRAM'.*did you mean"):
        compile_for_npu(model, NpuConfig("ethos-u55-128", "Ethos_U55_High_End_Embedded",
                                         "Shared_SRAM", 400))
    out = subprocess.run([sys.executable, "-m", "edgeconv", "bench", str(model), "--target",
                          "u55-test", "--targets-dir",
                          str(_targets(tmp_path, system="Ethos_U55_Nope"))],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Ethos_U55_Nope" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_accelerator_vela_does_not_have_is_refused_when_the_target_loads(tmp_path):
    folder = _targets(tmp_path)
    text = (folder / "u55-test.toml").read_text().replace("ethos-u55-128", "ethos-u55-100")
    (folder / "u55-test.toml").write_text(text)
    from edgeconv.targets import load_targets

    with pytest.raises(EdgeconvError, match="accelerator"):
        load_targets(folder)


# Vela made absent: every import of ethosu fails, as where the npu extra is not installed.
BLOCK_VELA = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ethosu":
            raise ImportError("blocked for this test: " + name)
        return None
sys.meta_path.insert(0, Block())
from edgeconv.cli import app
app(args=sys.argv[1:], prog_name="edgeconv")
"""


def test_without_vela_the_row_names_the_pip_extra(tmp_path):
    model = fallback_model(tmp_path / "m.tflite")
    out = subprocess.run([sys.executable, "-c", BLOCK_VELA, "bench", str(model), "--target",
                          "u55-test", "--targets-dir", str(_targets(tmp_path)), "--runs", "1",
                          "--warmup", "0", "--min-time", "0", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert "Traceback" not in out.stderr, out.stderr
    rows = [r for r in json.loads(out.stdout)["results"] if r["runtime"] == "ethos-u"]
    assert len(rows) == 1 and rows[0]["status"] == "failed"
    assert "pip install 'edgeconv[npu]'" in rows[0]["error"]
    assert "\n" not in rows[0]["error"]
