"""Closed-form parameter and MAC counts for the example zoo, independent of convcost.

Nothing here imports convcost: every network is written out again as literal
configuration tuples (the same tables torchvision and the papers use) and counted
with the textbook formulas below, so the tests can hold convcost's answers
against a second, independent derivation.

Conventions (the ones convcost documents):

* MACs count multiply-accumulates of conv and linear layers only; biases,
  activations, pooling, batch norm and residual additions cost none.
  conv:   MACs = out_c * out_h * out_w * (in_c / groups) * k_h * k_w
  linear: MACs = in_features * out_features
* params are weights + biases, plus 2C (weight and bias) for each batch norm;
  running mean/var are buffers, not parameters.
  conv:   params = out_c * (in_c / groups) * k_h * k_w (+ out_c with bias)
  linear: params = in * out (+ out with bias)

Each network function returns the cost-bearing layers (conv, linear,
batch_norm) in execution order: a residual block's body before its shortcut,
an Inception module's branches left to right. Shapes are channels-first
without the batch, as in convcost: (C, H, W) for maps, (F,) for features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "GOOGLENET_INCEPTION",
    "NETWORKS",
    "RefLayer",
    "googlenet",
    "inception_macs",
    "mobilenet_v2",
    "nin_cifar10",
    "one_by_one",
    "one_by_one_naive",
    "one_filter",
    "reduce_192_to_32",
    "resnet18",
    "resnet50",
    "total_macs",
    "total_params",
    "vgg16",
]

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RefLayer:
    """One cost-bearing layer: kind is "conv", "linear" or "batch_norm"."""

    name: str
    kind: str
    output_shape: Shape
    macs: int
    params: int


# ---------------------------------------------------------------- formulas


def out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, ceil_mode: bool = False) -> int:
    """Output length of a conv or pool window along one axis (PyTorch's rule)."""
    span = size + 2 * padding - kernel
    if not ceil_mode:
        return span // stride + 1
    n = -(-span // stride) + 1
    # PyTorch and Caffe drop a last window that would start in the right padding.
    if (n - 1) * stride >= size + padding:
        n -= 1
    return n


def conv(
    name: str,
    x: Shape,
    out: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    bias: bool = True,
) -> RefLayer:
    """A square 2D convolution on a (C, H, W) input."""
    c, h, w = x
    if c % groups or out % groups:
        raise ValueError(f"{name}: groups={groups} must divide {c} and {out}")
    oh = out_size(h, kernel, stride, padding)
    ow = out_size(w, kernel, stride, padding)
    weights_per_output = (c // groups) * kernel * kernel
    return RefLayer(
        name=name,
        kind="conv",
        output_shape=(out, oh, ow),
        macs=out * oh * ow * weights_per_output,
        params=out * weights_per_output + (out if bias else 0),
    )


def batch_norm(name: str, x: Shape) -> RefLayer:
    return RefLayer(name=name, kind="batch_norm", output_shape=x, macs=0, params=2 * x[0])


def linear(name: str, x: Shape, out: int, bias: bool = True) -> RefLayer:
    (features,) = x
    return RefLayer(
        name=name,
        kind="linear",
        output_shape=(out,),
        macs=features * out,
        params=features * out + (out if bias else 0),
    )


def pool(x: Shape, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> Shape:
    """Shape after a max/avg pool (no cost, so not a RefLayer)."""
    c, h, w = x
    return (
        c,
        out_size(h, kernel, stride, padding, ceil_mode),
        out_size(w, kernel, stride, padding, ceil_mode),
    )


def conv_bn(
    name: str,
    x: Shape,
    out: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    bn: str = "bn",
) -> list[RefLayer]:
    """torchvision's conv (bias=False) followed by batch norm."""
    c = conv(name, x, out, kernel, stride, padding, groups, bias=False)
    return [c, batch_norm(bn, c.output_shape)]


def total_macs(layers: Sequence[RefLayer]) -> int:
    return sum(layer.macs for layer in layers)


def total_params(layers: Sequence[RefLayer]) -> int:
    return sum(layer.params for layer in layers)


def _shape(layers: Sequence[RefLayer]) -> Shape:
    return layers[-1].output_shape


# ---------------------------------------------------------------- 1x1 examples


def one_by_one_naive() -> list[RefLayer]:
    """192x28x28 -> 5x5 conv to 32, padding same."""
    return [conv("conv5x5", (192, 28, 28), 32, 5, padding=2)]


def one_by_one() -> list[RefLayer]:
    """192x28x28 -> 1x1 conv to 16 -> 5x5 conv to 32, padding same."""
    reduce = conv("reduce", (192, 28, 28), 16, 1)
    return [reduce, conv("conv5x5", reduce.output_shape, 32, 5, padding=2)]


def one_filter() -> list[RefLayer]:
    """3x64x64 through a single 1x1x3 filter without bias."""
    return [conv("conv", (3, 64, 64), 1, 1, bias=False)]


def reduce_192_to_32() -> list[RefLayer]:
    return [conv("reduce", (192, 28, 28), 32, 1)]


# ---------------------------------------------------------------- Network in Network

# (name, out, kernel, padding) per conv; "max"/"avg" mark the 3x3/2 ceil-mode pools.
NIN_CIFAR10: tuple[tuple[str, int, int, int] | str, ...] = (
    ("conv1", 192, 5, 2), ("cccp1", 160, 1, 0), ("cccp2", 96, 1, 0), "max",
    ("conv2", 192, 5, 2), ("cccp3", 192, 1, 0), ("cccp4", 192, 1, 0), "avg",
    ("conv3", 192, 3, 1), ("cccp5", 192, 1, 0), ("cccp6", 10, 1, 0),
)  # fmt: skip


def nin_cifar10() -> list[RefLayer]:
    x: Shape = (3, 32, 32)
    layers: list[RefLayer] = []
    for entry in NIN_CIFAR10:
        if isinstance(entry, str):
            x = pool(x, 3, 2, ceil_mode=True)
            continue
        name, out, kernel, padding = entry
        layers.append(conv(name, x, out, kernel, padding=padding))
        x = _shape(layers)
    return layers  # then a global average pool: 10x8x8 -> 10


# ---------------------------------------------------------------- GoogLeNet

# Table 1 of Szegedy et al. 2014: (module, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
# "pool" marks the 3x3/2 max pools between stages.
GOOGLENET_INCEPTION: tuple[tuple[str, int, int, int, int, int, int] | str, ...] = (
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    "pool",
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    "pool",
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)


def _inception(
    prefix: str, x: Shape, c1: int, c3r: int, c3: int, c5r: int, c5: int, pp: int
) -> list[RefLayer]:
    b1 = conv(f"{prefix}.1x1", x, c1, 1)
    b2r = conv(f"{prefix}.3x3_reduce", x, c3r, 1)
    b2 = conv(f"{prefix}.3x3", b2r.output_shape, c3, 3, padding=1)
    b3r = conv(f"{prefix}.5x5_reduce", x, c5r, 1)
    b3 = conv(f"{prefix}.5x5", b3r.output_shape, c5, 5, padding=2)
    b4 = conv(f"{prefix}.pool_proj", x, pp, 1)  # after a 3x3/1 max pool, padding 1
    return [b1, b2r, b2, b3r, b3, b4]


def googlenet() -> list[RefLayer]:
    """Table 1 GoogLeNet: true 5x5 branches, no auxiliary heads, biases on, no LRN."""
    layers = [conv("conv1", (3, 224, 224), 64, 7, stride=2, padding=3)]
    x = pool(_shape(layers), 3, 2, ceil_mode=True)
    layers.append(conv("conv2_reduce", x, 64, 1))
    layers.append(conv("conv2", _shape(layers), 192, 3, padding=1))
    x = pool(_shape(layers), 3, 2, ceil_mode=True)
    for entry in GOOGLENET_INCEPTION:
        if entry == "pool":
            x = pool(x, 3, 2, ceil_mode=True)
            continue
        module, *widths = entry
        branches = _inception(f"inception_{module}", x, *widths)
        layers.extend(branches)
        channels = sum(branches[i].output_shape[0] for i in (0, 2, 4, 5))
        x = (channels, x[1], x[2])
    x = pool(x, 7, 1)  # 1024x1x1, then flatten and 40% dropout
    layers.append(linear("fc", (x[0] * x[1] * x[2],), 1000))
    return layers


def inception_macs() -> dict[str, int]:
    """MACs of each Inception module, keyed "inception_3a" ... "inception_5b"."""
    layers = googlenet()
    names = [f"inception_{entry[0]}" for entry in GOOGLENET_INCEPTION if entry != "pool"]
    return {m: sum(layer.macs for layer in layers if layer.name.startswith(m + ".")) for m in names}


# ---------------------------------------------------------------- VGG-16

VGG16_FEATURES: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
VGG16_CLASSIFIER: tuple[int, ...] = (4096, 4096, 1000)


def vgg16() -> list[RefLayer]:
    """torchvision.models.vgg16: configuration "D", no batch norm."""
    x: Shape = (3, 224, 224)
    layers: list[RefLayer] = []
    for i, entry in enumerate(VGG16_FEATURES):
        if entry == "M":
            x = pool(x, 2, 2)
            continue
        layers.append(conv(f"features.{i}", x, int(entry), 3, padding=1))
        x = _shape(layers)
    if x != (512, 7, 7):  # AdaptiveAvgPool2d((7, 7)) is the identity only at 224x224
        raise ValueError(f"vgg16 features end at {x}, not 512x7x7")
    f: Shape = (x[0] * x[1] * x[2],)
    for i, out in enumerate(VGG16_CLASSIFIER):
        layers.append(linear(f"classifier.{3 * i}", f, out))
        f = _shape(layers)
    return layers


# ---------------------------------------------------------------- ResNets

# (stage, width, blocks, stride of the first block)
RESNET18_STAGES = (("layer1", 64, 2, 1), ("layer2", 128, 2, 2), ("layer3", 256, 2, 2), ("layer4", 512, 2, 2))
RESNET50_STAGES = (("layer1", 64, 3, 1), ("layer2", 128, 4, 2), ("layer3", 256, 6, 2), ("layer4", 512, 3, 2))


def _shortcut(prefix: str, x: Shape, out: int, stride: int) -> list[RefLayer]:
    """torchvision's "downsample": a strided 1x1 projection, only where the shape changes."""
    if stride == 1 and x[0] == out:
        return []  # identity
    return conv_bn(f"{prefix}.downsample.0", x, out, 1, stride=stride, bn=f"{prefix}.downsample.1")


def _basic(prefix: str, x: Shape, width: int, stride: int) -> tuple[list[RefLayer], list[RefLayer]]:
    body = conv_bn(f"{prefix}.conv1", x, width, 3, stride, 1, bn=f"{prefix}.bn1")
    body += conv_bn(f"{prefix}.conv2", _shape(body), width, 3, 1, 1, bn=f"{prefix}.bn2")
    return body, _shortcut(prefix, x, width, stride)


def _bottleneck(prefix: str, x: Shape, width: int, stride: int) -> tuple[list[RefLayer], list[RefLayer]]:
    # torchvision's "ResNet v1.5": the stride sits on the 3x3 conv.
    body = conv_bn(f"{prefix}.conv1", x, width, 1, bn=f"{prefix}.bn1")
    body += conv_bn(f"{prefix}.conv2", _shape(body), width, 3, stride, 1, bn=f"{prefix}.bn2")
    body += conv_bn(f"{prefix}.conv3", _shape(body), 4 * width, 1, bn=f"{prefix}.bn3")
    return body, _shortcut(prefix, x, 4 * width, stride)


Block = Callable[[str, Shape, int, int], tuple[list[RefLayer], list[RefLayer]]]


def _resnet(block: Block, stages: Sequence[tuple[str, int, int, int]]) -> list[RefLayer]:
    layers = conv_bn("conv1", (3, 224, 224), 64, 7, stride=2, padding=3, bn="bn1")
    x = pool(_shape(layers), 3, 2, padding=1)
    for stage, width, blocks, stride in stages:
        for i in range(blocks):
            body, shortcut = block(f"{stage}.{i}", x, width, stride if i == 0 else 1)
            layers += body + shortcut
            x = _shape(body)  # body(x) + shortcut(x), then ReLU
    # AdaptiveAvgPool2d((1, 1)) and flatten
    layers.append(linear("fc", (x[0],), 1000))
    return layers


def resnet18() -> list[RefLayer]:
    return _resnet(_basic, RESNET18_STAGES)


def resnet50() -> list[RefLayer]:
    return _resnet(_bottleneck, RESNET50_STAGES)


# ---------------------------------------------------------------- MobileNetV2

# torchvision's inverted residual settings: (expansion t, out channels c, repeats n, first stride s)
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _inverted_residual(prefix: str, x: Shape, out: int, stride: int, t: int) -> list[RefLayer]:
    hidden = x[0] * t
    body: list[RefLayer] = []
    if t != 1:
        body += conv_bn(f"{prefix}.expand", x, hidden, 1, bn=f"{prefix}.expand_bn")
    y = _shape(body) if body else x
    body += conv_bn(
        f"{prefix}.depthwise", y, hidden, 3, stride, 1, groups=hidden, bn=f"{prefix}.depthwise_bn"
    )
    body += conv_bn(f"{prefix}.project", _shape(body), out, 1, bn=f"{prefix}.project_bn")
    return body


def mobilenet_v2() -> list[RefLayer]:
    """torchvision.models.mobilenet_v2, width multiplier 1.0 (no rounding needed)."""
    layers = conv_bn("features.0", (3, 224, 224), 32, 3, stride=2, padding=1, bn="features.0.bn")
    index = 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            layers += _inverted_residual(f"features.{index}", _shape(layers), c, s if i == 0 else 1, t)
            index += 1
    layers += conv_bn(f"features.{index}", _shape(layers), 1280, 1, bn=f"features.{index}.bn")
    # adaptive average pool to 1x1, flatten, dropout 0.2
    layers.append(linear("classifier.1", (1280,), 1000))
    return layers


NETWORKS: dict[str, Callable[[], list[RefLayer]]] = {
    "one_by_one": one_by_one,
    "one_by_one_naive": one_by_one_naive,
    "one_filter": one_filter,
    "reduce_192_to_32": reduce_192_to_32,
    "nin_cifar10": nin_cifar10,
    "googlenet": googlenet,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
}
"""Example file stem (examples/<stem>.yaml) -> its reference layer list."""


if __name__ == "__main__":
    for stem, build in NETWORKS.items():
        net = build()
        print(f"{stem:18} params {total_params(net):>13,}  MACs {total_macs(net):>16,}  layers {len(net)}")
    for module, macs in inception_macs().items():
        print(f"{module:18} MACs {macs:>13,}")
