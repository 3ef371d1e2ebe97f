"""The MAC convention and memory accounting, on models small enough to count by hand."""

import keras
import pytest

from edgeconv.zoo.analyze import analyze


def _model(build, shape):
    inputs = keras.Input(shape=shape, name="input")
    return keras.Model(inputs, build(inputs))


def test_conv_macs_are_out_pixels_times_kernel_times_in_channels():
    m = _model(lambda x: keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c")(x),
               (10, 10, 4))
    # 5x5x8 outputs, each 3*3*4 multiply-accumulates; the bias adds none.
    assert analyze(m).macs == 5 * 5 * 8 * 3 * 3 * 4


def test_grouped_conv_divides_input_channels():
    m = _model(lambda x: keras.layers.Conv2D(8, 3, padding="same", groups=2, name="c")(x),
               (6, 6, 4))
    assert analyze(m).macs == 6 * 6 * 8 * 3 * 3 * 2


def test_depthwise_and_separable():
    dw = _model(lambda x: keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="d")(x),
                (7, 7, 3))
    assert analyze(dw).macs == 5 * 5 * 6 * 9
    sep = _model(lambda x: keras.layers.SeparableConv2D(16, 3, padding="same", name="s")(x),
                 (8, 8, 3))
    # MobileNet's Dk*Dk*M*DF*DF + M*N*DF*DF.
    assert analyze(sep).macs == 3 * 3 * 3 * 8 * 8 + 3 * 16 * 8 * 8


def test_dense_pooling_activation_and_bn():
    def net(x):
        x = keras.layers.MaxPooling2D(2, name="pool")(x)
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.ReLU(name="relu")(x)
        x = keras.layers.Flatten(name="flat")(x)
        return keras.layers.Dense(5, name="fc")(x)

    stats = analyze(_model(net, (4, 4, 2)))
    by_name = {l.name: l for l in stats.layers}
    assert by_name["fc"].macs == 2 * 2 * 2 * 5
    assert by_name["pool"].macs == by_name["bn"].macs == by_name["relu"].macs == 0
    assert stats.macs == 40
    # Listed with their shapes even though they cost no MACs.
    assert by_name["pool"].output_shape == [2, 2, 2]
    assert by_name["bn"].params == 8


def test_peak_activation_counts_tensors_alive_together():
    # input (4x4x1=16) -> a (4x4x2=32) -> b (4x4x2=32) -> add(a, b) (32).
    # While b is computed, input is dead, a and b alive: 64; at the add a, b, out: 96.
    def net(x):
        a = keras.layers.Conv2D(2, 1, name="a")(x)
        b = keras.layers.Conv2D(2, 1, name="b")(a)
        return keras.layers.Add(name="add")([a, b])

    stats = analyze(_model(net, (4, 4, 1)))
    assert stats.peak_activation_bytes == 96 * 4
    assert stats.peak_activation_bytes_int8 == 96
    assert [l.activation_bytes for l in stats.layers] == [64, 128, 128, 128]


def test_weight_bytes_fp32_and_int8_estimate():
    def net(x):
        x = keras.layers.Conv2D(4, 3, use_bias=False, name="c")(x)
        return keras.layers.BatchNormalization(name="bn")(x)

    stats = analyze(_model(net, (5, 5, 2)))
    assert stats.params == 3 * 3 * 2 * 4 + 4 * 4
    assert stats.weight_bytes_fp32 == stats.params * 4
    # int8 kernel (72 bytes) + BatchNorm folded into one int32 bias per channel (16 bytes).
    assert stats.weight_bytes_int8 == 72 + 16


def test_free_input_size_has_no_macs_until_concrete():
    m = _model(lambda x: keras.layers.Conv2D(2, 3, name="c")(x), (None, None, 1))
    stats = analyze(m)
    assert stats.input_shape == [None, None, 1]
    assert stats.macs == 0 and stats.analysed_shape == []


@pytest.mark.parametrize("alpha,expected_millions", [(1.0, 569), (0.75, 325), (0.5, 149)])
def test_mobilenet_table_6_mult_adds(alpha, expected_millions):
    # The MobileNet v1 paper's Table 6 rounds to millions; our convention lands on each figure.
    from edgeconv.zoo.analyze import inspect_by_name

    assert round(inspect_by_name("mobilenet", alpha=alpha).stats.macs / 1e6) == expected_millions
