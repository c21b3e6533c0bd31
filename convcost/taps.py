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


def _floor_sum(n: int, m: int, a: int, b: int) -> int:
    """``sum(floor((a*i + b) / m) for i in range(n))`` for ``m > 0`` in O(log) steps (the Euclid-like
    reduction of AtCoder's floor_sum), so a kernel of 10^29 taps costs what a 3x3 does."""
    total = 0
    if a < 0 or a >= m:
        total += n * (n - 1) // 2 * (a // m)
        a %= m
    if b < 0 or b >= m:
        total += n * (b // m)
        b %= m
    while n > 0:
        if a >= m:
            total += n * (n - 1) // 2 * (a // m)
            a %= m
        if b >= m:
            total += n * (b // m)
            b %= m
        top = a * n + b
        if top < m:
            break
        n, b = divmod(top, m)
        m, a = a, m
    return total


def _hits(positions: int, target: int, kernel: int, stride: int, left: int, dilation: int) -> int:
    """Pairs (position o < ``positions``, tap t < ``kernel``) with ``0 <= o*stride + t*dilation - left < target``.

    Tap t reaches the positions ``o`` in ``[low(t), high(t)]``, with ``low(t) = max(0, -floor(sh/s))``
    and ``high(t) = min(positions - 1, floor((target - 1 - sh)/s))`` for ``sh = t*d - left``. A tap
    reaches any position when ``-(positions - 1)*s <= sh <= target - 1``, an interval of taps; the clamps
    split it in at most three runs, and each run's sum of floors is one :func:`_floor_sum`.
    """
    s, d = stride, dilation
    first = max(0, -(((positions - 1) * s - left) // d))  # ceil((left - (positions-1)*s) / d)
    last = min(kernel - 1, (target - 1 + left) // d)
    if positions <= 0 or target <= 0 or first > last:
        return 0
    floor_low = max(first, min(last + 1, -(-left // d)))  # from here on low(t) = 0 (sh >= 0)
    full_high = max(first, min(last + 1, (target - 1 - (positions - 1) * s + left) // d + 1))  # high(t) < p-1 from
    total = 0
    for start, stop in _runs(first, last + 1, floor_low, full_high):
        count = stop - start
        if count <= 0:
            continue
        # high(t): positions - 1 before full_high, else floor((target-1+left - t*d)/s), t = stop-1-i
        if start < full_high:
            high = (positions - 1) * count
        else:
            high = _floor_sum(count, s, d, target - 1 + left - (stop - 1) * d)
        # low(t): -floor((t*d - left)/s) before floor_low, else 0, t = start+i
        low = -_floor_sum(count, s, d, start * d - left) if start < floor_low else 0
        total += high - low + count
    return total


def _runs(start: int, stop: int, *cuts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut at the points ``cuts`` that fall inside it."""
    points = sorted({start, stop, *(cut for cut in cuts if start < cut < stop)})
    return list(zip(points, points[1:]))


def conv_axis_hits(length_in: int, length_out: int, kernel: int, stride: int, left: int, dilation: int) -> int:
    """Pairs (output o, tap t) with ``0 <= o*stride - left + t*dilation < length_in``, ``0 <= o < length_out``."""
    return _hits(length_out, length_in, kernel, stride, left, dilation)


def transposed_axis_hits(length_in: int, length_out: int, kernel: int, stride: int, padding: int,
                         dilation: int) -> int:
    """Pairs (input i < length_in, tap t) landing inside: ``0 <= i*stride - padding + t*dilation < length_out``."""
    return _hits(length_in, length_out, kernel, stride, padding, dilation)


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
