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


def _no_tree_env(*, hide_fetched: bool = False, **extra: str) -> dict[str, str]:
    """This environment without the TFLM tree variables; `hide_fetched`: nor a tree
    `edgeconv mcu fetch` cached (an empty MCU cache: only for runs that build nothing)."""
    import tempfile

    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECONV_TFLM_TREE")}
    if hide_fetched:
        env["EDGECONV_MCU_CACHE"] = tempfile.mkdtemp(prefix="edgeconv-no-trees-")
    return {**env, **extra}


@needs_models
def test_mcu_target_without_a_source_tree_gives_the_host_arena_and_says_why():
    """No TFLM tree: the row is the host interpreter's (arena, x86 time labelled as such),
    flash unknown, so fits unknown (the arena fits), and one note says how to point at a tree."""
    done = subprocess.run([*EDGECONV, "bench", str(MODELS / "mlcommons-tiny" /
                                                    "vww_96_int8.tflite"),
                           "--target", "stm32h7", "--json", *FAST], capture_output=True,
                          text=True, timeout=300, env=_no_tree_env(hide_fetched=True))
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "ok" and row["timed_on"] == "host"
    assert isinstance(row["arena_bytes"], int) and 50_000 < row["arena_bytes"] < 200_000
    assert row["flash_bytes"] is None and row["fits"] is None  # 101 KB arena in 1 MB SRAM
    assert row["estimate_ms"] is None and row["mcu"] is None and row["ops"] is None
    assert row["agreement"] is not None  # TFLM vs LiteRT reference kernels
    caveats = {c["kind"]: c["text"] for c in row["caveats"]}  # what the CLI prints, by kind
    why, time = caveats["no-firmware"], caveats["host-time"]
    assert "no firmware run" in why and "--tflm-tree" in why and "EDGECONV_TFLM_TREE" in why
    assert "fits is unknown" in why and "x86 host, reference kernels" in time


@needs_models
def test_an_xtensa_board_gets_no_firmware_and_no_estimate():
    """esp32s3 has no core the emulator models: whatever tree is given, the host interpreter
    with its time labelled, never an estimate or a board time."""
    done = subprocess.run([*EDGECONV, "bench", str(MODELS / "mlcommons-tiny" /
                                                    "ad01_int8.tflite"),
                           "--target", "esp32s3", "--json", *FAST], capture_output=True,
                          text=True, timeout=300,
                          env=_no_tree_env(EDGECONV_TFLM_TREE=str(MODELS.parent)))
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["timed_on"] == "host" and row["estimate_ms"] is None and row["mcu"] is None
    assert "esp32s3 has no Arm core" in " ".join(c["text"] for c in row["caveats"])


@needs_models
def test_mcu_target_without_the_toolchain_names_the_packages(tmp_path):
    """No arm-none-eabi-gcc / qemu-system-arm on PATH: one note naming the Debian packages,
    whatever tree is given; the text output shows the host time under its own label."""
    tree = MODELS.parent / "third_party" / "tflm-tree-cmsis-nn.tgz"
    done = subprocess.run([*EDGECONV, "bench", str(MODELS / "mlcommons-tiny" /
                                                    "ad01_int8.tflite"),
                           "--target", "nrf52840", "--tflm-tree", str(tree), "--wide", *FAST],
                          capture_output=True, text=True, timeout=300,
                          env=_no_tree_env(PATH=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "x86 host ms" in done.stdout  # --wide: the host time, in a column of its own
    assert "x86 host, reference kernels" in done.stderr
    assert "gcc-arm-none-eabi" in done.stderr and "no firmware run" in done.stderr


@needs_models
def test_an_arena_larger_than_the_boards_sram_does_not_fit(tmp_path):
    """TFLM gets the board's SRAM as its arena: vww_96_int8 needs ~101 KiB, not in 64 KiB."""
    (tmp_path / "tiny.toml").write_text(  # no core: the host interpreter alone
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
    assert hello["status"] == "ok" and hello["fits"] in (True, None)  # None: no firmware here
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


# --- MCU rows: the latency estimate's arithmetic, the records, no toolchain needed ---------


def test_the_calibration_reproduces_the_published_cycles_per_instruction():
    """CPI = published latency x clock / our instructions, per model (CORTEX_M.md's table)."""
    from edgeconv.mcu import calibration as c

    m4 = "microtvm-cmsis-nn@NUCLEO-L4R5ZI"
    assert c.PUBLISHED[m4].latency_ms("vww_96_int8") == pytest.approx(301.2, abs=0.1)
    expected = {(m4, "cortex-m4"): (1.50, 1.56, 1.57, 1.77),
                ("tflm-2.3.1@NUCLEO-L4R5ZI", "cortex-m4"): (2.99, 2.84, 2.83, 2.07),
                ("x-cube-ai-7.3@NUCLEO-L4R5ZI", "cortex-m4"): (1.15, 1.17, 0.91, 1.56),
                ("x-cube-ai-7.3@NUCLEO-H7A3ZI", "cortex-m7"): (0.59, 0.61, 0.51, 0.88)}
    for (key, core), cpis in expected.items():
        got = tuple(c.cpi(key, model, core) for model in c.MODELS)
        assert got == pytest.approx(cpis, abs=0.015), key
    # the engine on both boards: the M7 needs 0.5-0.57x the M4's cycles
    assert all(0.5 < c.m7_over_m4(m) < 0.58 for m in c.MODELS)


def test_an_estimate_is_instructions_times_the_cpi_band_at_the_clock():
    from edgeconv.mcu.calibration import cpi_band, estimate_ms

    est = estimate_ms(24_030_000, "cortex-m7", "cmsis-nn", 480)
    band = cpi_band("cortex-m7", "cmsis-nn")
    assert est.mid == pytest.approx(24_030_000 * band.mid / 480e3)
    assert est.low < est.mid < est.high and est.cpi_mid == band.mid
    assert est.high / est.mid >= 1.2 - 1e-9 and est.low / est.mid <= 0.8 + 1e-9  # >= +-20%
    assert "estimate" in est.basis and "480 MHz" in est.basis and "MLPerf Tiny" in est.basis
    # reference kernels: no published point, a wider band around the same centre
    ref = estimate_ms(24_030_000, "cortex-m7", "reference", 480)
    assert ref.mid == pytest.approx(est.mid) and ref.high > est.high and ref.low < est.low
    assert "no published point" in ref.basis
    # no Arm core (esp32s3's Xtensa), no clock: no estimate at all
    assert estimate_ms(1e6, None, "cmsis-nn", 240) is None
    assert estimate_ms(1e6, "cortex-m4", "cmsis-nn", None) is None


def test_the_m4_board_estimate_is_slower_by_clock_and_cycle_ratio():
    """nrf52840 (M4, 64 MHz) vs stm32h7 (M7, 480 MHz) on about the same instructions."""
    from edgeconv.mcu.calibration import cpi_band, estimate_ms
    from edgeconv.targets import load_targets

    targets = load_targets()
    nrf, stm = targets["nrf52840"], targets["stm32h7"]
    m4 = estimate_ms(24_100_000, nrf.core, "cmsis-nn", nrf.clock_mhz)
    m7 = estimate_ms(24_030_000, stm.core, "cmsis-nn", stm.clock_mhz)
    cycle_ratio = cpi_band("cortex-m4", "cmsis-nn").mid / cpi_band("cortex-m7", "cmsis-nn").mid
    assert 1.7 < cycle_ratio < 2.0
    assert m4.mid / m7.mid == pytest.approx(480 / 64 * cycle_ratio, rel=0.01)


def test_the_calibrated_estimate_lands_on_the_published_m4_latencies():
    """The fit's own check: on the L4R5ZI (M4) and the nRF5340 DK (M33) each reference model's
    published latency lies in the band (the H7A3ZI figure is X-CUBE-AI, faster than TFLM:
    the table shows the ratio)."""
    from edgeconv.mcu.calibration import calibration_table

    table = calibration_table()
    assert len(table) == 12
    for row in table:
        low, mid, high = row["estimate_ms"]
        if row["board"] in ("NUCLEO-L4R5ZI", "NRF5340-DK"):
            assert low <= row["published_ms"] <= high, row
        else:
            assert 0.9 < row["ratio"] < 1.8, row


def _firmware_row() -> dict:
    return {"artifact": "m.tflite", "sha256": "0" * 64, "format": "tflite", "precision": "int8",
            "runtime": "tflite-micro", "target": "stm32h7", "threads": 1, "status": "ok",
            "timed_on": "emulated", "arena_bytes": 100_708, "stack_bytes": 1_100,
            "ram_bytes": 102_400, "flash_bytes": 405_000, "fits": True,
            "estimate_ms": {"low": 33.6, "mid": 42.0, "high": 50.6, "cpi_low": 0.67,
                            "cpi_mid": 0.84, "cpi_high": 1.01, "basis": "estimate: ..."},
            "mcu": {"core": "cortex-m7", "kernels": "cmsis-nn", "machine": "mps2-an500",
                    "invoke_instructions": 24_030_000, "setup_instructions": 1_000_000,
                    "runtime_flash_bytes": 80_000, "model_bytes": 325_000,
                    "static_bytes": 592},
            "ops": [{"index": 0, "op": "CONV_2D", "instructions": 17_500_000, "share": 0.73,
                     "macs": 5_000_000, "instructions_per_mac": 3.5},
                    {"index": 1, "op": "SOFTMAX", "instructions": 6_530_000, "share": 0.27,
                     "macs": None, "instructions_per_mac": None}],
            "parity": {"inputs": 8, "values": 16, "differing": 0, "max_abs_diff": 0,
                       "equal": True, "reference": "x86_64 tflite-micro host interpreter"}}


def test_firmware_rows_round_trip_and_old_rows_still_load(tmp_path):
    from edgeconv.records import BenchRow, results_from_dict

    row = BenchRow.from_dict(_firmware_row())
    assert BenchRow.from_dict(row.to_dict()) == row
    assert row.latency_ms is None and row.estimate_ms["mid"] == 42.0
    assert row.mcu["invoke_instructions"] == 24_030_000 and row.ops[0]["op"] == "CONV_2D"
    old = {k: v for k, v in _firmware_row().items()
           if k not in ("estimate_ms", "mcu", "ops", "ram_bytes", "stack_bytes")}
    old["timed_on"] = "host"  # a results.json of an edgeconv before the firmware path
    loaded = results_from_dict({"schema_version": 1, "results": [old]}, "old.json").results[0]
    assert loaded.mcu is None and loaded.estimate_ms is None and loaded.ram_bytes is None
    for bad, where in ((("estimate_ms", "mid"), -1.0), (("mcu", "invoke_instructions"), "x"),
                       (("ops", 0), {"op": "CONV_2D"})):
        broken = json.loads(json.dumps(_firmware_row()))
        broken[bad[0]][bad[1]] = where
        with pytest.raises(EdgeconvError, match=bad[0]):
            results_from_dict({"schema_version": 1, "results": [broken]}, "bad.json")


# --- MCU rows with the firmware: the Arm toolchain, QEMU and the shared TFLM tree ---------

TREE = MODELS.parent / "third_party" / "tflm-tree-cmsis-nn.tgz"
needs_tree = pytest.mark.skipif(not TREE.is_file(), reason="../shared/third_party not present")


@pytest.mark.mcu
@needs_models
@needs_tree
def test_firmware_rows_on_the_m7_and_the_m4_boards():
    """vww_96_int8 in CMSIS-NN firmware on stm32h7 (M7, 480 MHz) and nrf52840 (M4, 64 MHz):
    CORTEX_M.md's instruction counts and arena, exact RAM and flash, per-op profile, outputs
    bit-exact with the host interpreter, and the M4's estimate slower by clock x CPI ratio."""
    from edgeconv.mcu.calibration import cpi_band

    rows = {}
    for target in ("stm32h7", "nrf52840"):
        done = subprocess.run([*EDGECONV, "bench", str(MODELS / "mlcommons-tiny" /
                                                        "vww_96_int8.tflite"),
                               "--target", target, "--json", *FAST], capture_output=True,
                              text=True, timeout=3600,
                              env=_no_tree_env(EDGECONV_TFLM_TREE=str(TREE)))
        assert done.returncode == 0, done.stderr
        (rows[target],) = json.loads(done.stdout)["results"]
    m7, m4 = rows["stm32h7"], rows["nrf52840"]
    for row, core, instructions in ((m7, "cortex-m7", 24.03e6), (m4, "cortex-m4", 24.10e6)):
        assert row["status"] == "ok" and row["timed_on"] == "emulated", row
        assert row["latency_ms"] is None  # no time was measured: only the estimate
        mcu = row["mcu"]
        assert (mcu["core"], mcu["kernels"]) == (core, "cmsis-nn")
        assert mcu["invoke_instructions"] == pytest.approx(instructions, rel=0.05)
        assert row["arena_bytes"] == 100_708
        assert row["flash_bytes"] == mcu["runtime_flash_bytes"] + row["size_bytes"]
        assert row["ram_bytes"] == row["arena_bytes"] + row["stack_bytes"] + mcu["static_bytes"]
        assert 40_000 < mcu["runtime_flash_bytes"] < 150_000 and row["fits"] is True
        est = row["estimate_ms"]
        assert est["low"] < est["mid"] < est["high"] and "estimate" in est["basis"]
        shares = {}
        for op in row["ops"]:
            shares[op["op"]] = shares.get(op["op"], 0) + op["share"]
        assert sum(shares.values()) == pytest.approx(1.0)
        assert 0.6 < shares["CONV_2D"] < 0.85 and 0.15 < shares["DEPTHWISE_CONV_2D"] < 0.4
        assert row["parity"]["equal"] and row["parity"]["inputs"] == 8  # vs host TFLM
        assert row["reference_parity"]["inputs"] == 8  # vs LiteRT's reference kernels
    cycles = cpi_band("cortex-m4", "cmsis-nn").mid / cpi_band("cortex-m7", "cmsis-nn").mid
    ratio = m4["estimate_ms"]["mid"] / m7["estimate_ms"]["mid"]
    assert ratio == pytest.approx(480 / 64 * cycles, rel=0.05)


@pytest.mark.mcu
@needs_tree
def test_bench_prints_the_estimate_memory_and_top_operators(export_dir):
    done = subprocess.run([*EDGECONV, "bench", str(export_dir), "--target", "stm32h7",
                           "--tflm-tree", str(TREE), "--wide", *FAST], capture_output=True,
                          text=True, timeout=3600, env=_no_tree_env())
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "ok (emulated)" in out and "cortex-m7 cmsis-nn" in out
    assert "emulated, estimate" in out and "not a measurement" in out
    assert "top operators: fcn/fcn-mnist_int8.tflite" in out and "instr/MAC" in out
    assert "parity vs host TFLM" in out and "bit-exact" in out
    # the fp32 .tflite: host interpreter, in its own column, labelled
    assert "x86 host ms" in out and "x86 host, reference kernels" in done.stderr


def test_the_docs_table_compares_bench_rows_with_the_published_figures():
    """`python -m edgeconv.mcu.calibration results.json`: our estimate from the bench's own
    instruction count vs the published figure for that board (docs/bench.md)."""
    from edgeconv.mcu.calibration import measured_table
    from edgeconv.records import BenchRow

    data = _firmware_row()
    data["artifact"] = "/models/vww_96_int8.tflite"
    data["mcu"]["clock_mhz"] = 280  # nucleo-h7a3zi's core and clock
    other = {**_firmware_row(), "artifact": "fcn.tflite"}  # not a reference model
    (row,) = measured_table([BenchRow.from_dict(data), BenchRow.from_dict(other)])
    assert (row["board"], row["model"], row["instructions"]) == (
        "NUCLEO-H7A3ZI", "vww_96_int8", 24_030_000)
    assert row["published_ms"] == pytest.approx(1000 / 19.722)
    assert row["ratio"] == pytest.approx(42.0 / (1000 / 19.722))


@pytest.mark.mcu
@needs_models
@needs_tree
def test_a_target_with_both_kernel_sets_gets_a_row_for_each(tmp_path):
    """kernels = ["cmsis-nn", "reference"]: two rows per file, the trees found in a folder
    holding both; the reference kernels run more instructions, with the wider band."""
    (tmp_path / "m7both.toml").write_text(
        'kind = "mcu"\nruntimes = ["tflite-micro"]\ncore = "cortex-m7"\nclock_mhz = 480\n'
        'kernels = ["cmsis-nn", "reference"]\n'
        '[budgets]\nsram_bytes = 1048576\nflash_bytes = 2097152\n')
    done = subprocess.run([*EDGECONV, "bench", str(MODELS / "mlcommons-tiny" /
                                                    "ad01_int8.tflite"),
                           "--target", "m7both", "--targets-dir", str(tmp_path), "--json",
                           *FAST], capture_output=True, text=True, timeout=3600,
                          env=_no_tree_env(EDGECONV_TFLM_TREE=str(TREE.parent)))
    assert done.returncode == 0, done.stderr
    cmsis, reference = json.loads(done.stdout)["results"]
    assert (cmsis["mcu"]["kernels"], reference["mcu"]["kernels"]) == ("cmsis-nn", "reference")
    assert cmsis["mcu"]["invoke_instructions"] == pytest.approx(0.58e6, rel=0.05)
    assert reference["mcu"]["invoke_instructions"] == pytest.approx(1.95e6, rel=0.05)
    assert "no published point" in reference["estimate_ms"]["basis"]
    assert cmsis["parity"]["equal"] and reference["parity"]["equal"]
