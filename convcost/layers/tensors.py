"""Layers that join, cut or rearrange tensors: no arithmetic but the joins', shapes checked.

``Flatten``, ``Identity``, ``Crop`` and ``ChannelSlice`` are views (they share
their input's storage, as the PyTorch ops do); ``Concat``, ``ChannelShuffle``
and ``PixelShuffle`` copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import format_shape
from .base import LAYOUTS, LayerError, SameShape, Shape, numel

__all__ = ["AXES", "ELEMENTWISE_OPS", "ChannelShuffle", "ChannelSlice", "Concat", "Crop", "Elementwise", "Flatten",
           "Identity", "Opaque", "PixelShuffle"]

#: Elementwise joins; ``add`` and ``sub`` are additions, ``mul`` and ``max`` the rest.
ELEMENTWISE_OPS = ("add", "sub", "mul", "max")
#: Axis names of a channels-first shape by rank (batch excluded).
AXES = {1: ("channels",), 2: ("channels", "length"), 3: ("channels", "height", "width"),
        4: ("channels", "depth", "height", "width")}


def _shapes(shapes: tuple[Shape, ...]) -> str:
    return " and ".join(format_shape(shape) for shape in shapes)


@dataclass(frozen=True, slots=True)
class Flatten:
    """``nn.Flatten()``: all axes but the batch into one; a view, no new memory."""

    kind: str = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (numel(shape),)


@dataclass(frozen=True, slots=True)
class Identity(SameShape):
    """``nn.Identity``: free, no new memory."""

    kind: str = "identity"


@dataclass(frozen=True, slots=True)
class Elementwise:
    """An elementwise join of ``inputs`` tensors (``op`` add, sub, mul or max) with PyTorch's broadcasting
    over axes of length 1 (a Cx1x1 gate into CxHxW, a 1xHxW mask); ``inplace`` writes into the first input."""

    op: str = "add"
    inputs: int = 2
    inplace: bool = False
    kind: str = "add"

    def __post_init__(self) -> None:
        if self.op not in ELEMENTWISE_OPS:
            raise LayerError(f"op must be one of {', '.join(ELEMENTWISE_OPS)}, got {self.op!r}")

    def output_shape(self, *shapes: Shape) -> Shape:
        if len({len(shape) for shape in shapes}) > 1:
            raise LayerError(f"cannot {self.op} tensors of different ranks: {_shapes(shapes)} (shapes exclude the "
                             "batch; reshape or pool first)")
        output = tuple(max(sizes) for sizes in zip(*shapes))
        if any(size not in (1, largest) for shape in shapes for size, largest in zip(shape, output)):
            raise LayerError(f"cannot {self.op} tensors of shapes {_shapes(shapes)}: each axis must be equal or 1 "
                             "(PyTorch's broadcasting)")
        if self.inplace and shapes[0] != output:
            raise LayerError(f"an in-place {self.op} writes into its first input, which must have the output's "
                             f"shape {format_shape(output)}, not {format_shape(shapes[0])}")
        return output


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation along ``axis`` (0, the channels, by default: an Inception or DenseNet join); with
    ``crop`` every input is first cut to the smallest size on the other spatial axes, centred (U-Net)."""

    inputs: int = 2
    axis: int = 0
    crop: bool = False
    kind: str = "concat"

    def output_shape(self, *shapes: Shape) -> Shape:
        rank = len(shapes[0])
        if any(len(shape) != rank for shape in shapes) or self.axis >= rank:
            raise LayerError(f"cannot concatenate tensors of shapes {_shapes(shapes)} on axis "
                             f"'{AXES.get(rank, ('?',) * (self.axis + 1))[min(self.axis, rank - 1)]}'")
        others = [tuple(size for index, size in enumerate(shape) if index != self.axis) for shape in shapes]
        if self.crop:
            if self.axis != 0 and any(other[0] != others[0][0] for other in others):
                raise LayerError(f"crop: center cuts spatial axes only; channels differ: {_shapes(shapes)}")
            kept = tuple(min(sizes) for sizes in zip(*others))
        elif any(other != others[0] for other in others):
            what = "on channels, spatial sizes differ" if self.axis == 0 else f"on axis {AXES[rank][self.axis]}, " \
                "other sizes differ"
            raise LayerError(f"cannot concatenate {what}: {_shapes(shapes)}"
                             + (" (crop: center cuts them to the smallest)" if rank > 1 else ""))
        else:
            kept = others[0]
        total = sum(shape[self.axis] for shape in shapes)
        return (*kept[:self.axis], total, *kept[self.axis:])


@dataclass(frozen=True, slots=True)
class Crop:
    """A centred crop of the spatial axes to ``size`` (U-Net's skip connections); a view."""

    size: tuple[int, ...]
    kind: str = "crop"

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != len(self.size) + 1:
            raise LayerError(f"crop to {format_shape(self.size)} needs a {LAYOUTS[len(self.size)]} input, got "
                             f"{format_shape(shape)}")
        if any(want > have for want, have in zip(self.size, shape[1:])):
            raise LayerError(f"cannot crop {format_shape(shape)} to {format_shape(self.size)}: larger than the input")
        return (shape[0], *self.size)

    def offsets(self, shape: Shape) -> tuple[int, ...]:
        """Where the crop starts on each spatial axis: (have - want) // 2, as torchvision's center_crop."""
        return tuple((have - want) // 2 for want, have in zip(self.size, shape[1:]))


@dataclass(frozen=True, slots=True)
class ChannelSlice:
    """Channels ``start`` to ``stop`` of its input: one output of a ``split`` (``torch.split``, a view)."""

    start: int
    stop: int
    kind: str = "split"

    def output_shape(self, shape: Shape) -> Shape:
        if self.stop > shape[0]:
            raise LayerError(f"split needs {self.stop} channels, the input has {shape[0]}")
        return (self.stop - self.start, *shape[1:])


@dataclass(frozen=True, slots=True)
class ChannelShuffle(SameShape):
    """ShuffleNet's channel shuffle over ``groups`` (a reshape, a transpose and a copy)."""

    groups: int
    kind: str = "channel_shuffle"

    def output_shape(self, shape: Shape) -> Shape:
        if shape[0] % self.groups:
            raise LayerError(f"groups={self.groups} does not divide {shape[0]} channels")
        return shape


@dataclass(frozen=True, slots=True)
class PixelShuffle:
    """``nn.PixelShuffle(factor)``: C*r^2 x H x W -> C x rH x rW; ``inverse`` is ``nn.PixelUnshuffle``."""

    factor: int
    inverse: bool = False
    kind: str = "pixel_shuffle"

    def output_shape(self, shape: Shape) -> Shape:
        r = self.factor
        if len(shape) != 3:
            raise LayerError(f"{self.kind} needs a CxHxW input, got {format_shape(shape)}")
        channels, height, width = shape
        if not self.inverse:
            if channels % (r * r):
                raise LayerError(f"pixel_shuffle by {r} needs channels divisible by {r * r}, got {channels}")
            return (channels // (r * r), height * r, width * r)
        if height % r or width % r:
            raise LayerError(f"pixel_unshuffle by {r} needs height and width divisible by {r}, got "
                             f"{format_shape(shape)}")
        return (channels * r * r, height // r, width // r)


@dataclass(frozen=True, slots=True)
class Opaque:
    """An operation convcost cannot cost, kept only for its shape (``convcost import --allow-unknown``): it reads
    its ``inputs`` tensors and writes a new tensor of ``shape``; zero MACs, FLOPs and params, by declaration."""

    op: str
    shape: Shape
    inputs: int = 1
    kind: str = "opaque"

    def output_shape(self, *shapes: Shape) -> Shape:
        return self.shape
