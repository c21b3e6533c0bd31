"""What every layer shares: the shape type, the error type and PyTorch's length rules."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

from ..units import format_shape

__all__ = [
    "LayerError",
    "rule_for",
    "SameShape",
    "Shape",
    "check_groups",
    "check_positive",
    "conv_output_length",
    "conv_transpose_output_length",
    "numel",
    "pool_output_length",
    "spatial",
]

Shape = tuple[int, ...]

#: Spatial axes by rank, for messages: a 2-D input is CxHxW.
LAYOUTS = {0: "C", 1: "CxL", 2: "CxHxW", 3: "CxDxHxW"}


class LayerError(ValueError):
    """A rule broken by a layer's options or input shape; the builder adds file, line and name."""


def numel(shape: Shape) -> int:
    return math.prod(shape)


def conv_output_length(length: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """PyTorch's Conv/MaxPool length rule: floor((L + 2p - d(k-1) - 1) / s) + 1."""
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_length(length: int, kernel: int, stride: int, padding: int,
                                 output_padding: int, dilation: int) -> int:
    """PyTorch's ConvTranspose rule: (L - 1)s - 2p + d(k-1) + output_padding + 1."""
    return (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pool_output_length(length: int, kernel: int, stride: int, padding: int, dilation: int,
                       ceil_mode: bool) -> int:
    """PyTorch's pooling rule, including ceil_mode's 'last window starts inside' correction."""
    span = length + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= length + padding:
            out -= 1
        return out
    return span // stride + 1


def spatial(shape: Shape, dims: int, kind: str) -> tuple[int, ...]:
    """The spatial lengths of ``shape``, which must have ``dims`` spatial axes."""
    if len(shape) != dims + 1:
        raise LayerError(f"{kind} needs a {LAYOUTS[dims]} input, got {format_shape(shape)}")
    return shape[1:]


def check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    if in_channels % groups:
        raise LayerError(f"groups={groups} does not divide {in_channels} input channels")
    if out_channels % groups:
        raise LayerError(f"groups={groups} does not divide {out_channels} output channels")


def check_positive(lengths: tuple[int, ...], kind: str, shape_in: Shape) -> None:
    if any(length <= 0 for length in lengths):
        raise LayerError(
            f"{kind} output size would be {format_shape(lengths)} (<= 0) for input {format_shape(shape_in)}"
        )


class SameShape:
    """A layer whose output has its input's shape."""

    __slots__ = ()

    def output_shape(self, shape: Shape) -> Shape:
        return shape


_Rule = TypeVar("_Rule")


def rule_for(table: Mapping[type, _Rule], layer: object, what: str) -> _Rule:
    """The entry of ``layer``'s type in one of the read-only tables from layer type to rule (costs, traffic,
    backward, receptive fields...); a type the table lacks is an error, never a silent zero."""
    try:
        return table[type(layer)]
    except KeyError:
        raise TypeError(f"no {what} for layer type {type(layer).__name__}") from None
