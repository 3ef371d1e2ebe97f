"""The Keras float reference runs compiled (tf.function, XLA where it is faster), and what
it computes is what eager Keras computes: the bench times a fair baseline, not a different
model. Also the modes' labels, the fallback when XLA cannot compile, and the registry."""

from pathlib import Path

import numpy as np
import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.runtimes import get_runtime, open_runtime

pytest.importorskip("tensorflow")

TOLERANCE = 1e-5  # compiled outputs vs eager, absolute and relative
MODES = ("auto", "xla", "function", "eager")


def _model(k, input_shape, pool):
    """Conv, BatchNorm with moving statistics far from their initial values (a model run
    with training=True would use the batch's instead and differ), depthwise conv, pooling
    and a softmax head: the layers the zoo's models are made of."""
    inputs = k.Input(input_shape)
    x = k.layers.Conv2D(8, 3, padding="same")(inputs)
    bn = k.layers.BatchNormalization()
    x = bn(x)
    x = k.layers.ReLU(6.0)(x)
    x = k.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = k.layers.Conv2D(16, 1, activation="relu")(x)
    x = pool()(x)
    outputs = k.layers.Dense(10, activation="softmax")(x)
    model = k.Model(inputs, outputs)
    rng = np.random.default_rng(1)
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma * 1.5, beta + 0.2, rng.normal(0.5, 0.3, mean.shape),
                    rng.uniform(2.0, 4.0, variance.shape)])
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from edgeconv._lazy import keras

    k = keras()
    out = tmp_path_factory.mktemp("keras-compiled")
    k.utils.set_random_seed(0)
    _model(k, (24, 24, 3), k.layers.GlobalAveragePooling2D).save(out / "fixed.keras")
    _model(k, (None, None, 1), k.layers.GlobalMaxPooling2D).save(out / "free.keras")
    return out


def _eager(path: Path, x: np.ndarray) -> np.ndarray:
    with open_runtime(path, "keras", mode="eager") as runtime:
        assert runtime.backend.endswith(" eager") and runtime.compiled == "eager"
        return runtime.run(x)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_computes_what_eager_keras_computes(saved, mode):
    path = saved / "fixed.keras"
    rng = np.random.default_rng(0)
    # 1 (the bench's batch), 5, and 45 (the runtime's chunks of 32, then a batch of 13)
    for batch in (1, 5, 45):
        x = rng.random((batch, 24, 24, 3), dtype=np.float32)
        expected = _eager(path, x)
        assert expected.std() > 1e-3  # not a constant output that anything would match
        with open_runtime(path, "keras", mode=mode) as runtime:
            np.testing.assert_allclose(runtime.run(x), expected, rtol=TOLERANCE,
                                       atol=TOLERANCE)
            # what the bench times: the prepared call, the same numbers
            if batch == 1:
                np.testing.assert_allclose(runtime.prepared(x)(), expected, rtol=TOLERANCE,
                                           atol=TOLERANCE)


def test_compiled_outputs_are_not_those_of_training_mode(saved):
    """The check above can fail: a model run as in training (batch statistics) is far off."""
    from edgeconv.runtimes.keras import load_model

    path = saved / "fixed.keras"
    x = np.random.default_rng(2).random((8, 24, 24, 3), dtype=np.float32)
    training = np.asarray(load_model(path)(x, training=True))
    assert np.abs(training - _eager(path, x)).max() > 100 * TOLERANCE


def test_a_free_size_model_compiles_on_its_first_batch_and_matches_eager(saved):
    path = saved / "free.keras"
    rng = np.random.default_rng(3)
    with open_runtime(path, "keras") as runtime:
        assert runtime.compiled == "auto" and "first inference" in runtime.compiled_note
        for side in (16, 28):
            x = rng.random((3, side, side, 1), dtype=np.float32)
            np.testing.assert_allclose(runtime.run(x), _eager(path, x), rtol=TOLERANCE,
                                       atol=TOLERANCE)
        assert runtime.compiled in ("xla", "function")
        assert "auto: fastest" in runtime.compiled_note


def test_the_default_is_compiled_and_says_which_form_ran(saved):
    with open_runtime(saved / "fixed.keras") as runtime:  # no mode: what the bench opens
        assert runtime.compiled in ("xla", "function")
        label = "tf.function+XLA" if runtime.compiled == "xla" else "tf.function"
        assert runtime.backend == f"keras/tensorflow {label}"
        assert "tf.function+XLA" in runtime.compiled_note and " ms" in runtime.compiled_note
    for mode, label in (("xla", "tf.function+XLA"), ("function", "tf.function"),
                        ("eager", "eager")):
        with open_runtime(saved / "fixed.keras", "keras", mode=mode) as runtime:
            assert runtime.backend == f"keras/tensorflow {label}" and runtime.compiled == mode
            assert runtime.compiled_note == f"Keras ran as {label} (asked for)"


@pytest.mark.parametrize(("timings", "chosen"), [({"xla": 5.0, "function": 1.0}, "function"),
                                                 ({"xla": 1.0, "function": 5.0}, "xla")])
def test_auto_keeps_the_faster_form(saved, monkeypatch, timings, chosen):
    from edgeconv.runtimes import keras as keras_runtime

    monkeypatch.setattr(keras_runtime, "_fastest", lambda forms, sample, to_numpy: timings)
    with open_runtime(saved / "fixed.keras") as runtime:
        assert runtime.compiled == chosen
        assert f"tf.function+XLA {timings['xla']:.3g} ms" in runtime.compiled_note


def test_auto_falls_back_to_tf_function_when_xla_cannot_compile(saved, monkeypatch):
    import tensorflow as tf

    from edgeconv.runtimes.keras import KerasRuntime

    real = KerasRuntime._graph

    def graph(self, *, xla):
        if not xla:
            return real(self, xla=False)

        def refuses(x):
            raise tf.errors.InvalidArgumentError(None, None, "Detected unsupported operations"
                                                 " when trying to compile graph\nmore lines")
        return refuses

    monkeypatch.setattr(KerasRuntime, "_graph", graph)
    path = saved / "fixed.keras"
    x = np.random.default_rng(4).random((2, 24, 24, 3), dtype=np.float32)
    with open_runtime(path) as runtime:
        assert runtime.compiled == "function"
        assert runtime.backend == "keras/tensorflow tf.function"
        assert "XLA did not compile it: InvalidArgumentError: Detected unsupported" in \
            runtime.compiled_note and "\n" not in runtime.compiled_note
        np.testing.assert_allclose(runtime.run(x), _eager(path, x), rtol=TOLERANCE,
                                   atol=TOLERANCE)
    with pytest.raises(EdgeconvError,
                       match="XLA cannot compile fixed.keras: InvalidArgumentError: Detected"):
        open_runtime(path, "keras", mode="xla")


def test_an_unknown_mode_is_one_line(saved):
    with pytest.raises(EdgeconvError, match="unknown Keras mode 'jit'; choose from auto, xla,"
                                            " function, eager"):
        open_runtime(saved / "fixed.keras", "keras", mode="jit")


def test_the_registry_row_offers_the_mode():
    entry = get_runtime("keras")
    assert entry.options == ("mode",) and not entry.threaded
    assert "compiled" in entry.description
