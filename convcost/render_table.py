"""Render a report as Rich tables (renderables; printing is the CLI's job)."""

from __future__ import annotations

from typing import Any

from .costs import NetworkCost
from .grouping import hierarchy, kind_summary
from .layers import format_shape
from .units import humanize

__all__ = ["kind_table", "percent", "report_renderable", "report_table", "summary_line"]


def percent(part: int, whole: int) -> str:
    """Exact share with one decimal, rounded half up: ``percent(1, 3) == "33.3%"``."""
    if whole == 0:
        return "-"
    tenths = (part * 1000 * 2 + whole) // (2 * whole)
    return f"{tenths // 10}.{tenths % 10}%"


def _count(value: int, exact: bool) -> str:
    return humanize(value, "", exact=exact).strip()


def report_table(report: NetworkCost, *, exact: bool = False, depth: int | None = None) -> Any:
    """One row per layer (name, kind, output shape, MACs, params, activation memory, share of MACs),
    cells in K/M/G under a header naming the unit, totals with the unit written out,
    with a subtotal row for each block, indented by level; ``depth`` collapses deeper levels."""
    from rich.table import Table

    totals = report.totals
    title = (f"{report.name}: input {format_shape(report.input_shape)}, batch {report.batch}, {report.dtype} "
             f"(MACs exclude bias; see docs/conventions.md)")
    table = Table(title=title, show_footer=True, title_justify="left")
    table.add_column("Layer", footer="Total")
    table.add_column("Kind")
    table.add_column("Output (CxHxW)", footer=format_shape(report.output_shape))
    table.add_column("MACs", justify="right", footer=humanize(totals.macs, "MACs", exact=exact))
    table.add_column("Params", justify="right", footer=_count(totals.params, exact))
    table.add_column("Activations", justify="right", footer=humanize(totals.activation_bytes, "B", exact=exact))
    table.add_column("% MACs", justify="right", footer=percent(totals.macs, totals.macs))
    for entry in hierarchy(report, depth):
        label = "  " * entry.level + entry.label
        if entry.group is not None:
            group = entry.group
            table.add_row(label, group.kind or "block", format_shape(group.output_shape),
                          _count(group.macs, exact), _count(group.params, exact),
                          humanize(group.activation_bytes, "B", exact=exact), percent(group.macs, totals.macs),
                          style="bold")
        else:
            row = entry.layer
            assert row is not None
            table.add_row(label, row.kind, format_shape(row.output_shape), _count(row.macs, exact),
                          _count(row.params, exact), humanize(row.activation_bytes, "B", exact=exact),
                          percent(row.macs, totals.macs))
    table.caption = summary_line(report, exact=exact)
    table.caption_justify = "left"
    return table


def kind_table(report: NetworkCost, *, exact: bool = False) -> Any:
    """Where the cost goes by layer category: 1x1 vs kxk vs depthwise convolution, linear, ..."""
    from rich.table import Table

    totals = report.totals
    table = Table(title="By kind", title_justify="left")
    table.add_column("Kind")
    table.add_column("Layers", justify="right")
    table.add_column("MACs", justify="right")
    table.add_column("% MACs", justify="right")
    table.add_column("FLOPs", justify="right")
    table.add_column("Params", justify="right")
    table.add_column("% Params", justify="right")
    for kind in kind_summary(report):
        table.add_row(kind.category, str(kind.layers), _count(kind.macs, exact),
                      percent(kind.macs, totals.macs), _count(kind.flops, exact),
                      _count(kind.params, exact), percent(kind.params, totals.params))
    return table


def report_renderable(report: NetworkCost, *, exact: bool = False, depth: int | None = None) -> Any:
    """The full terminal view: the layer table, then the per-kind summary."""
    from rich.console import Group

    return Group(report_table(report, exact=exact, depth=depth), kind_table(report, exact=exact))


def summary_line(report: NetworkCost, *, exact: bool = False) -> str:
    t = report.totals
    return (
        f"{humanize(t.macs, 'MACs', exact=exact)}, {humanize(t.flops, 'FLOPs', exact=exact)} | "
        f"params {_count(t.params, exact)} ({humanize(t.weight_bytes, 'B', exact=exact)}), "
        f"buffers {_count(t.buffers, exact)} | "
        f"peak activations {humanize(t.peak_activation_bytes, 'B', exact=exact)} "
        f"(input {humanize(t.input_bytes, 'B', exact=exact)})"
    )
