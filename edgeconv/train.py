"""Train a zoo model on a dataset with its default recipe (`ModelSpec.recipe`); resumable, atomic.

A run directory (default `runs/NAME/`) holds:
  model.keras   the best checkpoint by validation accuracy (what export uses)
  last.keras    the latest epoch, with optimizer state (what --resume continues from)
  state.json    progress after the last completed epoch (history, best, patience counter)
  train.json    the finished run: recipe, model options, dataset summary, history, test accuracy
Every file is written atomically, and train.json last: a run without it is unfinished.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeconv import __version__, _atomic
from edgeconv._lazy import keras
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress
from edgeconv.records import (
    COUNT, EPOCH, LOSS, TEST_WRONG, TRAIN, TRAIN_SCHEMA, EpochRecord, epoch_record,
    read_json,
)
from edgeconv.runtimes.keras import load_model as _load_keras  # safe mode: runs no code
from edgeconv.schema import Int, ListOf, Num, Obj, Opt, Str, validate
from edgeconv.zoo import ModelSpec, Recipe, build, get_spec, resolve_options

DEFAULT_RUNS_DIR = Path("runs")
BEST, LAST, STATE, RESULT = "model.keras", "last.keras", "state.json", TRAIN


@dataclass(frozen=True)
class TrainConfig:
    model: str
    model_options: dict[str, Any]  # as given by the user (None = recipe/default)
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    out: Path | None = None
    resume: bool = False
    # At most this many training images (a stratified, seeded pick; val and test stay whole):
    # what lets AlexNet train on Fashion-MNIST on a 2-core machine. None: all of them.
    train_samples: int | None = None
    # Stop after this epoch, the learning-rate schedule still planned for `epochs`: a rung of
    # `edgeconv fit`'s successive halving, continued later with resume=True. None: run them all.
    stop_after: int | None = None


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    model: str
    model_options: dict[str, Any]
    recipe: dict[str, Any]
    dataset: dict[str, Any]
    epochs_run: int
    best_epoch: int
    best_val_accuracy: float
    test_accuracy: float
    stopped_early: bool
    history: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data


def epoch_line(log: EpochRecord, improved: bool) -> str:
    """What the user keeps of an epoch: one line of its figures."""
    return (f"epoch {log.epoch:3d}  loss {log.loss:.4f}  acc {log.accuracy:.4f}  "
            f"val_loss {log.val_loss:.4f}  val_acc {log.val_accuracy:.4f}  "
            f"{log.seconds:5.1f}s" + ("  best" if improved else ""))


def run_dir_for(model: str, out: Path | None) -> Path:
    return Path(out) if out is not None else DEFAULT_RUNS_DIR / model


def train(config: TrainConfig, progress: Progress | None = None) -> TrainResult:
    progress = progress or Progress()
    spec = get_spec(config.model)
    if spec.default_classes is None:
        raise EdgeconvError(f"model '{spec.name}' is a single block with no classifier;"
                            " there is nothing to train (use `edgeconv inspect`)")
    recipe = _recipe(spec, config)
    run_dir = run_dir_for(spec.name, config.out)
    _atomic.check_output_dir(run_dir, "--out")  # before any work: not a file, not /proc
    state = _load_state(run_dir, config, progress)

    from edgeconv.data import load

    data = load(config.dataset, input_shape=_input_shape(spec, recipe, config),
                data_dir=config.data_dir, seed=config.seed, limit=config.train_samples)
    opts = resolve_options(spec, **{**config.model_options,
                                    "input_shape": _model_input_shape(spec, data, config),
                                    "classes": data.num_classes})
    k = keras()
    k.utils.set_random_seed(config.seed)
    steps = -(-len(data.train.y) // recipe.batch_size)
    if state is not None:
        planned = state.get("planned_epochs", recipe.epochs)
        if config.epochs is None:  # a resumed run keeps its own plan, not today's recipe
            recipe = replace(recipe, epochs=planned)
        if recipe.epochs > planned:
            raise EdgeconvError(
                f"cannot resume {run_dir} for {recipe.epochs} epochs: its learning-rate"
                f" schedule was planned for {planned}; resume with --epochs <= {planned}")
        model = _load_keras(run_dir / LAST)
        progress.message(f"resuming {spec.name} from epoch {state['epoch']} in {run_dir}")
    else:
        with _strategy().scope():
            model = _compile(build(spec, opts), recipe, steps)
        state = {"epoch": 0, "planned_epochs": recipe.epochs, "best_val_accuracy": -1.0,
                 "best_epoch": 0, "wait": 0, "history": []}
        # A finished run's train.json must not vouch for the checkpoints this run overwrites.
        for stale in (RESULT, STATE):
            (run_dir / stale).unlink(missing_ok=True)
    last_epoch = min(recipe.epochs, config.stop_after or recipe.epochs)
    progress.start(last_epoch * steps, "training", completed=state["epoch"] * steps)
    started = time.perf_counter()
    info = _run_info(spec, opts, config, data)
    callback = _run_callback(run_dir, recipe, state, progress, info, steps)
    if state["epoch"] < last_epoch and state["wait"] < recipe.patience:
        batches = _batches(data.train.x, data.train.y, recipe, config.seed)
        set_epoch = k.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: setattr(batches, "epoch", epoch))
        model.fit(batches, epochs=last_epoch, initial_epoch=state["epoch"],
                  validation_data=(data.val.x, data.val.y), callbacks=[set_epoch, callback],
                  verbose=0, shuffle=False)
    # Test on the best checkpoint as saved, so the figure is that of the file export uses.
    best = _load_keras(run_dir / BEST)
    test_right = _test_right(best, data)
    test_accuracy = float(test_right.mean())
    result = TrainResult(
        run_dir=run_dir, model=spec.name, model_options=opts.to_dict(), recipe=asdict(recipe),
        dataset=data.summary(), epochs_run=state["epoch"], best_epoch=state["best_epoch"],
        best_val_accuracy=state["best_val_accuracy"], test_accuracy=float(test_accuracy),
        stopped_early=state["epoch"] < last_epoch,
        history=[epoch_record(h) for h in state["history"]],
        seconds=time.perf_counter() - started,
    )
    _atomic.write_json(run_dir / RESULT,
                       {"schema_version": TRAIN_SCHEMA, **result.to_dict(), **info,
                        TEST_WRONG: wrong_indices(test_right)})
    return result


def _test_right(model, data):
    """Image by image, whether the model's top-1 class is the label on the test split."""
    import numpy as np

    outputs = model.predict(data.test.x, batch_size=256, verbose=0)
    return np.argmax(outputs, axis=-1) == data.test.y


def wrong_indices(right) -> list[int]:
    """The test images a model gets wrong, by their index in the test split: with the split's
    size (train.json's dataset block), enough for a paired comparison of two models trained
    on the same split (the report's C-squeezenet-accuracy), and a few kB where a bitset of
    every image would be larger for the accurate models."""
    return [int(i) for i, ok in enumerate(right) if not ok]


def _recipe(spec: ModelSpec, config: TrainConfig) -> Recipe:
    recipe = spec.training_recipe  # declared beside the model's builder in edgeconv/zoo/
    overrides = {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr}
    for key, value in overrides.items():
        if value is not None and not value > 0:
            raise EdgeconvError(f"--{key.replace('_', '-')} must be > 0; got {value}")
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


def _input_shape(spec: ModelSpec, recipe: Recipe, config: TrainConfig):
    """The shape images are prepared at: the user's, else the recipe's size."""
    given = config.model_options.get("input_shape")
    if given is not None:
        return tuple(given)
    size = spec.fixed_size or (recipe.input_size, recipe.input_size)
    channels = spec.channels[0] if spec.channels else None  # None: keep the dataset's
    return (*size, channels)


def _model_input_shape(spec: ModelSpec, data, config: TrainConfig):
    """The data's shape, except that a model built for any H x W (gap-mnist) keeps that:
    it trains on fixed-size batches but is saved, and exported, size-free."""
    height, width, channels = data.preprocessing.input_shape
    if config.model_options.get("input_shape") is None \
            and spec.default_input_shape[:2] == (None, None):
        height = width = None
    return (height, width, channels)


def _compile(model, recipe: Recipe, steps_per_epoch: int):
    k = keras()
    for layer in model.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = recipe.bn_momentum
    # Optional linear warm-up, then cosine decay to zero over the planned epochs; the schedule
    # and its step count are saved with the optimizer in last.keras, so a resumed run
    # continues the same curve.
    total = recipe.epochs * steps_per_epoch
    warmup = min(recipe.warmup_epochs * steps_per_epoch, total - 1)
    schedule = k.optimizers.schedules.CosineDecay(
        0.0 if warmup else recipe.lr, total - warmup, warmup_target=recipe.lr if warmup else None,
        warmup_steps=warmup)
    model.compile(optimizer=k.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _batches(x, y, recipe: Recipe, seed: int):
    """The training batches: reshuffled every epoch and, with `recipe.shift`, shifted.

    Both are drawn from (seed, epoch, batch) alone, so a resumed run sees the batches an
    uninterrupted one would have; `epoch` is set as each epoch begins.
    """
    import numpy as np

    size = recipe.batch_size
    pad_h, pad_w = (round(recipe.shift * n) for n in x.shape[1:3])

    class Batches(keras().utils.PyDataset):
        epoch = 0

        def __len__(self):
            return (len(y) + size - 1) // size

        def __getitem__(self, index):
            order = np.random.default_rng((seed, self.epoch)).permutation(len(y))
            pick = order[index * size:(index + 1) * size]
            xb = x[pick]
            if pad_h or pad_w:
                rng = np.random.default_rng((seed, self.epoch, index))
                padded = np.pad(xb, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
                top = rng.integers(0, 2 * pad_h + 1, len(pick))
                left = rng.integers(0, 2 * pad_w + 1, len(pick))
                xb = np.stack([image[t:t + x.shape[1], l:l + x.shape[2]]
                               for image, t, l in zip(padded, top, left)])
            return xb, y[pick]

    return Batches()


def _strategy():
    """Several GPUs: mirror the model on each (synchronous data parallelism); else default."""
    import tensorflow as tf

    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# The resume state (state.json) as _run_callback writes it, with the run's info beside.
STATE_DOC = Obj({
    "epoch": COUNT, "planned_epochs": Int(1, COUNT.max), "best_val_accuracy": Num(-1, 1),
    "best_val_loss": Opt(LOSS), "best_epoch": COUNT, "wait": COUNT,
    "history": ListOf(EPOCH),
    "config": Opt(Obj({"model": Opt(Str()), "dataset": Opt(Str()), "seed": Opt(Int()),
                       "train_samples": Opt(Int(1, COUNT.max))})),
}, required=("epoch", "best_val_accuracy", "best_epoch", "wait", "history"))


def _load_state(run_dir: Path, config: TrainConfig, progress: Progress) -> dict | None:
    """The saved progress to resume from, or None to start fresh."""
    state_file = run_dir / STATE
    if not config.resume:
        if state_file.exists():
            progress.message(f"starting afresh in {run_dir} (--resume continues a run)")
        return None
    if not state_file.is_file() or not (run_dir / LAST).is_file():
        raise EdgeconvError(f"nothing to resume in {run_dir}: no {STATE} and {LAST} there;"
                            " run without --resume to start")
    try:
        state = validate(read_json(state_file), STATE_DOC, str(state_file))
    except EdgeconvError as exc:
        raise EdgeconvError(f"{exc}; run without --resume to start afresh") from None
    state["history"] = [asdict(epoch_record(h)) for h in state["history"]]
    saved = state.get("config") or {}
    for key in ("model", "dataset", "seed"):
        if saved.get(key) is not None and saved[key] != getattr(config, key):
            raise EdgeconvError(f"cannot resume {run_dir}: it was trained with {key}="
                                f"{saved[key]!r}, not {getattr(config, key)!r}")
    if "train_samples" in saved and saved["train_samples"] != config.train_samples:
        raise EdgeconvError(f"cannot resume {run_dir}: it was trained with --train-samples"
                            f" {saved['train_samples']}, not {config.train_samples}")
    return state


def _run_info(spec, opts, config: TrainConfig, data) -> dict[str, Any]:
    import platform

    import tensorflow as tf

    return {
        "config": {"model": spec.name, "dataset": config.dataset, "seed": config.seed,
                   "train_samples": config.train_samples},
        "preprocessing": data.preprocessing.to_dict(),
        "labels": list(data.class_names),
        "versions": {"edgeconv": __version__, "tensorflow": tf.__version__,
                     "keras": keras().__version__, "python": platform.python_version()},
    }


def _run_callback(run_dir: Path, recipe: Recipe, state: dict, progress: Progress, info: dict,
                  steps: int):
    """Progress, best/last checkpoints, state and early stopping, in one Keras callback.

    Early stopping lives here rather than in keras.callbacks.EarlyStopping because its
    counters must survive an interruption for --resume to continue exactly. The class is
    made here so that importing this module does not import Keras.
    """

    class RunCallback(keras().callbacks.Callback):
        def __init__(self):
            super().__init__()
            self._epoch_started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            progress.update(state["epoch"] * steps + batch + 1, f"epoch {state['epoch'] + 1}")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log = EpochRecord(epoch + 1, float(logs["loss"]), float(logs["accuracy"]),
                           float(logs["val_loss"]), float(logs["val_accuracy"]),
                           time.perf_counter() - self._epoch_started)
            # 180 validation images tie often on accuracy: the lower loss breaks the tie.
            improved = (log.val_accuracy, -log.val_loss) > (state["best_val_accuracy"],
                                                            -state.get("best_val_loss", 1e30))
            if improved:
                self._save(BEST)
                state.update(best_val_accuracy=log.val_accuracy, best_val_loss=log.val_loss,
                             best_epoch=log.epoch, wait=0)
            else:
                state["wait"] += 1
            state["epoch"] = log.epoch
            state["history"].append(asdict(log))
            # The last checkpoint, then the state that points at it: a crash between the two
            # resumes one epoch early, never from a state ahead of its weights.
            self._save(LAST)
            _atomic.write_json(run_dir / STATE, {**state, **info})
            progress.message(epoch_line(log, improved))
            if state["wait"] >= recipe.patience:
                self.model.stop_training = True

        def _save(self, name: str) -> None:
            with _atomic.atomic_path(run_dir / name) as tmp:
                self.model.save(tmp)

    return RunCallback()
