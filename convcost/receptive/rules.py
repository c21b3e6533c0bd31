"""Receptive-field rules: ``RULES``, the one read-only table from layer type to rule.

A rule takes a node, the fields of its inputs and the :class:`Context` (the network input's spatial lengths)
and returns the node's field, one :class:`AxisState` per spatial axis of the network input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from ..layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU, Softmax,
    Upsample,
)
from ..network import Node
from .fields import AxisState, Reads, join, resample, whole

__all__ = ["RULES", "Context", "Field", "Rule"]

@dataclass(frozen=True, slots=True)
class Context:
    input_lengths: tuple[int, ...]  # network input length per spatial axis

    def spatial(self, shape: tuple[int, ...]) -> bool:
        """A tensor with the network input's spatial axes (not flattened)."""
        return len(shape) == len(self.input_lengths) + 1


Field = tuple[AxisState, ...]
Rule = Callable[[Node, tuple[Field, ...], Context], Field]


def _lengths(field: Field, node: Node, context: Context) -> Field:
    """The input field with this node's lengths: an elementwise layer."""
    if context.spatial(node.output_shape):
        return tuple(AxisState(a.components, n, a.whole) for a, n in zip(field, node.output_shape[1:]))
    return field


def _elementwise(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    return _lengths(fields[0], node, context)


def _all_whole(field: Field, context: Context) -> Field:
    return tuple(whole(a.length, n) for a, n in zip(field, context.input_lengths))


def _along(node: Node, field: Field, context: Context, axis: int) -> Field:
    """Whole along tensor axis ``axis`` (batch excluded; 0 is channels); all axes when flattened."""
    if not context.spatial(node.input_shapes[0]):
        return _all_whole(field, context)
    if axis == 0:
        return _lengths(field, node, context)
    return _lengths(tuple(whole(a.length, n) if i == axis - 1 else a
                          for i, (a, n) in enumerate(zip(field, context.input_lengths))), node, context)


def _linear(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    # nn.Linear mixes the last axis: all features of a flattened tensor, else the last spatial axis;
    # over the channels (axis: channels) it is a 1x1 convolution, each position on its own.
    if isinstance(node.layer, Linear) and node.layer.axis == "channels":
        return _elementwise(node, fields, context)
    return _along(node, fields[0], context, len(node.input_shapes[0]) - 1)


def _softmax(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    assert isinstance(node.layer, Softmax)
    return _along(node, fields[0], context, node.layer.axis(node.input_shapes[0]))


def _window(first: int, step: int, count: int) -> Reads:
    return [(first, step, count)]


def _conv_like(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    layer = node.layer
    assert isinstance(layer, (Conv, Pool))
    same = isinstance(layer, Conv) and layer.same
    out = []
    for axis, k, s, p, d, n in zip(fields[0], layer.kernel, layer.stride, layer.padding, layer.dilation,
                                   node.output_shape[1:]):
        left = d * (k - 1) // 2 if same else p  # PyTorch's 'same': the odd extra pixel on the right

        def reads(o: int, k: int = k, s: int = s, d: int = d, left: int = left) -> Reads:
            return _window(o * s - left, d, k)

        out.append(resample(axis, s, reads, n, node.name))
    return tuple(out)


def _conv_transpose(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    layer = node.layer
    assert isinstance(layer, ConvTranspose)
    out = []
    for axis, k, s, p, d, n in zip(fields[0], layer.kernel, layer.stride, layer.padding, layer.dilation,
                                   node.output_shape[1:]):

        def reads(o: int, k: int = k, s: int = s, p: int = p, d: int = d) -> Reads:
            # Input i and tap t land on output i*s - p + t*d: the taps t with s | (o + p - t*d).
            g = math.gcd(s, d)
            x = o + p
            if x % g:
                return []
            s1, d1 = s // g, d // g
            t0 = (x // g) * pow(d1, -1, s1) % s1 if s1 > 1 else 0
            if t0 >= k:
                return []
            count = (k - 1 - t0) // s1 + 1
            last_tap = t0 + (count - 1) * s1
            return _window((x - last_tap * d) // s, d1, count)  # inputs ascend as taps descend

        out.append(resample(axis, Fraction(1, s), reads, n, node.name))
    return tuple(out)


def _upsample(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    layer = node.layer
    assert isinstance(layer, Upsample)
    out = []
    for axis, scale, n in zip(fields[0], layer.scale, node.output_shape[1:]):
        a, b = scale.numerator, scale.denominator  # output o is input o / scale

        if layer.mode == "nearest":
            def reads(o: int, a: int = a, b: int = b) -> Reads:
                return _window(o * b // a, 1, 1)  # floor(o / scale)
        else:
            def reads(o: int, a: int = a, b: int = b) -> Reads:
                # align_corners=False: source (o + 1/2) / scale - 1/2 = ((2o + 1) b - a) / 2a; its floor and,
                # unless it is a whole number (weight 0), the next pixel.
                numerator = (2 * o + 1) * b - a
                return _window(numerator // (2 * a), 1, 1 if numerator % (2 * a) == 0 else 2)

        out.append(resample(axis, Fraction(b, a), reads, n, node.name))
    return tuple(out)


def _adaptive_pool(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    layer = node.layer
    assert isinstance(layer, AdaptivePool)
    out = []
    for axis, length, size, whole_length in zip(fields[0], node.input_shapes[0][1:], layer.output_size,
                                                context.input_lengths):
        if size == 1:  # global pooling: the whole input
            out.append(whole(1, whole_length))
            continue

        def reads(o: int, length: int = length, size: int = size) -> Reads:
            start = o * length // size  # PyTorch: floor(o L / n) .. ceil((o + 1) L / n) - 1
            return _window(start, 1, -(-(o + 1) * length // size) - start)

        out.append(resample(axis, Fraction(length, size), reads, size, node.name))
    return tuple(out)


def _shifted(axis: AxisState, by: int, length: int, where: str) -> AxisState:
    """Output position ``o`` reads input position ``o + by``."""
    return resample(axis, 1, lambda o: _window(o + by, 1, 1), length, where)


def _join_rule(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    """The union of the inputs' fields at each position. An input broadcast along an axis (length 1)
    gives every position its one field; a cropped concat input is shifted by its crop; a concat along a
    spatial axis shifts each later input by the lengths before it (so the union is an upper bound)."""
    layer = node.layer
    if not context.spatial(node.output_shape):
        flat = tuple(join([field[i] for field in fields], node.name) for i in range(len(context.input_lengths)))
        return _lengths(flat, node, context)
    out_lengths = node.output_shape[1:]
    moved: list[Field] = []
    before = 0
    for field, shape in zip(fields, node.input_shapes):
        axes: list[AxisState] = []
        for i, (axis, n_in, n_out) in enumerate(zip(field, shape[1:], out_lengths)):
            if isinstance(layer, Concat) and layer.axis == i + 1:
                axes.append(_shifted(axis, -before, n_out, node.name))
            elif isinstance(layer, Concat) and layer.crop and n_in != n_out:
                axes.append(_shifted(axis, (n_in - n_out) // 2, n_out, node.name))
            elif n_in == 1 and n_out > 1 and not axis.whole:
                axes.append(resample(axis, Fraction(0), lambda o: _window(0, 1, 1), n_out, node.name))
            else:
                axes.append(axis)
        if isinstance(layer, Concat) and layer.axis > 0:
            before += shape[layer.axis]
        moved.append(tuple(axes))
    joined = tuple(join([field[i] for field in moved], node.name) for i in range(len(context.input_lengths)))
    return _lengths(joined, node, context)


def _crop(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    layer = node.layer
    assert isinstance(layer, Crop)
    if not context.spatial(node.output_shape):
        return _lengths(fields[0], node, context)
    return tuple(_shifted(axis, offset, n, node.name)
                 for axis, offset, n in zip(fields[0], layer.offsets(node.input_shapes[0]), node.output_shape[1:]))


def _pixel_shuffle(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    layer = node.layer
    assert isinstance(layer, PixelShuffle)
    r, out = layer.factor, []
    for axis, n in zip(fields[0], node.output_shape[1:]):
        if layer.inverse:  # output o gathers inputs o*r .. o*r + r - 1
            out.append(resample(axis, Fraction(r), lambda o: _window(o * r, 1, r), n, node.name))
        else:  # output o comes from input o // r
            out.append(resample(axis, Fraction(1, r), lambda o: _window(o // r, 1, 1), n, node.name))
    return tuple(out)


def _opaque(node: Node, fields: tuple[Field, ...], context: Context) -> Field:
    """An op convcost does not know: conservatively, every output position sees the whole input."""
    return _lengths(_all_whole(fields[0], context), node, context)


#: Layer type -> receptive-field rule. Read-only; a test checks every layer type is here.
RULES: Mapping[type, Rule] = MappingProxyType({
    Conv: _conv_like, Pool: _conv_like,  # max and avg; ceil_mode only adds positions, not field
    ConvTranspose: _conv_transpose, Upsample: _upsample, AdaptivePool: _adaptive_pool, Linear: _linear,
    Softmax: _softmax, Crop: _crop, PixelShuffle: _pixel_shuffle, Elementwise: _join_rule, Concat: _join_rule,
    Opaque: _opaque,
    # Each element keeps its field: flatten (positions no longer spatial), batch norm at inference (a
    # per-channel scale and shift), activations, and the channel-only rearrangements. Normalisation
    # statistics are not spatial dependence here (layer norm over channels is per position; group and
    # instance norm's mean and variance are a global effect, left out as receptive-field analyses do).
    **dict.fromkeys((Flatten, BatchNorm, Normalization, LayerScale, Activation, PReLU, Dropout, Identity,
                     ChannelSlice, ChannelShuffle), _elementwise),
})
