"""Training compute per step: forward, weight-gradient and input-gradient MACs (issue 16).

Backward MACs are counted over the same (output position, tap) pairs as the
forward, padding included, as ``macs`` is: the weight gradient of a
convolution or linear layer pairs every forward MAC's input with the output
gradient (``dW += x * dy``), the input gradient pairs every forward MAC's
weight with it (``dx += w * dy``). A layer needs the input gradient only when
its input requires a gradient: a tensor requires one iff it is produced by a
layer with trainable parameters or by a layer one of whose inputs requires
one; the network input does not. ``RULES`` is the one read-only table from
layer type to rule; an unknown layer type is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .costs import layer_cost
from .layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU, Softmax, Upsample,
    rule_for,
)
from .network import Network

__all__ = ["RULES", "NodeTraining", "TrainingMacs", "training_macs"]

#: Forward MACs -> (weight-gradient MACs, input-gradient MACs when the input requires a gradient).
Rule = Callable[[int], tuple[int, int]]


def _same_pairs(forward_macs: int) -> tuple[int, int]:
    return forward_macs, forward_macs  # dW and dx each revisit every (output position, tap) pair once


def _no_macs(forward_macs: int) -> tuple[int, int]:
    return 0, 0  # elementwise or data movement: backward work, but no multiply-accumulates


#: Layer type -> backward rule. Read-only; a test checks every layer type is here.
RULES: Mapping[type, Rule] = MappingProxyType({
    **dict.fromkeys((Conv, ConvTranspose, Linear), _same_pairs),
    **dict.fromkeys((Pool, AdaptivePool, BatchNorm, Normalization, LayerScale, Activation, PReLU, Softmax, Upsample,
                     Elementwise, Concat, Flatten, Dropout, Identity, Crop, ChannelSlice, ChannelShuffle,
                     PixelShuffle, Opaque), _no_macs),
})


@dataclass(frozen=True, slots=True)
class NodeTraining:
    """One node's MACs in one training step (batch included); ``training_macs`` is their sum."""

    index: int
    name: str
    input_requires_grad: bool
    forward_macs: int
    weight_grad_macs: int
    input_grad_macs: int
    training_macs: int


@dataclass(frozen=True, slots=True)
class TrainingMacs:
    """Every node's training MACs, in node order, and the totals."""

    nodes: tuple[NodeTraining, ...]
    forward_macs: int
    weight_grad_macs: int
    input_grad_macs: int
    training_macs: int


def training_macs(network: Network, *, batch: int = 1, rules: Mapping[type, Rule] = RULES) -> TrainingMacs:
    """Forward, weight-gradient and input-gradient MACs of one training step."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    requires: list[bool] = []  # per node: its output requires a gradient
    rows = []
    for node in network.nodes:
        rule = rule_for(rules, node.layer, "backward rule")
        cost = layer_cost(node.layer, node.input_shapes, node.output_shape)
        input_requires = any(ref >= 0 and requires[ref] for ref in node.inputs)
        requires.append(input_requires or cost.params > 0)
        forward = cost.macs * batch
        weight_grad, input_grad = rule(forward)
        input_grad = input_grad if input_requires else 0
        rows.append(NodeTraining(node.index, node.name, input_requires, forward, weight_grad, input_grad,
                                 forward + weight_grad + input_grad))
    return TrainingMacs(
        nodes=tuple(rows),
        forward_macs=sum(row.forward_macs for row in rows),
        weight_grad_macs=sum(row.weight_grad_macs for row in rows),
        input_grad_macs=sum(row.input_grad_macs for row in rows),
        training_macs=sum(row.training_macs for row in rows),
    )
