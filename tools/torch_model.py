"""A convcost network as a PyTorch module, op for op as torchvision writes it (optional; imports torch).

Used by ``tools/torch_measure.py``; never imported by ``convcost/`` or by the tests. Each node
becomes the PyTorch code torchvision (or the usual PyTorch idiom) runs for it:

- ``layer_norm`` over the channels is ConvNeXt's ``LayerNorm2d``: ``x.permute(0, 2, 3, 1)``,
  ``F.layer_norm``, ``permute(0, 3, 1, 2)`` (the same storages as ``CNBlock``'s ``Permute`` +
  ``nn.LayerNorm``); over the last axis ``nn.LayerNorm(L)``; ``group_norm`` ``nn.GroupNorm``;
  ``instance_norm`` ``nn.InstanceNorm{1,2,3}d`` (``track_running_stats=False``, its default);
- ``linear`` over the channels is ``CNBlock``'s: permute to channels-last, ``nn.Linear``, permute
  back; ``layer_scale`` is ``CNBlock``'s ``self.layer_scale * x`` with a ``Cx1x1`` parameter;
- ``prelu`` ``nn.PReLU(n)``; ``mul`` joins ``a * b`` (the squeeze-excite gate: ``scale * input``),
  ``max`` ``torch.maximum``, ``sub`` ``a - b``; in place: ``add_``, ``sub_``, ``mul_``, and
  ``clamp_min_`` for max (PyTorch has no ``maximum_``); more than two inputs accumulate in place
  into the first result (``out = a * b; out.mul_(c)``) when it has the output's shape;
- ``crop`` is slicing (torchvision's ``center_crop`` offsets), ``concat`` with ``crop: center``
  slices then ``torch.cat``; a ``split`` part is its element of ``torch.split``; ``channel_shuffle``
  is torchvision's ShuffleNetV2 ``channel_shuffle`` (view, transpose, ``contiguous``, view);
  ``pixel_shuffle``/``pixel_unshuffle`` ``F.pixel_shuffle``/``F.pixel_unshuffle``;
- activations ``F.<name>(x, inplace=...)`` (``torch._C._nn.gelu_`` for an in-place GELU;
  ``sigmoid_``/``tanh_`` methods); PyTorch has no in-place softplus, so none is built.

``cuda_kernels`` makes a CPU run follow CUDA where the two differ and CUDA can be emulated:
dropout through ``torch.native_dropout`` (what ``F.dropout`` runs on CUDA), and under autocast
CUDA's float32 policy (``AT_FORALL_FP32`` / ``AT_FORALL_FP32_SET_OPT_DTYPE`` in
ATen/autocast_mode.h) for softmax, upsampling, ``layer_norm``, ``group_norm`` and ``softplus``:
a half-precision input is cast to float32 first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convcost.layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, PixelShuffle, Pool, PReLU, Softmax, Upsample,
)
from convcost.network import Network, Node

Call = Callable[[list[torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class InPlace:
    """Which ops run in place: the spec's own marks (unless ``strip``), plus ``activations`` (function
    names), joins whose node name matches ``joins`` (a regex searched in the name) and dropout."""

    strip: bool = False
    activations: frozenset[str] = frozenset()
    joins: str | None = None
    dropout: bool = False

    def activation(self, node: Node) -> bool:
        layer = node.layer
        assert isinstance(layer, Activation)
        return (layer.inplace and not self.strip) or layer.function in self.activations

    def join(self, node: Node) -> bool:
        layer = node.layer
        assert isinstance(layer, Elementwise)
        return (layer.inplace and not self.strip) or (self.joins is not None and re.search(self.joins, node.name)
                                                        is not None)


AS_WRITTEN = InPlace()
OUT_OF_PLACE = InPlace(strip=True)


class SpecModel(nn.Module):
    """A convcost network as a torch module: one submodule per node, run in node order.

    ``forward`` takes a list holding the network inputs and empties it, and drops each
    tensor after its last reader (outputs are kept), so that Python frees tensors where the
    last-use schedule does. It returns the tuple of the network's outputs.
    """

    def __init__(self, network: Network, inplace: InPlace = AS_WRITTEN, *, cuda_kernels: bool = False) -> None:
        super().__init__()
        self.network = network
        self.nodes = network.nodes
        self.inplace = inplace
        self.cuda_kernels = cuda_kernels
        self.half: torch.dtype | None = None  # the autocast dtype while measuring mixed precision
        self.mods = nn.ModuleList()
        self.calls: list[Call] = []
        for node in self.nodes:
            module, call = self._build(node)
            self.mods.append(module)
            self.calls.append(call)
        self.outputs = network.output_refs
        last: dict[int, int] = {}
        for node in self.nodes:
            for ref in node.inputs:
                last[ref] = node.index
        self.release_after: dict[int, list[int]] = defaultdict(list)
        for ref, index in last.items():
            if ref not in self.outputs:
                self.release_after[index].append(ref)
        self.on_node: Callable[[int], None] | None = None

    # ------------------------------------------------------------------ helpers

    def _fp32(self, x: torch.Tensor) -> torch.Tensor:
        """CUDA autocast's float32 policy, emulated: a half-precision input is cast to float32."""
        if self.cuda_kernels and self.half is not None and x.dtype == self.half:
            return x.float()
        return x

    def _build(self, node: Node) -> tuple[nn.Module, Call]:
        layer = node.layer
        shape = node.input_shapes[0]
        for kinds, build in _BUILDERS:
            if isinstance(layer, kinds):
                return build(self, node, layer, shape)
        raise TypeError(f"no torch equivalent for layer type {type(layer).__name__}")

    def forward(self, holder: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        values: dict[int, torch.Tensor | None] = {-1 - k: tensor for k, tensor in enumerate(holder)}
        holder.clear()
        for node in self.nodes:
            args = [values[ref] for ref in node.inputs]
            if self.on_node is not None:
                self.on_node(node.index)
            values[node.index] = self.calls[node.index](args)  # type: ignore[arg-type]
            del args
            for ref in self.release_after.get(node.index, ()):
                values[ref] = None
        if self.on_node is not None:
            self.on_node(-2)
        return tuple(values[ref] for ref in self.outputs)  # type: ignore[misc]


# --------------------------------------------------------------------------- one builder per layer type


def _single(mod: nn.Module) -> tuple[nn.Module, Call]:
    return mod, lambda xs: mod(xs[0])


def _conv(model: SpecModel, node: Node, layer: Conv, shape: Any) -> tuple[nn.Module, Call]:
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[layer.dims]
    padding: Any = "same" if layer.same else layer.padding
    return _single(cls(layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride, padding=padding,
                       dilation=layer.dilation, groups=layer.groups, bias=layer.bias))


def _conv_transpose(model: SpecModel, node: Node, layer: ConvTranspose, shape: Any) -> tuple[nn.Module, Call]:
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[layer.dims]
    return _single(cls(layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride, padding=layer.padding,
                       output_padding=layer.output_padding, groups=layer.groups, bias=layer.bias,
                       dilation=layer.dilation))


def _pool(model: SpecModel, node: Node, layer: Pool, shape: Any) -> tuple[nn.Module, Call]:
    if layer.op == "max":
        cls: Any = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[layer.dims]
        return _single(cls(layer.kernel, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                           ceil_mode=layer.ceil_mode))
    cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[layer.dims]
    return _single(cls(layer.kernel, stride=layer.stride, padding=layer.padding, ceil_mode=layer.ceil_mode))


def _adaptive_pool(model: SpecModel, node: Node, layer: AdaptivePool, shape: Any) -> tuple[nn.Module, Call]:
    table: Any = ({1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d} if layer.op == "avg"
                  else {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d})
    return _single(table[layer.dims](layer.output_size))


def _to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, *range(2, x.dim()), 1)


def _to_channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))


def _linear(model: SpecModel, node: Node, layer: Linear, shape: Any) -> tuple[nn.Module, Call]:
    mod = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    if layer.axis == "channels" and len(shape) > 1:  # torchvision's ConvNeXt: permute, nn.Linear, permute back
        return mod, lambda xs: _to_channels_first(mod(_to_channels_last(xs[0])))
    return _single(mod)


def _batch_norm(model: SpecModel, node: Node, layer: BatchNorm, shape: Any) -> tuple[nn.Module, Call]:
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}[len(shape)]
    return _single(cls(layer.num_features, affine=layer.affine, track_running_stats=layer.track_running_stats))


def _normalization(model: SpecModel, node: Node, layer: Normalization, shape: Any) -> tuple[nn.Module, Call]:
    if layer.kind == "layer_norm":
        mod: nn.Module = nn.LayerNorm(layer.num_features, elementwise_affine=layer.affine)
        assert isinstance(mod, nn.LayerNorm)
        norm = mod
        if layer.over == "channels" and len(shape) > 1:  # LayerNorm2d: permute, F.layer_norm, permute back
            def layer_norm_2d(xs: list[torch.Tensor]) -> torch.Tensor:
                x = model._fp32(_to_channels_last(xs[0]))
                return _to_channels_first(F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps))
            return mod, layer_norm_2d
        return mod, lambda xs: norm(model._fp32(xs[0]))
    if layer.kind == "group_norm":
        group = nn.GroupNorm(layer.groups, layer.num_features, affine=layer.affine)
        return group, lambda xs: group(model._fp32(xs[0]))
    cls = {2: nn.InstanceNorm1d, 3: nn.InstanceNorm2d, 4: nn.InstanceNorm3d}[len(shape)]
    return _single(cls(layer.num_features, affine=layer.affine))


class _Scale(nn.Module):
    def __init__(self, channels: int, rank: int) -> None:
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full((channels, *(1,) * (rank - 1)), 1e-6))


def _layer_scale(model: SpecModel, node: Node, layer: LayerScale, shape: Any) -> tuple[nn.Module, Call]:
    mod = _Scale(layer.channels, len(shape))
    return mod, lambda xs: mod.layer_scale * xs[0]  # CNBlock: self.layer_scale * self.block(input)


def _prelu(model: SpecModel, node: Node, layer: PReLU, shape: Any) -> tuple[nn.Module, Call]:
    return _single(nn.PReLU(layer.num_parameters))


_ACTIVATIONS: dict[str, Callable[[torch.Tensor, bool], torch.Tensor]] = {
    "relu": lambda x, inplace: F.relu(x, inplace=inplace),
    "relu6": lambda x, inplace: F.relu6(x, inplace=inplace),
    "leaky_relu": lambda x, inplace: F.leaky_relu(x, 0.01, inplace=inplace),
    "sigmoid": lambda x, inplace: x.sigmoid_() if inplace else torch.sigmoid(x),
    "tanh": lambda x, inplace: x.tanh_() if inplace else torch.tanh(x),
    "gelu": lambda x, inplace: torch._C._nn.gelu_(x) if inplace else F.gelu(x),
    "silu": lambda x, inplace: F.silu(x, inplace=inplace),
    "hardswish": lambda x, inplace: F.hardswish(x, inplace=inplace),
    "hardsigmoid": lambda x, inplace: F.hardsigmoid(x, inplace=inplace),
    "mish": lambda x, inplace: F.mish(x, inplace=inplace),
    "elu": lambda x, inplace: F.elu(x, inplace=inplace),
    "softplus": lambda x, inplace: F.softplus(x),
}


def _activation(model: SpecModel, node: Node, layer: Activation, shape: Any) -> tuple[nn.Module, Call]:
    inplace = model.inplace.activation(node)
    if inplace and layer.function == "softplus":
        raise TypeError(f"{node.name}: PyTorch has no in-place softplus")
    function = _ACTIVATIONS[layer.function]
    if layer.function == "softplus":  # CUDA autocast: softplus is in the float32 list
        return nn.Identity(), lambda xs: function(model._fp32(xs[0]), False)
    return nn.Identity(), lambda xs: function(xs[0], inplace)


def _dropout(model: SpecModel, node: Node, layer: Dropout, shape: Any) -> tuple[nn.Module, Call]:
    p, inplace = layer.p, model.inplace.dropout

    def dropout(xs: list[torch.Tensor]) -> torch.Tensor:
        x = xs[0]
        if model.cuda_kernels and model.training and 0 < p < 1 and not inplace:
            return torch.native_dropout(x, p, True)[0]  # what F.dropout runs on CUDA (dropout_ never fuses)
        return F.dropout(x, p, model.training, inplace=inplace)
    return nn.Identity(), dropout


def _softmax(model: SpecModel, node: Node, layer: Softmax, shape: Any) -> tuple[nn.Module, Call]:
    dim = layer.dim

    def softmax(xs: list[torch.Tensor]) -> torch.Tensor:
        x = xs[0]
        if model.cuda_kernels and model.half is not None and x.dtype == model.half:
            return F.softmax(x, dim, dtype=torch.float32)  # CUDA autocast: fp32_set_opt_dtype
        return F.softmax(x, dim)
    return nn.Identity(), softmax


def _upsample(model: SpecModel, node: Node, layer: Upsample, shape: Any) -> tuple[nn.Module, Call]:
    size = tuple(node.output_shape[1:])
    mode = layer.mode
    align = None if mode == "nearest" else False
    return nn.Identity(), lambda xs: F.interpolate(model._fp32(xs[0]), size=size, mode=mode, align_corners=align)


def _broadcast(*shapes: Any) -> tuple[int, ...]:
    return tuple(max(sizes) for sizes in zip(*shapes))


_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "max": torch.maximum,
}
_INPLACE_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.Tensor.add_, "sub": torch.Tensor.sub_, "mul": torch.Tensor.mul_, "max": torch.Tensor.clamp_min_,
}


def _elementwise(model: SpecModel, node: Node, layer: Elementwise, shape: Any) -> tuple[nn.Module, Call]:
    op, op_ = _OPS[layer.op], _INPLACE_OPS[layer.op]
    shapes = node.input_shapes
    if model.inplace.join(node):
        def join_inplace(xs: list[torch.Tensor]) -> torch.Tensor:
            out = xs[0]
            for other in xs[1:]:
                out = op_(out, other)  # torchvision: `out += identity`
            return out
        return nn.Identity(), join_inplace
    # the first result, then the rest accumulated into it in place when it already has the output's shape
    accumulate = [_broadcast(*shapes[:k]) == node.output_shape for k in range(2, len(shapes))]

    def join(xs: list[torch.Tensor]) -> torch.Tensor:
        out = op(xs[0], xs[1])
        for other, in_place in zip(xs[2:], accumulate):
            out = op_(out, other) if in_place else op(out, other)
        return out
    return nn.Identity(), join


def _centre(x: torch.Tensor, sizes: tuple[int, ...], skip: int | None = None) -> torch.Tensor:
    """Centre crop of the spatial axes to ``sizes`` (torchvision's center_crop offsets), as slicing."""
    index: list[Any] = [slice(None), slice(None)]
    for axis, want in enumerate(sizes, start=2):
        have = x.shape[axis]
        start = (have - want) // 2
        index.append(slice(None) if axis == skip else slice(start, start + want))
    return x[tuple(index)]


def _concat(model: SpecModel, node: Node, layer: Concat, shape: Any) -> tuple[nn.Module, Call]:
    dim = layer.axis + 1
    if not layer.crop:
        return nn.Identity(), lambda xs: torch.cat(list(xs), dim)
    sizes = node.output_shape[1:]
    return nn.Identity(), lambda xs: torch.cat([_centre(x, sizes, skip=dim) for x in xs], dim)


def _crop(model: SpecModel, node: Node, layer: Crop, shape: Any) -> tuple[nn.Module, Call]:
    return nn.Identity(), lambda xs: _centre(xs[0], layer.size)


def _split(model: SpecModel, node: Node, layer: ChannelSlice, shape: Any) -> tuple[nn.Module, Call]:
    parts = [size for size in (layer.start, layer.stop - layer.start, shape[0] - layer.stop) if size]
    index = 1 if layer.start else 0
    return nn.Identity(), lambda xs: torch.split(xs[0], parts, 1)[index]


def _channel_shuffle(model: SpecModel, node: Node, layer: ChannelShuffle, shape: Any) -> tuple[nn.Module, Call]:
    groups = layer.groups

    def shuffle(xs: list[torch.Tensor]) -> torch.Tensor:  # torchvision.models.shufflenetv2.channel_shuffle
        x = xs[0]
        batch, channels, *rest = x.size()
        x = x.view(batch, groups, channels // groups, *rest)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(batch, -1, *rest)
    return nn.Identity(), shuffle


def _pixel_shuffle(model: SpecModel, node: Node, layer: PixelShuffle, shape: Any) -> tuple[nn.Module, Call]:
    factor = layer.factor
    if layer.inverse:
        return nn.Identity(), lambda xs: F.pixel_unshuffle(xs[0], factor)
    return nn.Identity(), lambda xs: F.pixel_shuffle(xs[0], factor)


_BUILDERS: tuple[tuple[Any, Callable[..., tuple[nn.Module, Call]]], ...] = (
    (Conv, _conv), (ConvTranspose, _conv_transpose), (Pool, _pool), (AdaptivePool, _adaptive_pool),
    (Linear, _linear), (BatchNorm, _batch_norm), (Normalization, _normalization), (LayerScale, _layer_scale),
    (PReLU, _prelu), (Activation, _activation), (Dropout, _dropout), (Softmax, _softmax), (Upsample, _upsample),
    (Flatten, lambda model, node, layer, shape: _single(nn.Flatten())),
    (Identity, lambda model, node, layer, shape: (nn.Identity(), lambda xs: xs[0])),
    (Elementwise, _elementwise), (Concat, _concat), (Crop, _crop), (ChannelSlice, _split),
    (ChannelShuffle, _channel_shuffle), (PixelShuffle, _pixel_shuffle),
)


def make_model(network: Network, inplace: InPlace = AS_WRITTEN, *, cuda_kernels: bool = False,
               seed: int = 0) -> SpecModel:
    torch.manual_seed(seed)
    return SpecModel(network, inplace, cuda_kernels=cuda_kernels)
