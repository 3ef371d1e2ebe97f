"""`edgeconv train`: fit a zoo model with its default recipe, with progress and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._progress import RichProgress
from edgeconv.commands._options import (
    BATCH_SIZE, EPOCHS, LEARNING_RATE, SAMPLES, SEEDS, Alpha, Blocks, Classes, Groups,
    InputShape, JsonFlag, Kernel, Version, bounded, model_options,
)


def train(
    name: Annotated[str, typer.Argument(help="Model name (see `edgeconv models`).")],
    classes: Classes = None,
    input_shape: InputShape = None,
    alpha: Alpha = None,
    version: Version = None,
    groups: Groups = None,
    blocks: Blocks = None,
    kernel: Kernel = None,
    data: Annotated[str | None, typer.Option(
        help="digits (embedded; the default), mnist, fashion_mnist, cifar10, synthetic_text"
             " (the char-CNN's default), or an image folder.", show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding the dataset's standard files.", show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.",
                                               show_default=False,
                                               callback=bounded(EPOCHS))] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override the recipe's batch size.",
                                                   show_default=False,
                                                   callback=bounded(BATCH_SIZE))] = None,
    lr: Annotated[float | None, typer.Option(help="Override the recipe's learning rate.",
                                             show_default=False,
                                             callback=bounded(LEARNING_RATE))] = None,
    train_samples: Annotated[int | None, typer.Option(
        help="Train on this many of the training images (stratified, seeded); validation and"
             " test splits stay whole.", show_default=False,
        callback=bounded(SAMPLES))] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, initialisation, shuffling.",
                                      callback=bounded(SEEDS))] = 0,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/NAME).",
                                             show_default=False)] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
    json: JsonFlag = False,
) -> None:
    """Train a model (default recipe per model; early stopping; best checkpoint kept)."""
    from edgeconv.errors import EdgeconvError
    from edgeconv.train import TrainConfig, train as run_training

    options = model_options(classes, input_shape, alpha, version, groups, blocks, kernel)
    if options["classes"] is not None:
        raise EdgeconvError("--classes is set by the dataset when training; drop it")
    options = {k: v for k, v in options.items() if v is not None}
    from edgeconv.zoo._registry import dataset_for

    config = TrainConfig(model=name, model_options=options, dataset=data or dataset_for(name),
                         data_dir=None if data_dir is None else str(data_dir), epochs=epochs,
                         batch_size=batch_size, lr=lr, seed=seed, out=out, resume=resume,
                         train_samples=train_samples)
    with RichProgress(render.stderr_console()) as progress:
        result = run_training(config, progress)
    if json:
        render.print_json(result.to_dict())
        return
    render.stdout_console().print(render.table(f"{result.model} trained in {result.run_dir}",
                                               ["", "value"], [
        ["dataset", f"{result.dataset['name']} ({result.dataset['source']})"],
        ["train images", f"{result.dataset['splits']['train']['count']:,}"
                         + (" (--train-samples)" if train_samples is not None else "")],
        ["input", render.shape(result.model_options["input_shape"])],
        ["epochs run", f"{result.epochs_run}" + (" (stopped early)" if result.stopped_early
                                                  else "")],
        ["best epoch", result.best_epoch],
        ["best val accuracy", f"{result.best_val_accuracy:.4f}"],
        ["test accuracy", f"{result.test_accuracy:.4f}"],
        ["checkpoint", str(result.run_dir / "model.keras")],
        ["time", f"{result.seconds:.1f} s"],
    ]))
