"""The ONNX graph being written: nodes, initializers and Constant nodes, named after convcost's tensors."""

from __future__ import annotations

import math
from typing import Any

from ...network import Network, Node
from .. import require_onnx

__all__ = ["Writer", "hint"]


class Writer:
    """The graph being written: nodes, initializers and the ONNX name of every convcost tensor."""

    def __init__(self, network: Network, weights: str, seed: int):
        self.onnx = require_onnx()
        import numpy

        self.np = numpy
        self.rng = numpy.random.default_rng(seed)
        self.network = network
        self.random = weights == "random"
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.domains: set[str] = set()

    # ---------------------------------------------------------------- names and shapes

    def name(self, ref: int) -> str:
        return self.network.name_of(ref)

    def x(self, node: Node, k: int = 0) -> str:
        return self.name(node.inputs[k])

    def rank(self, node: Node) -> int:
        """The ONNX rank of the node's first input (batch included)."""
        return len(node.input_shapes[0]) + 1

    # ---------------------------------------------------------------- graph pieces

    def add(self, op: str, inputs: list[str], output: str, name: str, *, doc: str = "", domain: str = "",
            **attributes: Any) -> str:
        node = self.onnx.helper.make_node(op, inputs, [output], name=name, domain=domain or None,
                                          **{key: value for key, value in attributes.items() if value is not None})
        if doc:
            node.doc_string = doc
        self.nodes.append(node)
        return output

    def weight(self, name: str, shape: tuple[int, ...], fill: str, fan_in: int = 1) -> str:
        """An initializer: a parameter or buffer. ``fill`` is zeros, ones, or normal (random weights only)."""
        np = self.np
        if fill == "normal" and self.random:
            array = self.rng.normal(0.0, math.sqrt(2.0 / max(fan_in, 1)), size=shape).astype(np.float32)
        elif fill == "ones":
            array = np.ones(shape, dtype=np.float32)
        else:
            array = np.zeros(shape, dtype=np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def constant(self, name: str, value: Any, dtype: Any = None) -> str:
        """A Constant node: a fixed value, never a parameter (a non-affine norm's ones, a shape, a ratio)."""
        array = self.np.asarray(value, dtype=dtype)
        return self.add("Constant", [], name, name, value=self.onnx.numpy_helper.from_array(array, name))

    def ints(self, name: str, values: list[int]) -> str:
        return self.constant(name, values, self.np.int64)

    def transpose(self, x: str, perm: list[int], output: str, name: str = "") -> str:
        return self.add("Transpose", [x], output, name or output, perm=perm)


def hint(node: Node, extra: str = "") -> str:
    """What a node's ``doc_string`` records for the import: ``convcost: kind=depthwise inplace``."""
    inplace = getattr(node.layer, "inplace", False)
    return f"convcost: kind={node.layer.kind}" + (" inplace" if inplace else "") + extra

