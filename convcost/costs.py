"""Stage 3: pure cost functions over shapes, and the network cost with its memory schedule.

``COST_FUNCTIONS`` is the one read-only table from layer type to cost
function. A cost function takes a layer, its input shapes and its output
shape (batch excluded) and returns a :class:`Cost` per sample. Every formula
here is written out in docs/conventions.md and checked by tests.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .attributes import layer_options
from .layers import (
    ACTIVATIONS, Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose,
    Crop, Dropout, Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU,
    Shape, Softmax, Upsample, aliases_input, numel,
    rule_for,
)
from .network import Network
from .units import FLOPS_PER_MAC, dtype_bytes

if TYPE_CHECKING:
    from .figures import Figures

__all__ = [
    "COST_FUNCTIONS",
    "FLOP_CATEGORIES",
    "LAYER_CATEGORIES",
    "Cost",
    "LayerCost",
    "NetworkCost",
    "Totals",
    "adaptive_window_total",
    "analyze",
    "layer_category",
    "peak_activation_elements",
]

#: Every FLOP belongs to exactly one of these categories (the itemisation of ``flops``).
FLOP_CATEGORIES = ("mac", "bias", "batch_norm", "normalization", "activation", "pooling", "add", "elementwise",
                   "upsample", "softmax")


@dataclass(frozen=True, slots=True)
class Cost:
    """Per-sample cost of one layer: MACs, FLOPs by category, trainable params, buffers."""

    macs: int = 0
    flops_by_category: tuple[tuple[str, int], ...] = ()
    params: int = 0
    buffers: int = 0

    @classmethod
    def of(cls, macs: int = 0, params: int = 0, buffers: int = 0, **flops: int) -> Cost:
        terms: tuple[tuple[str, int], ...] = (("mac", FLOPS_PER_MAC * macs),) if macs else ()
        terms += tuple((category, count) for category, count in flops.items() if count)
        return cls(macs=macs, flops_by_category=terms, params=params, buffers=buffers)

    @property
    def flops(self) -> int:
        return sum(count for _, count in self.flops_by_category)


CostFunction = Callable[[Any, tuple[Shape, ...], Shape], Cost]


def conv_cost(layer: Conv, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # MACs = output elements x (C_in / groups) x kernel volume; bias adds one FLOP per output element.
    macs = numel(output) * (layer.in_channels // layer.groups) * math.prod(layer.kernel)
    bias = layer.out_channels if layer.bias else 0
    return Cost.of(macs=macs, params=layer.weight_count + bias, bias=numel(output) if layer.bias else 0)


def conv_transpose_cost(layer: ConvTranspose, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # Every input element is scattered through C_out/groups filters of kernel volume.
    macs = numel(inputs[0]) * (layer.out_channels // layer.groups) * math.prod(layer.kernel)
    bias = layer.out_channels if layer.bias else 0
    return Cost.of(macs=macs, params=layer.weight_count + bias, bias=numel(output) if layer.bias else 0)


def linear_cost(layer: Linear, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    rows = numel(output) // layer.out_features
    bias = layer.out_features if layer.bias else 0
    return Cost.of(macs=rows * layer.in_features * layer.out_features,
                   params=layer.in_features * layer.out_features + bias,
                   bias=numel(output) if layer.bias else 0)


def batch_norm_cost(layer: BatchNorm, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # Inference: y = x * scale + shift with scale/shift folded from the statistics: 2 FLOPs per element.
    return Cost.of(params=2 * layer.num_features if layer.affine else 0,
                   buffers=2 * layer.num_features if layer.track_running_stats else 0,
                   batch_norm=2 * numel(output))


def activation_cost(layer: Activation, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    return Cost.of(activation=ACTIVATIONS[layer.function] * numel(output))


def pool_cost(layer: Pool, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # Every output element reads a full kernel window (padding included):
    # max: k - 1 comparisons; avg: k - 1 adds + 1 divide.
    window = math.prod(layer.kernel)
    per_output = window - 1 if layer.op == "max" else window
    return Cost.of(pooling=per_output * numel(output))


def adaptive_window_total(length: int, out: int) -> int:
    """Sum of PyTorch's adaptive window lengths along one axis:
    window i spans floor(i*L/out) .. ceil((i+1)*L/out).

    In closed form, L + out - gcd(L, out): the windows tile the axis once
    (L), and every boundary i*L/out that is not a whole number is read by
    both windows it splits (out - gcd(L, out) such boundaries). No loop, so a
    huge ``output_size`` costs nothing to count.
    """
    return length + out - math.gcd(length, out)


def adaptive_pool_cost(layer: AdaptivePool, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    shape = inputs[0]
    reads = shape[0] * math.prod(
        adaptive_window_total(length, out) for length, out in zip(shape[1:], layer.output_size)
    )
    # avg: (window - 1) adds + 1 divide = window per output; max: window - 1 comparisons per output.
    return Cost.of(pooling=reads if layer.op == "avg" else reads - numel(output))


def softmax_cost(layer: Softmax, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # Per row of n values: n exponentials, n - 1 adds, n divides = 3n - 1.
    n = output[layer.axis(output)]
    rows = numel(output) // n
    return Cost.of(softmax=rows * (3 * n - 1))


def upsample_cost(layer: Upsample, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # nearest copies; d-linear interpolation weighs 2^d neighbours: 2^d multiplies + 2^d - 1 adds.
    d = Upsample.MODES[layer.mode]
    per_output = 0 if d is None else 2 ** (d + 1) - 1
    return Cost.of(upsample=per_output * numel(output))


def elementwise_cost(layer: Elementwise, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # k inputs: k - 1 operations per output element; add and sub are additions, mul and max the rest.
    count = (len(inputs) - 1) * numel(output)
    return Cost.of(add=count) if layer.op in ("add", "sub") else Cost.of(elementwise=count)


def normalization_cost(layer: Normalization, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # Per group of n elements: mean n, variance 3n (subtract, square, sum), normalise 2n (subtract,
    # multiply by 1/std) and 3 for 1/std (add eps, sqrt, divide); affine 2n more (scale, shift).
    per_element = 6 + (2 if layer.affine else 0)
    return Cost.of(params=layer.params, normalization=per_element * numel(output) + 3 * layer.statistics(output))


def layer_scale_cost(layer: LayerScale, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    return Cost.of(params=layer.channels, elementwise=numel(output))


def prelu_cost(layer: PReLU, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    # x if x > 0 else a * x: a comparison and a multiply per element.
    return Cost.of(params=layer.num_parameters, activation=2 * numel(output))


def free_cost(layer: Any, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    """Layers that do no arithmetic: views (flatten, identity, crop, a split's parts), dropout at
    inference, and copies (concat, channel shuffle, pixel shuffle); and ``opaque`` layers, zero by
    declaration (an imported op convcost cannot cost, kept for its shape)."""
    return Cost()


#: Layer type -> cost function. Read-only; a test checks every layer type is here.
COST_FUNCTIONS: Mapping[type, CostFunction] = MappingProxyType(
    {
        Conv: conv_cost,
        ConvTranspose: conv_transpose_cost,
        Linear: linear_cost,
        BatchNorm: batch_norm_cost,
        Activation: activation_cost,
        Pool: pool_cost,
        AdaptivePool: adaptive_pool_cost,
        Softmax: softmax_cost,
        Upsample: upsample_cost,
        Elementwise: elementwise_cost,
        Normalization: normalization_cost,
        LayerScale: layer_scale_cost,
        PReLU: prelu_cost,
        Concat: free_cost,
        Flatten: free_cost,
        Dropout: free_cost,
        Identity: free_cost,
        Crop: free_cost,
        ChannelSlice: free_cost,
        ChannelShuffle: free_cost,
        PixelShuffle: free_cost,
        Opaque: free_cost,
    }
)


# --------------------------------------------------------------------------- network


@dataclass(frozen=True, slots=True)
class _Counts:
    """What a report row and the totals both count. Counts include the batch; bytes use the report's dtype."""

    macs: int
    flops: int
    flops_by_category: tuple[tuple[str, int], ...]
    params: int
    buffers: int
    weight_bytes: int
    activation_bytes: int


@dataclass(frozen=True, slots=True)
class LayerCost(_Counts):
    """One row of a report: a layer, its shapes and its counts."""

    name: str = ""
    kind: str = ""
    input_shapes: tuple[Shape, ...] = ()
    output_shape: Shape = ()
    line: int = 0
    category: str = "other"
    inputs: tuple[str, ...] = ()  # the names of the tensors it reads
    options: tuple[tuple[str, Any], ...] = ()  # what the layer was built with (convcost.attributes)

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]


@dataclass(frozen=True, slots=True)
class Totals(_Counts):
    """A report's totals: the rows' counts summed, and the memory only a whole network has."""

    buffer_bytes: int = 0
    input_bytes: int = 0
    peak_activation_bytes: int = 0


@dataclass(frozen=True, slots=True)
class NetworkCost:
    """The cost report of a network: rows in execution order plus totals."""

    name: str
    source: str
    input_shape: Shape
    batch: int
    dtype: str
    layers: tuple[LayerCost, ...]
    totals: Totals
    blocks: tuple[tuple[str, str], ...] = ()  # (block name, kind) for grouped views
    inputs: tuple[tuple[str, Shape], ...] = ()  # every input: (name, shape); input_shape is the first's
    outputs: tuple[tuple[str, Shape], ...] = ()  # every output: (name, shape)
    figures: Figures | None = None  # the figures beyond MACs (convcost.figures), when computed

    @property
    def output_shape(self) -> Shape:
        """The first output's shape."""
        return self.outputs[0][1] if self.outputs else self.input_shape


#: Categories of the per-kind summary, in display order.
LAYER_CATEGORIES = ("conv 1x1", "conv kxk", "conv depthwise", "conv grouped", "conv transposed", "linear",
                    "batch norm", "normalization", "activation", "pooling", "add", "elementwise", "other")

_CATEGORY_OF_TYPE: Mapping[type, str] = MappingProxyType({
    ConvTranspose: "conv transposed", Linear: "linear", BatchNorm: "batch norm", Normalization: "normalization",
    Activation: "activation", PReLU: "activation", Pool: "pooling", AdaptivePool: "pooling",
    LayerScale: "elementwise",
})


def layer_category(layer: Any) -> str:
    """Which row of the per-kind summary a layer belongs to (1x1 vs kxk vs depthwise convolution, ...)."""
    if isinstance(layer, Conv):
        if layer.groups > 1 and layer.groups == layer.in_channels:
            return "conv depthwise"
        if layer.groups > 1:
            return "conv grouped"
        return "conv 1x1" if all(k == 1 for k in layer.kernel) else "conv kxk"
    if isinstance(layer, Elementwise):
        return "add" if layer.op in ("add", "sub") else "elementwise"
    return _CATEGORY_OF_TYPE.get(type(layer), "other")


def layer_cost(layer: Any, inputs: tuple[Shape, ...], output: Shape,
               table: Mapping[type, CostFunction] = COST_FUNCTIONS) -> Cost:
    """Per-sample cost of one layer; an unknown layer type is an error, never zero."""
    return rule_for(table, layer, "cost function")(layer, inputs, output)


def analyze(network: Network, *, batch: int = 1, dtype: str = "float32",
            table: Mapping[type, CostFunction] = COST_FUNCTIONS) -> NetworkCost:
    """Cost every node of a network and total them; exact integers throughout."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    size = dtype_bytes(dtype)
    rows = []
    for node in network.nodes:
        cost = layer_cost(node.layer, node.input_shapes, node.output_shape, table)
        rows.append(LayerCost(
            name=node.name,
            kind=node.layer.kind,
            input_shapes=node.input_shapes,
            output_shape=node.output_shape,
            macs=cost.macs * batch,
            flops=cost.flops * batch,
            flops_by_category=tuple((category, count * batch) for category, count in cost.flops_by_category),
            params=cost.params,
            buffers=cost.buffers,
            weight_bytes=cost.params * size,
            activation_bytes=numel(node.output_shape) * batch * size,
            line=node.where.line,
            category=layer_category(node.layer),
            inputs=tuple(network.name_of(ref) for ref in node.inputs),
            options=layer_options(node.layer),
        ))
    by_category = dict.fromkeys(FLOP_CATEGORIES, 0)
    for row in rows:
        for category, count in row.flops_by_category:
            by_category[category] += count
    params = sum(row.params for row in rows)
    buffers = sum(row.buffers for row in rows)
    totals = Totals(
        macs=sum(row.macs for row in rows),
        flops=sum(row.flops for row in rows),
        flops_by_category=tuple(by_category.items()),
        params=params,
        buffers=buffers,
        weight_bytes=params * size,
        buffer_bytes=buffers * size,
        input_bytes=sum(numel(tensor.shape) for tensor in network.inputs) * batch * size,
        activation_bytes=sum(row.activation_bytes for row in rows),
        peak_activation_bytes=peak_activation_elements(network) * batch * size,
    )
    return NetworkCost(name=network.name, source=network.source, input_shape=network.input_shape, batch=batch,
                       dtype=dtype, layers=tuple(rows), totals=totals,
                       blocks=tuple((block.name, block.kind) for block in network.blocks),
                       inputs=tuple((tensor.name, tensor.shape) for tensor in network.inputs),
                       outputs=tuple((network.name_of(ref), network.shape_of(ref)) for ref in network.output_refs))


def peak_activation_elements(network: Network, sizes: Mapping[int, Any] | None = None,
                             maximum: Callable[[Any, Any], Any] = max) -> Any:
    """Most activation elements alive at once (per sample) under the inference schedule.

    Nodes run in order. A tensor is allocated when its node runs and freed after
    the last node that reads it has run; the network inputs are alive from the
    start, the network outputs until the end. While a node runs its inputs and
    its output are all alive. Views (flatten, dropout, identity, crop, a split's
    parts) and in-place ops share their first input's storage instead of
    allocating.

    ``sizes`` overrides some nodes' output sizes, and ``maximum`` combines
    peaks: the sweep passes numpy arrays (one entry per grid point) and
    ``numpy.maximum`` to run this one schedule over a whole grid at once.
    """
    sizes = sizes or {}
    refs = [-1 - k for k in range(len(network.inputs))]
    owner = {ref: ref for ref in refs}  # tensor -> the tensor whose allocation it lives in
    size: dict[int, Any] = {ref: numel(network.shape_of(ref)) for ref in refs}
    last_use: dict[int, int] = {}  # allocation -> the last step that reads it
    for node in network.nodes:
        if aliases_input(node.layer):
            owner[node.index] = owner[node.inputs[0]]
        else:
            owner[node.index] = node.index
            size[node.index] = sizes[node.index] if node.index in sizes else numel(node.output_shape)
        for ref in (*node.inputs, node.index):
            last_use[owner[ref]] = node.index
    for ref in network.output_refs:
        last_use[owner[ref]] = len(network.nodes)  # the results are kept
    freed_after: dict[int, list[int]] = defaultdict(list)
    for allocation, step in last_use.items():
        freed_after[step].append(allocation)
    alive = peak = sum(size[ref] for ref in refs)
    for node in network.nodes:
        if owner[node.index] == node.index:
            alive = alive + size[node.index]
        peak = maximum(peak, alive)
        for allocation in freed_after[node.index]:
            alive = alive - size[allocation]
    return peak
