"""MACs that multiply real input rather than zero padding (issue 16).

``macs`` (convcost.costs) counts every multiply-accumulate a convolution
performs, padded zeros included. ``macs_nonpadding`` counts only those whose
kernel tap falls inside the input: a convolution's padding, and a transposed
convolution's cropped border, cost ``macs - macs_nonpadding``.

Per axis the count is a closed form summed over kernel taps (never a loop over
output positions); axes multiply because a tap is inside the input exactly when
it is inside along every axis. ``RULES`` is the one read-only table from layer
type to rule; an unknown layer type is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .costs import layer_cost
from .layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU, Shape, Softmax,
    Upsample,
    rule_for,
)
from .network import Network

__all__ = ["RULES", "NonpaddingMacs", "conv_axis_hits", "layer_macs_nonpadding", "macs_nonpadding",
           "transposed_axis_hits"]


def _count(low: int, high: int) -> int:
    """Integers in [low, high]."""
    return max(0, high - low + 1)


def conv_axis_hits(length_in: int, length_out: int, kernel: int, stride: int, left: int, dilation: int) -> int:
    """Pairs (output o, tap t) with ``0 <= o*stride - left + t*dilation < length_in``, ``0 <= o < length_out``."""
    hits = 0
    for t in range(kernel):
        shift = t * dilation - left  # o*s + shift inside [0, L_in)
        low = max(0, -(shift // stride))  # ceil(-shift / s)
        high = min(length_out - 1, (length_in - 1 - shift) // stride)
        hits += _count(low, high)
    return hits


def transposed_axis_hits(length_in: int, length_out: int, kernel: int, stride: int, padding: int,
                         dilation: int) -> int:
    """Pairs (input i < length_in, tap t) landing inside: ``0 <= i*stride - padding + t*dilation < length_out``."""
    hits = 0
    for t in range(kernel):
        shift = t * dilation - padding
        low = max(0, -(shift // stride))
        high = min(length_in - 1, (length_out - 1 - shift) // stride)
        hits += _count(low, high)
    return hits


Rule = Callable[[Any, tuple[Shape, ...], Shape], int]


def _conv(layer: Conv, inputs: tuple[Shape, ...], output: Shape) -> int:
    per_filter = math.prod(
        conv_axis_hits(n_in, n_out, k, s, d * (k - 1) // 2 if layer.same else p, d)
        for n_in, n_out, k, s, p, d in zip(inputs[0][1:], output[1:], layer.kernel, layer.stride, layer.padding,
                                           layer.dilation)
    )
    return layer.out_channels * (layer.in_channels // layer.groups) * per_filter


def _conv_transpose(layer: ConvTranspose, inputs: tuple[Shape, ...], output: Shape) -> int:
    per_filter = math.prod(
        transposed_axis_hits(n_in, n_out, k, s, p, d)
        for n_in, n_out, k, s, p, d in zip(inputs[0][1:], output[1:], layer.kernel, layer.stride, layer.padding,
                                           layer.dilation)
    )
    return layer.in_channels * (layer.out_channels // layer.groups) * per_filter


def _linear(layer: Linear, inputs: tuple[Shape, ...], output: Shape) -> int:
    return layer_cost(layer, inputs, output).macs  # no padding: every MAC reads input


def _none(layer: Any, inputs: tuple[Shape, ...], output: Shape) -> int:
    return 0  # no MACs at all


#: Layer type -> non-padding MACs per sample. Read-only; a test checks every layer type is here.
RULES: Mapping[type, Rule] = MappingProxyType({
    Conv: _conv, ConvTranspose: _conv_transpose, Linear: _linear,
    **dict.fromkeys((Pool, AdaptivePool, BatchNorm, Normalization, LayerScale, Activation, PReLU, Softmax, Upsample,
                     Elementwise, Concat, Flatten, Dropout, Identity, Crop, ChannelSlice, ChannelShuffle,
                     PixelShuffle, Opaque), _none),
})


def layer_macs_nonpadding(layer: Any, inputs: tuple[Shape, ...], output: Shape,
                          rules: Mapping[type, Rule] = RULES) -> int:
    """Per-sample MACs of one layer whose tap reads real input; an unknown layer type is an error."""
    return rule_for(rules, layer, "non-padding MAC rule")(layer, inputs, output)


@dataclass(frozen=True, slots=True)
class NonpaddingMacs:
    """Non-padding MACs of every node (in node order) and their total, batch included."""

    per_node: tuple[int, ...]
    total: int


def macs_nonpadding(network: Network, *, batch: int = 1, rules: Mapping[type, Rule] = RULES) -> NonpaddingMacs:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    per_node = tuple(layer_macs_nonpadding(node.layer, node.input_shapes, node.output_shape, rules) * batch
                     for node in network.nodes)
    return NonpaddingMacs(per_node, sum(per_node))
