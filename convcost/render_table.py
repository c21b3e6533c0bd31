"""Render a report as a Rich table (a renderable; printing is the CLI's job)."""

from __future__ import annotations

from typing import Any

from .costs import NetworkCost
from .layers import format_shape
from .units import humanize

__all__ = ["report_table"]


def _percent(part: int, whole: int) -> str:
    if whole == 0:
        return "-"
    tenths = (part * 1000 * 2 + whole) // (2 * whole)
    return f"{tenths // 10}.{tenths % 10}%"


def report_table(report: NetworkCost, *, exact: bool = False) -> Any:
    """One row per layer (name, kind, output shape, MACs, params, activation memory, share of MACs)."""
    from rich.table import Table

    totals = report.totals
    title = (f"{report.name}: input {format_shape(report.input_shape)}, batch {report.batch}, {report.dtype} "
             f"(MACs exclude bias; see docs/conventions.md)")
    table = Table(title=title, show_footer=True, title_justify="left")
    table.add_column("Layer", footer="Total")
    table.add_column("Kind")
    table.add_column("Output (CxHxW)", footer=format_shape(report.output_shape))
    table.add_column("MACs", justify="right", footer=humanize(totals.macs, "MACs", exact=exact))
    table.add_column("Params", justify="right", footer=humanize(totals.params, "", exact=exact).strip())
    table.add_column("Activations", justify="right", footer=humanize(totals.activation_bytes, "B", exact=exact))
    table.add_column("% MACs", justify="right", footer="100.0%" if totals.macs else "-")
    for row in report.layers:
        table.add_row(
            row.name,
            row.kind,
            format_shape(row.output_shape),
            humanize(row.macs, "MACs", exact=exact),
            humanize(row.params, "", exact=exact).strip(),
            humanize(row.activation_bytes, "B", exact=exact),
            _percent(row.macs, totals.macs),
        )
    table.caption = summary_line(report, exact=exact)
    table.caption_justify = "left"
    return table


def summary_line(report: NetworkCost, *, exact: bool = False) -> str:
    t = report.totals
    return (
        f"{humanize(t.macs, 'MACs', exact=exact)}, {humanize(t.flops, 'FLOPs', exact=exact)} | "
        f"params {humanize(t.params, '', exact=exact).strip()} ({humanize(t.weight_bytes, 'B', exact=exact)}), "
        f"buffers {humanize(t.buffers, '', exact=exact).strip()} | "
        f"peak activations {humanize(t.peak_activation_bytes, 'B', exact=exact)} "
        f"(input {humanize(t.input_bytes, 'B', exact=exact)})"
    )
