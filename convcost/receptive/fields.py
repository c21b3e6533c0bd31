"""Receptive-field arithmetic along one axis: the exact fields of every output position as a periodic table.

The field of output position ``o`` is an exact interval of input pixels held as a :class:`Periodic`:
upsampling and transposed convolution make it depend on the phase ``o mod period``, and fractional jumps are
exact ``Fraction`` values. An :class:`AxisState` is the working state of one axis (a union of periodic
components, one per jump); :func:`resample` and :func:`join` are the two moves every layer rule is made of,
and :func:`axis_field` turns the state into the public :class:`AxisField`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from ..errors import ConvcostError

__all__ = [
    "MAX_PERIOD", "AxisField", "AxisState", "Bounds", "NodeField", "Periodic", "Reads", "ReceptiveFieldError",
    "axis_field", "join", "resample", "whole",
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
class AxisState:
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


def resample(axis: AxisState, ratio: Fraction | int, reads: Callable[[int], Reads], length: int,
             where: str) -> AxisState:
    """A layer whose output ``o`` reads the positions ``reads(o)``; ``reads(o + n)`` is
    ``reads(o)`` moved by ``n * ratio`` positions whenever that is a whole number."""
    if axis.whole:
        return AxisState(axis.components, length, whole=True)
    out = []
    for component in axis.components:
        if component.period == 1 and ratio.denominator == 1:  # most layers: one field, moved by the stride
            bounds = _union(component.span(*read) for read in reads(0))
            out.append(Periodic(1, component.shift * int(ratio), (bounds,)))
            continue
        # Smallest period whose input move is a whole number of input periods.
        period = _checked(ratio.denominator * component.period // math.gcd(component.period, ratio.numerator), where)
        moved = period * ratio
        assert moved.denominator == 1 and moved.numerator % component.period == 0
        shift = component.shift * (moved.numerator // component.period)
        phases = [_union(component.span(*read) for read in reads(o)) for o in range(period)]
        out.append(_normalized(period, shift, phases))
    return AxisState(tuple(out), length)


def join(axes: list[AxisState], where: str) -> AxisState:
    """Output position ``o`` is influenced by what influences ``o`` in any input: the union.
    Components of equal jump merge into one; different jumps stay separate components."""
    length = max(axis.length for axis in axes)
    wholes = [axis for axis in axes if axis.whole]
    if wholes:
        return AxisState(wholes[0].components, length, whole=True)
    by_jump: dict[Fraction | int, list[Periodic]] = {}  # an int jump and the equal Fraction are one key
    for axis in axes:
        for component in axis.components:
            jump = component.shift if component.period == 1 else component.jump
            by_jump.setdefault(jump, []).append(component)
    merged = []
    for jump, group in by_jump.items():
        period = _checked(math.lcm(*(c.period for c in group)), where)
        shift = jump * period
        phases = [_union(c.at(o) for c in group) for o in range(period)]
        merged.append(_normalized(period, int(shift), phases))
    return AxisState(tuple(merged), length)


def whole(length: int, input_length: int) -> AxisState:
    return AxisState((Periodic(1, 0, ((0, input_length - 1),)),), length, whole=True)


def _size(axis: AxisState, input_length: int, where: str) -> int:
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


def axis_field(axis: AxisState, input_length: int, where: str) -> AxisField:
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
