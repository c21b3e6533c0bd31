"""Stage 4: views over a report's rows: the block hierarchy with subtotals, and the per-kind summary.

Pure functions over :class:`NetworkCost`; renderers turn their results into
tables. A layer's place in the hierarchy is its dotted name:
``inception_3a.branch2.conv_1`` sits in ``inception_3a`` then ``branch2``.
Members of a block are contiguous in execution order, so one pass suffices.
"""

from __future__ import annotations

from collections import Counter
from itertools import accumulate
from operator import attrgetter
from typing import Any

from .costs import LAYER_CATEGORIES, LayerCost, NetworkCost
from .layers import Shape
from .record import Record

__all__ = ["Group", "Row", "KindTotal", "block_groups", "block_values", "hierarchy", "kind_summary"]


class Group(Record):
    """Subtotals of the layers whose names start with ``name + '.'``."""

    name: str
    kind: str
    level: int
    layers: int
    output_shape: Shape
    macs: int
    flops: int
    params: int
    weight_bytes: int
    activation_bytes: int

    def __new__(cls, name: str, kind: str, level: int, layers: int, output_shape: Shape, macs: int, flops: int,
                params: int, weight_bytes: int, activation_bytes: int) -> Group:  # one per block
        self = object.__new__(cls._storage)  # plain stores, then frozen: see convcost.record
        self.name = name
        self.kind = kind
        self.level = level
        self.layers = layers
        self.output_shape = output_shape
        self.macs = macs
        self.flops = flops
        self.params = params
        self.weight_bytes = weight_bytes
        self.activation_bytes = activation_bytes
        self.__class__ = cls
        return self


class Row(Record):
    """One line of a hierarchical view: a group (with subtotals) or a layer, at an indent level."""

    level: int
    label: str
    group: Group | None = None
    layer: LayerCost | None = None


def hierarchy(report: NetworkCost, depth: int | None = None) -> tuple[Row, ...]:
    """Rows in execution order with a group row before each block's layers.

    ``depth`` (like torchinfo's) keeps levels ``0 .. depth-1``: a block at
    level ``depth - 1`` is shown as one collapsed row with its subtotals.
    """
    return _rows(report, depth)


def block_groups(report: NetworkCost) -> tuple[Group, ...]:
    """The groups of ``hierarchy(report)``, in its order (where each block opens), without
    making a row per layer."""
    return tuple(Group(*values) for values in block_values(report))


def _groups(report: NetworkCost) -> dict[str, Group]:
    return {values[0]: Group(*values) for values in block_values(report)}


def block_values(report: NetworkCost) -> list[tuple[Any, ...]]:
    """The fields of every block's :class:`Group`, in field order, in the order the blocks open.

    ``block_groups`` without the objects: the JSON writer reads 50,000 blocks of a large
    branched spec straight from these.
    """
    kinds = dict(report.blocks)
    layers = report.layers
    # First pass: every prefix group's span [start, end) in row order. Only when a row's
    # block (its name without the last part) differs from the row before's are groups
    # closed (those the block is not inside) and opened (the levels below what stays open).
    spans: dict[str, list[int]] = {}
    inside: list[str] = []  # the open groups, outermost first: "a", "a.b", "a.b.c"
    previous: str | None = None
    for index, name in enumerate(map(_NAME, layers)):
        block = name.rpartition(".")[0]
        if block == previous:
            continue  # same groups as the row before (most rows)
        previous = block
        while inside and not (block == inside[-1] or block.startswith(inside[-1] + ".")):
            spans[inside.pop()][1] = index
        if not block or (inside and block == inside[-1]):
            continue
        start = len(inside[-1]) + 1 if inside else 0
        while True:
            dot = block.find(".", start)
            prefix = block if dot < 0 else block[:dot]
            spans.setdefault(prefix, [index, index])
            inside.append(prefix)
            if dot < 0:
                break
            start = dot + 1
    for prefix in inside:
        spans[prefix][1] = len(layers)
    # Running sums make each subtotal two lookups: O(layers) in all however deep the nesting.
    macs, flops, params, weight_bytes, activation_bytes = _running_sums(layers)
    return [
        (prefix, kinds.get(prefix, ""), prefix.count("."), end - start, layers[end - 1].output_shape,
         macs[end] - macs[start], flops[end] - flops[start], params[end] - params[start],
         weight_bytes[end] - weight_bytes[start], activation_bytes[end] - activation_bytes[start])
        for prefix, (start, end) in spans.items()
    ]


def _rows(report: NetworkCost, depth: int | None) -> tuple[Row, ...]:
    groups = _groups(report)
    rows: list[Row] = []
    opened: list[str] = []
    for row in report.layers:
        parts = row.name.split(".")
        # Close groups this row is not in; open the ones it enters.
        while opened and not row.name.startswith(opened[-1] + "."):
            opened.pop()
        for level in range(len(opened), len(parts) - 1):
            prefix = ".".join(parts[: level + 1])
            if depth is not None and level >= depth:
                break
            opened.append(prefix)
            rows.append(Row(level, parts[level], groups[prefix], None))
        level = len(parts) - 1
        if depth is None or level < depth:
            rows.append(Row(level, parts[-1], None, row))
    return tuple(rows)


_SUMMED = ("macs", "flops", "params", "weight_bytes", "activation_bytes")


def _running_sums(rows: tuple[LayerCost, ...]) -> tuple[list[int], ...]:
    """For each summed field, ``sums[f][i]`` is the total over ``rows[:i]``."""
    return tuple(list(accumulate(map(attrgetter(field), rows), initial=0)) for field in _SUMMED)


class KindTotal(Record):
    category: str
    layers: int
    macs: int
    flops: int
    params: int


_NAME = attrgetter("name")
_KIND_FIELDS = attrgetter("category", "macs", "flops", "params")


def kind_summary(report: NetworkCost) -> tuple[KindTotal, ...]:
    """Totals per layer category (1x1 conv, kxk conv, depthwise, linear, ...), categories with layers only."""
    acc: dict[str, list[int]] = {category: [0, 0, 0, 0] for category in LAYER_CATEGORIES}
    # Rows repeat a few distinct figures: count each once (in C), then add them up.
    for (category, macs, flops, params), count in Counter(map(_KIND_FIELDS, report.layers)).items():
        entry = acc[category]
        entry[0] += count
        entry[1] += macs * count
        entry[2] += flops * count
        entry[3] += params * count
    return tuple(KindTotal(category, *values) for category, values in acc.items() if values[0])
