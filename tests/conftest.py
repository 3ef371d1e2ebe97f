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


class SentinelTree:
    """Files outside a run that a hostile input tries to reach: `unchanged()` is true while
    every one of them is as it was (content and presence), and nothing was added beside."""

    def __init__(self, root: Path) -> None:
        import hashlib

        self.root = root
        (root / "sub").mkdir(parents=True)
        for name in ("victim.txt", "victim.tflite", "sub/victim.onnx", "sub/model.keras"):
            (root / name).write_bytes(f"sentinel {name}\n".encode())
        self._hash = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, str]:
        return {str(p.relative_to(self.root)): self._hash(p)
                for p in sorted(self.root.rglob("*")) if p.is_file()}

    def unchanged(self) -> bool:
        return self.snapshot() == self.before


@pytest.fixture
def sentinel(tmp_path) -> SentinelTree:
    """A tree of files outside any run directory, to prove that none is touched."""
    return SentinelTree(tmp_path / "outside")
