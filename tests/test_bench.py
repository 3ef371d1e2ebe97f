"""The harness on real files in real runtimes: an export, the shared third-party models,
and the errors that must stay one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeconv.bench import BenchConfig, run_bench
from edgeconv.errors import EdgeconvError
from edgeconv.records import load_results
from edgeconv.runtimes import Runtime, RuntimeEntry, TensorInfo, register, unregister

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
EDGECONV = [sys.executable, "-m", "edgeconv"]
FAST = ["--runs", "5", "--warmup", "1", "--min-time", "0"]
FIELDS = {"artifact", "sha256", "format", "precision", "runtime", "target", "threads", "status",
          "error", "latency_ms", "init_ms", "first_ms", "runs", "peak_rss_bytes", "size_bytes",
          "accuracy", "agreement", "arena_bytes", "flash_bytes", "fits"}

needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason="../shared/models not present")


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGECONV, "bench", *args], capture_output=True, text=True, cwd=cwd,
                          check=False,
                          timeout=300)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "fcn"
    subprocess.run([*EDGECONV, "export", "fcn-mnist", "--untrained", "--int8", "--out", str(out),
                    "--json"], capture_output=True, check=True, timeout=300)
    return out


def test_export_on_cpu_gives_every_field(export_dir, tmp_path):
    results = tmp_path / "results.json"
    done = bench(str(export_dir), "--target", "cpu", "--json", "--out", str(results), *FAST)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert json.loads(results.read_text()) == report
    assert report["schema_version"] == 1
    env = report["environment"]
    assert env["cores"] >= 1 and env["cpu"] and "ai-edge-litert" in env["runtimes"]
    rows = report["results"]
    assert {r["artifact"].split("/")[-1] for r in rows} == {
        "model.keras", "fcn-mnist_fp32.tflite", "fcn-mnist_int8.tflite", "fcn-mnist_fp32.onnx",
        "fcn-mnist_int8.onnx"}
    for row in rows:
        assert FIELDS <= row.keys()
        assert row["status"] == "ok", row
        assert set(row["latency_ms"]) == {"p50", "p90", "p99", "mean", "std", "min",
                                          "p50_low", "p50_high"}
        # 5 runs: no pair of order statistics covers the median at 95%
        assert row["latency_ms"]["p50_low"] is row["latency_ms"]["p50_high"] is None
        assert row["latency_ms"]["min"] <= row["latency_ms"]["p50"] <= row["latency_ms"]["p99"]
        assert row["runs"] >= 5 and row["peak_rss_bytes"] > 0 and row["init_ms"] > 0
        assert 0 <= row["accuracy"] <= 1 and row["macs"] and row["gmac_per_s"] > 0
    fp32 = next(r for r in rows if r["artifact"].endswith("fp32.tflite"))
    assert fp32["agreement"] == 1.0  # the float file computes what Keras computes


def test_bench_path_never_imports_tensorflow():
    code = ("import sys; from pathlib import Path; from edgeconv.bench import BenchConfig, "
            "run_bench; r = run_bench(BenchConfig(paths=(Path(sys.argv[1]),), runs=3, warmup=1,"
            " min_time=0)); assert r.results[0].status == 'ok', r.results; "
            "print('tensorflow' in sys.modules)")
    model = MODELS / "mlcommons-tiny" / "kws_ref_model.tflite"
    if not model.is_file():
        pytest.skip("../shared/models not present")
    done = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"


@needs_models
def test_mcu_target_gives_arena_and_fit():
    done = bench(str(MODELS / "mlcommons-tiny" / "vww_96_int8.tflite"), "--target", "stm32h7",
                 "--json", *FAST)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "ok" and row["timed_on"] == "host"
    assert isinstance(row["arena_bytes"], int) and 50_000 < row["arena_bytes"] < 200_000
    assert row["flash_bytes"] > row["size_bytes"] and row["fits"] is True
    assert row["agreement"] is not None  # TFLM vs LiteRT reference kernels


@needs_models
def test_an_arena_larger_than_the_boards_sram_does_not_fit(tmp_path):
    """TFLM gets the board's SRAM as its arena: vww_96_int8 needs ~101 KiB, not in 64 KiB."""
    (tmp_path / "tiny.toml").write_text(
        'kind = "mcu"\nruntimes = ["tflite-micro"]\n'
        '[budgets]\nsram_bytes = 65536\nflash_bytes = 1048576\n')
    done = bench(str(MODELS / "mlcommons-tiny" / "vww_96_int8.tflite"), "--target", "tiny",
                 "--targets-dir", str(tmp_path), "--json", *FAST)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["fits"] is False and row["status"] != "ok"
    assert "does not fit in 65536 B of SRAM" in " ".join(row["notes"])


def test_a_free_size_model_is_refused_by_tflite_micro(tmp_path):
    out = tmp_path / "gap"
    subprocess.run([*EDGECONV, "export", "gap-mnist", "--untrained", "--int8", "--formats",
                    "tflite", "--out", str(out)], capture_output=True, check=True, timeout=300)
    done = bench(str(out / "gap-mnist_int8.tflite"), "--target", "stm32h7", "--json", *FAST)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "unsupported" and "cannot resize an input" in row["error"]
    assert row["latency_ms"] is None and row["arena_bytes"] is None


@needs_models
def test_crash_and_refusals_become_rows():
    files = [MODELS / "invalid" / "model_invoking_error.tflite",
             MODELS / "tflite-micro" / "person_detect.tflite",
             MODELS / "tflite-micro" / "hello_world_int8.tflite"]
    done = bench(*map(str, files), "--target", "nrf52840", "--json", *FAST)
    assert done.returncode == 0, done.stderr
    crash, person, hello = json.loads(done.stdout)["results"]
    assert crash["status"] == "failed" and "SIGSEGV" in crash["error"]
    assert person["status"] == "ok" and person["arena_bytes"] > 0  # LiteRT refuses it, TFLM not
    assert hello["status"] == "ok" and hello["fits"] is True
    done = bench(*map(str, files[:2]), str(MODELS / "onnx" / "mnist.onnx"), "--target", "cpu",
                 "--json", *FAST)
    crash, person, onnx = json.loads(done.stdout)["results"]
    assert crash["status"] == "unsupported" and "fake-op-double" in crash["error"]
    assert person["status"] == "unsupported" and "quantized_dimension" in person["error"]
    assert onnx["status"] == "ok" and onnx["runtime"] == "onnxruntime"


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes((MODELS / "mlcommons-tiny" / "vww_96_int8.tflite")
                             .read_bytes()[:150_000]), "not a complete TFLite flatbuffer"),
    (lambda p: p.write_bytes(b"\x00" * 64), "not a complete TFLite flatbuffer"),
])
@needs_models
def test_bad_model_is_one_line(tmp_path, make, message):
    model = tmp_path / "bad.tflite"
    make(model)
    done = bench(str(model), "--target", "cpu")
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--target", "stm32h8"], "did you mean 'stm32h7'"),
    (["--target", "rpi"], "not on an aarch64 board and no --host given"),
    (["--target", "gpu"], "no GPU here"),
    (["--target", "cpu", "--runtime", "litrt"], "did you mean 'litert'"),
])
def test_target_errors_are_one_line(tmp_path, args, message):
    if args[1] == "rpi" and __import__("platform").machine() in ("aarch64", "arm64"):
        pytest.skip("on a board --target rpi runs")
    (tmp_path / "m.onnx").write_bytes(b"")
    done = bench(str(tmp_path / "m.onnx"), *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_runtime_names_the_extra(tmp_path):
    model = MODELS / "onnx" / "mnist.onnx"
    if not model.is_file():
        pytest.skip("../shared/models not present")
    code = ("import sys; sys.modules['onnxruntime'] = None; from edgeconv.cli import main; "
            f"sys.argv = ['edgeconv', 'bench', {str(model)!r}, '--target', 'cpu']; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "pip install 'edgeconv[onnx]'" in done.stderr


def test_no_path_benches_every_export_under_runs(export_dir, tmp_path):
    shutil.copytree(export_dir, tmp_path / "runs" / "fcn")
    done = bench("--target", "stm32h7", "--json", *FAST, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]
    int8 = next(r for r in rows if r["artifact"] == "fcn/fcn-mnist_int8.tflite")
    assert int8["status"] == "ok" and int8["arena_bytes"] > 0 and int8["accuracy"] is not None
    assert {r["status"] for r in rows if r["format"] != "tflite"} == {"unsupported"}


class ZerosRuntime(Runtime):
    """A stand-in runtime: reads a .tflite file's bytes and answers zeros of the output's
    shape. It exists only in this module, which the bench's children import by the entry's
    `cls` (this folder is on their PYTHONPATH)."""

    name = "zeros"

    def __init__(self, path, *, threads: int | None = None) -> None:
        super().__init__(path)
        if self.path.read_bytes()[4:8] != b"TFL3":
            raise EdgeconvError(f"cannot load {self.path} with zeros: not a TFLite file")
        self.backend, self.version, self.threads = "numpy", np.__version__, threads
        self._inputs = [TensorInfo("x", (1, 8), "float32")]
        self._outputs = [TensorInfo("y", (1, 3), "float32")]

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), 3), np.float32)


@needs_models
def test_a_registered_runtime_benches_on_a_target_that_lists_it(tmp_path, monkeypatch):
    """One Runtime class and one RuntimeEntry, registered here, and a target file naming
    them: no other module knows of it, and each row still runs in its own child."""
    entry = RuntimeEntry("zeros", f"{ZerosRuntime.__module__}:ZerosRuntime", ("tflite",),
                         "zeros of the output's shape", options=("threads",))
    (tmp_path / "zerobox.toml").write_text(
        'kind = "host"\nruntimes = ["zeros", "litert"]\nthreads = [1, 2]\n')
    path = os.environ.get("PYTHONPATH")
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", f"{here}{os.pathsep}{path}" if path else here)
    files = (MODELS / "tflite-micro" / "hello_world_int8.tflite", MODELS / "onnx" / "mnist.onnx")
    register(entry)
    try:
        report = run_bench(BenchConfig(paths=files, target="zerobox",
                                       targets_dir=str(tmp_path), warmup=1, runs=3,
                                       min_time=0, out=tmp_path / "results.json"))
    finally:
        unregister("zeros")
    tflite, tflite2, onnx = report.results
    for row, threads in ((tflite, 1), (tflite2, 2)):  # the target's threads: zeros takes them
        assert (row.runtime, row.threads, row.status) == ("zeros", threads, "ok"), row
        assert row.latency_ms.min <= row.latency_ms.p50 and row.runs >= 3
        assert row.peak_rss_bytes > 0 and row.timed_on == "target"
    assert onnx.status == "unsupported" and onnx.runtime == "onnxruntime"
    assert "do not run on zerobox (it runs zeros, litert)" in onnx.error
    assert [r.to_dict() for r in load_results(tmp_path / "results.json").results] == [
        r.to_dict() for r in report.results]
