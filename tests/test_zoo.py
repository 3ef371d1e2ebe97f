"""The zoo reproduces the articles' arithmetic and matches keras.applications exactly."""

import pytest

from edgeconv.zoo.analyze import inspect_by_name
from edgeconv.errors import EdgeconvError
from edgeconv.zoo import build, get_spec, list_models, resolve_options

# Seconds each to build: their generic checks run with the `reference` marker (CI runs it).
DEEP = {"resnet101", "resnet152", "xception"}


def _marked(name: str, *values):
    return pytest.param(*values, marks=pytest.mark.reference) if name in DEEP else values


ALL_FACTS = [_marked(spec.name, spec.name, fact) for spec in list_models()
             for fact in spec.facts]


@pytest.mark.parametrize("name,fact", ALL_FACTS,
                         ids=[f"{spec.name}-{f.quantity}-{f.value}" for spec in list_models()
                              for f in spec.facts])
def test_every_article_figure_is_reproduced(name, fact):
    report = inspect_by_name(name, **fact.options)
    measured = report.stats.params if fact.quantity == "params" else report.stats.macs
    assert fact.matches(measured), f"{name}: article {fact.stated}, measured {measured:,}"
    # The report carries the same verdict for the configuration the fact is stated for.
    assert [f.matches for f in report.facts if f.value == fact.value] == [True]


# The exact figures the foundation issue names, independent of the registry's own facts.
EXACT = [
    ("dense-mnist", {}, "params", 2_770_634),
    ("fcn-mnist", {}, "params", 55_338),
    ("gap-mnist", {}, "params", 5_130),
    ("vgg16", {}, "params", 138_357_544),
    ("squeezenet", {"version": "1.0"}, "params", 1_248_424),
    ("squeezenet", {"version": "1.1"}, "params", 1_235_496),
    ("mobilenet", {}, "params", 4_253_864),
    ("mobilenetv2", {}, "params", 3_538_984),
    ("conv3x3-rgb64", {}, "params", 1_792),
    ("separable3x3-rgb64", {}, "params", 286),
    ("inception5x5-naive", {}, "macs", 120_422_400),
    ("inception5x5-bottleneck", {}, "macs", 12_443_648),
    # Documented in docs/zoo.md: the article's "~1.2M vs ~200k" and "~60M" made exact.
    ("vgg-cifar", {}, "params", 1_189_962),
    ("separable-vgg-cifar", {}, "params", 178_405),
    ("alexnet", {}, "params", 60_965_224),
    ("alexnet", {"groups": 1}, "params", 62_378_344),
]


@pytest.mark.parametrize("name,options,quantity,value", EXACT)
def test_exact_figures(name, options, quantity, value):
    stats = inspect_by_name(name, **options).stats
    assert getattr(stats, quantity) == value


def test_alexnet_feature_maps_match_the_article():
    model = build(get_spec("alexnet"), resolve_options(get_spec("alexnet")))
    maps = {n: tuple(model.get_layer(n).output.shape[1:])
            for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "flatten")}
    assert maps == {"conv1": (55, 55, 96), "pool1": (27, 27, 96), "conv2": (27, 27, 256),
                    "pool2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
                    "conv5": (13, 13, 256), "flatten": (9216,)}


def test_gap_mnist_accepts_any_size():
    import numpy as np

    model = build(get_spec("gap-mnist"), resolve_options(get_spec("gap-mnist")))
    assert tuple(model.inputs[0].shape[1:]) == (None, None, 1)
    for h, w in ((28, 28), (40, 64), (17, 9)):
        out = model(np.zeros((2, h, w, 1), "float32"))
        assert tuple(out.shape) == (2, 10)


def _architecture(model):
    """Layer types, output shapes and params, ignoring names."""
    return [(type(l).__name__, tuple(l.output.shape[1:]), l.count_params())
            for l in model.layers]


KERAS_CASES = [  # (alpha, input shape, classes)
    (1.0, (224, 224, 3), 1000), (0.75, (224, 224, 3), 1000), (0.5, (160, 160, 3), 1000),
    (0.25, (128, 128, 3), 1000), (1.0, (96, 128, 3), 10), (0.35, (64, 64, 1), 7),
    (1.3, (192, 192, 3), 100), (1.4, (33, 47, 3), 2),
]


@pytest.mark.parametrize("alpha,shape,classes", KERAS_CASES)
@pytest.mark.parametrize("ours,theirs", [("mobilenet", "MobileNet"),
                                         ("mobilenetv2", "MobileNetV2")])
def test_mobilenets_equal_keras_applications(ours, theirs, alpha, shape, classes):
    import keras

    spec = get_spec(ours)
    model = build(spec, resolve_options(spec, alpha=alpha, input_shape=shape, classes=classes))
    reference = getattr(keras.applications, theirs)(
        weights=None, alpha=alpha, input_shape=shape, classes=classes)
    assert model.count_params() == reference.count_params()
    assert _architecture(model) == _architecture(reference)


@pytest.mark.parametrize("spec", [_marked(s.name, s) if s.name in DEEP else s
                                  for s in list_models()], ids=lambda s: s.name)
def test_layer_names_are_deterministic_and_unique(spec):
    opts = resolve_options(spec)
    first = [l.name for l in build(spec, opts).layers]
    second = [l.name for l in build(spec, opts).layers]
    assert first == second
    assert len(set(first)) == len(first)
    assert not any(n.startswith(("conv2d", "dense", "batch_normalization")) for n in first)


SMALL_SIZES = [_marked(s.name, s) if s.name in DEEP else s
               for s in list_models() if s.min_size > 1 and s.fixed_size is None]


@pytest.mark.parametrize("spec", SMALL_SIZES, ids=lambda s: s.name)
def test_min_size_is_the_real_minimum(spec):
    c = spec.default_input_shape[2]
    m = spec.min_size
    build(spec, resolve_options(spec, input_shape=(m, m + 1, c)))  # builds
    with pytest.raises(EdgeconvError, match=f">= {m}"):
        resolve_options(spec, input_shape=(m - 1, m + 1, c))


@pytest.mark.parametrize("name,options,message", [
    ("mobilenet", {"alpha": 0}, "--alpha must be a number > 0"),
    ("mobilenet", {"alpha": float("nan")}, "--alpha must be a number > 0"),
    ("mobilenet", {"classes": 1}, "--classes must be an integer >= 2; got 1"),
    ("fcn-mnist", {"input_shape": (32, 32, 1)}, "takes only 28x28 inputs"),
    ("dense-mnist", {"input_shape": (None, None, 1)}, "needs a fixed input size"),
    ("gap-mnist", {"input_shape": (None, 28, 1)}, "both H and W or neither"),
    ("conv3x3-rgb64", {"input_shape": (32, 32, 1)}, "takes 3 input channel"),
    ("conv3x3-rgb64", {"classes": 10}, "does not take --classes"),
    ("lenet5", {"alpha": 0.5}, "does not take --alpha"),
    ("squeezenet", {"version": "1.2"}, "must be one of 1.0, 1.1; got '1.2'"),
    ("alexnet", {"groups": 3}, "must be 1 .* or 2"),
    ("vgg16", {"input_shape": (224, 224)}, "H,W,C \\(3 values\\)"),
])
def test_invalid_options_are_refused_with_what_is_allowed(name, options, message):
    with pytest.raises(EdgeconvError, match=message):
        resolve_options(get_spec(name), **options)


def test_model_options_has_one_field_per_family_option():
    from dataclasses import fields

    from edgeconv.zoo import FAMILY_OPTIONS, ModelOptions

    assert [f.name for f in fields(ModelOptions)] == ["input_shape", "classes", *FAMILY_OPTIONS]


def test_a_model_without_a_recipe_trains_with_the_generic_one():
    from dataclasses import replace

    from edgeconv.zoo import Recipe

    assert get_spec("mobilenet").training_recipe is get_spec("mobilenet").recipe
    assert replace(get_spec("vgg16"), recipe=None).training_recipe == Recipe(32)
    assert replace(get_spec("alexnet"), recipe=None).training_recipe == Recipe(63)


def test_unknown_model_suggests_a_close_match():
    with pytest.raises(EdgeconvError) as err:
        get_spec("mobilnet")
    assert str(err.value) == "unknown model 'mobilnet'; did you mean 'mobilenet'?"
    with pytest.raises(EdgeconvError, match="see `edgeconv models`"):
        get_spec("foonet-zzz")
