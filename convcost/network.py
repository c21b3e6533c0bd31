"""A built network: nodes in execution order, each with its layer, its inputs and its shapes."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Location
from .layers import Layer, Shape

__all__ = ["INPUT", "Block", "Network", "Node"]

INPUT = -1  # the producer index that stands for the network input


@dataclass(frozen=True, slots=True)
class Node:
    """One layer in the network: what it is, what it reads and what it produces."""

    index: int
    name: str
    layer: Layer
    inputs: tuple[int, ...]  # producer node indices; INPUT (-1) is the network input
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
class Network:
    """A built network: nodes in execution order (a topological order)."""

    name: str
    source: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    blocks: tuple[Block, ...] = ()

    @property
    def output_shape(self) -> Shape:
        return self.nodes[-1].output_shape if self.nodes else self.input_shape
