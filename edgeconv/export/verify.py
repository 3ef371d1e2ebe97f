"""Verification: each written file run in its own runtime on the test images, against the
Keras float model: accuracy, agreement, max |diff|, tensor info, the int8 boundary's scale
and zero-point, and for files TFLite Micro would run on a board, a probe in TFLite Micro.

How sure each figure is (edgeconv.stats) comes from the same images: the number measured, a
Wilson interval for accuracy and agreement, and for each file the paired comparison of its
per-image correctness with the Keras model's (`versus_float`)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv._capture import captured_output
from edgeconv.export.convert import Converted
from edgeconv.formats import CALIBRATED, FLOAT, get_format
from edgeconv.manifest import Artifact, describe_file
from edgeconv.quant.calibration import check_input_quantization
from edgeconv.runtimes.registry import installed_version
from edgeconv.stats import paired, proportion

MICRO = "tflite-micro"  # the microcontroller interpreter (edgeconv.runtimes registry)
FP32_TOLERANCE = 1e-4  # an fp32 file further than this from Keras gets a note


class Verifier:
    """The Keras model's outputs on the test images, and each file measured against them."""

    def __init__(self, model, data):
        self.data = data
        self.reference = np.asarray(model.predict(data.test.x, batch_size=32, verbose=0),
                                    dtype=np.float32)
        self.reference_top1 = np.argmax(self.reference, axis=-1)
        # image by image: what each file's paired comparison is made against
        self.reference_right = self.reference_top1 == data.test.y
        self.float_accuracy, self.float_interval = proportion(self.reference_right)

    def reference_artifact(self, keras_file: Path) -> Artifact:
        """The Keras model itself: the float reference every file is compared with."""
        return Artifact(**describe_file(keras_file, keras_file.parent), format="keras",
                        precision=FLOAT, accuracy=self.float_accuracy, agreement=1.0,
                        max_abs_diff=0.0, runtime=f"keras {installed_version('keras')}",
                        eval_samples=len(self.reference_right),
                        accuracy_interval=self.float_interval)

    def measure(self, path: Path, fmt: str, precision: str, made: Converted) -> Artifact:
        """Run the written file in its own runtime on the test images; describe it."""
        from edgeconv.runtimes import open_runtime

        # LiteRT announces its XNNPACK delegate on fd 2; the user sees our table instead.
        with captured_output(), open_runtime(path) as runtime:
            outputs = np.asarray(runtime.run(self.data.test.x), dtype=np.float32).reshape(
                self.reference.shape)
            inputs = [asdict(t) for t in runtime.inputs()]
            outs = [asdict(t) for t in runtime.outputs()]
            runtime_name = f"{runtime.name} {getattr(runtime, 'version', '')}".strip()
        top1 = np.argmax(outputs, axis=-1)
        right = top1 == self.data.test.y
        top1_accuracy, accuracy_interval = proportion(right)
        agreement, agreement_interval = proportion(top1 == self.reference_top1)
        return Artifact(
            **describe_file(path, path.parent), format=fmt, precision=precision,
            accuracy=top1_accuracy, agreement=agreement,
            max_abs_diff=float(np.max(np.abs(outputs - self.reference))),
            runtime=runtime_name, inputs=inputs, outputs=outs, options=dict(made.options),
            quantization=_boundary(precision, made, inputs, outs),
            micro=_micro_check(path) if _runs_on_micro(fmt, precision) else None,
            eval_samples=len(right), accuracy_interval=accuracy_interval,
            agreement_interval=agreement_interval,
            versus_float=paired(self.reference_right, right).to_record(),
        )

    def accuracy_of(self, fmt: str, content: bytes) -> float:
        """Test accuracy of a candidate file's content, run in its own runtime."""
        from edgeconv.runtimes import open_runtime

        with tempfile.TemporaryDirectory(prefix="edgeconv-candidate-") as tmp:
            candidate = Path(tmp) / f"candidate{get_format(fmt).suffix}"
            candidate.write_bytes(content)
            with captured_output(), open_runtime(candidate) as runtime:
                outputs = np.asarray(runtime.run(self.data.test.x), dtype=np.float32)
        return accuracy(outputs.reshape(len(self.data.test.y), -1), self.data.test.y)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


def _boundary(precision: str, made: Converted, inputs: list[dict],
              outputs: list[dict]) -> dict[str, Any] | None:
    """Scale and zero-point at the input and output of an int8 file."""
    if precision not in CALIBRATED:
        return None
    if made.quantization is not None:  # read from the graph by its converter
        return made.quantization

    def params(tensor: dict) -> dict[str, Any] | None:
        if tensor.get("scale") is None:
            return None  # float io: quantised inside the graph
        return {"scale": tensor["scale"], "zero_point": tensor["zero_point"],
                "dtype": tensor["dtype"]}

    return {"input": params(inputs[0]), "output": params(outputs[0])}


def _runs_on_micro(fmt: str, precision: str) -> bool:
    """A microcontroller runs integer files in a format TFLite Micro reads."""
    from edgeconv.runtimes import get_runtime

    return precision in CALIBRATED and get_runtime(MICRO).reads(fmt)


def _micro_check(path: Path) -> dict[str, Any]:
    """Load and run the file once in TFLite Micro, in a child process (it can crash)."""
    from edgeconv.runtimes.micro import probe

    result = probe(path)
    return {"ok": result.ok, "arena_bytes": result.arena_bytes, "error": result.error}


def notes_for(artifact: Artifact, preprocessing: dict[str, Any]) -> list[str]:
    """What the user should know about a measured file, one sentence each."""
    notes = [f"{artifact.path}: {w}"
             for w in check_input_quantization(artifact.quantization, preprocessing)]
    budget = artifact.options.get("accuracy_budget")
    if budget:
        outcome = "to meet" if budget["met"] else "and still missed"
        notes.append(f"{artifact.path}: kept {len(budget['kept_float'])} layer(s) in float"
                     f" {outcome} --max-drop {budget['max_drop_points']:g} (accuracy"
                     f" {100 * budget['plain_int8']['accuracy']:.2f}% ->"
                     f" {100 * artifact.accuracy:.2f}%, {budget['size_cost_bytes']:+,} bytes)")
    if artifact.micro is not None and not artifact.micro["ok"]:
        notes.append(f"{artifact.path} does not run in TFLite Micro: {artifact.micro['error']}")
    if artifact.precision == FLOAT and artifact.max_abs_diff is not None \
            and artifact.max_abs_diff > FP32_TOLERANCE:
        notes.append(f"{artifact.path} differs from the Keras model by up to"
                     f" {artifact.max_abs_diff:.2g} (expected <= 1e-4)")
    return notes
