"""A zoo model as an export's source: a finished training run, a zoo name (its run, trained
first when there is none) or freshly initialised weights (`--untrained`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.export.config import ExportConfig
from edgeconv.export.source import Reference, Source, check_holds, check_model
from edgeconv.formats import SourceKind
from edgeconv.progress import Progress
from edgeconv.train import BEST, DEFAULT_RUNS_DIR, RESULT


@dataclass
class ZooSource(Source):
    """The Keras model to export and everything the manifest says about where it came from."""

    kind: SourceKind
    run_dir: Path
    name: str
    model_options: dict[str, Any]
    dataset: str
    seed: int
    preprocessing: dict[str, Any]
    trained: bool
    trained_now: bool
    model: Any = None  # the Keras model, once loaded or built

    def load(self, config: ExportConfig, scratch: Path):
        """The model and the test split and calibration images, prepared as in training."""
        if self.trained:  # a bad checkpoint fails before the dataset is even read
            from edgeconv.data import load_recorded
            from edgeconv.runtimes.keras import load_model

            self.model = load_model(self.run_dir / BEST)
            return load_recorded(self.dataset, self.preprocessing, data_dir=config.data_dir,
                                 seed=self.seed, made=f"{self.run_dir} was trained")
        # Untrained: the model's own input size; a size-free model sees the data at MNIST's 28.
        from edgeconv.data import load

        h, w, c = self._options().input_shape
        data = load(self.dataset, input_shape=(h or 28, w or 28, c), data_dir=config.data_dir,
                    seed=self.seed)
        self._build_untrained(data.num_classes)
        return data

    def reference(self, run_dir: Path, data) -> Reference:
        """The Keras model, which every file is compared with; its checkpoint is the
        export's reference file (written here when the weights are fresh)."""
        from edgeconv.export.verify import Verifier

        verifier = Verifier(self.model, data)
        keras_file = run_dir / BEST
        if not self.trained:  # nothing on disk yet: the untrained model is exported as is
            with _atomic.atomic_path(keras_file) as tmp:
                self.model.save(tmp)
        return Reference(verifier, [verifier.reference_artifact(keras_file)])

    def session(self, calibration, settings):
        from edgeconv.export.convert import ConversionSession

        return ConversionSession(self.model, calibration, settings)

    def model_block(self) -> dict[str, Any]:
        return {"name": self.name, "options": self.model_options, "trained": self.trained}

    def input_block(self, data) -> dict[str, Any]:
        return {"shape": [None, *self._options().input_shape], "layout": "NHWC"}

    def _options(self):
        from edgeconv.zoo import get_spec, resolve_options

        return resolve_options(get_spec(self.name), **self.model_options)

    def _build_untrained(self, num_classes: int) -> None:
        """Freshly initialised weights, and the complete model options."""
        from edgeconv._lazy import keras
        from edgeconv.zoo import build, get_spec, resolve_options

        spec = get_spec(self.name)
        opts = resolve_options(spec, **{**self.model_options, "classes": num_classes})
        keras().utils.set_random_seed(self.seed)  # the same weights for the same --seed
        self.model = build(spec, opts)
        self.model_options = opts.to_dict()


def open_zoo(config: ExportConfig, kind: SourceKind, progress: Progress) -> ZooSource:
    """The run `config.target` names, or the zoo model's (trained first when it has none),
    or fresh weights."""
    from edgeconv.zoo import get_spec

    given = Path(config.target)
    if config.out is not None:  # before anything is trained or built for it
        _atomic.check_output_dir(config.out, "--out")
    if given.is_file():  # model.pt, notes.txt: no model edgeconv reads
        raise EdgeconvError(f"{config.target} is not a model file edgeconv reads (.keras, .h5,"
                            " a SavedModel directory, .onnx, .tflite; a PyTorch model: export"
                            " it with torch.onnx.export first)")
    if kind.name == "untrained":
        spec = get_spec(config.target)
        run_dir = Path(config.out or DEFAULT_RUNS_DIR / f"{spec.name}-untrained")
        if (run_dir / RESULT).is_file():  # its model.keras is a trained checkpoint
            raise EdgeconvError(f"{run_dir} holds a finished training run: --untrained would"
                                " overwrite its model.keras; give another --out")
        check_holds(run_dir, spec.name)
        return ZooSource(kind=kind, run_dir=run_dir, name=spec.name,
                         model_options=dict(config.model_options), dataset=config.dataset,
                         seed=config.seed, preprocessing={}, trained=False, trained_now=False)
    if kind.name == "run":
        if config.model_options:
            raise EdgeconvError(f"{given} is a trained run: its model options are fixed;"
                                " drop the model options")
        return _from_run(kind, given, trained_now=False)
    if given.is_dir() or len(given.parts) > 1:
        raise EdgeconvError(f"{given} is not a finished training run (no {RESULT} there);"
                            " give a model name, or a directory `edgeconv train` completed")
    spec = get_spec(config.target)  # an unknown name gets a "did you mean" here
    run_dir = Path(config.out or DEFAULT_RUNS_DIR / spec.name)
    if (run_dir / RESULT).is_file():
        source = _from_run(kind, run_dir, trained_now=False)
        check_model(source.name, spec.name, run_dir, "run")
        _check_options(source, config.model_options)
        return source
    check_holds(run_dir, spec.name)
    from edgeconv.train import TrainConfig, train

    progress.message(f"no trained {spec.name} in {run_dir}: training one with the default"
                     f" recipe on {config.dataset} first")
    train(TrainConfig(model=spec.name, model_options=dict(config.model_options),
                      dataset=config.dataset, data_dir=config.data_dir, seed=config.seed,
                      out=run_dir), progress)
    return _from_run(kind, run_dir, trained_now=True)


def _from_run(kind: SourceKind, run_dir: Path, trained_now: bool) -> ZooSource:
    from edgeconv.records import load_train

    record = load_train(run_dir / RESULT)
    return ZooSource(kind=kind, run_dir=run_dir, name=record.model,
                     model_options=record.model_options, dataset=record.dataset,
                     seed=record.seed, preprocessing=record.preprocessing, trained=True,
                     trained_now=trained_now)


def _check_options(source: ZooSource, given: dict[str, Any]) -> None:
    for key, value in given.items():
        have = source.model_options.get(key)
        if (list(value) if isinstance(value, tuple) else value) != have:
            raise EdgeconvError(
                f"{source.run_dir} holds {source.name} with {key}={have!r}, not"
                f" {value!r}; export that run, or pass --out DIR for a new one")
