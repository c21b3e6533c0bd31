"""Stage 4: views over a report's rows: the block hierarchy with subtotals, and the per-kind summary.

Pure functions over :class:`NetworkCost`; renderers turn their results into
tables. A layer's place in the hierarchy is its dotted name:
``inception_3a.branch2.conv_1`` sits in ``inception_3a`` then ``branch2``.
Members of a block are contiguous in execution order, so one pass suffices.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from .costs import LAYER_CATEGORIES, LayerCost, NetworkCost
from .layers import Shape

__all__ = ["Group", "KindTotal", "Row", "block_groups", "hierarchy", "kind_summary"]

_SUMMED = ("macs", "flops", "params", "weight_bytes", "activation_bytes")


@dataclass(frozen=True, slots=True)
class Group:
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


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a hierarchical view: a group (with subtotals) or a layer, at an indent level."""

    level: int
    label: str
    group: Group | None = None
    layer: LayerCost | None = None


@dataclass(frozen=True, slots=True)
class KindTotal:
    category: str
    layers: int
    macs: int
    flops: int
    params: int


def block_groups(report: NetworkCost) -> tuple[Group, ...]:
    """Every block's subtotals, in the order the blocks open."""
    spans: dict[str, list[int]] = {}  # block -> [first row, last row + 1]
    for index, row in enumerate(report.layers):
        parts = row.name.split(".")[:-1]
        for level in range(len(parts)):
            prefix = ".".join(parts[:level + 1])
            spans.setdefault(prefix, [index, index])[1] = index + 1
    # Running sums make each subtotal two lookups, however deep the nesting.
    sums = {field: list(accumulate((getattr(row, field) for row in report.layers), initial=0)) for field in _SUMMED}
    kinds = dict(report.blocks)
    return tuple(
        Group(prefix, kinds.get(prefix, ""), prefix.count("."), end - start, report.layers[end - 1].output_shape,
              *(sums[field][end] - sums[field][start] for field in _SUMMED))
        for prefix, (start, end) in spans.items()
    )


def hierarchy(report: NetworkCost, depth: int | None = None) -> tuple[Row, ...]:
    """Rows in execution order with a group row before each block's layers.

    ``depth`` (like torchinfo's) keeps levels ``0 .. depth-1``: a block at
    level ``depth - 1`` is shown as one collapsed row with its subtotals.
    """
    groups = {group.name: group for group in block_groups(report)}
    rows: list[Row] = []
    opened: list[str] = []
    for row in report.layers:
        parts = row.name.split(".")
        # Close groups this row is not in; open the ones it enters.
        while opened and not row.name.startswith(opened[-1] + "."):
            opened.pop()
        for level in range(len(opened), len(parts) - 1):
            if depth is not None and level >= depth:
                break
            prefix = ".".join(parts[: level + 1])
            opened.append(prefix)
            rows.append(Row(level, parts[level], groups[prefix], None))
        level = len(parts) - 1
        if depth is None or level < depth:
            rows.append(Row(level, parts[-1], None, row))
    return tuple(rows)


def kind_summary(report: NetworkCost) -> tuple[KindTotal, ...]:
    """Totals per layer category (1x1 conv, kxk conv, depthwise, linear, ...), categories with layers only."""
    totals = {category: [0, 0, 0, 0] for category in LAYER_CATEGORIES}
    for row in report.layers:
        entry = totals[row.category]
        entry[0] += 1
        entry[1] += row.macs
        entry[2] += row.flops
        entry[3] += row.params
    return tuple(KindTotal(category, *values) for category, values in totals.items() if values[0])
