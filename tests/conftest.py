import os
import subprocess
import sys
from pathlib import Path

import pytest

# Quiet TensorFlow's C++ logging in test output; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def benched_fcn(tmp_path_factory) -> Path:
    """An untrained fcn-mnist int8 export with its cpu results.json (read-only for tests)."""
    out = tmp_path_factory.mktemp("benched") / "fcn"
    edgeconv = [sys.executable, "-m", "edgeconv"]
    subprocess.run([*edgeconv, "export", "fcn-mnist", "--untrained", "--int8", "--out", str(out),
                    "--json"], capture_output=True, check=True, timeout=300)
    # LiteRT only: the Keras row (TensorFlow in a child) would double the time; the .onnx
    # files then have no cpu row, which the gate's must_run_on must notice
    subprocess.run([*edgeconv, "bench", str(out), "--target", "cpu", "--runtime", "litert",
                    "--runs", "5", "--warmup", "1", "--min-time", "0", "--json", "--out",
                    str(out / "results.json")], capture_output=True, check=True, timeout=300)
    return out
