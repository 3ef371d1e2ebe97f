"""The families issue 24 added (GoogLeNet, Inception v2/v3 blocks, Xception, ResNet, the MLP,
the char-CNN, the separable sweep) build, match their reference, and give the articles'
figures from the built networks (never from formulas typed here)."""

import pytest

from edgeconv.zoo import build, get_spec, list_models, resolve_options
from edgeconv.zoo.analyze import inspect_by_name

NEW = ("googlenet", "factor-5x5", "factor-3x3x2", "factor-3x3", "factor-1x3-3x1", "xception",
       "resnet18", "resnet50", "resnet101", "resnet152", "mlp-mnist", "char-cnn",
       "char-cnn-bottleneck", "char-cnn-fc")


def test_every_new_family_is_registered():
    assert set(NEW) <= {s.name for s in list_models()}


def _architecture(model):
    return [(type(l).__name__, tuple(l.output.shape[1:]), l.count_params())
            for l in model.layers]


# keras.applications is the reference where it has the network (weights=None: no download).
# The deep ones take 5 to 20 s each to build twice: the `reference` marker (CI runs it).
_deep = pytest.mark.reference


@pytest.mark.parametrize("ours,theirs,shape,classes", [
    ("xception", "Xception", (71, 90, 3), 7),
    ("resnet50", "ResNet50", (64, 48, 1), 10),
    pytest.param("xception", "Xception", (299, 299, 3), 1000, marks=_deep),
    pytest.param("resnet50", "ResNet50", (224, 224, 3), 1000, marks=_deep),
    pytest.param("resnet101", "ResNet101", (224, 224, 3), 1000, marks=_deep),
    pytest.param("resnet152", "ResNet152", (224, 224, 3), 1000, marks=_deep),
])
def test_equal_to_keras_applications_layer_for_layer(ours, theirs, shape, classes):
    import keras

    spec = get_spec(ours)
    model = build(spec, resolve_options(spec, input_shape=shape, classes=classes))
    reference = getattr(keras.applications, theirs)(weights=None, input_shape=shape,
                                                    classes=classes)
    assert model.count_params() == reference.count_params()
    assert _architecture(model) == _architecture(reference)


def test_resnet18_matches_torchvision_reference_count():
    # No keras.applications ResNet-18: torchvision's resnet18 has 11,689,512 trainable
    # params (BatchNorm's running statistics are buffers there, not parameters).
    stats = inspect_by_name("resnet18").stats
    assert stats.trainable_params == 11_689_512


@pytest.mark.reference
def test_resnet_paper_table1_flops():
    # The ResNet paper's Table 1: 1.8, 7.6, 11.3 x 10^9 multiply-adds (50: see docs/zoo.md).
    macs = {d: inspect_by_name(f"resnet{d}").stats.macs for d in (18, 101, 152)}
    assert round(macs[18] / 1e9, 1) == 1.8
    assert round(macs[101] / 1e9, 1) == 7.6
    assert round(macs[152] / 1e9, 1) == 11.3


def test_googlenet_follows_the_papers_table1():
    from edgeconv.zoo.googlenet import MODULES, TABLE_OPS_M

    report = inspect_by_name("googlenet")
    layers = {l.name: l for l in report.stats.layers}
    # Output depth of every module: the sum of its #1x1, #3x3, #5x5 and pool proj columns,
    # which the table's "output size" column states (256, 480, 512, ..., 1024).
    depths = {n: layers[f"inception{n}_concat"].output_shape[-1] for n in MODULES}
    assert depths == {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528,
                      "4e": 832, "5a": 832, "5b": 1024}
    sides = {n: layers[f"inception{n}_concat"].output_shape[0] for n in MODULES}
    assert sides == {"3a": 28, "3b": 28, "4a": 14, "4b": 14, "4c": 14, "4d": 14, "4e": 14,
                     "5a": 7, "5b": 7}
    # Multiply-adds per module equal the table's "ops" column to its printed precision,
    # except 5a: the table prints 54M where its own columns give 51M.
    for name in MODULES:
        macs = sum(l.macs for l in report.stats.layers if l.name.startswith(f"inception{name}_"))
        if name == "5a":
            assert round(macs / 1e6) == 51
        else:
            assert abs(macs / 1e6 - TABLE_OPS_M[name]) < 1, name


def test_googlenet_has_about_a_ninth_of_alexnets_params():
    googlenet = inspect_by_name("googlenet").stats.params
    alexnet = inspect_by_name("alexnet").stats.params
    assert googlenet == 6_998_552
    assert 8 < alexnet / googlenet < 10  # the article says 12x; see C-googlenet-params


def test_inception_factorisation_costs_come_from_the_blocks():
    macs = {n: inspect_by_name(n).stats.macs
            for n in ("factor-5x5", "factor-3x3", "factor-1x3-3x1", "factor-3x3x2")}
    assert round(macs["factor-5x5"] / macs["factor-3x3"], 2) == 2.78
    assert round(1 - macs["factor-1x3-3x1"] / macs["factor-3x3"], 2) == 0.33
    assert round(1 - macs["factor-3x3x2"] / macs["factor-5x5"], 2) == 0.28


def test_mlp_terms_come_from_its_dense_layers():
    layers = inspect_by_name("mlp-mnist").stats.layers
    dense = [l.params for l in layers if l.type == "Dense"]
    assert dense == [200_960, 65_792, 65_792, 2_570]
    assert inspect_by_name("mlp-mnist").stats.weight_bytes_fp32 == 1_340_456  # "~1.3 MB"


def test_char_cnn_bottleneck_cuts_3504_to_2076():
    plain = {l.name: l.params for l in inspect_by_name("char-cnn").stats.layers}
    slim = {l.name: l.params for l in inspect_by_name("char-cnn-bottleneck").stats.layers}
    assert plain["conv2"] == 3_504
    assert slim["bottleneck1x1"] + slim["conv2"] == 2_076
    assert {n: p for n, p in plain.items() if n != "conv2"} == \
        {n: p for n, p in slim.items() if n not in ("conv2", "bottleneck1x1")}


def test_char_cnn_is_one_dimensional_and_analysed():
    report = inspect_by_name("char-cnn")
    types = [l.type for l in report.stats.layers]
    assert types.count("Conv1D") == 3 and "Conv2D" not in types
    conv2 = next(l for l in report.stats.layers if l.name == "conv2")
    # 64 positions x 48 filters x kernel 3 x 24 input channels
    assert conv2.output_shape == [64, 48] and conv2.macs == 64 * 48 * 3 * 24
    assert report.stats.macs > 0 and report.stats.peak_activation_bytes > 0


def test_char_cnn_fc_head_has_orders_of_magnitude_more_params():
    fc = {l.name: l.params for l in inspect_by_name("char-cnn-fc").stats.layers}
    gap = {l.name: l.params for l in inspect_by_name("char-cnn").stats.layers}
    assert (fc["fc1"] + fc["predictions"]) / gap["conv_classes"] > 100


def test_synthetic_text_is_deterministic_and_labelled_synthetic():
    from edgeconv.data import load_dataset
    from edgeconv.data.synthetic_text import ALPHABET, LENGTH

    a, b = load_dataset("synthetic_text"), load_dataset("synthetic_text")
    assert "SYNTHETIC" in a.source
    assert a.x_train.shape == (4000, 1, LENGTH, len(ALPHABET)) and a.has_test_split
    assert (a.x_train == b.x_train).all() and (a.y_test == b.y_test).all()
    # one character per position: exactly one channel at 255
    assert ((a.x_train == 255).sum(axis=-1) == 1).all()
    assert sorted(set(a.y_train.tolist())) == [0, 1, 2, 3]


def test_char_cnn_defaults_to_its_text_dataset():
    from edgeconv.zoo._registry import dataset_for

    assert dataset_for("char-cnn") == "synthetic_text"
    assert dataset_for("mobilenet") == "digits"
    assert dataset_for("runs/some-run") == "digits"


def test_structures_the_articles_describe():
    from edgeconv.zoo import structure

    skips = structure.resnet_skips("resnet18")
    assert skips.holds and skips.summary.startswith("8 residual blocks")
    assert structure.mobilenetv2_blocks().holds


def test_separable_gains_grow_with_depth_and_kernel():
    from edgeconv.zoo.sweep import grows, separable_sweep

    points = separable_sweep((2, 4), (3, 5))
    assert len(points) == 4
    assert grows(points, "param_ratio") and grows(points, "mac_ratio")
    # the depth-6, 3x3 point is article B's own pair: the registered models' conv layers
    six = separable_sweep((6,), (3,))[0]
    assert six.params == (inspect_by_name("vgg-cifar").stats.params,
                          inspect_by_name("separable-vgg-cifar").stats.params)


def test_the_sweep_points_are_the_cli_options():
    """Issue 24: `--blocks` and `--kernel` build the sweep's points, so they export and bench
    like any zoo model; depth 8 (4 blocks) with 7x7 kernels is the sweep's far corner."""
    from edgeconv.zoo.sweep import separable_sweep

    far = separable_sweep((8,), (7,))[0]
    assert far.params == tuple(
        inspect_by_name(name, blocks=4, kernel=7).stats.params
        for name in ("vgg-cifar", "separable-vgg-cifar"))
    # the defaults are article B's network, and the options are recorded with it
    assert resolve_options(get_spec("separable-vgg-cifar")).to_dict()["blocks"] == 3
    assert resolve_options(get_spec("vgg-cifar"), kernel=5).to_dict()["kernel"] == 5


@pytest.mark.parametrize("options, message", [
    ({"kernel": 4}, "must be one of 3, 5, 7"),
    ({"blocks": 0}, "must be 1 to 4"),
    ({"blocks": 4, "input_shape": (8, 8, 3)}, "needs H and W >= 16"),
])
def test_the_sweep_options_refuse_what_cannot_be_built(options, message):
    from edgeconv.errors import EdgeconvError

    spec = get_spec("separable-vgg-cifar")
    with pytest.raises(EdgeconvError, match=message):
        build(spec, resolve_options(spec, **options))
