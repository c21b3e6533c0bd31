"""``EXPORTERS``: the one read-only table from layer type to the ONNX operators PyTorch's exporter writes for it.

A test checks every layer type is here. A split's parts (``ChannelSlice``) are written together, as one ONNX
Split, by the network walk (``network_to_onnx``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ...errors import SpecError
from ...layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU, Shape,
    Softmax, Upsample,
)
from ...network import Node
from .writer import Writer, hint

__all__ = ["EXPORTERS", "OPAQUE_DOMAIN"]

OPAQUE_DOMAIN = "convcost.opaque"  # the domain of an opaque layer's op: convcost knows nothing more of it

#: ONNX activation op and attributes per convcost activation (silu and relu6 are written by hand below).
_ACTIVATION_OPS: Mapping[str, tuple[str, dict[str, Any]]] = MappingProxyType({
    "relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}), "gelu": ("Gelu", {}),
    "hardswish": ("HardSwish", {}), "hardsigmoid": ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    "mish": ("Mish", {}), "elu": ("Elu", {"alpha": 1.0}), "softplus": ("Softplus", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
})


def _pads(begin: tuple[int, ...], end: tuple[int, ...]) -> list[int]:
    return [*begin, *end]


def _conv(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Conv)
    if layer.same:
        total = tuple(d * (k - 1) for k, d in zip(layer.kernel, layer.dilation))
        begin = tuple(t // 2 for t in total)  # PyTorch's 'same': the odd pixel goes on the right
        pads = _pads(begin, tuple(t - b for t, b in zip(total, begin)))
    else:
        pads = _pads(layer.padding, layer.padding)
    fan_in = layer.in_channels // layer.groups * math.prod(layer.kernel)
    inputs = [w.x(node), w.weight(f"{node.name}.weight",
                                  (layer.out_channels, layer.in_channels // layer.groups, *layer.kernel),
                                  "normal", fan_in)]
    if layer.bias:
        inputs.append(w.weight(f"{node.name}.bias", (layer.out_channels,), "zeros"))
    w.add("Conv", inputs, node.name, node.name, doc=hint(node), kernel_shape=list(layer.kernel),
          strides=list(layer.stride), pads=pads, dilations=list(layer.dilation), group=layer.groups)


def _conv_transpose(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, ConvTranspose)
    inputs = [w.x(node), w.weight(f"{node.name}.weight",
                                  (layer.in_channels, layer.out_channels // layer.groups, *layer.kernel), "normal",
                                  layer.in_channels * math.prod(layer.kernel))]
    if layer.bias:
        inputs.append(w.weight(f"{node.name}.bias", (layer.out_channels,), "zeros"))
    w.add("ConvTranspose", inputs, node.name, node.name, doc=hint(node), kernel_shape=list(layer.kernel),
          strides=list(layer.stride), pads=_pads(layer.padding, layer.padding), dilations=list(layer.dilation),
          group=layer.groups, output_padding=list(layer.output_padding))


def _pool(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Pool)
    common: dict[str, Any] = dict(kernel_shape=list(layer.kernel), strides=list(layer.stride),
                  pads=_pads(layer.padding, layer.padding), ceil_mode=int(layer.ceil_mode))
    if layer.op == "max":
        w.add("MaxPool", [w.x(node)], node.name, node.name, doc=hint(node), dilations=list(layer.dilation),
              **common)
    else:  # PyTorch's AvgPool counts the padding in the divisor by default
        w.add("AveragePool", [w.x(node)], node.name, node.name, doc=hint(node), count_include_pad=1, **common)


def _adaptive_pool(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, AdaptivePool)
    op = "Average" if layer.op == "avg" else "Max"
    if all(size == 1 for size in layer.output_size):
        w.add(f"Global{op}Pool", [w.x(node)], node.name, node.name, doc=hint(node))
        return
    lengths = node.input_shape[1:]
    if any(length % size for length, size in zip(lengths, layer.output_size)):
        raise SpecError(f"export to ONNX: adaptive pooling of {'x'.join(map(str, lengths))} to "
                        f"{'x'.join(map(str, layer.output_size))} has windows of different sizes, which no ONNX "
                        "operator computes", node.where, node.name)
    kernel = [length // size for length, size in zip(lengths, layer.output_size)]
    w.add(f"{op}Pool", [w.x(node)], node.name, node.name, doc=hint(node), kernel_shape=kernel, strides=kernel)


def _linear(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Linear)
    rank = w.rank(node)
    name, x = node.name, w.x(node)
    if rank == 2:  # features: PyTorch writes Gemm with the weight as (out, in)
        inputs = [x, w.weight(f"{name}.weight", (layer.out_features, layer.in_features), "normal", layer.in_features)]
        if layer.bias:
            inputs.append(w.weight(f"{name}.bias", (layer.out_features,), "zeros"))
        w.add("Gemm", inputs, name, name, doc=hint(node), transB=1)
        return
    channels_last = layer.axis == "channels"
    if channels_last:  # PyTorch's permute to channels-last, the linear, and back (ConvNeXt)
        x = w.transpose(x, [0, *range(2, rank), 1], f"{name}/to_channels_last")
    weight = w.weight(f"{name}.weight", (layer.in_features, layer.out_features), "normal", layer.in_features)
    y = w.add("MatMul", [x, weight], f"{name}/matmul" if layer.bias or channels_last else name, name, doc=hint(node))
    if layer.bias:
        bias = w.weight(f"{name}.bias", (layer.out_features,), "zeros")
        y = w.add("Add", [y, bias], f"{name}/biased" if channels_last else name, f"{name}/bias")
    if channels_last:
        w.transpose(y, [0, rank - 1, *range(1, rank - 1)], name, f"{name}/to_channels_first")


def _batch_norm(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, BatchNorm)
    c, name = layer.num_features, node.name
    scale = w.weight(f"{name}.weight", (c,), "ones") if layer.affine else w.constant(f"{name}/ones", [1.0] * c,
                                                                                      w.np.float32)
    bias = w.weight(f"{name}.bias", (c,), "zeros") if layer.affine else w.constant(f"{name}/zeros", [0.0] * c,
                                                                                    w.np.float32)
    if layer.track_running_stats:
        mean, var = w.weight(f"{name}.running_mean", (c,), "zeros"), w.weight(f"{name}.running_var", (c,), "ones")
    else:
        mean = w.constant(f"{name}/mean", [0.0] * c, w.np.float32)
        var = w.constant(f"{name}/var", [1.0] * c, w.np.float32)
    w.add("BatchNormalization", [w.x(node), scale, bias, mean, var], name, name, doc=hint(node))


def _norm_weights(w: Writer, node: Node, count: int, affine: bool) -> list[str]:
    if affine:
        return [w.weight(f"{node.name}.weight", (count,), "ones"), w.weight(f"{node.name}.bias", (count,), "zeros")]
    return [w.constant(f"{node.name}/ones", [1.0] * count, w.np.float32),
            w.constant(f"{node.name}/zeros", [0.0] * count, w.np.float32)]


def _normalization(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Normalization)
    name, x, rank = node.name, w.x(node), w.rank(node)
    weights = _norm_weights(w, node, layer.num_features, layer.affine)
    if layer.kind == "group_norm":
        w.add("GroupNormalization", [x, *weights], name, name, doc=hint(node), num_groups=layer.groups)
    elif layer.kind == "instance_norm":
        w.add("InstanceNormalization", [x, *weights], name, name, doc=hint(node))
    elif layer.over == "channels" and rank > 2:  # ConvNeXt's LayerNorm2d: permute, LayerNorm, permute back
        x = w.transpose(x, [0, *range(2, rank), 1], f"{name}/to_channels_last")
        y = w.add("LayerNormalization", [x, *weights], f"{name}/normalized", name, doc=hint(node), axis=-1)
        w.transpose(y, [0, rank - 1, *range(1, rank - 1)], name, f"{name}/to_channels_first")
    else:
        w.add("LayerNormalization", [x, *weights], name, name, doc=hint(node), axis=-1)


def _layer_scale(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, LayerScale)
    shape = (layer.channels, *(1,) * (w.rank(node) - 2))
    w.add("Mul", [w.x(node), w.weight(f"{node.name}.scale", shape, "ones")], node.name, node.name, doc=hint(node))


def _activation(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Activation)
    name, x = node.name, w.x(node)
    if layer.function == "silu":  # PyTorch writes x * sigmoid(x)
        gate = w.add("Sigmoid", [x], f"{name}/sigmoid", f"{name}/sigmoid")
        w.add("Mul", [x, gate], name, name, doc=hint(node))
    elif layer.function == "relu6":
        w.add("Clip", [x, w.constant(f"{name}/min", 0.0, w.np.float32), w.constant(f"{name}/max", 6.0, w.np.float32)],
              name, name, doc=hint(node))
    else:
        op, attributes = _ACTIVATION_OPS[layer.function]
        w.add(op, [x], name, name, doc=hint(node), **attributes)


def _prelu(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, PReLU)
    shape = (1,) if layer.num_parameters == 1 else (layer.num_parameters, *(1,) * (w.rank(node) - 2))
    slope = w.weight(f"{node.name}.weight", shape, "zeros")
    w.add("PRelu", [w.x(node), slope], node.name, node.name, doc=hint(node))


def _dropout(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Dropout)
    ratio = w.constant(f"{node.name}/ratio", layer.p, w.np.float32)
    w.add("Dropout", [w.x(node), ratio], node.name, node.name, doc=hint(node))


def _softmax(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Softmax)
    w.add("Softmax", [w.x(node)], node.name, node.name, doc=hint(node), axis=layer.dim)


def _upsample(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Upsample)
    scales = w.constant(f"{node.name}/scales", [1.0, 1.0, *(float(s) for s in layer.scale)], w.np.float32)
    if layer.mode == "nearest":  # PyTorch's nearest: source index floor(o / scale)
        modes = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        modes = dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel")
    w.add("Resize", [w.x(node), "", scales], node.name, node.name, doc=hint(node), **modes)


def _flatten(w: Writer, node: Node) -> None:
    w.add("Flatten", [w.x(node)], node.name, node.name, doc=hint(node), axis=1)


def _identity(w: Writer, node: Node) -> None:
    w.add("Identity", [w.x(node)], node.name, node.name, doc=hint(node))


def _elementwise(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Elementwise)
    inputs = [w.name(ref) for ref in node.inputs]
    op = {"add": "Add", "sub": "Sub", "mul": "Mul", "max": "Max"}[layer.op]
    if len(inputs) == 2 or op == "Max":
        w.add(op, inputs, node.name, node.name, doc=hint(node))
    elif op == "Add":
        w.add("Sum", inputs, node.name, node.name, doc=hint(node))
    else:
        raise SpecError(f"export to ONNX: a {layer.op} of {len(inputs)} tensors has no ONNX operator (ONNX's "
                        f"{op} takes two)", node.where, node.name)


def _centre_slice(w: Writer, x: str, shape: Shape, size: tuple[int, ...], output: str, name: str,
                  doc: str = "") -> str:
    """A centred crop of the spatial axes of ``x`` (shape ``shape``, batch excluded) to ``size``: one Slice."""
    starts = [(have - want) // 2 for have, want in zip(shape[1:], size)]
    return w.add("Slice", [x, w.ints(f"{name}/starts", starts),
                           w.ints(f"{name}/ends", [s + want for s, want in zip(starts, size)]),
                           w.ints(f"{name}/axes", list(range(2, len(shape) + 1)))], output, name, doc=doc)


def _concat(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Concat)
    inputs = []
    output = layer.output_shape(*node.input_shapes)
    for k, (ref, shape) in enumerate(zip(node.inputs, node.input_shapes)):
        x = w.name(ref)
        # crop: center cuts every axis but the concatenated one to the output's size, centred (U-Net)
        size = tuple(shape[i] if i == layer.axis else output[i] for i in range(1, len(shape)))
        if layer.crop and size != shape[1:]:
            x = _centre_slice(w, x, shape, size, f"{node.name}/crop{k}", f"{node.name}/crop{k}")
        inputs.append(x)
    w.add("Concat", inputs, node.name, node.name, doc=hint(node), axis=layer.axis + 1)


def _crop(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Crop)
    _centre_slice(w, w.x(node), node.input_shape, layer.size, node.name, node.name, hint(node))


def _channel_shuffle(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, ChannelShuffle)
    shape, name, g = node.input_shape, node.name, layer.groups
    split = w.add("Reshape", [w.x(node), w.ints(f"{name}/grouped_shape", [0, g, shape[0] // g, *shape[1:]])],
                  f"{name}/grouped", f"{name}/grouped", doc=hint(node))
    swapped = w.transpose(split, [0, 2, 1, *range(3, len(shape) + 2)], f"{name}/transposed")
    w.add("Reshape", [swapped, w.ints(f"{name}/shape", [0, *shape])], name, name)


def _pixel_shuffle(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, PixelShuffle)
    if layer.inverse:
        w.add("SpaceToDepth", [w.x(node)], node.name, node.name, doc=hint(node), blocksize=layer.factor)
    else:
        w.add("DepthToSpace", [w.x(node)], node.name, node.name, doc=hint(node), blocksize=layer.factor, mode="CRD")


def _opaque(w: Writer, node: Node) -> None:
    layer = node.layer
    assert isinstance(layer, Opaque)
    w.domains.add(OPAQUE_DOMAIN)
    w.add(layer.op, [w.name(ref) for ref in node.inputs], node.name, node.name, doc=hint(node),
          domain=OPAQUE_DOMAIN)


def _channel_slice(w: Writer, node: Node) -> None:
    raise AssertionError("a split's parts are written together by _split")  # see network_to_onnx


#: Layer type -> exporter. Read-only; a test checks every layer type is here.
EXPORTERS: Mapping[type, Callable[[Writer, Node], None]] = MappingProxyType({
    Conv: _conv,
    ConvTranspose: _conv_transpose,
    Pool: _pool,
    AdaptivePool: _adaptive_pool,
    Linear: _linear,
    BatchNorm: _batch_norm,
    Normalization: _normalization,
    LayerScale: _layer_scale,
    Activation: _activation,
    PReLU: _prelu,
    Dropout: _dropout,
    Softmax: _softmax,
    Upsample: _upsample,
    Flatten: _flatten,
    Identity: _identity,
    Elementwise: _elementwise,
    Concat: _concat,
    Crop: _crop,
    ChannelSlice: _channel_slice,
    ChannelShuffle: _channel_shuffle,
    PixelShuffle: _pixel_shuffle,
    Opaque: _opaque,
})
