"""Receptive fields: which network-input pixels can influence each node's output positions.

Per spatial axis of the network input, every node gets an :class:`AxisField`:
``size`` (input pixels spanned), ``jump`` (input pixels between adjacent
output positions) and ``offset`` (input coordinate of the field's centre line
at output position 0). Fields are *theoretical* (interior): computed as if
every tensor extended without bound, so zero padding never truncates them and
a size may exceed the input (docs/conventions.md, "Receptive fields").

The field of output position ``o`` is an exact interval of input pixels held
as a periodic table (:class:`Periodic`): upsampling and transposed convolution
make it depend on the phase ``o mod period``, and fractional jumps are exact
``Fraction`` values. ``RULES`` is the one read-only table from layer type to
rule; an unknown layer type is an error.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..layers import rule_for
from ..network import Network
from .fields import MAX_PERIOD, AxisField, AxisState, NodeField, Periodic, ReceptiveFieldError, axis_field
from .rules import RULES, Context, Field, Rule

__all__ = [
    "MAX_PERIOD",
    "RULES",
    "AxisField",
    "NodeField",
    "Periodic",
    "ReceptiveFieldError",
    "receptive_fields",
]


def receptive_fields(network: Network, rules: Mapping[type, Rule] = RULES) -> tuple[NodeField, ...]:
    """The receptive field of every node, in node order; an unknown layer type is an error."""
    context = Context(tuple(network.input_shape[1:]))
    start: Field = tuple(AxisState((Periodic(1, 1, ((0, 0),)),), n) for n in context.input_lengths)
    fields: list[Field] = []
    result = []
    for node in network.nodes:
        field = rule_for(rules, node.layer, "receptive-field rule")(node, tuple(start if ref < 0 else fields[ref] for ref in node.inputs), context)
        fields.append(field)
        result.append(NodeField(node.index, node.name,
                                tuple(axis_field(axis, n, node.name) for axis, n in zip(field, context.input_lengths))))
    return tuple(result)
