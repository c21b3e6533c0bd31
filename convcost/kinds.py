"""Stage 2b: the leaf layer kinds a spec may name, each with its option keys and its constructor.

``LAYER_KINDS`` is the one read-only table from kind name to :class:`Kind`: the
keys the kind accepts (besides the ``COMMON_KEYS`` every entry may carry), the
keys it requires, and a constructor from the layer's :class:`Options` and input
shape (a join: its input shapes) to a layer object. The builder checks the keys
against the declaration before calling the constructor, and convcost.schema
reads the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from types import MappingProxyType

from .errors import SpecError
from .layers import (
    ACTIVATIONS, AXES, ELEMENTWISE_OPS, Activation, AdaptivePool, BatchNorm, ChannelShuffle, Concat, Conv,
    ConvTranspose, Crop, Dropout, Elementwise, Flatten, Identity, Layer, LayerError, LayerScale, Linear,
    Normalization, Opaque, PixelShuffle, Pool, PReLU, Shape, Softmax, Upsample,
)
from .layers.base import LAYOUTS
from .options import PER_AXIS, Options
from .spec import parse_shape
from .units import format_shape

__all__ = ["COMMON_KEYS", "LAYER_KINDS", "PYTORCH_KEYS", "Kind"]

#: Keys every entry may carry: its local name, a repeat count, the tensor it reads and a condition.
COMMON_KEYS = ("name", "repeat", "from", "if")

#: PyTorch's argument names -> the key a spec uses instead (None: not written, read from the input's shape).
PYTORCH_KEYS = MappingProxyType({"out_channels": "out", "out_features": "out", "kernel_size": "kernel",
                                 "scale_factor": "scale", "in_channels": None, "in_features": None,
                                 "num_features": None})


@dataclass(frozen=True, slots=True)
class Kind:
    """A leaf kind: ``build(options, input_shape)`` makes a layer reading one tensor, ``join(options,
    input_shapes)`` one reading several (``from:`` names them); ``keys`` are its options."""

    build: Callable[[Options, Shape], Layer] | None = None
    keys: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    join: Callable[[Options, tuple[Shape, ...]], Layer] | None = None
    variadic: bool = False  # a join that reads exactly what 'from:' names (one or more), else the previous output

    @property
    def allowed(self) -> tuple[str, ...]:
        return (*COMMON_KEYS, *self.keys)

    def make(self, options: Options, shapes: tuple[Shape, ...]) -> Layer:
        if self.join is not None:
            return self.join(options, shapes)
        assert self.build is not None  # a Kind has one of the two
        return self.build(options, shapes[0])


def _dims_for(shape: Shape, dims: int | None, kind: str) -> int:
    if dims is None:
        spatial = len(shape) - 1
        if not 1 <= spatial <= 3:
            raise LayerError(f"{kind} needs a CxL, CxHxW or CxDxHxW input, got {format_shape(shape)}")
        return spatial
    return dims


def _padding(o: Options, dims: int, allow_same: bool) -> tuple[tuple[int, ...], bool]:
    value = o.value("padding", 0)
    if allow_same and value in ("valid", "same"):
        return (0,) * dims, value == "same"
    if isinstance(value, str) and not PER_AXIS.fullmatch(value):
        allowed = ("an integer, per-axis integers, 'same' or 'valid'" if allow_same
                   else "an integer or per-axis integers")
        raise o.error(f"'padding' must be {allowed}, got {value!r}", "padding")
    return o.axes("padding", dims, 0, minimum=0), False


def _bottleneck_width(o: Options) -> int | Fraction | None:
    """``bottleneck:`` is a width (int >= 1) or a fraction of the input channels in (0, 1)."""
    value = o.value("bottleneck", None)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and 0 < value < 1:
        return Fraction(str(value))
    raise o.error(f"'bottleneck' must be a width >= 1 or a fraction between 0 and 1, got {value!r}", "bottleneck")


def _conv(o: Options, shape: Shape, dims: int | None = None) -> Layer:
    dims = _dims_for(shape, dims, "conv")
    padding, same = _padding(o, dims, allow_same=True)
    return Conv(dims=dims, in_channels=shape[0], out_channels=o.integer("out"), kernel=o.axes("kernel", dims),
                stride=o.axes("stride", dims, 1), padding=padding, dilation=o.axes("dilation", dims, 1),
                groups=o.integer("groups", 1), bias=o.flag("bias", True), same=same, kind=f"conv{dims}d",
                bottleneck=_bottleneck_width(o), reduction=o.flag("reduction", False))


def _pointwise(o: Options, shape: Shape) -> Layer:
    dims = _dims_for(shape, None, "pointwise")
    ones = (1,) * dims
    return Conv(dims=dims, in_channels=shape[0], out_channels=o.integer("out"), kernel=ones,
                stride=o.axes("stride", dims, 1), padding=(0,) * dims, dilation=ones,
                groups=o.integer("groups", 1), bias=o.flag("bias", True), kind="pointwise",
                reduction=o.flag("reduction", False))


def _depthwise(o: Options, shape: Shape) -> Layer:
    dims = _dims_for(shape, None, "depthwise")
    padding, same = _padding(o, dims, allow_same=True)
    return Conv(dims=dims, in_channels=shape[0], out_channels=shape[0] * o.integer("multiplier", 1),
                kernel=o.axes("kernel", dims), stride=o.axes("stride", dims, 1), padding=padding,
                dilation=o.axes("dilation", dims, 1), groups=shape[0], bias=o.flag("bias", True),
                same=same, kind="depthwise")


def _conv_transpose(o: Options, shape: Shape, dims: int | None = None) -> Layer:
    dims = _dims_for(shape, dims, "conv_transpose")
    padding, _ = _padding(o, dims, allow_same=False)
    return ConvTranspose(dims=dims, in_channels=shape[0], out_channels=o.integer("out"),
                         kernel=o.axes("kernel", dims), stride=o.axes("stride", dims, 1), padding=padding,
                         output_padding=o.axes("output_padding", dims, 0, minimum=0),
                         dilation=o.axes("dilation", dims, 1), groups=o.integer("groups", 1),
                         bias=o.flag("bias", True), kind=f"conv_transpose{dims}d")


def _pool(o: Options, shape: Shape, op: str, dims: int | None = None) -> Layer:
    dims = _dims_for(shape, dims, f"{op}_pool")
    kernel = o.axes("kernel", dims)
    padding, _ = _padding(o, dims, allow_same=False)
    return Pool(op=op, dims=dims, kernel=kernel, stride=o.axes("stride", dims, kernel), padding=padding,
                dilation=o.axes("dilation", dims, 1) if op == "max" else (1,) * dims,
                ceil_mode=o.flag("ceil_mode", False), kind=f"{op}_pool{dims}d")


def _adaptive_pool(o: Options, shape: Shape, op: str) -> Layer:
    dims = _dims_for(shape, None, f"adaptive_{op}_pool")
    return AdaptivePool(op=op, dims=dims, output_size=o.axes("output_size", dims), kind=f"adaptive_{op}_pool{dims}d")


def _global_pool(o: Options, shape: Shape, op: str) -> Layer:
    dims = _dims_for(shape, None, f"adaptive_{op}_pool")
    return AdaptivePool(op=op, dims=dims, output_size=(1,) * dims, kind=f"global_{op}_pool")


def _linear(o: Options, shape: Shape) -> Layer:
    if "axis" not in o.raw and len(shape) > 1:
        raise LayerError(f"linear on a {LAYOUTS[len(shape) - 1]} tensor ({format_shape(shape)}): flatten first "
                         "(or global-pool), or say 'axis: channels' (per position, like a 1x1 conv) or 'axis: last'")
    axis = o.choice("axis", ("last", "channels"), "last")
    return Linear(in_features=shape[0] if axis == "channels" else shape[-1], out_features=o.integer("out"),
                  bias=o.flag("bias", True), axis=axis)


def _normalization(o: Options, shape: Shape, kind: str) -> Layer:
    if kind == "layer_norm":
        over = o.choice("over", ("channels", "last"), "channels")
        return Normalization(num_features=shape[-1] if over == "last" else shape[0], over=over,
                             affine=o.flag("affine", True), kind=kind)
    groups = o.integer("groups") if kind == "group_norm" else shape[0]
    return Normalization(num_features=shape[0], groups=groups, affine=o.flag("affine", kind == "group_norm"),
                         kind=kind)


def _prelu(o: Options, shape: Shape) -> Layer:
    value = o.value("parameters", 1)
    if value not in (1, "channels") or isinstance(value, bool):
        raise o.error(f"'parameters' must be 1 or channels, got {value!r}", "parameters")
    return PReLU(num_parameters=1 if value == 1 else shape[0])


def _crop(o: Options, shape: Shape) -> Layer:
    if ("size" in o.raw) == ("like" in o.raw):
        raise o.error("crop needs 'size' (like 388x388) or 'like' (a tensor whose size to take), one of them")
    if "like" in o.raw:
        other = o.tensor_shape("like")
        if len(other) != len(shape):
            raise o.error(f"crop like a {format_shape(other)} tensor needs an input of that rank, got "
                          f"{format_shape(shape)}", "like")
        return Crop(size=other[1:])
    return Crop(size=o.axes("size", len(shape) - 1))


def _elementwise(o: Options, shapes: tuple[Shape, ...], op: str) -> Layer:
    return Elementwise(op=op, inputs=len(shapes), inplace=o.flag("inplace", False), kind=op)


def _concat(o: Options, shapes: tuple[Shape, ...]) -> Layer:
    names = AXES.get(len(shapes[0]), ("channels",))
    axis = o.choice("axis", names, "channels")
    crop = o.choice("crop", ("none", "center"), "none")
    return Concat(inputs=len(shapes), axis=names.index(axis), crop=crop == "center")


def _opaque(o: Options, shapes: tuple[Shape, ...]) -> Layer:
    op = o.value("op")
    if not isinstance(op, str) or not op.strip():
        raise o.error(f"'op' must name the operation (like Foo), got {op!r}", "op")
    try:
        shape = parse_shape(o.value("shape"), o.raw.at("shape"), "opaque")
    except SpecError as error:
        raise o.error(error.message, "shape") from None
    return Opaque(op=op, shape=shape, inputs=len(shapes))


def _batch_norm(o: Options, shape: Shape) -> Layer:
    return BatchNorm(num_features=shape[0], affine=o.flag("affine", True),
                     track_running_stats=o.flag("track_running_stats", True))


def _activation(o: Options, shape: Shape, function: str) -> Layer:
    for key in _ACTIVATION_KEYS.get(function, ()):
        o.number(key, 1, minimum=float("-inf"))  # checked; it changes no count
    return Activation(function=function, inplace=o.flag("inplace", False), kind=function)


def _pixel_shuffle(o: Options, shape: Shape, inverse: bool) -> Layer:
    return PixelShuffle(factor=o.integer("factor"), inverse=inverse,
                        kind="pixel_unshuffle" if inverse else "pixel_shuffle")


def _dropout(o: Options, shape: Shape) -> Layer:
    p = o.number("p", 0.5)
    if p > 1:
        raise o.error(f"'p' must be between 0 and 1, got {p}", "p")
    return Dropout(p=float(p))


def _softmax(o: Options, shape: Shape) -> Layer:
    return Softmax(dim=o.integer("dim", 1, minimum=-(len(shape) + 1)))


def _upsample(o: Options, shape: Shape) -> Layer:
    dims = _dims_for(shape, None, "upsample")
    value = o.value("scale")
    items = value if isinstance(value, list) else [value] * dims
    if len(items) != dims:
        raise o.error(f"'scale' needs 1 or {dims} values for a {dims}-D input, got {len(items)}", "scale")
    scales = []
    for item in items:
        item = o.resolve(item, "scale")
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not item > 0 or item == float("inf"):
            raise o.error(f"'scale' must be a positive number, got {item!r}", "scale")
        # Fraction(str(x)) keeps the decimal the user wrote: 1.1 is 11/10, not a binary float.
        scales.append(Fraction(str(item)) if isinstance(item, float) else Fraction(item))
    return Upsample(dims=dims, scale=tuple(scales), mode=o.choice("mode", tuple(Upsample.MODES), "nearest"))


_CONV_KEYS = ("out", "kernel", "stride", "padding", "dilation", "groups", "bias", "bottleneck", "reduction")
_CONV_TRANSPOSE_KEYS = ("out", "kernel", "stride", "padding", "output_padding", "dilation", "groups", "bias")
_POOL_KEYS = ("kernel", "stride", "padding", "ceil_mode")
_OUT_KERNEL = ("out", "kernel")
_ACTIVATION_KEYS = {"leaky_relu": ("negative_slope",), "elu": ("alpha",), "softplus": ("beta", "threshold")}
_INPLACE = {"softplus": ()}  # PyTorch has no in-place softplus

#: Leaf kind name -> declaration and constructor. Read-only; every kind a spec may name is here.
LAYER_KINDS: MappingProxyType[str, Kind] = MappingProxyType({
    "conv": Kind(_conv, _CONV_KEYS, _OUT_KERNEL),
    **{f"conv{d}d": Kind(partial(_conv, dims=d), _CONV_KEYS, _OUT_KERNEL) for d in (1, 2, 3)},
    "pointwise": Kind(_pointwise, ("out", "stride", "groups", "bias", "reduction"), ("out",)),
    "depthwise": Kind(_depthwise, ("multiplier", "kernel", "stride", "padding", "dilation", "bias"), ("kernel",)),
    "conv_transpose": Kind(_conv_transpose, _CONV_TRANSPOSE_KEYS, _OUT_KERNEL),
    **{f"conv_transpose{d}d": Kind(partial(_conv_transpose, dims=d), _CONV_TRANSPOSE_KEYS, _OUT_KERNEL)
       for d in (1, 2, 3)},
    "max_pool": Kind(partial(_pool, op="max"), (*_POOL_KEYS, "dilation"), ("kernel",)),
    "avg_pool": Kind(partial(_pool, op="avg"), _POOL_KEYS, ("kernel",)),
    **{f"max_pool{d}d": Kind(partial(_pool, op="max", dims=d), (*_POOL_KEYS, "dilation"), ("kernel",))
       for d in (1, 2, 3)},
    **{f"avg_pool{d}d": Kind(partial(_pool, op="avg", dims=d), _POOL_KEYS, ("kernel",)) for d in (1, 2, 3)},
    "adaptive_avg_pool": Kind(partial(_adaptive_pool, op="avg"), ("output_size",), ("output_size",)),
    "adaptive_max_pool": Kind(partial(_adaptive_pool, op="max"), ("output_size",), ("output_size",)),
    "global_avg_pool": Kind(partial(_global_pool, op="avg")),
    "global_max_pool": Kind(partial(_global_pool, op="max")),
    "linear": Kind(_linear, ("out", "bias", "axis"), ("out",)),
    "flatten": Kind(lambda o, shape: Flatten()),
    "batch_norm": Kind(_batch_norm, ("affine", "track_running_stats")),
    **{name: Kind(partial(_activation, function=name),
                  (*_INPLACE.get(name, ("inplace",)), *_ACTIVATION_KEYS.get(name, ()))) for name in ACTIVATIONS},
    "prelu": Kind(_prelu, ("parameters",)),
    "layer_norm": Kind(partial(_normalization, kind="layer_norm"), ("over", "affine")),
    "group_norm": Kind(partial(_normalization, kind="group_norm"), ("groups", "affine"), ("groups",)),
    "instance_norm": Kind(partial(_normalization, kind="instance_norm"), ("affine",)),
    "layer_scale": Kind(lambda o, shape: LayerScale(channels=shape[0])),
    "channel_shuffle": Kind(lambda o, shape: ChannelShuffle(groups=o.integer("groups")), ("groups",), ("groups",)),
    "pixel_shuffle": Kind(partial(_pixel_shuffle, inverse=False), ("factor",), ("factor",)),
    "pixel_unshuffle": Kind(partial(_pixel_shuffle, inverse=True), ("factor",), ("factor",)),
    "crop": Kind(_crop, ("size", "like")),
    **{op: Kind(keys=("inplace",), join=partial(_elementwise, op=op)) for op in ELEMENTWISE_OPS},
    "concat": Kind(keys=("axis", "crop"), join=_concat),
    "opaque": Kind(keys=("op", "shape"), required=("op", "shape"), join=_opaque, variadic=True),
    "dropout": Kind(_dropout, ("p",)),
    "identity": Kind(lambda o, shape: Identity()),
    "softmax": Kind(_softmax, ("dim",)),
    "upsample": Kind(_upsample, ("scale", "mode"), ("scale",)),
})
