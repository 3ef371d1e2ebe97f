"""The gpu target: onnxruntime's CUDA (and TensorRT) providers, Keras on the GPU.

Skipped without an NVIDIA GPU and onnxruntime-gpu (`pip install 'edgeconv[gpu]'`); run on
a GPU machine with `scripts/test -m gpu`.
"""

import json
import subprocess
import sys

import pytest

from edgeconv.bench.local import gpu_unavailable

REASON = gpu_unavailable()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=str(REASON))]


def edgeconv(*args):
    return subprocess.run([sys.executable, "-m", "edgeconv", *map(str, args)],
                          capture_output=True, text=True, check=False, timeout=900)


def test_onnx_files_bench_on_the_gpu_with_cuda(tmp_path):
    out = tmp_path / "fcn"
    made = edgeconv("export", "fcn-mnist", "--untrained", "--int8", "--formats", "onnx",
                    "--out", out)
    assert made.returncode == 0, made.stderr
    done = edgeconv("bench", out, "--target", "gpu", "--runs", "20", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]
    onnx = [r for r in rows if r["format"] == "onnx"]
    assert {r["precision"] for r in onnx} == {"fp32", "int8"}
    for row in onnx:
        assert row["status"] == "ok", row
        assert row["latency_ms"]["p50"] > 0
        assert row["agreement"] is None or row["agreement"] >= 0.9
    keras = [r for r in rows if r["format"] == "keras"]
    assert keras and keras[0]["status"] in ("ok", "unsupported")
    if keras[0]["status"] == "unsupported":
        assert "sees no GPU" in keras[0]["error"]
