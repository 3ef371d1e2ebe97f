import os
import subprocess
import sys
from pathlib import Path

import pytest

# Quiet TensorFlow's C++ logging in test output; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tables off a terminal follow COLUMNS (edgeconv.render): the tests read them at one known
# width, whatever the shell that runs them says; tests/test_tables.py sets its own.
os.environ["COLUMNS"] = "200"
# Every conversion a test makes is made, not reused from the user's conversion cache
# (edgeconv.export.conversion_cache); tests/test_conversion_cache.py sets its own folder.
os.environ["EDGECONV_CONVERSION_CACHE"] = "off"


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


# A detector-like Keras model with two outputs and a folder of unlabelled images.
_TWO_OUTPUTS = """
import sys
from pathlib import Path

import keras
import numpy as np
from PIL import Image

root = Path(sys.argv[1])
keras.utils.set_random_seed(0)
inp = keras.Input((16, 16, 3))
x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
x = keras.layers.GlobalAveragePooling2D()(x)
boxes = keras.layers.Dense(4, name="boxes")(x)
score = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
keras.Model(inp, [boxes, score]).save(root / "two.keras")
images = root / "images"  # one folder of images, no class sub-folders: no labels
images.mkdir()
rng = np.random.default_rng(0)
for i in range(40):
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / f"{i}.png")
"""


@pytest.fixture(scope="session")
def two_output_export(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`edgeconv export two.keras --data images/ --int8` (every format and precision, parity
    only: no labels): the export folder (read-only for tests) and the export's run, whose
    stdout is its table."""
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("two")
    subprocess.run([sys.executable, "-c", _TWO_OUTPUTS, str(root)], check=True,
                   capture_output=True, timeout=300)
    out = root / "run"
    done = subprocess.run([sys.executable, "-m", "edgeconv", "export", str(root / "two.keras"),
                           "--data", str(root / "images"), "--int8", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done


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


@pytest.fixture(scope="session")
def conversion_session():
    """A small seeded Keras CNN, calibration images, and the export's conversion session
    (test_contracts converts it to every format; test_runtimes runs its int8 ONNX)."""
    import numpy as np

    from edgeconv._lazy import keras
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.calibration import CalibrationSet
    from edgeconv.quant.settings import Int8Settings

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((16, 16, 1))
    x = k.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = k.layers.Conv2D(8, 3, activation="relu")(k.layers.MaxPooling2D()(x))
    # functional, as the zoo builds them (tf2onnx fails on a Keras 3 Sequential model)
    model = k.Model(inputs, k.layers.Dense(4)(k.layers.GlobalAveragePooling2D()(x)))
    images = np.random.default_rng(0).random((64, 16, 16, 1), dtype=np.float32)
    calibration = CalibrationSet(images, np.zeros(64, dtype=np.int64), seed=0)
    return model, ConversionSession(model, calibration, Int8Settings())
