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
    """The float reference's outputs on the test images, and each file measured against them.

    `model`: the Keras model (its outputs are the reference); or None with
    `reference_outputs` (a user's ONNX or TFLite file: its own fp32 file is the reference)
    and `reference_names`. Every file's parity entries carry the reference's output names,
    so that gate and report name an output the same in every format; `notes` collects what
    the user should know about the matching.
    A model with one 2-d output is a classifier: top-1 accuracy (when the images have
    labels) and agreement. Every file gets per-output parity (part B's
    edgeconv.quant.output_parity) against every reference output.
    """

    def __init__(self, model, data, reference_outputs: list[np.ndarray] | None = None,
                 reference_names: list[str] | None = None):
        self.data = data
        if model is not None:
            from edgeconv.export.user_model import keras_outputs

            reference_outputs = keras_outputs(model, data.test.x)
            reference_names = _keras_output_names(model)
        self.reference_outputs = [np.asarray(o, dtype=np.float32) for o in reference_outputs]
        if reference_names is None or len(reference_names) != len(self.reference_outputs):
            reference_names = [f"output_{k}" for k in range(len(self.reference_outputs))]
        self.reference_names = list(reference_names)
        self.notes: list[str] = []
        self.reference = self.reference_outputs[0]
        self.labels = data.test.y
        self.classifier = len(self.reference_outputs) == 1 and self.reference.ndim == 2
        self.reference_top1 = np.argmax(self.reference, axis=-1) if self.classifier else None
        self.reference_right = None
        self.float_accuracy = self.float_interval = None
        if self.classifier and self.labels is not None:
            # image by image: what each file's paired comparison is made against
            self.reference_right = self.reference_top1 == self.labels
            self.float_accuracy, self.float_interval = proportion(self.reference_right)

    def reference_artifact(self, keras_file: Path) -> Artifact:
        """The Keras model itself: the float reference every file is compared with."""
        return Artifact(**describe_file(keras_file, keras_file.parent), format="keras",
                        precision=FLOAT, accuracy=self.float_accuracy,
                        agreement=1.0 if self.classifier else None,
                        max_abs_diff=0.0, runtime=f"keras {installed_version('keras')}",
                        eval_samples=len(self.data.test.x),
                        accuracy_interval=self.float_interval)

    def measure(self, path: Path, fmt: str, precision: str, made: Converted,
                reference: bool = False) -> Artifact:
        """Run the written file in its own runtime on the test images; describe it.
        `reference`: the file is the float reference itself (a user's ONNX or TFLite)."""
        from edgeconv.export.outputs import run_outputs

        got, (runtime_name, inputs, outs, signature, run_note) = run_outputs(
            path, self.data.test.x)
        if run_note and run_note not in self.notes:  # said once for the export
            self.notes.append(run_note)
        file_names = [t.name for t in outs]
        order, named = match_outputs(got, self.reference_outputs, path.name, self.reference_names,
                                     file_names, signature)
        if not named:
            self.notes.append(f"{path.name}: its {len(order)} outputs could not be told apart"
                              " by name or size; matched by position, and its parity names"
                              " them as the file does")
        got = [got[i].reshape(r.shape) for i, r in zip(order, self.reference_outputs)]
        inputs, outs = [asdict(t) for t in inputs], [asdict(t) for t in outs]
        figures: dict[str, Any] = {"eval_samples": len(self.data.test.x)}
        if self.classifier:
            top1 = np.argmax(got[0], axis=-1)
            figures["agreement"], figures["agreement_interval"] = proportion(
                top1 == self.reference_top1)
            if self.labels is not None:
                right = top1 == self.labels
                figures["accuracy"], figures["accuracy_interval"] = proportion(right)
                if not reference:
                    figures["versus_float"] = paired(self.reference_right, right).to_record()
        diffs = [float(np.max(np.abs(g - r))) if g.size else 0.0
                 for g, r in zip(got, self.reference_outputs)]
        return Artifact(
            **describe_file(path, path.parent), format=fmt, precision=precision,
            max_abs_diff=max(diffs), runtime=runtime_name, inputs=inputs, outputs=outs,
            options=dict(made.options), quantization=_boundary(precision, made, inputs, outs),
            micro=_micro_check(path) if _runs_on_micro(fmt, precision) else None,
            output_parity=None if reference else parity_of(
                self.reference_outputs, got,
                self.reference_names if named else [file_names[i] for i in order]),
            **figures,
        )

    def accuracy_of(self, fmt: str, content: bytes) -> float:
        """Test accuracy of a candidate file's content, run in its own runtime."""
        from edgeconv.runtimes import open_runtime

        with tempfile.TemporaryDirectory(prefix="edgeconv-candidate-") as tmp:
            candidate = Path(tmp) / f"candidate{get_format(fmt).suffix}"
            candidate.write_bytes(content)
            with captured_output(), open_runtime(candidate) as runtime:
                outputs = np.asarray(runtime.run(self.data.test.x), dtype=np.float32)
        return accuracy(outputs.reshape(len(self.data.test.x), -1), self.data.test.y)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


def match_outputs(got: list[np.ndarray], reference: list[np.ndarray], file: str,
                  reference_names: list[str], file_names: list[str],
                  signature: list[str | None]) -> tuple[list[int], bool]:
    """(order, named): order[k] is the file's output that is the reference's output k;
    named says the match is sure, so the file's entries take the reference's names.

    A converter may rename and reorder several outputs (TFLite names them
    `StatefulPartitionedCall_1:0` and sorts them by that name), so, in turn: the names the
    file's signature or tensors give (a reference name, or output_K for the K-th), when
    they pick each output once with its size; else the order, when the sizes fit it and
    tell the outputs apart; else each size, when it is found once. Outputs of equal sizes
    that neither names nor order place are matched by position, not named (named False)."""
    from edgeconv.errors import EdgeconvError

    if len(got) != len(reference):
        raise EdgeconvError(f"{file} has {len(got)} outputs, the float model"
                            f" {len(reference)}")
    count = len(reference)
    for names in (signature, file_names):
        order = _by_name(names, reference_names)
        if order is not None and all(got[i].size == r.size for i, r in zip(order, reference)):
            return order, True
    sizes = [g.size for g in got]
    distinct = len(set(sizes)) == count
    if all(g.size == r.size for g, r in zip(got, reference)):
        return list(range(count)), distinct or count == 1
    order = []
    for r in reference:
        found = [i for i, size in enumerate(sizes) if size == r.size and i not in order]
        if not found:
            raise EdgeconvError(f"{file}: no output of {r.shape[1:]} values like the"
                                " float model's")
        order.append(found[0])
    return order, distinct


def _by_name(names: list[str | None], reference_names: list[str]) -> list[int] | None:
    """The file's output for each reference output by name (a reference name, or output_K
    for the reference's K-th output), or None when the names do not pick each once."""
    import re

    where: dict[int, int] = {}
    for i, name in enumerate(names):
        if name in reference_names:
            k = reference_names.index(name)
        elif name and (m := re.fullmatch(r"output_(\d+)", name)):
            k = int(m.group(1))
        else:
            return None
        if k >= len(reference_names) or k in where:
            return None
        where[k] = i
    if len(where) != len(reference_names):
        return None
    return [where[k] for k in range(len(reference_names))]


def _keras_output_names(model) -> list[str] | None:
    """The Keras model's output names, in the order of keras_outputs (its outputs list)."""
    try:
        names = list(model.output_names)
    except (AttributeError, TypeError, ValueError):
        return None
    return names if all(isinstance(n, str) and n for n in names) else None


def parity_of(reference: list[np.ndarray], candidate: list[np.ndarray],
              names: list[str] | None) -> list[dict[str, Any]]:
    """Per-output parity (max |diff|, RMSE, L2r, cosine, SNR dB): part B's function."""
    from edgeconv.quant.output_parity import output_parity

    return output_parity(reference, candidate, names)


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
        changed = [f"{len(budget[key])} layer(s) {what}" for key, what in (
            ("int16x8_layers", "at int16x8"), ("kept_float", "in float")) if budget.get(key)]
        notes.append(f"{artifact.path}: {' and '.join(changed) or 'no layer changed'} {outcome}"
                     f" --max-drop {budget['max_drop_points']:g} (accuracy"
                     f" {100 * budget['plain_int8']['accuracy']:.2f}% ->"
                     f" {100 * artifact.accuracy:.2f}%, {budget['size_cost_bytes']:+,} bytes)")
    if artifact.micro is not None and not artifact.micro["ok"]:
        notes.append(f"{artifact.path} does not run in TFLite Micro: {artifact.micro['error']}")
    if artifact.precision == FLOAT and artifact.max_abs_diff is not None \
            and artifact.max_abs_diff > FP32_TOLERANCE:
        notes.append(f"{artifact.path} differs from the Keras model by up to"
                     f" {artifact.max_abs_diff:.2g} (expected <= 1e-4)")
    return notes
