"""Layers that compute: convolutions, pooling, linear, normalisation, activations, softmax, upsampling.

Each is a frozen dataclass whose ``__post_init__`` checks the rules that need
no input shape, with a pure ``output_shape(input_shape)`` that checks the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import ClassVar

from ..units import format_shape
from .base import (
    LayerError, SameShape, Shape, check_groups, check_positive, conv_output_length, conv_transpose_output_length,
    numel, pool_output_length, spatial,
)

__all__ = ["ACTIVATIONS", "Activation", "AdaptivePool", "BatchNorm", "Conv", "ConvTranspose", "Dropout",
           "LayerScale", "Linear", "Normalization", "PReLU", "Pool", "Softmax", "Upsample"]

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
        "hardsigmoid": 4,  # min(max(x + 3, 0), 6) / 6: add, max, min, divide
        "mish": 5,  # x * tanh(softplus(x)): exp, add, log, tanh, multiply
        "elu": 4,  # x if x > 0 else a*(exp(x) - 1): compare, exp, subtract, multiply
        "softplus": 3,  # log(1 + exp(x)): exp, add, log
    }
)


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
        check_groups(self.in_channels, self.out_channels, self.groups)

    def spatial_input(self, shape: Shape) -> tuple[int, ...]:
        """The spatial lengths of an input of the right rank and channel count."""
        lengths_in = spatial(shape, self.dims, self.kind)
        if shape[0] != self.in_channels:
            raise LayerError(f"expects {self.in_channels} input channels, got {shape[0]}")
        return lengths_in


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
        lengths_in = self.spatial_input(shape)
        lengths = lengths_in if self.same else tuple(
            conv_output_length(length, k, s, p, d)
            for length, k, s, p, d in zip(lengths_in, self.kernel, self.stride, self.padding, self.dilation))
        check_positive(lengths, self.kind, shape)
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
        lengths_in = self.spatial_input(shape)
        lengths = tuple(
            conv_transpose_output_length(length, k, s, p, op, d)
            for length, k, s, p, op, d in zip(
                lengths_in, self.kernel, self.stride, self.padding, self.output_padding, self.dilation))
        if any(length <= 0 for length in lengths):  # PyTorch's words (docs/conventions.md: zero-size outputs)
            raise LayerError(f"given input size per channel {format_shape(lengths_in)}, the calculated output size "
                             f"per channel {format_shape(lengths)} is too small (as in PyTorch)")
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
        lengths_in = spatial(shape, self.dims, self.kind)
        if self.op == "avg" and self.dims == 3 and any(n < k for n, k in zip(lengths_in, self.kernel)):
            (t, h, w), (kt, kh, kw) = lengths_in, self.kernel  # PyTorch's avg_pool3d checks this before padding
            raise LayerError(f"input image (T: {t} H: {h} W: {w}) smaller than kernel size (kT: {kt} kH: {kh} "
                             f"kW: {kw}), as PyTorch's avg_pool3d refuses it even when padding would cover it")
        lengths = tuple(
            pool_output_length(length, k, s, p, d, self.ceil_mode)
            for length, k, s, p, d in zip(lengths_in, self.kernel, self.stride, self.padding, self.dilation)
        )
        check_positive(lengths, self.kind, shape)
        return (shape[0], *lengths)


@dataclass(frozen=True, slots=True)
class AdaptivePool:
    """``nn.AdaptiveAvgPool{1,2,3}d`` / ``nn.AdaptiveMaxPool{1,2,3}d``; global pooling is output size 1."""

    op: str
    dims: int
    output_size: tuple[int, ...]
    kind: str = "adaptive_avg_pool2d"

    def output_shape(self, shape: Shape) -> Shape:
        spatial(shape, self.dims, self.kind)
        return (shape[0], *self.output_size)


@dataclass(frozen=True, slots=True)
class Linear:
    """``nn.Linear`` on the last axis (``axis="last"``, as PyTorch applies it) or on the channels at every
    position (``axis="channels"``, a 1x1 convolution's arithmetic)."""

    in_features: int
    out_features: int
    bias: bool = True
    axis: str = "last"
    kind: str = "linear"

    def __post_init__(self) -> None:
        if self.axis not in ("last", "channels"):
            raise LayerError(f"axis must be 'last' or 'channels', got {self.axis!r}")

    def output_shape(self, shape: Shape) -> Shape:
        index = 0 if self.axis == "channels" else len(shape) - 1
        if shape[index] != self.in_features:
            raise LayerError(f"expects {self.in_features} input features on its {self.axis} axis, got {shape[index]}")
        return (*shape[:index], self.out_features, *shape[index + 1:])


def _with_channels(shape: Shape, channels: int) -> Shape:
    """``shape`` itself, for a per-channel layer of ``channels`` channels."""
    if shape[0] != channels:
        raise LayerError(f"expects {channels} channels, got {shape[0]}")
    return shape


@dataclass(frozen=True, slots=True)
class BatchNorm:
    """``nn.BatchNorm{1,2,3}d`` over the channel axis."""

    num_features: int
    affine: bool = True
    track_running_stats: bool = True
    kind: str = "batch_norm"

    def output_shape(self, shape: Shape) -> Shape:
        return _with_channels(shape, self.num_features)


@dataclass(frozen=True, slots=True)
class Normalization(SameShape):
    """Normalisation by statistics of the input itself (they do not fold into a scale at inference):
    ``layer_norm`` over the channels at each position (ConvNeXt's LayerNorm2d) or over the last axis,
    ``group_norm`` over each of ``groups`` channel groups, ``instance_norm`` over each channel."""

    num_features: int  # channels, or the last axis's length for layer_norm over: last
    groups: int = 1  # group_norm's groups (instance_norm: one per channel)
    over: str = "channels"  # layer_norm: "channels" or "last"
    affine: bool = True
    kind: str = "layer_norm"

    def __post_init__(self) -> None:
        if self.num_features % self.groups:
            raise LayerError(f"groups={self.groups} does not divide {self.num_features} channels")

    def output_shape(self, shape: Shape) -> Shape:
        size = shape[-1] if self.over == "last" else shape[0]
        if size != self.num_features:
            where = "on its last axis" if self.over == "last" else "channels"
            raise LayerError(f"expects {self.num_features} {where}, got {size}")
        return shape

    def statistics(self, shape: Shape) -> int:
        """How many (mean, variance) pairs one sample needs."""
        if self.kind == "layer_norm":
            return numel(shape) // (shape[-1] if self.over == "last" else shape[0])
        return self.groups

    @property
    def params(self) -> int:
        return 2 * self.num_features if self.affine else 0


@dataclass(frozen=True, slots=True)
class LayerScale(SameShape):
    """A learned scale per channel (ConvNeXt's layer scale, CaiT's LayerScale): ``C`` params."""

    channels: int
    kind: str = "layer_scale"

    def output_shape(self, shape: Shape) -> Shape:
        return _with_channels(shape, self.channels)


@dataclass(frozen=True, slots=True)
class Activation(SameShape):
    """Elementwise activation; ``inplace`` writes into its input (no new memory)."""

    function: str
    inplace: bool = False
    kind: str = "relu"

    def __post_init__(self) -> None:
        if self.function not in ACTIVATIONS:
            raise LayerError(f"unknown activation {self.function!r}")


@dataclass(frozen=True, slots=True)
class PReLU(SameShape):
    """``nn.PReLU(num_parameters)``: a learned slope, one (``1``) or one per channel."""

    num_parameters: int = 1
    kind: str = "prelu"

    def output_shape(self, shape: Shape) -> Shape:
        return shape if self.num_parameters == 1 else _with_channels(shape, self.num_parameters)


@dataclass(frozen=True, slots=True)
class Dropout(SameShape):
    """``nn.Dropout``: the identity at inference; a no-op, free."""

    p: float = 0.5
    kind: str = "dropout"


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
        lengths_in = spatial(shape, self.dims, self.kind)
        lengths = tuple(math.floor(length * scale) for length, scale in zip(lengths_in, self.scale))
        check_positive(lengths, self.kind, shape)
        return (shape[0], *lengths)
