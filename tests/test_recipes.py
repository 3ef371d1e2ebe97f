"""The default recipes train real models, and int8 keeps their accuracy (opt-in, ~10 min):

    scripts/test -m recipes

For each reference model: `edgeconv export NAME --int8` on the embedded digits (it trains
the default recipe first), then the issue's targets on the manifest's figures, which
tests/test_export.py checks against the runtimes directly.
"""

import json
import subprocess
import sys

import pytest

TARGETS = {"fcn-mnist": 0.95, "mobilenet": 0.95, "separable-vgg-cifar": 0.95,
           "squeezenet": 0.90}


@pytest.mark.recipes
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("model", list(TARGETS))
def test_default_recipe_reaches_its_target_and_int8_keeps_it(model, tmp_path):
    out = tmp_path / model
    proc = subprocess.run([sys.executable, "-m", "edgeconv", "export", model, "--int8",
                           "--out", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    float_accuracy = manifest["float_accuracy"]
    figures = {f"{a['format']} {a['precision']}": (a["accuracy"], a["agreement"])
               for a in manifest["artifacts"]}
    print(model, f"float {float_accuracy:.4f}", figures)
    assert float_accuracy >= TARGETS[model]
    for fmt in ("tflite", "onnx"):
        accuracy, agreement = figures[f"{fmt} int8"]
        assert agreement >= 0.97, fmt
        assert accuracy >= float_accuracy - 0.01, fmt
