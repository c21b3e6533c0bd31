"""Receptive fields: which network-input pixels can influence each node's output positions.

Per spatial axis of the network input, every node gets an :class:`AxisField`:
``size`` (input pixels spanned), ``jump`` (input pixels between adjacent
output positions) and ``offset`` (input coordinate of the field's centre line
at output position 0). Fields are *theoretical* (interior): computed as if
every tensor extended without bound, so zero padding never truncates them and
a size may exceed the input (docs/conventions.md, "Receptive fields").

The field of output position ``o`` is an exact interval of input pixels held
as a periodic table (:class:`Periodic`): upsampling and transposed convolution
make it depend on the phase ``o mod period``, and fractional jumps are exact
``Fraction`` values. ``RULES`` is the one read-only table from layer type to
rule; an unknown layer type is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from .errors import ConvcostError
from .layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU, Softmax, Upsample,
)
from .network import Network, Node

__all__ = [
    "MAX_PERIOD",
    "RULES",
    "AxisField",
    "NodeField",
    "Periodic",
    "ReceptiveFieldError",
    "receptive_fields",
]

#: Largest period (output positions before the field pattern repeats) a node may have.
MAX_PERIOD = 1 << 20

Bounds = tuple[int, int]  # first and last input pixel of a field, inclusive
Reads = list[tuple[int, int, int]]  # input positions read, as progressions (first, step >= 1, count)


class ReceptiveFieldError(ConvcostError):
    """A network whose fields cannot be computed within the limits (see MAX_PERIOD)."""


@dataclass(frozen=True, slots=True)
class Periodic:
    """Fields of every output position ``o`` of one tensor along one axis.

    ``phases[o % period]`` shifted by ``(o // period) * shift`` input pixels is
    the field ``(first, last)`` of position ``o``; ``None``: no input pixel
    influences that position (gaps of a transposed convolution).
    """

    period: int
    shift: int
    phases: tuple[Bounds | None, ...]

    @property
    def jump(self) -> Fraction:
        return Fraction(self.shift, self.period)

    def at(self, position: int) -> Bounds | None:
        turns, phase = divmod(position, self.period)
        bounds = self.phases[phase]
        if bounds is None:
            return None
        return bounds[0] + turns * self.shift, bounds[1] + turns * self.shift

    def span(self, first: int, step: int, count: int) -> Bounds | None:
        """The union of the fields at ``first + m * step`` for ``m < count`` (``step >= 1``).

        The shift is never negative, so the leftmost pixel is among the first
        ``period / gcd(step, period)`` terms and the rightmost among as many last.
        """
        if count <= 0:
            return None
        terms = min(count, self.period // math.gcd(step, self.period))
        lows = [b[0] for b in (self.at(first + m * step) for m in range(terms)) if b is not None]
        if not lows:
            return None
        highs = [b[1] for b in (self.at(first + (count - 1 - m) * step) for m in range(terms)) if b is not None]
        return min(lows), max(highs)


@dataclass(frozen=True, slots=True)
class AxisField:
    """The receptive field of one node's output positions along one spatial axis of the network input.

    ``size``: the most input pixels, first to last, that any of the node's
    output positions ``0 <= o < length`` can be influenced by. ``jump``: input
    pixels between adjacent output positions (``Fraction``; 0 when ``whole``;
    ``None`` when the node joins inputs of different jumps). ``offset``: the
    input coordinate of the centre line at position 0, the mean over one
    period of ``centre(o) - o * jump`` (exactly the centre of position 0's
    field when the period is 1); ``None`` with no jump or no field. ``whole``:
    every position sees the whole input axis (global pooling, linear over it).
    ``components``: the exact fields; :meth:`bounds` reads them.
    """

    size: int
    jump: Fraction | None
    offset: Fraction | None
    whole: bool
    length: int
    components: tuple[Periodic, ...]

    @property
    def period(self) -> int | None:
        return self.components[0].period if len(self.components) == 1 else None

    def bounds(self, position: int) -> Bounds | None:
        """First and last input pixel influencing output ``position`` (any integer), or None."""
        spans = [b for b in (c.at(position) for c in self.components) if b is not None]
        if not spans:
            return None
        return min(b[0] for b in spans), max(b[1] for b in spans)


@dataclass(frozen=True, slots=True)
class NodeField:
    """The receptive field of one node, one :class:`AxisField` per spatial axis of the network input."""

    index: int
    name: str
    axes: tuple[AxisField, ...]

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(axis.size for axis in self.axes)


# --------------------------------------------------------------------------- one axis


@dataclass(frozen=True, slots=True)
class _Axis:
    """Working state of one axis: whole, or the union of periodic components (one per jump)."""

    components: tuple[Periodic, ...]
    length: int  # positions along this axis (kept through flatten)
    whole: bool = False


def _normalized(period: int, shift: int, phases: list[Bounds | None]) -> Periodic:
    """The same fields with the smallest period that describes them."""
    divisors = sorted({d for k in range(1, math.isqrt(period) + 1) if period % k == 0 for d in (k, period // k)})
    for d in divisors:
        if shift * d % period:
            continue
        step = shift * d // period
        if all(_moved(phases[x], step) == phases[x + d] for x in range(period - d)):
            return Periodic(d, step, tuple(phases[:d]))
    raise AssertionError("unreachable: the full period always describes itself")


def _moved(bounds: Bounds | None, by: int) -> Bounds | None:
    return None if bounds is None else (bounds[0] + by, bounds[1] + by)


def _union(spans: Iterable[Bounds | None]) -> Bounds | None:
    present = [b for b in spans if b is not None]
    if not present:
        return None
    return min(b[0] for b in present), max(b[1] for b in present)


def _checked(period: int, where: str) -> int:
    if period > MAX_PERIOD:
        raise ReceptiveFieldError(f"layer '{where}': the field pattern repeats only every {period:,} positions "
                                  f"(limit {MAX_PERIOD:,})")
    return period


def _resample(axis: _Axis, ratio: Fraction, reads: Callable[[int], Reads], length: int, where: str) -> _Axis:
    """A layer whose output ``o`` reads the positions ``reads(o)``; ``reads(o + n)`` is
    ``reads(o)`` moved by ``n * ratio`` positions whenever that is a whole number."""
    if axis.whole:
        return _Axis(axis.components, length, whole=True)
    out = []
    for component in axis.components:
        # Smallest period whose input move is a whole number of input periods.
        period = _checked(ratio.denominator * component.period // math.gcd(component.period, ratio.numerator), where)
        moved = period * ratio
        assert moved.denominator == 1 and moved.numerator % component.period == 0
        shift = component.shift * (moved.numerator // component.period)
        phases = [_union(component.span(*read) for read in reads(o)) for o in range(period)]
        out.append(_normalized(period, shift, phases))
    return _Axis(tuple(out), length)


def _join(axes: list[_Axis], where: str) -> _Axis:
    """Output position ``o`` is influenced by what influences ``o`` in any input: the union.
    Components of equal jump merge into one; different jumps stay separate components."""
    length = max(axis.length for axis in axes)
    wholes = [axis for axis in axes if axis.whole]
    if wholes:
        return _Axis(wholes[0].components, length, whole=True)
    by_jump: dict[Fraction, list[Periodic]] = {}
    for axis in axes:
        for component in axis.components:
            by_jump.setdefault(component.jump, []).append(component)
    merged = []
    for jump, group in by_jump.items():
        period = _checked(math.lcm(*(c.period for c in group)), where)
        shift = jump * period
        phases = [_union(c.at(o) for c in group) for o in range(period)]
        merged.append(_normalized(period, int(shift), phases))
    return _Axis(tuple(merged), length)


def _whole(length: int, input_length: int) -> _Axis:
    return _Axis((Periodic(1, 0, ((0, input_length - 1),)),), length, whole=True)


def _size(axis: _Axis, input_length: int, where: str) -> int:
    """The largest field, first to last pixel, over the positions 0 <= o < length."""
    if axis.whole:
        return input_length
    best = 0
    for a in axis.components:
        for b in axis.components:
            # last_a(o) - first_b(o) grows by the same amount every lcm periods: the largest
            # value of each phase is in the first or the last lcm positions.
            period = _checked(math.lcm(a.period, b.period), where)
            positions = set(range(min(period, axis.length))) | set(range(max(0, axis.length - period), axis.length))
            for o in positions:
                first, last = b.at(o), a.at(o)
                if first is not None and last is not None:
                    best = max(best, last[1] - first[0] + 1)
    return best


def _public(axis: _Axis, input_length: int, where: str) -> AxisField:
    if not axis.whole and len(axis.components) == 1 and axis.components[0].period == 1:
        # The common case: every position's field is the same interval, moved by the shift.
        (component,) = axis.components
        bounds = component.phases[0]
        if bounds is None:
            return AxisField(0, Fraction(component.shift), None, False, axis.length, axis.components)
        first, last = bounds
        return AxisField(last - first + 1 if axis.length else 0, Fraction(component.shift),
                         Fraction(first + last, 2), False, axis.length, axis.components)
    size = _size(axis, input_length, where)
    if axis.whole:
        return AxisField(size, Fraction(0), Fraction(input_length - 1, 2), True, axis.length, axis.components)
    if len(axis.components) != 1:
        return AxisField(size, None, None, False, axis.length, axis.components)
    (component,) = axis.components
    jump = component.jump
    # The mean over one period of centre(o) - o * jump, as sum(first + last - 2 o jump) / (2 * count).
    present = [(o, bounds) for o, bounds in enumerate(component.phases) if bounds is not None]
    total = sum(first + last for _, (first, last) in present) - 2 * jump * sum(o for o, _ in present)
    offset = Fraction(total, 2 * len(present)) if present else None
    return AxisField(size, jump, offset, False, axis.length, axis.components)


# --------------------------------------------------------------------------- layer rules


@dataclass(frozen=True, slots=True)
class _Context:
    input_lengths: tuple[int, ...]  # network input length per spatial axis

    def spatial(self, shape: tuple[int, ...]) -> bool:
        """A tensor with the network input's spatial axes (not flattened)."""
        return len(shape) == len(self.input_lengths) + 1


Field = tuple[_Axis, ...]
Rule = Callable[[Node, tuple[Field, ...], _Context], Field]


def _lengths(field: Field, node: Node, context: _Context) -> Field:
    """The input field with this node's lengths: an elementwise layer."""
    if context.spatial(node.output_shape):
        return tuple(_Axis(a.components, n, a.whole) for a, n in zip(field, node.output_shape[1:]))
    return field


def _elementwise(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    return _lengths(fields[0], node, context)


def _all_whole(field: Field, context: _Context) -> Field:
    return tuple(_whole(a.length, n) for a, n in zip(field, context.input_lengths))


def _along(node: Node, field: Field, context: _Context, axis: int) -> Field:
    """Whole along tensor axis ``axis`` (batch excluded; 0 is channels); all axes when flattened."""
    if not context.spatial(node.input_shapes[0]):
        return _all_whole(field, context)
    if axis == 0:
        return _lengths(field, node, context)
    return _lengths(tuple(_whole(a.length, n) if i == axis - 1 else a
                          for i, (a, n) in enumerate(zip(field, context.input_lengths))), node, context)


def _linear(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    # nn.Linear mixes the last axis: all features of a flattened tensor, else the last spatial axis;
    # over the channels (axis: channels) it is a 1x1 convolution, each position on its own.
    if isinstance(node.layer, Linear) and node.layer.axis == "channels":
        return _elementwise(node, fields, context)
    return _along(node, fields[0], context, len(node.input_shapes[0]) - 1)


def _softmax(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    assert isinstance(node.layer, Softmax)
    return _along(node, fields[0], context, node.layer.axis(node.input_shapes[0]))


def _window(first: int, step: int, count: int) -> Reads:
    return [(first, step, count)]


def _conv_like(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    layer = node.layer
    assert isinstance(layer, (Conv, Pool))
    same = isinstance(layer, Conv) and layer.same
    out = []
    for axis, k, s, p, d, n in zip(fields[0], layer.kernel, layer.stride, layer.padding, layer.dilation,
                                   node.output_shape[1:]):
        left = d * (k - 1) // 2 if same else p  # PyTorch's 'same': the odd extra pixel on the right

        def reads(o: int, k: int = k, s: int = s, d: int = d, left: int = left) -> Reads:
            return _window(o * s - left, d, k)

        out.append(_resample(axis, Fraction(s), reads, n, node.name))
    return tuple(out)


def _conv_transpose(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
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

        out.append(_resample(axis, Fraction(1, s), reads, n, node.name))
    return tuple(out)


def _upsample(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
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

        out.append(_resample(axis, Fraction(b, a), reads, n, node.name))
    return tuple(out)


def _adaptive_pool(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    layer = node.layer
    assert isinstance(layer, AdaptivePool)
    out = []
    for axis, length, size, whole_length in zip(fields[0], node.input_shapes[0][1:], layer.output_size,
                                                context.input_lengths):
        if size == 1:  # global pooling: the whole input
            out.append(_whole(1, whole_length))
            continue

        def reads(o: int, length: int = length, size: int = size) -> Reads:
            start = o * length // size  # PyTorch: floor(o L / n) .. ceil((o + 1) L / n) - 1
            return _window(start, 1, -(-(o + 1) * length // size) - start)

        out.append(_resample(axis, Fraction(length, size), reads, size, node.name))
    return tuple(out)


def _shifted(axis: _Axis, by: int, length: int, where: str) -> _Axis:
    """Output position ``o`` reads input position ``o + by``."""
    return _resample(axis, Fraction(1), lambda o: _window(o + by, 1, 1), length, where)


def _join_rule(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    """The union of the inputs' fields at each position. An input broadcast along an axis (length 1)
    gives every position its one field; a cropped concat input is shifted by its crop; a concat along a
    spatial axis shifts each later input by the lengths before it (so the union is an upper bound)."""
    layer = node.layer
    if not context.spatial(node.output_shape):
        flat = tuple(_join([field[i] for field in fields], node.name) for i in range(len(context.input_lengths)))
        return _lengths(flat, node, context)
    out_lengths = node.output_shape[1:]
    moved: list[Field] = []
    before = 0
    for field, shape in zip(fields, node.input_shapes):
        axes: list[_Axis] = []
        for i, (axis, n_in, n_out) in enumerate(zip(field, shape[1:], out_lengths)):
            if isinstance(layer, Concat) and layer.axis == i + 1:
                axes.append(_shifted(axis, -before, n_out, node.name))
            elif isinstance(layer, Concat) and layer.crop and n_in != n_out:
                axes.append(_shifted(axis, (n_in - n_out) // 2, n_out, node.name))
            elif n_in == 1 and n_out > 1 and not axis.whole:
                axes.append(_resample(axis, Fraction(0), lambda o: _window(0, 1, 1), n_out, node.name))
            else:
                axes.append(axis)
        if isinstance(layer, Concat) and layer.axis > 0:
            before += shape[layer.axis]
        moved.append(tuple(axes))
    joined = tuple(_join([field[i] for field in moved], node.name) for i in range(len(context.input_lengths)))
    return _lengths(joined, node, context)


def _crop(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    layer = node.layer
    assert isinstance(layer, Crop)
    if not context.spatial(node.output_shape):
        return _lengths(fields[0], node, context)
    return tuple(_shifted(axis, offset, n, node.name)
                 for axis, offset, n in zip(fields[0], layer.offsets(node.input_shapes[0]), node.output_shape[1:]))


def _pixel_shuffle(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
    layer = node.layer
    assert isinstance(layer, PixelShuffle)
    r, out = layer.factor, []
    for axis, n in zip(fields[0], node.output_shape[1:]):
        if layer.inverse:  # output o gathers inputs o*r .. o*r + r - 1
            out.append(_resample(axis, Fraction(r), lambda o: _window(o * r, 1, r), n, node.name))
        else:  # output o comes from input o // r
            out.append(_resample(axis, Fraction(1, r), lambda o: _window(o // r, 1, 1), n, node.name))
    return tuple(out)


def _opaque(node: Node, fields: tuple[Field, ...], context: _Context) -> Field:
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


def receptive_fields(network: Network, rules: Mapping[type, Rule] = RULES) -> tuple[NodeField, ...]:
    """The receptive field of every node, in node order; an unknown layer type is an error."""
    context = _Context(tuple(network.input_shape[1:]))
    start: Field = tuple(_Axis((Periodic(1, 1, ((0, 0),)),), n) for n in context.input_lengths)
    fields: list[Field] = []
    result = []
    for node in network.nodes:
        try:
            rule = rules[type(node.layer)]
        except KeyError:
            raise TypeError(f"no receptive-field rule for layer type {type(node.layer).__name__}") from None
        field = rule(node, tuple(start if ref < 0 else fields[ref] for ref in node.inputs), context)
        fields.append(field)
        result.append(NodeField(node.index, node.name,
                                tuple(_public(axis, n, node.name) for axis, n in zip(field, context.input_lengths))))
    return tuple(result)
