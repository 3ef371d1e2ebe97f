"""Article D's Char_CNN: a 1-D convolutional text classifier over character sequences.

Input: a sequence of character ids, one-hot per position (27 symbols: a-z and space), stored
as a 1 x length x 27 "image" so that edgeconv's pipeline (data, int8 calibration, TFLite,
ONNX) carries it unchanged (edgeconv/data/synthetic_text.py). The model reshapes it to
length x 27 and runs Conv1D layers: conv1 (27 -> 24, kernel 5) is the embedding and first
conv in one (a one-hot times a weight matrix is an embedding lookup).

Article D's 1x1 bottleneck: conv2 (Conv1D 24 -> 48, kernel 3) holds 24*48*3 + 48 = 3,504
params; a 1x1 conv 24 -> 12 before it (300 params) lets it take 12 channels (12*48*3 + 48 =
1,776): 2,076 for the two. `char-cnn` and `char-cnn-bottleneck` differ in exactly that.

Both end as article D recommends: a 1x1 conv to the class count and global average pooling
(no fully-connected layer); `char-cnn-fc` keeps a classic Flatten + Dense head instead, the
baseline of D's "remove the FC head" claim.
"""

from __future__ import annotations

from edgeconv._lazy import keras
from edgeconv.zoo._registry import ModelOptions, ModelSpec, register
from edgeconv.zoo.recipe import Recipe

ALPHABET_SIZE = 27  # edgeconv.data.synthetic_text.ALPHABET (a-z and space)
LENGTH = 128
INPUT = (1, LENGTH, ALPHABET_SIZE)


def _char_cnn(opts: ModelOptions, bottleneck: bool, fc_head: bool, name: str):
    k = keras()
    L = k.layers
    inputs = L.Input(shape=opts.input_shape, name="input")
    _, length, symbols = opts.input_shape
    x = L.Reshape((length, symbols), name="chars")(inputs)  # 1 x L x 27 -> L x 27
    x = L.Conv1D(24, 5, padding="same", activation="relu", name="conv1")(x)
    x = L.MaxPooling1D(2, name="pool1")(x)
    if bottleneck:
        x = L.Conv1D(12, 1, activation="relu", name="bottleneck1x1")(x)
    x = L.Conv1D(48, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling1D(2, name="pool2")(x)
    if fc_head:
        x = L.Flatten(name="flatten")(x)
        x = L.Dense(128, activation="relu", name="fc1")(x)
        outputs = L.Dense(opts.classes, activation="softmax", name="predictions")(x)
    else:
        x = L.Conv1D(opts.classes, 1, name="conv_classes")(x)
        x = L.GlobalAveragePooling1D(name="global_pool")(x)
        outputs = L.Softmax(name="predictions")(x)
    return k.Model(inputs, outputs, name=name)


def char_cnn(opts: ModelOptions):
    return _char_cnn(opts, bottleneck=False, fc_head=False, name="char_cnn")


def char_cnn_bottleneck(opts: ModelOptions):
    return _char_cnn(opts, bottleneck=True, fc_head=False, name="char_cnn_bottleneck")


def char_cnn_fc(opts: ModelOptions):
    return _char_cnn(opts, bottleneck=False, fc_head=True, name="char_cnn_fc")


for _name, _builder, _what in (
        ("char-cnn", char_cnn, "1-D text CNN, conv2 24 -> 48 (3,504 params), 1x1 + GAP head"),
        ("char-cnn-bottleneck", char_cnn_bottleneck,
         "the same with a 1x1 24 -> 12 bottleneck before conv2 (2,076 params for the two)"),
        ("char-cnn-fc", char_cnn_fc, "the same as char-cnn with a Flatten + Dense 128 head")):
    register(ModelSpec(
        name=_name, family="charcnn", builder=_builder,
        description=f"Article D: {_what}",
        # One-hot characters as a 1 x 128 x 27 "image": the data is made at this size.
        default_input_shape=INPUT, default_classes=4, fixed_size=INPUT[:2],
        channels=(ALPHABET_SIZE,), dataset="synthetic_text",
        fixed_size_why="the synthetic_text dataset is made of 128-character strings",
        recipe=Recipe(LENGTH, epochs=15, lr=3e-3, patience=5),
    ))
