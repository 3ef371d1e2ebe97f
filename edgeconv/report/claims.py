"""Every claim of the five articles edgeconv checks, as data: what the article states and
how edgeconv checks it. docs/claims.md is generated from this module (claims_doc.py).

Each claim names a `rule` (a function in edgeconv.report.verdicts) with its arguments, and
`rule_text` says in words what that rule decides, so a reader can audit a verdict without
reading code. Figures with a fixed answer (architecture arithmetic) are computed from the
zoo's Keras models; speed, size, memory and accuracy come from manifests and results.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeconv.formats import FLOAT
from edgeconv.zoo.pairs import Entry

# The articles, by the letter a claim's `source` names.
ARTICLES: dict[str, str] = {
    "A": "Replace fully-connected heads: FCN and global pooling (MNIST, 28x28x1)",
    "B": "Depthwise separable convolution (CIFAR-10, 32x32x3)",
    "C": "Classic architectures and their cost (ImageNet-shaped, 224x224x3)",
    "D": "Optimisation techniques on a text CNN (Char_CNN, PyTorch)",
    "E": "CNN basics (TF2 tutorial)",
}
# "within noise": the comparison's 95% interval includes "no difference" (a speed ratio of
# 1), so the measurement neither supports nor contradicts the claim.
VERDICTS = ("reproduced", "partly", "within noise", "not reproduced", "not measurable here")


@dataclass(frozen=True)
class Claim:
    id: str
    source: str  # article letter, a key of ARTICLES
    claim: str  # the article's statement, digested
    stated: str  # the figure the article states ("-" when it states none)
    measures: str  # what edgeconv measures: models, artifacts, target, metric
    rule: str  # name of the rule in edgeconv.report.verdicts
    rule_text: str  # the rule in words
    args: dict[str, Any] = field(default_factory=dict)


# Why an ImageNet accuracy claim stays unmeasured: the one reason no machine here removes.
IMAGENET_WHY = ("ImageNet (1.28M labelled photographs, ~150 GB) is not available offline,"
                " and an ImageNet accuracy is only measured on ImageNet")


def _e(model: str, **options: Any) -> Entry:
    return Entry(model, options)


CLAIMS: tuple[Claim, ...] = (
    # --- A: FCN and global pooling -------------------------------------------------------
    Claim("A-dense-params", "A", "DENSE_MNIST_MODEL has 2,770,634 parameters", "2,770,634",
          "params of `dense-mnist` (28x28x1) from the Keras model", "count",
          "reproduced if the count equals the stated figure exactly",
          {"entry": _e("dense-mnist"), "quantity": "params", "value": 2_770_634}),
    Claim("A-fcn-params", "A", "FCN_MNIST_MODEL has 55,338 parameters", "55,338",
          "params of `fcn-mnist` (28x28x1)", "count",
          "reproduced if the count equals the stated figure exactly",
          {"entry": _e("fcn-mnist"), "quantity": "params", "value": 55_338}),
    Claim("A-gap-params", "A", "ARBITRARY_MNIST_MODEL has 5,130 parameters", "5,130",
          "params of `gap-mnist`", "count",
          "reproduced if the count equals the stated figure exactly",
          {"entry": _e("gap-mnist"), "quantity": "params", "value": 5_130}),
    Claim("A-fc-most-params", "A", "the FC head holds most of the parameters", "most",
          "share of `dense-mnist` params in its Dense layers", "dense_share",
          "reproduced if the Dense layers hold more than half of the params",
          {"entry": _e("dense-mnist")}),
    Claim("A-fc-most-time", "A",
          "the FC head takes most of the prediction time (so dropping it is faster)", "most",
          "latency p50 of the fp32 TFLite files of `dense-mnist` vs `fcn-mnist` and"
          " `gap-mnist` on each host target", "faster",
          "faster means a p50 ratio (dense-mnist / compact) whose 95% interval lies above 1"
          " (slower: below 1; within noise: it includes 1); without p50 intervals (older"
          " files, fewer than 6 runs) the two p50s are compared as points, and the verdict"
          " says so. Reproduced if both compact models are faster on every target measured;"
          " partly if some comparisons are; within noise if none is faster or slower; not"
          " reproduced if none is faster and one is slower",
          {"base": "dense-mnist", "compact": ("fcn-mnist", "gap-mnist"), "precision": FLOAT}),
    Claim("A-fc-memory", "A", "the FC head costs memory", "-",
          "fp32 TFLite file size of `dense-mnist` vs `fcn-mnist` / `gap-mnist`", "smaller",
          "reproduced if each compact fp32 file is at least 10x smaller; partly if smaller",
          {"base": "dense-mnist", "compact": ("fcn-mnist", "gap-mnist"), "factor": 10.0}),
    Claim("A-any-size", "A",
          "a network ending in global pooling accepts any input size", "any HxW",
          "`gap-mnist` exports at two or more input sizes: same params, 10-class output,"
          " latency per size", "any_size",
          "reproduced if gap-mnist exports at two or more input sizes all give a 10-way"
          " output (a free-size export counts as every size)",
          {"model": "gap-mnist"}),
    # --- B: depthwise separable convolution ---------------------------------------------
    Claim("B-block-params", "B",
          "64 3x3 filters on RGB: 1,792 params regular vs 286 separable (over 6x fewer)",
          "1,792 vs 286", "params of `conv3x3-rgb64` and `separable3x3-rgb64`", "pair_count",
          "reproduced if both counts equal the stated figures exactly",
          {"entries": (_e("conv3x3-rgb64"), _e("separable3x3-rgb64")),
           "quantity": "params", "values": (1_792, 286)}),
    Claim("B-vgg-params", "B",
          "6-conv VGG on CIFAR-10: ~1.2M params with Conv2D vs ~200k with SeparableConv2D",
          "~1.2M vs ~200k", "params of `vgg-cifar` and `separable-vgg-cifar` (32x32x3)",
          "pair_count",
          "reproduced if each count rounds to the stated figure at its precision (1.2M, 0.2M)",
          {"entries": (_e("vgg-cifar"), _e("separable-vgg-cifar")), "quantity": "params",
           "values": (1_200_000, 200_000), "digits": (2, 1)}),
    Claim("B-vgg-accuracy", "B", "both VGG variants reach a similar best validation accuracy",
          "similar", "float test accuracy (manifest) of trained `vgg-cifar` and"
          " `separable-vgg-cifar`", "similar_accuracy",
          "reproduced if within 2 points (partly within 5) on CIFAR-10; on another dataset"
          " at most partly, since the claim is about CIFAR-10",
          {"models": ("vgg-cifar", "separable-vgg-cifar"), "dataset": "cifar10"}),
    Claim("B-vgg-overfit", "B", "the separable VGG overfits less", "less",
          "train minus validation accuracy at the best epoch (train.json of each run)",
          "overfit_less",
          "reproduced if separable-vgg-cifar's gap is smaller than vgg-cifar's; on a dataset"
          " other than CIFAR-10 at most partly",
          {"base": "vgg-cifar", "compact": "separable-vgg-cifar", "dataset": "cifar10"}),
    Claim("B-vgg-epoch-time", "B", "the separable VGG trains slightly faster per epoch",
          "slightly faster", "seconds per epoch (train.json of each run, this machine)",
          "epoch_faster",
          "the ratio of the median epoch times (first epoch excluded) with its 95% interval"
          " when each run has 6 or more such epochs: reproduced if the interval lies above 1"
          " (separable-vgg-cifar's epochs shorter), not reproduced if below, within noise if"
          " it includes 1; with fewer epochs the mean epochs are compared as points, and the"
          " verdict says so",
          {"base": "vgg-cifar", "compact": "separable-vgg-cifar"}),
    Claim("B-depth-kernel", "B", "the gains grow with depth and kernel size", "-",
          "conv-layer params and MACs of the `vgg-cifar` / `separable-vgg-cifar` pair built"
          " at 2, 4, 6, 8 convs and 3x3, 5x5, 7x7 kernels (edgeconv/zoo/sweep.py)",
          "sweep_gains",
          "reproduced if the regular / separable ratio of the conv layers' params and of"
          " their MACs both grow with the kernel size at every depth and with the depth at"
          " every kernel size; partly if the params ratio alone does"),
    # --- C: classic architectures -------------------------------------------------------
    Claim("C-alexnet-params", "C", "AlexNet has ~60M parameters", "~60M",
          "params of `alexnet` (groups 2, 224x224x3)", "count",
          "reproduced if the count rounds to 60M (1 significant digit)",
          {"entry": _e("alexnet"), "quantity": "params", "value": 60_000_000, "digits": 1}),
    Claim("C-alexnet-maps", "C",
          "AlexNet's feature maps: 55x55x96, 27x27x96, 27x27x256, 13x13x256, 13x13x384,"
          " 13x13x384, 13x13x256, 6x6x256", "8 shapes",
          "output shapes of the conv and pool layers of `alexnet`", "alexnet_maps",
          "reproduced if the conv/pool output shapes are the stated ones, in order",
          {"entry": _e("alexnet"),
           "maps": ((55, 55, 96), (27, 27, 96), (27, 27, 256), (13, 13, 256), (13, 13, 384),
                    (13, 13, 384), (13, 13, 256), (6, 6, 256))}),
    Claim("C-vgg16-params", "C", "VGG16 has ~138M parameters", "~138M",
          "params of `vgg16` (224x224x3)", "count",
          "reproduced if the count rounds to 138M (3 significant digits)",
          {"entry": _e("vgg16"), "quantity": "params", "value": 138_000_000, "digits": 3}),
    Claim("C-googlenet-params", "C", "GoogLeNet has 1/12 of AlexNet's params", "1/12",
          "params of `alexnet` (groups 2) / `googlenet` (Inception v1 from the paper's"
          " Table 1, without its training-only auxiliary classifiers)", "ratio",
          "reproduced if the ratio is within 10% of 12x; partly if at least 6x (half the"
          " stated factor); else not reproduced",
          {"base": _e("alexnet"), "compact": _e("googlenet"), "quantity": "params",
           "value": 12.0, "partly": 6.0,
           "note": "the GoogLeNet paper's own Table 1 params column sums to 6.8M, i.e."
                   " about 9x fewer than AlexNet's 61M: the 12x of its text is not what its"
                   " table adds up to"}),
    Claim("C-inception-macs", "C",
          "5x5 branch on 28x28x192 -> 32: 120,422,400 multiplications; with a 1x1 -> 16"
          " bottleneck 12,443,648 (~1/10)", "120,422,400 vs 12,443,648",
          "MACs of `inception5x5-naive` and `inception5x5-bottleneck`", "pair_count",
          "reproduced if both MAC counts equal the stated figures exactly",
          {"entries": (_e("inception5x5-naive"), _e("inception5x5-bottleneck")),
           "quantity": "macs", "values": (120_422_400, 12_443_648)}),
    Claim("C-inception-v2", "C",
          "a 5x5 costs 2.78x a 3x3; 3x3 -> 1x3 + 3x1 is 33% cheaper", "2.78x; 33%",
          "MACs of the one-block models `factor-5x5`, `factor-3x3` and `factor-1x3-3x1`"
          " (64 -> 64 channels on 28x28); `factor-3x3x2` (v2's two 3x3 for a 5x5) shown",
          "factorisation",
          "reproduced if MACs(5x5) / MACs(3x3) rounds to 2.78 and 1 - MACs(1x3 + 3x1) /"
          " MACs(3x3) rounds to 33%",
          {"five": _e("factor-5x5"), "three": _e("factor-3x3"),
           "asymmetric": _e("factor-1x3-3x1"), "two_three": _e("factor-3x3x2"),
           "values": (2.78, 0.33)}),
    Claim("C-xception", "C", "Xception is Inception taken to the limit: one spatial conv per"
          " channel, i.e. depthwise separable convolutions", "-",
          "the spatial convs of `xception` (equal to keras.applications.Xception layer for"
          " layer, tests/test_zoo_families.py)", "structure",
          "reproduced if every spatial (kernel > 1) conv after the two-conv stem is a"
          " depthwise separable conv", {"check": "xception_separable"}),
    Claim("C-xception-accuracy", "C", "Xception aims at accuracy rather than compression",
          "accuracy (ImageNet)", "would need Xception's ImageNet accuracy", "unmeasurable",
          "not measurable here",
          {"reason": "an ImageNet accuracy claim: " + IMAGENET_WHY + "; what is structural"
                     " is measured (C-xception: separable convs, 22,910,480 params, more"
                     " than MobileNet's 4.25M: not a compression design)"}),
    Claim("C-squeezenet-params", "C", "SqueezeNet has 50x fewer params than AlexNet", "50x",
          "params of `alexnet` / `squeezenet` (v1.0)", "ratio",
          "reproduced if the ratio is within 10% of 50x; partly if above 10x",
          {"base": _e("alexnet"), "compact": _e("squeezenet"), "quantity": "params",
           "value": 50.0}),
    Claim("C-squeezenet-accuracy", "C", "SqueezeNet reaches AlexNet-level accuracy",
          "AlexNet-level (ImageNet)", "float test accuracy of `alexnet` and `squeezenet`"
          " trained on the same split (scripts/reproduce: Fashion-MNIST at 64x64x1, 2,000 of"
          " its training images), each with its 95% interval, and the paired 95% interval of"
          " their difference on the same test images (train.json's per-image results)",
          "similar_accuracy",
          "reproduced if within 2 points (partly within 5) on ImageNet; on another dataset"
          " at most partly, and the verdict names the dataset and input size",
          {"models": ("alexnet", "squeezenet"), "dataset": "imagenet",
           # what the verdict contrasts the measured setting with
           "setting": "ImageNet accuracy (the SqueezeNet paper: 57.2% vs 57.5% top-1, both"
                      " 80.3% top-5) over 1.2M training photographs of 1,000 classes at"
                      " about 224x224x3; ten grey clothing classes at a reduced size are a far"
                      " easier task, so this shows whether SqueezeNet keeps up with AlexNet"
                      " on real images, not their ImageNet accuracy"}),
    Claim("C-squeezenet-size", "C",
          "SqueezeNet is under 0.5 MB after compression, 510x smaller than AlexNet",
          "< 0.5 MB; 510x", "size of the `squeezenet` int8 TFLite file vs the `alexnet`"
          " fp32 TFLite file (224x224x3 exports)", "squeezenet_size",
          "reproduced if the int8 file is under 0.5 MB; partly if it is at least 50x smaller"
          " than AlexNet fp32 (the params ratio survives, the paper's Deep Compression"
          " -- pruning, 6-bit sharing, Huffman -- is not int8); else not reproduced",
          {"limit": 500_000, "ratio": 510.0}),
    Claim("C-mobilenet-separable-cost", "C",
          "separable / standard cost = 1/N + 1/Dk^2: 8-9x fewer for 3x3", "8-9x",
          "MACs of `conv3x3-rgb64` / `separable3x3-rgb64` (N = 64, Dk = 3)", "separable_cost",
          "reproduced if the measured ratio equals 1 / (1/N + 1/Dk^2) within 1%",
          {"entries": (_e("conv3x3-rgb64"), _e("separable3x3-rgb64")), "n": 64, "k": 3}),
    Claim("C-mobilenet-alpha", "C",
          "cost falls with alpha^2 (paper: 569M, 325M, 149M, 41M MACs at alpha 1, .75, .5,"
          " .25)", "569M / 325M / 149M / 41M",
          "MACs of `mobilenet` at each alpha (224x224x3); latency of exported grid points"
          " when present", "scaling",
          "reproduced if every MAC count rounds to the paper's printed figure; partly if"
          " every one is within 2% of it",
          {"entries": tuple(_e("mobilenet", alpha=a) for a in (1.0, 0.75, 0.5, 0.25)),
           "values": (569e6, 325e6, 149e6, 41e6)}),
    Claim("C-mobilenet-resolution", "C",
          "cost falls with rho^2 (paper: 569M, 418M, 290M, 186M MACs at 224, 192, 160, 128)",
          "569M / 418M / 290M / 186M",
          "MACs of `mobilenet` (alpha 1) at each resolution", "scaling",
          "reproduced if every MAC count rounds to the paper's printed figure; partly if"
          " every one is within 2% of it",
          {"entries": tuple(_e("mobilenet", input_shape=(r, r, 3))
                            for r in (224, 192, 160, 128)),
           "values": (569e6, 418e6, 290e6, 186e6)}),
    Claim("C-mobilenetv2-block", "C",
          "MobileNet v2: inverted residual, linear bottleneck, residual when shapes match",
          "-", "the blocks of `mobilenetv2` (equal to keras.applications.MobileNetV2 layer"
          " for layer, tests/test_zoo.py), read off the Keras graph", "structure",
          "reproduced if every block's 1x1 expands its input, no activation follows its"
          " projecting 1x1, and it has a residual Add exactly when stride is 1 and the"
          " input and output shapes match", {"check": "mobilenetv2_blocks"}),
    Claim("C-resnet-skip", "C",
          "residual H(x) = x + F(x), a 1x1 conv on the skip path when shapes differ", "-",
          "the residual blocks of `resnet152` (equal to keras.applications.ResNet152 layer"
          " for layer, tests/test_zoo_families.py), read off the Keras graph", "structure",
          "reproduced if every block that changes the shape has a 1x1 conv on its skip"
          " path and every other block an identity skip", {"check": "resnet_skips"}),
    Claim("C-resnet152", "C", "ResNet-152 reaches 3.57% top-5 error", "3.57%",
          "would need ResNet-152's ImageNet top-5 error", "unmeasurable",
          "not measurable here",
          {"reason": "an ImageNet accuracy claim: " + IMAGENET_WHY + "; `resnet152` itself"
                     " is in the zoo and measured (C-resnet-skip; 60,419,944 params, equal"
                     " to keras.applications.ResNet152)"}),
    # --- D: text CNN --------------------------------------------------------------------
    Claim("D-bottleneck-params", "D",
          "a 1x1 bottleneck (24 -> 12) cuts two convs from 3,504 to 2,076 params",
          "3,504 -> 2,076",
          "params of conv2 (Conv1D 24 -> 48, kernel 3) in `char-cnn` vs bottleneck1x1 +"
          " conv2 in `char-cnn-bottleneck`", "layer_sums",
          "reproduced if the two sums equal the stated figures exactly",
          {"entries": (_e("char-cnn"), _e("char-cnn-bottleneck")),
           "layers": (("conv2",), ("bottleneck1x1", "conv2")), "values": (3_504, 2_076)}),
    Claim("D-gap-head", "D",
          "1x1 convs + global average pooling instead of the FC head remove the FC params"
          " (orders of magnitude) and free the input length", "orders of magnitude",
          "params of the head of `char-cnn-fc` (Flatten -> Dense 128 -> Dense) vs the head"
          " of `char-cnn` (1x1 conv to the classes -> global average pooling)", "layer_sums",
          "reproduced if the FC head has at least 100x the params of the 1x1 + pooling"
          " head (two orders of magnitude); the free input length is article A's any-size"
          " claim (A-any-size)",
          {"entries": (_e("char-cnn-fc"), _e("char-cnn")),
           "layers": (("fc1", "predictions"), ("conv_classes",)), "factor": 100.0}),
    # --- E: basics ----------------------------------------------------------------------
    Claim("E-mlp-params", "E",
          "a 4-layer MLP on 28x28: 200,960 + 65,792 + 65,792 + 2,570 params (~340k,"
          " ~1.3 MB fp32)", "200,960 + 65,792 + 65,792 + 2,570",
          "params of each Dense layer of `mlp-mnist`", "layer_sums",
          "reproduced if each layer's params equal the stated term exactly",
          {"entries": (_e("mlp-mnist"),) * 4,
           "layers": (("fc1",), ("fc2",), ("fc3",), ("predictions",)),
           "values": (200_960, 65_792, 65_792, 2_570)}),
)


def claim_ids() -> list[str]:
    return [c.id for c in CLAIMS]
