"""Stage 2c: pure rewrites of a built network around 1x1 channel reductions.

Every function here takes a :class:`Network` and returns a new one (layers are
frozen; nothing is mutated) whose original layers keep their output shapes:

* :func:`insert_bottlenecks` puts a 1x1 reduction to ``width`` channels (or a
  ``fraction`` of each layer's input channels) before every eligible
  convolution, optionally with a 1x1 back up afterwards (``expand``, ResNet
  style);
* :func:`apply_marked_bottlenecks` does the same where a conv carries a
  ``bottleneck:`` key in the spec;
* :func:`remove_reductions` gives the naive form of a network whose 1x1
  reductions are marked ``reduction: true``: each reduction (and the batch
  norm / activation / dropout right after it) is dropped and the convolution
  it fed reads the full input instead.

An inserted reduction of conv ``x`` is named ``x_reduce``, an expansion
``x_expand``; the kxk conv keeps its name, so a comparison matches it (with
``expand``, ``x_expand``'s output is the tensor that takes the place of ``x``'s).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from types import MappingProxyType

from .errors import Location, SpecError
from .layers import (
    Activation, BatchNorm, Conv, Dropout, Identity, Layer, LayerError, Shape,
)
from .network import Network, Node
from .units import format_shape

__all__ = [
    "SKIP_CATEGORIES",
    "BottleneckRule",
    "Skip",
    "apply_marked_bottlenecks",
    "bottleneck_layers",
    "bottleneck_width",
    "first_conv",
    "has_marked_bottlenecks",
    "has_marked_reductions",
    "insert_bottlenecks",
    "insert_bottlenecks_at",
    "plan_bottlenecks",
    "remove_reductions",
    "skip_reason",
    "with_input_shape",
]

#: Layers that may sit between a marked reduction and the conv it feeds (they go with the reduction).
_REDUCTION_TAIL = (BatchNorm, Activation, Dropout, Identity)


@dataclass(frozen=True, slots=True)
class BottleneckRule:
    """Where and how wide to insert 1x1 reductions.

    Exactly one of ``width`` (channels) and ``fraction`` (of each layer's input
    channels, floored, at least 1) is given. A conv is eligible when
    ``groups == 1``, its largest kernel side is at least ``min_kernel``, it
    reads at least ``min_in_channels`` channels, and it reads more channels
    than the width (with ``expand``, also writes more). The network's first
    conv reads the raw input (3 RGB channels, say), where a reduction only
    throws information away; it is left alone unless ``include_first``.
    """

    width: int | None = None
    fraction: Fraction | None = None
    expand: bool = False
    min_kernel: int = 2
    min_in_channels: int = 1
    include_first: bool = False

    def __post_init__(self) -> None:
        if (self.width is None) == (self.fraction is None):
            raise ValueError("give exactly one of a bottleneck width and a fraction")
        if self.width is not None and (isinstance(self.width, bool) or not isinstance(self.width, int)
                                       or self.width < 1):
            raise ValueError(f"bottleneck width must be an integer >= 1, got {self.width!r}")
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise ValueError(f"bottleneck fraction must be between 0 and 1, got {self.fraction}")
        if self.min_kernel < 1 or self.min_in_channels < 1:
            raise ValueError("min_kernel and min_in_channels must be >= 1")

    def width_for(self, in_channels: int) -> int:
        return bottleneck_width(in_channels, self.width if self.width is not None else self.fraction)


def bottleneck_width(in_channels: int, width: int | Fraction | None) -> int:
    """An absolute width as is; a fraction of ``in_channels`` floored, at least 1."""
    if isinstance(width, Fraction):
        return max(1, math.floor(width * in_channels))
    if width is None:
        raise ValueError("no bottleneck width")
    return width


def bottleneck_layers(layer: Conv, width: int, expand: bool = False) -> tuple[Conv, ...]:
    """The replacement of ``layer``: reduce 1x1, the kxk conv on ``width`` channels[, expand 1x1]."""
    dims = layer.dims
    ones = (1,) * dims
    reduce = Conv(dims=dims, in_channels=layer.in_channels, out_channels=width, kernel=ones, stride=ones,
                  padding=(0,) * dims, dilation=ones, bias=layer.bias, kind="pointwise", reduction=True)
    if not expand:
        return reduce, replace(layer, in_channels=width, bottleneck=None)
    body = replace(layer, in_channels=width, out_channels=width, bottleneck=None)
    back = Conv(dims=dims, in_channels=width, out_channels=layer.out_channels, kernel=ones, stride=ones,
                padding=(0,) * dims, dilation=ones, bias=layer.bias, kind="pointwise")
    return reduce, body, back


# --------------------------------------------------------------------------- rebuilding

@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    layer: Layer
    inputs: tuple[int, ...]  # indices into the new node list (negative: the network's inputs)
    where: Location
    original: int | None = None  # the old node whose output this entry reproduces


def _rebuild(network: Network, entries: Iterable[_Entry], mapping: Mapping[int, int],
             input_shape: Shape | None = None) -> Network:
    """New nodes from entries, every shape inferred again; an original's shape must not change.
    ``mapping`` takes an old node to the new one that reproduces its output (for the network's outputs);
    ``input_shape`` replaces the first input's shape."""
    inputs = network.inputs if input_shape is None else (replace(network.inputs[0], shape=input_shape),
                                                         *network.inputs[1:])
    nodes: list[Node] = []
    for entry in entries:
        shapes = tuple(inputs[-1 - ref].shape if ref < 0 else nodes[ref].output_shape for ref in entry.inputs)
        try:
            output = entry.layer.output_shape(*shapes)
        except LayerError as exc:
            raise SpecError(str(exc), entry.where, entry.name) from None
        if input_shape is None and entry.original is not None:
            before = network.nodes[entry.original].output_shape
            if output != before:  # a bug in a rewrite, never a user error
                raise RuntimeError(f"rewrite changed the output of '{entry.name}' from {format_shape(before)} "
                                   f"to {format_shape(output)}")
        nodes.append(Node(len(nodes), entry.name, entry.layer, entry.inputs, shapes, output, entry.where))
    missing = [network.name_of(ref) for ref in network.outputs if ref not in mapping]
    if missing:
        raise SpecError(f"the rewrite removes the output '{missing[0]}'", network.nodes[network.outputs[0]].where)
    return replace(network, inputs=inputs, nodes=tuple(nodes),
                   outputs=tuple(mapping[ref] for ref in network.outputs))


def _identity_mapping(network: Network) -> dict[int, int]:
    return {-1 - k: -1 - k for k in range(len(network.inputs))}


def with_input_shape(network: Network, input_shape: Shape) -> Network:
    """The same layers on another shape of the (first) input, e.g. another resolution; raises SpecError if a
    layer no longer fits."""
    entries = [_Entry(node.name, node.layer, node.inputs, node.where) for node in network.nodes]
    mapping = {**_identity_mapping(network), **{node.index: node.index for node in network.nodes}}
    return _rebuild(network, entries, mapping, input_shape)


def _fresh(name: str, suffix: str, taken: set[str]) -> str:
    candidate = f"{name}_{suffix}"
    count = 1
    while candidate in taken:
        count += 1
        candidate = f"{name}_{suffix}{count}"
    taken.add(candidate)
    return candidate


def _insert(network: Network, plan: Callable[[Node], int | None], expand: bool) -> Network:
    """Insert a bottleneck before every node for which ``plan(node)`` returns a width."""
    taken = {node.name for node in network.nodes}
    mapping = _identity_mapping(network)
    entries: list[_Entry] = []
    for node in network.nodes:
        inputs = tuple(mapping[ref] for ref in node.inputs)
        width = plan(node)
        if width is None:
            layer = replace(node.layer, bottleneck=None) if isinstance(node.layer, Conv) else node.layer
            entries.append(_Entry(node.name, layer, inputs, node.where, node.index))
        else:
            assert isinstance(node.layer, Conv)
            parts = bottleneck_layers(node.layer, width, expand)
            names = [_fresh(node.name, "reduce", taken), node.name] + ([_fresh(node.name, "expand", taken)]
                                                                        if expand else [])
            for position, (name, layer) in enumerate(zip(names, parts)):
                last = position == len(parts) - 1
                entries.append(_Entry(name, layer, inputs, node.where, node.index if last else None))
                inputs = (len(entries) - 1,)
        mapping[node.index] = len(entries) - 1
    return _rebuild(network, entries, mapping)


def first_conv(network: Network) -> str | None:
    """The name of the network's first convolution (in execution order), if it has one."""
    return next((node.name for node in network.nodes if isinstance(node.layer, Conv)), None)


@dataclass(frozen=True, slots=True)
class Skip:
    """A conv a bottleneck rewrite leaves alone: its name, the kind of reason (a key of SKIP_CATEGORIES) and why."""

    name: str
    category: str
    reason: str


#: Why a rewrite skips a conv, in a few words each (the per-conv reason has the numbers).
SKIP_CATEGORIES = MappingProxyType({
    "first": "the network's first conv, reading the raw input (--include-first rewrites it)",
    "reduction": "marked 1x1 reductions already",
    "groups": "grouped or depthwise (a bottleneck needs groups 1)",
    "kernel": "kernel below --min-kernel",
    "min_channels": "fewer input channels than --min-channels",
    "narrow": "no more input channels than the bottleneck width",
    "expand": "no more output channels than the bottleneck width (--expand needs more)",
})


def skip_reason(node: Node, width: int, rule: BottleneckRule, first: str | None) -> Skip | None:
    """Why ``rule`` leaves the conv of ``node`` alone, or None when it puts a reduction to ``width`` before it."""
    layer = node.layer
    assert isinstance(layer, Conv)
    if layer.reduction:
        return Skip(node.name, "reduction", "a marked 1x1 reduction already")
    if layer.groups != 1:
        return Skip(node.name, "groups", f"groups={layer.groups}; a bottleneck needs groups 1")
    if max(layer.kernel) < rule.min_kernel:
        return Skip(node.name, "kernel",
                    f"kernel {'x'.join(map(str, layer.kernel))} is below --min-kernel {rule.min_kernel}")
    if node.name == first and not rule.include_first:
        return Skip(node.name, "first", f"the network's first conv, reading the raw {layer.in_channels}-channel "
                                        "input (--include-first rewrites it)")
    if layer.in_channels < rule.min_in_channels:
        return Skip(node.name, "min_channels",
                    f"reads {layer.in_channels} channels, fewer than --min-channels {rule.min_in_channels}")
    if layer.in_channels <= width:
        return Skip(node.name, "narrow", f"reads {layer.in_channels} channels, not more than the width {width}")
    if rule.expand and layer.out_channels <= width:
        return Skip(node.name, "expand",
                    f"writes {layer.out_channels} channels, not more than the width {width} (--expand needs more)")
    return None


def plan_bottlenecks(network: Network, rule: BottleneckRule) -> tuple[dict[str, int], tuple[Skip, ...]]:
    """Where ``rule`` puts a reduction (conv name -> width) and which convs it skips, each with the reason."""
    first = first_conv(network)
    widths: dict[str, int] = {}
    skipped: list[Skip] = []
    for node in network.nodes:
        if not isinstance(node.layer, Conv):
            continue
        width = rule.width_for(node.layer.in_channels)
        skip = skip_reason(node, width, rule, first)
        if skip is None:
            widths[node.name] = width
        else:
            skipped.append(skip)
    return widths, tuple(skipped)


def insert_bottlenecks(network: Network, rule: BottleneckRule) -> Network:
    """A 1x1 reduction before every conv the rule finds eligible; every original output shape is kept."""
    widths, _ = plan_bottlenecks(network, rule)
    return insert_bottlenecks_at(network, widths, rule.expand)


def insert_bottlenecks_at(network: Network, widths: Mapping[str, int], expand: bool = False) -> Network:
    """A bottleneck of the given width before each named conv (names not in ``widths`` are left alone)."""
    def plan(node: Node) -> int | None:
        return widths.get(node.name) if isinstance(node.layer, Conv) else None

    return _insert(network, plan, expand)


def has_marked_bottlenecks(network: Network) -> bool:
    return any(isinstance(node.layer, Conv) and node.layer.bottleneck is not None for node in network.nodes)


def has_marked_reductions(network: Network) -> bool:
    return any(isinstance(node.layer, Conv) and node.layer.reduction for node in network.nodes)


def apply_marked_bottlenecks(network: Network, expand: bool = False) -> Network:
    """Insert the reductions asked for by ``bottleneck:`` keys; a mark that cannot apply is a SpecError."""
    def plan(node: Node) -> int | None:
        layer = node.layer
        if not isinstance(layer, Conv) or layer.bottleneck is None:
            return None
        width = bottleneck_width(layer.in_channels, layer.bottleneck)
        if layer.groups != 1:
            raise SpecError(f"bottleneck needs groups 1, the layer has groups={layer.groups}", node.where, node.name)
        if width >= layer.in_channels:
            raise SpecError(f"bottleneck width {width} is not narrower than the {layer.in_channels} input channels",
                            node.where, node.name)
        if expand and width >= layer.out_channels:
            raise SpecError(f"bottleneck width {width} is not narrower than the {layer.out_channels} output "
                            "channels (needed with expand)", node.where, node.name)
        return width

    return _insert(network, plan, expand)


def remove_reductions(network: Network) -> Network:
    """The naive form: every ``reduction: true`` 1x1 (with the batch norm / activation / dropout
    right after it) removed, and the convolution it fed reading the reduction's input instead."""
    nodes = network.nodes
    consumers: list[list[int]] = [[] for _ in nodes]
    for node in nodes:
        for ref in node.inputs:
            if ref >= 0:
                consumers[ref].append(node.index)
    dropped: set[int] = set()
    rewired: dict[int, int] = {}  # conv fed by a reduction -> the reduction's input (old index)
    for node in nodes:
        layer = node.layer
        if not (isinstance(layer, Conv) and layer.reduction):
            continue
        if any(s != 1 for s in layer.stride) or layer.groups != 1:
            raise SpecError("a reduction to remove must be a 1x1 with stride 1 and groups 1", node.where, node.name)
        chain = [node.index]
        current = node.index
        while True:
            readers = consumers[current]
            if len(readers) != 1:
                raise SpecError(f"a reduction must feed exactly one convolution, '{nodes[current].name}' feeds "
                                f"{len(readers)} layers", node.where, node.name)
            follower = nodes[readers[0]]
            if isinstance(follower.layer, _REDUCTION_TAIL):
                chain.append(follower.index)
                current = follower.index
                continue
            if isinstance(follower.layer, Conv) and follower.layer.groups == 1 and not follower.layer.reduction:
                break
            raise SpecError(f"a reduction must feed a convolution with groups 1, not '{follower.name}' "
                            f"({follower.layer.kind})", node.where, node.name)
        dropped.update(chain)
        rewired[follower.index] = node.inputs[0]
    mapping = _identity_mapping(network)
    entries: list[_Entry] = []
    for node in nodes:
        if node.index in dropped:
            continue
        layer = node.layer
        inputs: tuple[int, ...]
        if node.index in rewired and isinstance(layer, Conv):
            source = rewired[node.index]
            channels = network.shape_of(source)[0]
            layer = replace(layer, in_channels=channels)
            inputs = (mapping[source],)
        else:
            inputs = tuple(mapping[ref] for ref in node.inputs)
        entries.append(_Entry(node.name, layer, inputs, node.where, node.index))
        mapping[node.index] = len(entries) - 1
    return _rebuild(network, entries, mapping)
