"""Leaf layers as PyTorch modules: ``LEAVES``, the one read-only table from a leaf layer's kind to the function
that writes its module expression (joins, crops and structures are written in ``forward`` instead)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ...errors import Location
from ...located import LocatedDict
from ...network import Node
from .names import Class, Tensor, error, option, simplify

__all__ = ["ACTIVATIONS", "LEAVES", "Leaf", "Module"]

ACTIVATIONS = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "leaky_relu": "nn.LeakyReLU", "sigmoid": "nn.Sigmoid",
               "tanh": "nn.Tanh", "gelu": "nn.GELU", "silu": "nn.SiLU", "hardswish": "nn.Hardswish",
               "hardsigmoid": "nn.Hardsigmoid", "mish": "nn.Mish", "elu": "nn.ELU", "softplus": "nn.Softplus"}
_ACTIVATION_ARGS = {"leaky_relu": ("negative_slope",), "elu": ("alpha",), "softplus": ("beta", "threshold")}

Module = tuple[str, str, int]  # the module expression, its output channels and output rank


@dataclass(frozen=True, slots=True)
class Leaf:
    """A leaf layer of kind ``kind`` reading ``x``, written in class ``cls``. ``first``, when given, prefixes
    the input channels of repeated copies (``c if i == 0 else ``)."""

    kind: str
    raw: LocatedDict
    where: Location
    x: Tensor
    cls: Class
    name: str
    first: str
    nodes: Mapping[str, Node]  # the built network's nodes by name, for sizes that depend on the spatial size
    helper: Callable[[str], str]  # writes out a module torch lacks, returns its name

    @property
    def c(self) -> str:
        return self.x.channels

    @property
    def rank(self) -> int:
        return self.x.rank

    @property
    def dims(self) -> int:
        return self.x.rank - 1

    def opt(self, key: str) -> str | None:
        return option(self.raw, key, self.cls, self.name)

    def concrete(self, what: str) -> str:
        """A size that depends on the input's spatial size, read from the built network."""
        node: Node | None = self.nodes.get(self.name) if self.cls.concrete else None
        if node is None:
            raise error(f"a {what.replace('_', ' ')} size that depends on the spatial size inside a block "
                        "(a linear over the last axis, or after a flatten); move the layer out of the block",
                        self.where, self.name)
        if what == "in_features":
            return repr(getattr(node.layer, "in_features"))
        if what == "flat":
            return repr(node.output_shape[0])
        return repr(node.input_shape[-1])


def _args(*pairs: tuple[str, str | None, str]) -> str:
    """``, key=value`` for each given value that is not its default."""
    return "".join(f", {key}={value}" for key, value, default in pairs if value is not None and value != default)


def _conv(leaf: Leaf) -> Module:
    kind, opt = leaf.kind, leaf.opt
    d = int(kind[-2]) if kind[-2:-1].isdigit() else leaf.dims
    out = opt("out") or "1"
    transposed = kind.startswith("conv_transpose")
    kernel = "1" if kind == "pointwise" else opt("kernel")
    padding = opt("padding")
    if padding in ("'same'", "'valid'"):
        padding = '"same"' if padding == "'same'" else None
    c_in = f"{leaf.first}{out}" if leaf.first else leaf.c
    module = (f"nn.{'ConvTranspose' if transposed else 'Conv'}{d}d({c_in}, {out}, {kernel}"
              + _args(("stride", opt("stride"), "1"), ("padding", padding, "0"),
                      ("output_padding", opt("output_padding") if transposed else None, "0"),
                      ("dilation", opt("dilation"), "1"), ("groups", opt("groups"), "1"),
                      ("bias", opt("bias"), "True")) + ")")
    return module, out, leaf.rank


def _depthwise(leaf: Leaf) -> Module:
    opt, c = leaf.opt, leaf.c
    multiplier = opt("multiplier") or "1"
    out = c if multiplier == "1" else simplify(f"{c} * {multiplier}")
    module = (f"nn.Conv{leaf.dims}d({c}, {out}, {opt('kernel')}"
              + _args(("stride", opt("stride"), "1"), ("padding", opt("padding"), "0"),
                      ("dilation", opt("dilation"), "1"), ("groups", c, ""), ("bias", opt("bias"), "True"))
              + ")")
    return module.replace("padding='same'", 'padding="same"'), out, leaf.rank


def _pool(leaf: Leaf) -> Module:
    kind, opt = leaf.kind, leaf.opt
    d = int(kind[-2]) if kind[-2:-1].isdigit() else leaf.dims
    op = "Max" if kind.startswith("max") else "Avg"
    module = (f"nn.{op}Pool{d}d({opt('kernel')}"
              + _args(("stride", opt("stride"), opt("kernel") or ""), ("padding", opt("padding"), "0"),
                      ("dilation", opt("dilation") if op == "Max" else None, "1"),
                      ("ceil_mode", opt("ceil_mode"), "False")) + ")")
    return module, leaf.c, leaf.rank


def _adaptive_pool(leaf: Leaf) -> Module:
    op = "Avg" if "avg" in leaf.kind else "Max"
    size = leaf.opt("output_size") if leaf.kind.startswith("adaptive") else "1"
    return f"nn.Adaptive{op}Pool{leaf.dims}d({size})", leaf.c, leaf.rank


def _linear(leaf: Leaf) -> Module:
    opt, c, rank = leaf.opt, leaf.c, leaf.rank
    out = opt("out") or "1"
    bias = _args(("bias", opt("bias"), "True"))
    if opt("axis") == "'channels'" and rank > 1:
        return f"{leaf.helper('LinearOverChannels')}({c}, {out}{bias})", out, rank
    features = c if rank == 1 else leaf.concrete("in_features")
    return f"nn.Linear({leaf.first + out if leaf.first else features}, {out}{bias})", out if rank == 1 else c, rank


def _flatten(leaf: Leaf) -> Module:
    if leaf.rank == 1:
        return "nn.Flatten()", leaf.c, 1
    return "nn.Flatten()", leaf.concrete("flat"), 1


def _batch_norm(leaf: Leaf) -> Module:
    opt, rank = leaf.opt, leaf.rank
    d = 1 if rank <= 2 else rank - 1
    return (f"nn.BatchNorm{d}d({leaf.c}" + _args(("affine", opt("affine"), "True"),
                                                 ("track_running_stats", opt("track_running_stats"), "True"))
            + ")"), leaf.c, rank


def _layer_norm(leaf: Leaf) -> Module:
    c, rank = leaf.c, leaf.rank
    affine = _args(("elementwise_affine", leaf.opt("affine"), "True"))
    if leaf.opt("over") == "'last'" and rank > 1:
        return f"nn.LayerNorm({leaf.concrete('last')}{affine})", c, rank
    if rank == 1:
        return f"nn.LayerNorm({c}{affine})", c, rank
    return f"{leaf.helper('LayerNormOverChannels')}({c}{affine})", c, rank


def _group_norm(leaf: Leaf) -> Module:
    opt, c = leaf.opt, leaf.c
    return f"nn.GroupNorm({opt('groups')}, {c}" + _args(("affine", opt("affine"), "True")) + ")", c, leaf.rank


def _instance_norm(leaf: Leaf) -> Module:
    c = leaf.c
    return (f"nn.InstanceNorm{max(1, leaf.dims)}d({c}" + _args(("affine", leaf.opt("affine"), "False")) + ")", c,
            leaf.rank)


def _layer_scale(leaf: Leaf) -> Module:
    spatial = "" if leaf.dims == 2 else f", spatial_dims={leaf.dims}"
    return f"{leaf.helper('LayerScale')}({leaf.c}{spatial})", leaf.c, leaf.rank


def _activation(leaf: Leaf) -> Module:
    extra = [(key, leaf.opt(key), "") for key in _ACTIVATION_ARGS.get(leaf.kind, ())]
    inplace = [("inplace", leaf.opt("inplace"), "False")]
    text = _args(*extra, *inplace).lstrip(", ")
    return f"{ACTIVATIONS[leaf.kind]}({text})", leaf.c, leaf.rank


def _prelu(leaf: Leaf) -> Module:
    return ("nn.PReLU()" if leaf.opt("parameters") in (None, "1") else f"nn.PReLU({leaf.c})"), leaf.c, leaf.rank


def _channel_shuffle(leaf: Leaf) -> Module:
    return f"{leaf.helper('ChannelShuffle')}({leaf.opt('groups')})", leaf.c, leaf.rank


def _pixel_shuffle(leaf: Leaf) -> Module:
    kind, c, r = leaf.kind, leaf.c, leaf.opt("factor")
    out = simplify(f"{c} // {r} ** 2" if kind == "pixel_shuffle" else f"{c} * {r} ** 2")
    return f"nn.{'PixelShuffle' if kind == 'pixel_shuffle' else 'PixelUnshuffle'}({r})", out, leaf.rank


def _dropout(leaf: Leaf) -> Module:
    return f"nn.Dropout({leaf.opt('p') or ''})", leaf.c, leaf.rank


def _identity(leaf: Leaf) -> Module:
    return "nn.Identity()", leaf.c, leaf.rank


def _softmax(leaf: Leaf) -> Module:
    return f"nn.Softmax(dim={leaf.opt('dim') or '1'})", leaf.c, leaf.rank


def _upsample(leaf: Leaf) -> Module:
    mode = leaf.opt("mode")
    mode_arg = f", mode={mode}" if mode and mode != "'nearest'" else ""
    return f"nn.Upsample(scale_factor={leaf.opt('scale')}{mode_arg})", leaf.c, leaf.rank


def _opaque(leaf: Leaf) -> Module:
    raise error(f"opaque layer (op {leaf.raw.get('op')}) has no PyTorch counterpart", leaf.where, leaf.name)


#: Leaf layer kind -> its module. Read-only; a test checks every layer kind but the joins and crop is here.
LEAVES: Mapping[str, Callable[[Leaf], Module]] = MappingProxyType({
    **dict.fromkeys(("conv", "conv1d", "conv2d", "conv3d", "pointwise", "conv_transpose", "conv_transpose1d",
                     "conv_transpose2d", "conv_transpose3d"), _conv),
    "depthwise": _depthwise,
    **dict.fromkeys(("max_pool", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool", "avg_pool1d", "avg_pool2d",
                     "avg_pool3d"), _pool),
    **dict.fromkeys(("adaptive_avg_pool", "adaptive_max_pool", "global_avg_pool", "global_max_pool"),
                    _adaptive_pool),
    "linear": _linear,
    "flatten": _flatten,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "group_norm": _group_norm,
    "instance_norm": _instance_norm,
    "layer_scale": _layer_scale,
    **dict.fromkeys(ACTIVATIONS, _activation),
    "prelu": _prelu,
    "channel_shuffle": _channel_shuffle,
    **dict.fromkeys(("pixel_shuffle", "pixel_unshuffle"), _pixel_shuffle),
    "dropout": _dropout,
    "identity": _identity,
    "softmax": _softmax,
    "upsample": _upsample,
    "opaque": _opaque,
})
