"""Stage 2a: immutable layer objects and their shape rules.

Each layer is a frozen dataclass whose ``__post_init__`` checks the rules that
need no input shape, with a pure ``output_shape(*input_shapes)`` that checks
the rest. convcost.kinds builds them from a spec's options. Shapes are channels-first tuples without the
batch: ``(C,)``, ``(C, L)``, ``(C, H, W)`` or ``(C, D, H, W)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any, ClassVar

from .units import format_shape

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "AdaptivePool",
    "Add",
    "BatchNorm",
    "Concat",
    "Conv",
    "ConvTranspose",
    "Dropout",
    "Flatten",
    "Identity",
    "Layer",
    "LayerError",
    "Linear",
    "Pool",
    "Shape",
    "Softmax",
    "Upsample",
    "conv_output_length",
    "conv_transpose_output_length",
    "numel",
    "pool_output_length",
]

Shape = tuple[int, ...]

#: Activation name -> FLOPs per output element (docs/conventions.md explains each).
ACTIVATIONS = MappingProxyType(
    {
        "relu": 1,  # max(x, 0)
        "relu6": 2,  # min(max(x, 0), 6)
        "leaky_relu": 2,  # x if x > 0 else a*x: compare + multiply
        "sigmoid": 3,  # 1 / (1 + exp(-x)): exp, add, divide
        "tanh": 1,  # one transcendental
        "gelu": 5,  # x * 0.5 * (1 + erf(x / sqrt 2)): divide, erf, add, 2 multiplies
        "silu": 4,  # x * sigmoid(x)
        "hardswish": 5,  # x * min(max(x + 3, 0), 6) / 6: add, max, min, multiply, divide
    }
)


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


def _spatial(shape: Shape, dims: int, kind: str) -> tuple[int, ...]:
    if len(shape) != dims + 1:
        expected = {1: "CxL", 2: "CxHxW", 3: "CxDxHxW"}[dims]
        raise LayerError(f"{kind} needs a {expected} input, got {format_shape(shape)}")
    return shape[1:]


def _check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    if in_channels % groups:
        raise LayerError(f"groups={groups} does not divide {in_channels} input channels")
    if out_channels % groups:
        raise LayerError(f"groups={groups} does not divide {out_channels} output channels")


def _check_positive(lengths: tuple[int, ...], kind: str, shape_in: Shape) -> None:
    if any(length <= 0 for length in lengths):
        raise LayerError(
            f"{kind} output size would be {format_shape(lengths)} (<= 0) for input {format_shape(shape_in)}"
        )


class _SameShape:
    """A layer whose output has its input's shape."""

    __slots__ = ()

    def output_shape(self, shape: Shape) -> Shape:
        return shape


@dataclass(frozen=True, slots=True)
class _Convolution:
    """What a convolution and a transposed convolution share: their fields and their checks."""

    dims: int
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    kind: str = ""

    def __post_init__(self) -> None:
        for field_name in ("kernel", "stride", "padding", "dilation"):
            if len(getattr(self, field_name)) != self.dims:
                raise LayerError(f"{field_name} needs {self.dims} values, got {getattr(self, field_name)}")
        _check_groups(self.in_channels, self.out_channels, self.groups)

    def spatial_input(self, shape: Shape) -> tuple[int, ...]:
        """The spatial lengths of an input of the right rank and channel count."""
        spatial = _spatial(shape, self.dims, self.kind)
        if shape[0] != self.in_channels:
            raise LayerError(f"expects {self.in_channels} input channels, got {shape[0]}")
        return spatial


@dataclass(frozen=True, slots=True)
class Conv(_Convolution):
    """``nn.Conv{1,2,3}d``; ``same`` padding is stored as ``same=True`` (PyTorch pads d(k-1) in total)."""

    kind: str = "conv2d"
    same: bool = False
    # Design marks read by convcost.bottleneck; cost functions ignore them.
    bottleneck: int | Fraction | None = None  # width of a 1x1 reduction to insert before this conv
    reduction: bool = False  # this 1x1 is a channel reduction (removed in the naive form)

    def __post_init__(self) -> None:
        if self.bottleneck is not None and not (
            (isinstance(self.bottleneck, int) and not isinstance(self.bottleneck, bool) and self.bottleneck >= 1)
            or (isinstance(self.bottleneck, Fraction) and 0 < self.bottleneck < 1)
        ):
            raise LayerError(f"bottleneck must be a width >= 1 or a fraction in (0, 1), got {self.bottleneck!r}")
        if self.reduction and (any(k != 1 for k in self.kernel) or self.bottleneck is not None):
            raise LayerError("'reduction: true' marks a 1x1 convolution without a bottleneck of its own")
        super(Conv, self).__post_init__()
        if self.same and any(s != 1 for s in self.stride):
            raise LayerError("padding 'same' needs stride 1 (as in PyTorch)")

    def output_shape(self, shape: Shape) -> Shape:
        spatial = self.spatial_input(shape)
        lengths = spatial if self.same else tuple(
            conv_output_length(length, k, s, p, d)
            for length, k, s, p, d in zip(spatial, self.kernel, self.stride, self.padding, self.dilation))
        _check_positive(lengths, self.kind, shape)
        return (self.out_channels, *lengths)

    @property
    def weight_count(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * math.prod(self.kernel)


@dataclass(frozen=True, slots=True)
class ConvTranspose(_Convolution):
    """``nn.ConvTranspose{1,2,3}d``."""

    kind: str = "conv_transpose2d"
    output_padding: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super(ConvTranspose, self).__post_init__()
        if len(self.output_padding) != self.dims:
            raise LayerError(f"output_padding needs {self.dims} values, got {self.output_padding}")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise LayerError(
                    f"output_padding={op} must be smaller than stride or dilation ({s}, {d}), as in PyTorch"
                )

    def output_shape(self, shape: Shape) -> Shape:
        spatial = self.spatial_input(shape)
        lengths = tuple(
            conv_transpose_output_length(length, k, s, p, op, d)
            for length, k, s, p, op, d in zip(
                spatial, self.kernel, self.stride, self.padding, self.output_padding, self.dilation))
        if any(length <= 0 for length in lengths):  # PyTorch's words (docs/conventions.md: zero-size outputs)
            raise LayerError(f"given input size per channel {format_shape(spatial)}, the calculated output size per "
                             f"channel {format_shape(lengths)} is too small (as in PyTorch)")
        return (self.out_channels, *lengths)

    @property
    def weight_count(self) -> int:
        return self.in_channels * (self.out_channels // self.groups) * math.prod(self.kernel)


@dataclass(frozen=True, slots=True)
class Pool:
    """``nn.MaxPool{1,2,3}d`` (op ``max``) and ``nn.AvgPool{1,2,3}d`` (op ``avg``)."""

    op: str
    dims: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool = False
    kind: str = "max_pool2d"

    def __post_init__(self) -> None:
        for k, p in zip(self.kernel, self.padding):
            if p > k // 2:  # PyTorch's rule uses the plain kernel, whatever the dilation
                raise LayerError(f"padding should be at most half of kernel size, but got padding={p} and "
                                 f"kernel_size={k} (as in PyTorch: padding <= kernel // 2, whatever the dilation)")

    def output_shape(self, shape: Shape) -> Shape:
        spatial = _spatial(shape, self.dims, self.kind)
        if self.op == "avg" and self.dims == 3 and any(n < k for n, k in zip(spatial, self.kernel)):
            (t, h, w), (kt, kh, kw) = spatial, self.kernel  # PyTorch's avg_pool3d checks this before padding
            raise LayerError(f"input image (T: {t} H: {h} W: {w}) smaller than kernel size (kT: {kt} kH: {kh} "
                             f"kW: {kw}), as PyTorch's avg_pool3d refuses it even when padding would cover it")
        lengths = tuple(
            pool_output_length(length, k, s, p, d, self.ceil_mode)
            for length, k, s, p, d in zip(spatial, self.kernel, self.stride, self.padding, self.dilation)
        )
        _check_positive(lengths, self.kind, shape)
        return (shape[0], *lengths)


@dataclass(frozen=True, slots=True)
class AdaptivePool:
    """``nn.AdaptiveAvgPool{1,2,3}d`` / ``nn.AdaptiveMaxPool{1,2,3}d``; global pooling is output size 1."""

    op: str
    dims: int
    output_size: tuple[int, ...]
    kind: str = "adaptive_avg_pool2d"

    def output_shape(self, shape: Shape) -> Shape:
        _spatial(shape, self.dims, self.kind)
        return (shape[0], *self.output_size)


@dataclass(frozen=True, slots=True)
class Linear:
    """``nn.Linear``: acts on the last axis, as in PyTorch."""

    in_features: int
    out_features: int
    bias: bool = True
    kind: str = "linear"

    def output_shape(self, shape: Shape) -> Shape:
        if shape[-1] != self.in_features:
            raise LayerError(f"expects {self.in_features} input features, got {shape[-1]}")
        return (*shape[:-1], self.out_features)


@dataclass(frozen=True, slots=True)
class Flatten:
    """``nn.Flatten()``: all axes but the batch into one; a view, no new memory."""

    kind: str = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (numel(shape),)


@dataclass(frozen=True, slots=True)
class BatchNorm:
    """``nn.BatchNorm{1,2,3}d`` over the channel axis."""

    num_features: int
    affine: bool = True
    track_running_stats: bool = True
    kind: str = "batch_norm"

    def output_shape(self, shape: Shape) -> Shape:
        if shape[0] != self.num_features:
            raise LayerError(f"expects {self.num_features} channels, got {shape[0]}")
        return shape


@dataclass(frozen=True, slots=True)
class Activation(_SameShape):
    """Elementwise activation; ``inplace`` writes into its input (no new memory)."""

    function: str
    inplace: bool = False
    kind: str = "relu"

    def __post_init__(self) -> None:
        if self.function not in ACTIVATIONS:
            raise LayerError(f"unknown activation {self.function!r}")


@dataclass(frozen=True, slots=True)
class Dropout(_SameShape):
    """``nn.Dropout``: the identity at inference; a no-op, free."""

    p: float = 0.5
    kind: str = "dropout"


@dataclass(frozen=True, slots=True)
class Identity(_SameShape):
    """``nn.Identity``: free, no new memory."""

    kind: str = "identity"


@dataclass(frozen=True, slots=True)
class Softmax:
    """``nn.Softmax(dim)``; ``dim`` counts the batch as axis 0, like PyTorch."""

    dim: int = 1
    kind: str = "softmax"

    def axis(self, shape: Shape) -> int:
        """The axis in the batch-less shape."""
        rank = len(shape) + 1
        if not -rank <= self.dim < rank:
            raise LayerError(f"dim={self.dim} is out of range for a {rank}-D tensor (batch included)")
        axis = self.dim % rank
        if axis == 0:
            raise LayerError("softmax over the batch axis (dim=0) is not supported")
        return axis - 1

    def output_shape(self, shape: Shape) -> Shape:
        self.axis(shape)
        return shape


@dataclass(frozen=True, slots=True)
class Upsample:
    """``nn.Upsample(scale_factor=..., mode=...)``: output length floor(L * scale)."""

    dims: int
    scale: tuple[Fraction, ...]
    mode: str = "nearest"
    kind: str = "upsample"

    MODES: ClassVar[MappingProxyType[str, int | None]] = MappingProxyType(
        {"nearest": None, "linear": 1, "bilinear": 2, "trilinear": 3})

    def __post_init__(self) -> None:
        if self.mode not in self.MODES:
            raise LayerError(f"mode {self.mode!r} is not one of {', '.join(self.MODES)}")
        needed = self.MODES[self.mode]
        if needed is not None and needed != self.dims:
            raise LayerError(f"mode '{self.mode}' needs a {needed}-D spatial input, got {self.dims}-D")

    def output_shape(self, shape: Shape) -> Shape:
        spatial = _spatial(shape, self.dims, self.kind)
        lengths = tuple(math.floor(length * scale) for length, scale in zip(spatial, self.scale))
        _check_positive(lengths, self.kind, shape)
        return (shape[0], *lengths)


@dataclass(frozen=True, slots=True)
class Add:
    """Elementwise sum of ``inputs`` tensors of one shape (a residual join)."""

    inputs: int = 2
    kind: str = "add"

    def output_shape(self, *shapes: Shape) -> Shape:
        first = shapes[0]
        for other in shapes[1:]:
            if other != first:
                raise LayerError(
                    f"cannot add tensors of different shapes: {' and '.join(format_shape(s) for s in shapes)}"
                )
        return first


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation on the channel axis (an Inception or DenseNet join)."""

    inputs: int = 2
    kind: str = "concat"

    def output_shape(self, *shapes: Shape) -> Shape:
        first = shapes[0]
        for other in shapes[1:]:
            if len(other) != len(first) or other[1:] != first[1:]:
                raise LayerError(
                    "cannot concatenate on channels, spatial sizes differ: "
                    + " and ".join(format_shape(s) for s in shapes)
                )
        return (sum(s[0] for s in shapes), *first[1:])


Layer = (
    Conv | ConvTranspose | Pool | AdaptivePool | Linear | Flatten | BatchNorm | Activation | Dropout
    | Identity | Softmax | Upsample | Add | Concat
)

def aliases_input(layer: Any) -> bool:
    """Does the layer's output share its input's storage at inference (a view or an in-place op)?"""
    if isinstance(layer, (Flatten, Dropout, Identity)):
        return True
    return isinstance(layer, Activation) and layer.inplace
