"""Export a trained run: TFLite and ONNX files at each precision, each measured in its own
runtime on the test split, listed in manifest.json.

Order of work, so that an interruption at any moment leaves nothing a manifest vouches for
that is not complete: the previous manifest goes first (then the files it listed), each new
file is written atomically, and the new manifest is written last.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from edgeconv import __version__, _atomic
from edgeconv._capture import captured_output
from edgeconv._lazy import keras
from edgeconv.calibration_check import (
    CalibrationCheck,
    check_calibration,
    check_input_quantization,
)
from edgeconv.errors import EdgeconvError
from edgeconv.manifest import MANIFEST, Artifact, describe_file, load_manifest, write_manifest
from edgeconv.runtimes.keras import load_model as load_keras_model
from edgeconv.train import BEST, DEFAULT_RUNS_DIR, RESULT
from edgeconv.train import Progress as TrainProgress

FORMATS = ("tflite", "onnx")
CALIBRATION_SPLIT = "train"
# A layer quantised with an SQNR above this is exact in practice (max pooling, reshape):
# keeping it float would cost size and gain nothing.
EXACT_SQNR_DB = 100.0
# Test images an untrained export is measured on unless --eval-samples says otherwise: enough
# to check each conversion against Keras, few enough for VGG16 at 224x224 (15 GMAC each).
UNTRAINED_EVAL_SAMPLES = 32
# Libraries whose versions make an artifact reproducible; read from package metadata so
# that recording them imports nothing.
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime",
             "ai-edge-litert", "tflite-micro", "numpy")


@dataclass(frozen=True)
class ExportConfig:
    target: str  # a model name, or a run directory holding a finished training run
    model_options: dict[str, Any] = field(default_factory=dict)  # given by the user
    int8: bool = False
    fp16: bool = False
    dynamic: bool = False
    formats: tuple[str, ...] = FORMATS
    calibration_samples: int = 200
    calibration_method: str = "minmax"  # ONNX only: TFLite calibrates on min/max
    per_tensor: bool = False
    float_io: bool = False
    out: Path | None = None
    dataset: str = "digits"  # used when export trains, or exports untrained weights
    data_dir: str | None = None
    seed: int = 0
    untrained: bool = False  # freshly initialised weights: for size and speed only
    max_drop: float | None = None  # int8 accuracy budget, points below float (test split)
    # Test images each file is measured on (stratified, seeded); None: the whole split, or
    # UNTRAINED_EVAL_SAMPLES for untrained weights, whose accuracy means nothing.
    eval_samples: int | None = None


@dataclass(frozen=True)
class ExportResult:
    run_dir: Path
    manifest: Path
    model: str
    trained: bool  # False: untrained weights (accuracy figures are meaningless)
    trained_now: bool  # True: export trained the run first
    float_accuracy: float
    artifacts: list[Artifact]
    notes: list[str]
    seconds: float
    budget_met: bool | None = None  # --max-drop: did every int8 file meet it (None: not set)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"], data["manifest"] = str(self.run_dir), str(self.manifest)
        return data


class Progress:
    """What `export` reports while it runs; the CLI draws it with rich."""

    def start(self, total_steps: int) -> None: ...
    def step(self, description: str) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass(frozen=True)
class _Source:
    """The Keras model to export and everything the manifest says about where it came from."""

    run_dir: Path
    spec_name: str
    model_options: dict[str, Any]
    dataset: str
    seed: int
    preprocessing: dict[str, Any]
    trained: bool
    trained_now: bool


def export(config: ExportConfig, progress: Progress | None = None,
           train_progress: TrainProgress | None = None) -> ExportResult:
    progress = progress or Progress()
    started = time.perf_counter()
    plan = _plan(config)
    source = _resolve_source(config, progress, train_progress)
    if source.trained:  # a bad checkpoint fails before the dataset is even read
        model = load_keras_model(source.run_dir / BEST)
        data = _load_data(source, config)
    else:
        data = _load_data(source, config)
        model, source = _build_untrained(source, data)
    full_test = len(data.test.y)
    data = _evaluation_data(data, config, seed=source.seed)
    calibration, calibration_check = _calibration(data, config)

    _drop_previous_export(source.run_dir)
    progress.start(1 + 2 * len(plan))
    progress.step("float reference (Keras)")
    reference = _predict_keras(model, data.test.x)
    float_accuracy = _accuracy(reference, data.test.y)
    keras_file = source.run_dir / BEST
    if not source.trained:  # nothing on disk yet: the untrained model is exported as is
        with _atomic.atomic_path(keras_file) as tmp:
            model.save(tmp)
    artifacts = [Artifact(**describe_file(keras_file, source.run_dir), format="keras",
                          precision="fp32", accuracy=float_accuracy, agreement=1.0,
                          max_abs_diff=0.0, runtime=f"keras {_version('keras')}")]
    notes = [f"calibration: {w}" for w in calibration_check.warnings] if calibration_check \
        else []
    name = source.spec_name
    converter = _Converter(model, calibration, config)
    budget_met: bool | None = None
    for fmt, precision in plan:
        progress.step(f"{fmt} {precision}: converting")
        path = source.run_dir / f"{name}_{precision}.{fmt}"
        content = converter.make(fmt, precision)
        _atomic.write_bytes(path, content)
        progress.step(f"{fmt} {precision}: measuring on {len(data.test.y)} test images")
        artifact = _measure(path, fmt, precision, source.run_dir, content, data, reference,
                            config)
        if precision == "int8" and config.max_drop is not None \
                and (float_accuracy - artifact.accuracy) * 100 > config.max_drop:
            artifact, met = _within_budget(artifact, path, fmt, converter, data, reference,
                                           float_accuracy, config, progress)
            budget_met = met if budget_met is None else budget_met and met
        elif precision == "int8" and config.max_drop is not None and budget_met is None:
            budget_met = True
        artifacts.append(artifact)
        notes.extend(_notes_for(artifact, data.preprocessing.to_dict()))
    manifest_data = _manifest_data(source, config, data, float_accuracy)
    if len(data.test.y) < full_test:  # bench measures on the same images
        manifest_data["dataset"]["test_subset"] = {"samples": len(data.test.y),
                                                   "of": full_test, "seed": source.seed}
    if calibration_check is not None:
        manifest_data["calibration"] = {"split": CALIBRATION_SPLIT, "seed": config.seed,
                                        **calibration_check.to_dict()}
    manifest = write_manifest(source.run_dir, manifest_data, artifacts)
    if not source.trained:
        notes.append("untrained weights: the accuracy figures are those of random weights"
                     " (size and speed figures are real)")
    return ExportResult(run_dir=source.run_dir, manifest=manifest, model=name,
                        trained=source.trained, trained_now=source.trained_now,
                        float_accuracy=float_accuracy, artifacts=artifacts, notes=notes,
                        seconds=time.perf_counter() - started, budget_met=budget_met)


class _Converter:
    """Makes each file's bytes; keeps the fp32 ONNX for the int8 one made from it."""

    def __init__(self, model, calibration: np.ndarray | None, config: ExportConfig):
        self.model, self.calibration, self.config = model, calibration, config
        self._onnx_fp32: bytes | None = None

    def onnx_fp32(self) -> bytes:
        if self._onnx_fp32 is None:
            from edgeconv.convert import to_onnx

            self._onnx_fp32 = to_onnx(self.model)
        return self._onnx_fp32

    def make(self, fmt: str, precision: str, keep_float: tuple[str, ...] = ()) -> bytes:
        config = self.config
        if fmt == "tflite":
            from edgeconv.convert import to_tflite

            return to_tflite(self.model, precision, self.calibration, float_io=config.float_io,
                             per_channel=not config.per_tensor, keep_float=keep_float)
        if precision == "fp32":
            return self.onnx_fp32()
        from edgeconv.convert import quantize_onnx

        return quantize_onnx(self.onnx_fp32(), self.calibration,
                             method=config.calibration_method,
                             per_channel=not config.per_tensor, keep_float=keep_float)

    def ranked_layers(self, fmt: str, int8: bytes) -> list[str]:
        """Quantised layers worst first by SQNR; exact ones (pooling, reshape) left out."""
        if fmt == "tflite":
            from edgeconv.convert.tflite import layer_errors

            rows = layer_errors(self.model, self.calibration, float_io=self.config.float_io,
                                per_channel=not self.config.per_tensor)
        else:
            from edgeconv.convert.onnx import layer_errors

            rows = layer_errors(self.onnx_fp32(), int8, self.calibration)
        lossy = [r for r in rows if r["sqnr_db"] < EXACT_SQNR_DB]
        return [r["name"] for r in sorted(lossy, key=lambda r: r["sqnr_db"])]


def _within_budget(plain: Artifact, path: Path, fmt: str, converter: _Converter, data,
                   reference: np.ndarray, float_accuracy: float, config: ExportConfig,
                   progress: Progress) -> tuple[Artifact, bool]:
    """Keep the worst layers float until the int8 file meets --max-drop (see int8_budget)."""
    from edgeconv.int8_budget import keep_float_until_within

    ranked = converter.ranked_layers(fmt, path.read_bytes())
    if not ranked:
        return plain, False
    search = keep_float_until_within(
        ranked, float_accuracy=float_accuracy, max_drop_points=config.max_drop,
        convert=lambda kept: converter.make(fmt, "int8", kept),
        accuracy_of=lambda content: _accuracy_of(content, fmt, data),
        on_try=lambda k, n: progress.message(
            f"{path.name}: {100 * (float_accuracy - plain.accuracy):.2f} points below float"
            f" (budget {config.max_drop:g}); trying {k} of {n} layers in float"))
    _atomic.write_bytes(path, search.content)
    artifact = _measure(path, fmt, "int8", path.parent, search.content, data, reference,
                        config)
    budget = {"max_drop_points": config.max_drop, "met": search.met,
              "kept_float": list(search.best.kept_float),
              "plain_int8": {"accuracy": plain.accuracy, "size_bytes": plain.size_bytes},
              "size_cost_bytes": artifact.size_bytes - plain.size_bytes,
              "tried": [{"kept_float": len(c.kept_float), "accuracy": c.accuracy,
                         "size_bytes": c.size_bytes} for c in search.tried]}
    return replace(artifact, options={**artifact.options, "accuracy_budget": budget}), \
        search.met


def _accuracy_of(content: bytes, fmt: str, data) -> float:
    """Test accuracy of candidate file content, run in its own runtime."""
    import tempfile

    from edgeconv.runtimes import open_runtime

    with tempfile.TemporaryDirectory(prefix="edgeconv-candidate-") as tmp:
        candidate = Path(tmp) / f"candidate.{fmt}"
        candidate.write_bytes(content)
        with captured_output(), open_runtime(candidate) as runtime:
            outputs = np.asarray(runtime.run(data.test.x), dtype=np.float32)
    return _accuracy(outputs.reshape(len(data.test.y), -1), data.test.y)


def _plan(config: ExportConfig) -> list[tuple[str, str]]:
    """(format, precision) pairs in the order they are made; checks the combination."""
    unknown = [f for f in config.formats if f not in FORMATS]
    if unknown or not config.formats:
        raise EdgeconvError(f"unknown format '{unknown[0] if unknown else ''}'; --formats"
                            f" takes a comma-separated list of {', '.join(FORMATS)}")
    if not config.calibration_samples > 0:
        raise EdgeconvError(f"--calibration-samples must be > 0; got"
                            f" {config.calibration_samples}")
    if config.eval_samples is not None and not config.eval_samples > 0:
        raise EdgeconvError(f"--eval-samples must be > 0; got {config.eval_samples}")
    from edgeconv.convert.onnx import CALIBRATION_METHODS

    if config.calibration_method not in CALIBRATION_METHODS:
        raise EdgeconvError(f"unknown calibration method '{config.calibration_method}'; use"
                            f" one of {', '.join(CALIBRATION_METHODS)}")
    if (config.fp16 or config.dynamic) and "tflite" not in config.formats:
        raise EdgeconvError("--fp16 and --dynamic are TFLite precisions; add tflite to"
                            " --formats")
    if (config.float_io or config.per_tensor or config.max_drop is not None) \
            and not config.int8:
        raise EdgeconvError("--float-io, --per-tensor and --max-drop apply to int8; add --int8")
    if config.max_drop is not None and not config.max_drop >= 0:
        raise EdgeconvError(f"--max-drop is in accuracy points and must be >= 0; got"
                            f" {config.max_drop}")
    plan = []
    if "tflite" in config.formats:
        plan.append(("tflite", "fp32"))
        plan += [("tflite", p) for p, on in (("fp16", config.fp16),
                                            ("dynamic", config.dynamic),
                                            ("int8", config.int8)) if on]
    if "onnx" in config.formats:
        plan.append(("onnx", "fp32"))
        if config.int8:
            plan.append(("onnx", "int8"))
    return plan


def _resolve_source(config: ExportConfig, progress: Progress,
                    train_progress: TrainProgress | None) -> _Source:
    from edgeconv.zoo import get_spec

    given = Path(config.target)
    if config.untrained:
        spec = get_spec(config.target)
        return _Source(run_dir=Path(config.out or DEFAULT_RUNS_DIR / f"{spec.name}-untrained"),
                       spec_name=spec.name, model_options=dict(config.model_options),
                       dataset=config.dataset, seed=config.seed, preprocessing={},
                       trained=False, trained_now=False)
    if given.is_dir() and (given / RESULT).is_file():
        if config.model_options:
            raise EdgeconvError(f"{given} is a trained run: its model options are fixed;"
                                " drop the model options")
        return _from_run(given, trained_now=False)
    if given.is_dir() or len(given.parts) > 1:
        raise EdgeconvError(f"{given} is not a finished training run (no {RESULT} there);"
                            " give a model name, or a directory `edgeconv train` completed")
    spec = get_spec(config.target)  # an unknown name gets a "did you mean" here
    run_dir = Path(config.out or DEFAULT_RUNS_DIR / spec.name)
    if (run_dir / RESULT).is_file():
        source = _from_run(run_dir, trained_now=False)
        _check_options(source, config.model_options)
        return source
    from edgeconv.train import TrainConfig, train

    progress.message(f"no trained {spec.name} in {run_dir}: training one with the default"
                     f" recipe on {config.dataset} first")
    train(TrainConfig(model=spec.name, model_options=dict(config.model_options),
                      dataset=config.dataset, data_dir=config.data_dir, seed=config.seed,
                      out=run_dir), train_progress)
    return _from_run(run_dir, trained_now=True)


def _from_run(run_dir: Path, trained_now: bool) -> _Source:
    file = run_dir / RESULT
    try:
        result = json.loads(file.read_text())
        return _Source(run_dir=run_dir, spec_name=result["model"],
                       model_options=result["model_options"],
                       dataset=result["config"]["dataset"], seed=result["config"]["seed"],
                       preprocessing=result["preprocessing"], trained=True,
                       trained_now=trained_now)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EdgeconvError(f"{file}: not a readable training result ({type(exc).__name__}:"
                            f" {exc}); re-run `edgeconv train`") from None


def _check_options(source: _Source, given: dict[str, Any]) -> None:
    for key, value in given.items():
        have = source.model_options.get(key)
        if (list(value) if isinstance(value, tuple) else value) != have:
            raise EdgeconvError(
                f"{source.run_dir} holds {source.spec_name} with {key}={have!r}, not"
                f" {value!r}; export that run, or pass --out DIR for a new one")


def _load_data(source: _Source, config: ExportConfig):
    """The test split and calibration images, prepared exactly as in training."""
    from edgeconv.data import load, load_recorded

    if source.trained:
        return load_recorded(source.dataset, source.preprocessing, data_dir=config.data_dir,
                             seed=source.seed, made=f"{source.run_dir} was trained")
    # Untrained: the model's own input size; a size-free model sees the data at MNIST's 28.
    from edgeconv.zoo import get_spec, resolve_options

    h, w, c = resolve_options(get_spec(source.spec_name), **source.model_options).input_shape
    return load(source.dataset, input_shape=(h or 28, w or 28, c), data_dir=config.data_dir,
                seed=source.seed)


def _evaluation_data(data, config: ExportConfig, seed: int):
    """The data with the test split cut to the images each file is measured on."""
    from edgeconv.data import evaluation_subset

    samples = config.eval_samples or (UNTRAINED_EVAL_SAMPLES if config.untrained else None)
    return data if samples is None else evaluation_subset(data, samples, seed=seed)


def _build_untrained(source: _Source, data) -> tuple[Any, _Source]:
    """A freshly initialised model, and the source with its complete model options."""
    from edgeconv.zoo import build, get_spec, resolve_options

    spec = get_spec(source.spec_name)
    opts = resolve_options(spec, **{**source.model_options, "classes": data.num_classes})
    keras().utils.set_random_seed(source.seed)  # the same weights for the same --seed
    return build(spec, opts), replace(source, model_options=opts.to_dict())


def _calibration(data, config: ExportConfig) -> tuple[np.ndarray | None,
                                                      CalibrationCheck | None]:
    """The int8 calibration images, and how well they match the training images."""
    if not config.int8:
        return None, None
    from edgeconv.data import calibration_indices

    picked = calibration_indices(data, config.calibration_samples, seed=config.seed)
    images = data.train.x[picked]
    return images, check_calibration(images, data.train.y[picked], data.train.x,
                                     data.preprocessing.to_dict(), data.num_classes)


def _drop_previous_export(run_dir: Path) -> None:
    """Remove the old manifest first, then the files it vouched for (never the checkpoint)."""
    manifest = run_dir / MANIFEST
    try:
        previous = load_manifest(manifest) if manifest.is_file() else None
    except EdgeconvError:
        previous = None  # unreadable: it vouches for nothing; just remove it
    manifest.unlink(missing_ok=True)
    for artifact in previous.artifacts if previous else []:
        if artifact.format != "keras":
            (run_dir / artifact.path).unlink(missing_ok=True)


def _predict_keras(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=32, verbose=0), dtype=np.float32)


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


def _measure(path: Path, fmt: str, precision: str, run_dir: Path, content: bytes, data,
             reference: np.ndarray, config: ExportConfig) -> Artifact:
    """Run the written file in its own runtime on the test split; describe it."""
    from edgeconv.runtimes import open_runtime

    # LiteRT announces its XNNPACK delegate on fd 2; the user sees our table instead.
    with captured_output(), open_runtime(path) as runtime:
        outputs = np.asarray(runtime.run(data.test.x), dtype=np.float32).reshape(
            reference.shape)
        inputs = [asdict(t) for t in runtime.inputs()]
        outs = [asdict(t) for t in runtime.outputs()]
        runtime_name = f"{runtime.name} {getattr(runtime, 'version', '')}".strip()
    options: dict[str, Any] = {}
    if fmt == "onnx":
        from edgeconv.convert.onnx import OPSET

        options["opset"] = OPSET
    if precision == "int8":
        options.update(per_channel=not config.per_tensor,
                       calibration={"samples": min(config.calibration_samples,
                                                   len(data.train.y)),
                                    "split": CALIBRATION_SPLIT, "seed": config.seed,
                                    "method": "minmax" if fmt == "tflite"
                                    else config.calibration_method})
        if fmt == "tflite":
            options["float_io"] = config.float_io
    return Artifact(
        **describe_file(path, run_dir), format=fmt, precision=precision,
        accuracy=_accuracy(outputs, data.test.y),
        agreement=float(np.mean(np.argmax(outputs, -1) == np.argmax(reference, -1))),
        max_abs_diff=float(np.max(np.abs(outputs - reference))), runtime=runtime_name,
        inputs=inputs, outputs=outs, options=options,
        quantization=_quantization(fmt, precision, content, inputs, outs),
        micro=_micro_check(path) if (fmt, precision) == ("tflite", "int8") else None,
    )


def _quantization(fmt: str, precision: str, content: bytes, inputs: list[dict],
                  outputs: list[dict]) -> dict[str, Any] | None:
    """Scale and zero-point at the input and output of an int8 file."""
    if precision != "int8":
        return None
    if fmt == "onnx":
        from edgeconv.convert.onnx import boundary_quantization

        return boundary_quantization(content)

    def params(tensor: dict) -> dict[str, Any] | None:
        if tensor.get("scale") is None:
            return None  # float io: quantised inside the graph
        return {"scale": tensor["scale"], "zero_point": tensor["zero_point"],
                "dtype": tensor["dtype"]}

    return {"input": params(inputs[0]), "output": params(outputs[0])}


def _micro_check(path: Path) -> dict[str, Any]:
    """Load and run the file once in TFLite Micro, in a child process (it can crash)."""
    from edgeconv.runtimes.micro import probe

    result = probe(path)
    return {"ok": result.ok, "arena_bytes": result.arena_bytes, "error": result.error}


def _notes_for(artifact: Artifact, preprocessing: dict[str, Any]) -> list[str]:
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
    if artifact.precision == "fp32" and artifact.max_abs_diff is not None \
            and artifact.max_abs_diff > 1e-4:
        notes.append(f"{artifact.path} differs from the Keras model by up to"
                     f" {artifact.max_abs_diff:.2g} (expected <= 1e-4)")
    return notes


def _manifest_data(source: _Source, config: ExportConfig, data, float_accuracy: float
                   ) -> dict[str, Any]:
    prep = data.preprocessing.to_dict()
    from edgeconv.zoo import get_spec, resolve_options

    spec = get_spec(source.spec_name)
    model_shape = resolve_options(spec, **source.model_options).input_shape
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": source.spec_name, "options": source.model_options,
                  "trained": source.trained},
        "input": {"shape": [None, *model_shape], "layout": "NHWC", "dtype": "float32",
                  "normalisation": {"scale": prep["scale"], "offset": prep["offset"],
                                    "formula": "x = uint8_pixel * scale + offset"},
                  "preprocessing": prep},
        "labels": list(data.class_names),
        "dataset": {**data.summary(), "seed": source.seed, "evaluated_on": "test"},
        "float_accuracy": float_accuracy,
        "versions": {"edgeconv": __version__, "python": platform.python_version(),
                     **{name: v for name in VERSIONED if (v := _version(name))}},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
