"""Which Keras model an export starts from: a finished run, a zoo name (its run, trained
first when there is none) or freshly initialised weights (`--untrained`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.export.config import ExportConfig
from edgeconv.progress import Progress
from edgeconv.train import DEFAULT_RUNS_DIR, RESULT


@dataclass(frozen=True)
class Source:
    """The Keras model to export and everything the manifest says about where it came from."""

    run_dir: Path
    spec_name: str
    model_options: dict[str, Any]
    dataset: str
    seed: int
    preprocessing: dict[str, Any]
    trained: bool
    trained_now: bool


def resolve_source(config: ExportConfig, progress: Progress) -> Source:
    from edgeconv.zoo import get_spec

    given = Path(config.target)
    if config.out is not None:  # before anything is trained or built for it
        _atomic.check_output_dir(config.out, "--out")
    if config.untrained:
        spec = get_spec(config.target)
        run_dir = Path(config.out or DEFAULT_RUNS_DIR / f"{spec.name}-untrained")
        if (run_dir / RESULT).is_file():  # its model.keras is a trained checkpoint
            raise EdgeconvError(f"{run_dir} holds a finished training run: --untrained would"
                                " overwrite its model.keras; give another --out")
        _check_holds(run_dir, spec.name)
        return Source(run_dir=run_dir, spec_name=spec.name,
                      model_options=dict(config.model_options), dataset=config.dataset,
                      seed=config.seed, preprocessing={}, trained=False, trained_now=False)
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
        _check_model(source.spec_name, spec.name, run_dir, "run")
        _check_options(source, config.model_options)
        return source
    _check_holds(run_dir, spec.name)
    from edgeconv.train import TrainConfig, train

    progress.message(f"no trained {spec.name} in {run_dir}: training one with the default"
                     f" recipe on {config.dataset} first")
    train(TrainConfig(model=spec.name, model_options=dict(config.model_options),
                      dataset=config.dataset, data_dir=config.data_dir, seed=config.seed,
                      out=run_dir), progress)
    return _from_run(run_dir, trained_now=True)


def build_untrained(source: Source, num_classes: int) -> tuple[Any, Source]:
    """A freshly initialised model, and the source with its complete model options."""
    from edgeconv._lazy import keras
    from edgeconv.zoo import build, get_spec, resolve_options

    spec = get_spec(source.spec_name)
    opts = resolve_options(spec, **{**source.model_options, "classes": num_classes})
    keras().utils.set_random_seed(source.seed)  # the same weights for the same --seed
    return build(spec, opts), replace(source, model_options=opts.to_dict())


def _from_run(run_dir: Path, trained_now: bool) -> Source:
    from edgeconv.records import load_train

    record = load_train(run_dir / RESULT)
    return Source(run_dir=run_dir, spec_name=record.model, model_options=record.model_options,
                  dataset=record.dataset, seed=record.seed,
                  preprocessing=record.preprocessing, trained=True, trained_now=trained_now)


def _check_holds(run_dir: Path, model: str) -> None:
    """An export of `model` must not replace another model's export at --out."""
    from edgeconv.manifest import MANIFEST, load_manifest

    if not (run_dir / MANIFEST).is_file():
        return
    try:
        held = load_manifest(run_dir).model
    except EdgeconvError:
        return  # unreadable: it vouches for nothing, and the export replaces it
    _check_model(held, model, run_dir, "export")


def _check_model(held: str, wanted: str, run_dir: Path, what: str) -> None:
    if held != wanted:
        raise EdgeconvError(f"{run_dir} holds a {held} {what}, not {wanted}: export it with"
                            f" `edgeconv export {run_dir}`, or give {wanted} another --out")


def _check_options(source: Source, given: dict[str, Any]) -> None:
    for key, value in given.items():
        have = source.model_options.get(key)
        if (list(value) if isinstance(value, tuple) else value) != have:
            raise EdgeconvError(
                f"{source.run_dir} holds {source.spec_name} with {key}={have!r}, not"
                f" {value!r}; export that run, or pass --out DIR for a new one")
