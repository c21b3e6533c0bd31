"""Stage 3: pure cost functions over shapes, and the network cost with its memory schedule.

``COST_FUNCTIONS`` is the one read-only table from layer type to cost
function. A cost function takes a layer, its input shapes and its output
shape (batch excluded) and returns a :class:`Cost` per sample. Every formula
here is written out in docs/conventions.md and checked by tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import reduce
from itertools import accumulate
from operator import sub
from types import MappingProxyType
from typing import Any

from .layers import (
    ACTIVATIONS,
    Activation,
    AdaptivePool,
    Add,
    BatchNorm,
    Concat,
    Conv,
    ConvTranspose,
    Dropout,
    Flatten,
    Identity,
    Linear,
    Pool,
    Shape,
    Softmax,
    Upsample,
    aliases_input,
    numel,
)
from .network import INPUT, Network
from .record import Record
from .units import FLOPS_PER_MAC, dtype_bytes

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
FLOP_CATEGORIES = ("mac", "bias", "batch_norm", "activation", "pooling", "add", "upsample", "softmax")


class Cost(Record):
    """Per-sample cost of one layer: MACs, FLOPs by category, trainable params, buffers."""

    macs: int = 0
    flops_by_category: tuple[tuple[str, int], ...] = ()
    params: int = 0
    buffers: int = 0

    @classmethod
    def of(cls, macs: int = 0, params: int = 0, buffers: int = 0, **flops: int) -> Cost:
        terms = (("mac", FLOPS_PER_MAC * macs),) if macs else ()
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


def add_cost(layer: Add, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    return Cost.of(add=(len(inputs) - 1) * numel(output))


def free_cost(layer: Any, inputs: tuple[Shape, ...], output: Shape) -> Cost:
    """Layers that do no arithmetic: flatten and identity (views), dropout at inference, concat (a copy)."""
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
        Add: add_cost,
        Concat: free_cost,
        Flatten: free_cost,
        Dropout: free_cost,
        Identity: free_cost,
    }
)


# --------------------------------------------------------------------------- network


class LayerCost(Record):
    """One row of a report. Counts include the batch; bytes use the report's dtype."""

    name: str
    kind: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    macs: int
    flops: int
    flops_by_category: tuple[tuple[str, int], ...]
    params: int
    buffers: int
    weight_bytes: int
    activation_bytes: int
    line: int = 0
    category: str = "other"

    def __new__(cls, name: str, kind: str, input_shapes: tuple[Shape, ...], output_shape: Shape, macs: int,
                flops: int, flops_by_category: tuple[tuple[str, int], ...], params: int, buffers: int,
                weight_bytes: int, activation_bytes: int, line: int = 0, category: str = "other") -> LayerCost:
        # One per layer of a report.
        self = object.__new__(cls._storage)  # plain stores, then frozen: see convcost.record
        self.name = name
        self.kind = kind
        self.input_shapes = input_shapes
        self.output_shape = output_shape
        self.macs = macs
        self.flops = flops
        self.flops_by_category = flops_by_category
        self.params = params
        self.buffers = buffers
        self.weight_bytes = weight_bytes
        self.activation_bytes = activation_bytes
        self.line = line
        self.category = category
        self.__class__ = cls
        return self

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]


class Totals(Record):
    macs: int
    flops: int
    flops_by_category: tuple[tuple[str, int], ...]
    params: int
    buffers: int
    weight_bytes: int
    buffer_bytes: int
    input_bytes: int
    activation_bytes: int
    peak_activation_bytes: int


class NetworkCost(Record):
    """The cost report of a network: rows in execution order plus totals."""

    name: str
    source: str
    input_shape: Shape
    batch: int
    dtype: str
    layers: tuple[LayerCost, ...]
    totals: Totals
    blocks: tuple[tuple[str, str], ...] = ()  # (block name, kind) for grouped views

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape if self.layers else self.input_shape


#: Categories of the per-kind summary, in display order.
LAYER_CATEGORIES = ("conv 1x1", "conv kxk", "conv depthwise", "conv grouped", "conv transposed", "linear",
                    "batch norm", "activation", "pooling", "add", "other")

_CATEGORY_OF_TYPE: Mapping[type, str] = MappingProxyType({
    ConvTranspose: "conv transposed", Linear: "linear", BatchNorm: "batch norm", Activation: "activation",
    Pool: "pooling", AdaptivePool: "pooling", Add: "add",
})


def layer_category(layer: Any) -> str:
    """Which row of the per-kind summary a layer belongs to (1x1 vs kxk vs depthwise convolution, ...)."""
    if isinstance(layer, Conv):
        if layer.groups > 1 and layer.groups == layer.in_channels:
            return "conv depthwise"
        if layer.groups > 1:
            return "conv grouped"
        return "conv 1x1" if all(k == 1 for k in layer.kernel) else "conv kxk"
    return _CATEGORY_OF_TYPE.get(type(layer), "other")


def layer_cost(layer: Any, inputs: tuple[Shape, ...], output: Shape,
               table: Mapping[type, CostFunction] = COST_FUNCTIONS) -> Cost:
    """Per-sample cost of one layer; an unknown layer type is an error, never zero."""
    try:
        function = table[type(layer)]
    except KeyError:
        raise TypeError(f"no cost function for layer type {type(layer).__name__}") from None
    return function(layer, inputs, output)


def analyze(network: Network, *, batch: int = 1, dtype: str = "float32",
            table: Mapping[type, CostFunction] = COST_FUNCTIONS) -> NetworkCost:
    """Cost every node of a network and total them; exact integers throughout."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    size = dtype_bytes(dtype)
    rows: list[LayerCost] = []
    # Large networks repeat a few distinct layers on the same shapes (the builder shares
    # identical layer objects); a row's figures depend only on (layer, input shapes), so
    # each distinct pair is costed once, and totalled once times its number of rows. The
    # layer is keyed by identity (the network keeps it alive): hashing a layer's fields for
    # every row cost more than the costing saved.
    figures: dict[tuple[int, tuple[Shape, ...]], LayerCost] = {}
    # per distinct pair: a row's fields from kind to activation_bytes, and its category
    shared: dict[tuple[int, tuple[Shape, ...]], tuple[tuple[Any, ...], str]] = {}
    uses: dict[tuple[int, tuple[Shape, ...]], int] = {}
    for node in network.nodes:
        key = (id(node.layer), node.input_shapes)
        entry = shared.get(key)
        if entry is None:
            cost = layer_cost(node.layer, node.input_shapes, node.output_shape, table)
            known = figures[key] = LayerCost(
                name="",
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
                category=layer_category(node.layer),
            )
            entry = shared[key] = ((known.kind, known.input_shapes, known.output_shape, known.macs, known.flops,
                                    known.flops_by_category, known.params, known.buffers, known.weight_bytes,
                                    known.activation_bytes), known.category)
            uses[key] = 1
        else:
            uses[key] += 1
        # The row is the distinct pair's figures under this node's name and line, in LayerCost's
        # field order (100,000 rows in a large spec).
        fields, category = entry
        rows.append(LayerCost(node.name, *fields, node.where.line, category))
    by_category = dict.fromkeys(FLOP_CATEGORIES, 0)
    macs = flops = params = buffers = activation = 0
    for key, known in figures.items():
        count = uses[key]
        macs += known.macs * count
        flops += known.flops * count
        params += known.params * count
        buffers += known.buffers * count
        activation += known.activation_bytes * count
        for category, flops_here in known.flops_by_category:
            by_category[category] += flops_here * count
    totals = Totals(
        macs=macs,
        flops=flops,
        flops_by_category=tuple(by_category.items()),
        params=params,
        buffers=buffers,
        weight_bytes=params * size,
        buffer_bytes=buffers * size,
        input_bytes=numel(network.input_shape) * batch * size,
        activation_bytes=activation,
        peak_activation_bytes=peak_activation_elements(network) * batch * size,
    )
    return NetworkCost(name=network.name, source=network.source, input_shape=network.input_shape, batch=batch,
                       dtype=dtype, layers=tuple(rows), totals=totals,
                       blocks=tuple((block.name, block.kind) for block in network.blocks))


def peak_activation_elements(network: Network, sizes: Mapping[int, Any] | None = None,
                             maximum: Callable[[Any, Any], Any] = max) -> Any:
    """Most activation elements alive at once (per sample) under the inference schedule.

    Nodes run in order. A tensor is allocated when its node runs and freed after
    the last node that reads it has run; the network input is alive from the
    start, the network output until the end. While a node runs its inputs and
    its output are all alive. Views (flatten, dropout, identity, in-place
    activations) share their input's storage instead of allocating.

    ``sizes`` overrides some nodes' output sizes, and ``maximum`` combines
    peaks: the sweep passes numpy arrays (one entry per grid point) and
    ``numpy.maximum`` to run this one schedule over a whole grid at once.
    """
    nodes = network.nodes
    count = len(nodes)
    sizes = sizes or {}
    prod = math.prod
    # Lists with a slot per node and one more, last, for the network input: INPUT is -1, so
    # ``storage[INPUT]`` and the like read it. storage[i]: the allocation node i's output
    # lives in; size[a]: an allocation's elements; last_use[a]: the last node reading it.
    storage = [0] * count + [INPUT]
    size = [0] * count + [prod(network.input_shape)]
    last_use = [-1] * (count + 1)  # -1: not read (a view's own slot, or an unread input)
    added = [0] * count  # elements each node allocates: its output's, or none for a view
    is_view: dict[int, bool] = {}  # by layer identity: large networks share a few layer objects
    for node in nodes:
        index = node.index
        view = is_view.get(id(node.layer))
        if view is None:
            view = is_view[id(node.layer)] = aliases_input(node.layer)
        if view:
            owner = storage[index] = storage[node.inputs[0]]
            last_use[owner] = index
        else:
            storage[index] = index
            added[index] = size[index] = sizes[index] if index in sizes else prod(node.output_shape)
            last_use[index] = index
        for ref in node.inputs:
            last_use[storage[ref]] = index
    if not count:
        return size[INPUT]
    last_use[storage[count - 1]] = count  # the result is kept
    freed = [0] * (count + 1)  # elements freed after each step
    for owner, step in enumerate(last_use):
        if step >= 0:
            freed[step] = freed[step] + size[owner]
    # Alive while node i runs: the input, plus everything allocated up to i, less everything
    # freed after the steps before i; the peak is the largest of these running sums.
    running = accumulate(map(sub, added, [0, *freed[:count - 1]]), initial=size[INPUT])
    return max(running) if maximum is max else reduce(maximum, running)
