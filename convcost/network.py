"""A built network: a graph of named tensors. Nodes are in execution order; each reads earlier tensors."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Location
from .layers import Layer, Shape

__all__ = ["INPUT", "Block", "Input", "Network", "Node", "input_ref"]

INPUT = -1  # the producer index of the (first) network input; input k is -1 - k


def input_ref(k: int) -> int:
    """The producer index that stands for network input ``k`` (0-based)."""
    return -1 - k


@dataclass(frozen=True, slots=True)
class Node:
    """One layer in the network: what it is, what it reads and what it produces."""

    index: int
    name: str
    layer: Layer
    inputs: tuple[int, ...]  # producer node indices; negative ones are network inputs (INPUT is the first)
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    where: Location

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]


@dataclass(frozen=True, slots=True)
class Block:
    """A named structure or template instance; its layers' names start with ``name + '.'``."""

    name: str
    kind: str
    where: Location


@dataclass(frozen=True, slots=True)
class Input:
    """A named input tensor of the network (batch excluded)."""

    name: str
    shape: Shape


@dataclass(frozen=True, slots=True)
class Network:
    """A built network: its inputs, nodes in execution order (a topological order) and its outputs."""

    name: str
    source: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    blocks: tuple[Block, ...] = ()
    outputs: tuple[int, ...] = ()  # producer indices of the tensors returned; () means the last node

    @property
    def input_shape(self) -> Shape:
        """The first input's shape (the only one of most networks)."""
        return self.inputs[0].shape

    @property
    def output_refs(self) -> tuple[int, ...]:
        return self.outputs or ((len(self.nodes) - 1,) if self.nodes else (INPUT,))

    @property
    def output_shape(self) -> Shape:
        """The first output's shape."""
        return self.shape_of(self.output_refs[0])

    def shape_of(self, ref: int) -> Shape:
        return self.inputs[-1 - ref].shape if ref < 0 else self.nodes[ref].output_shape

    def name_of(self, ref: int) -> str:
        return self.inputs[-1 - ref].name if ref < 0 else self.nodes[ref].name
