"""Render an analysis (:class:`NetworkCost`): JSON-ready dict, Rich table, Markdown or CSV.

``ANALYSIS_RENDERERS`` maps each output format to its renderer. Renderers
return data, text or a Rich renderable; they never print.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from rich.console import Group as RichGroup
from rich.table import Table

from ..costs import FLOP_CATEGORIES, LayerCost, NetworkCost
from ..grouping import Group, block_groups, hierarchy, kind_summary
from ..units import format_shape, humanize
from .common import SCHEMA_VERSION, View, code, csv_text, escape, percent

__all__ = ["ANALYSIS_RENDERERS", "CONVENTIONS", "REPORT_COLUMNS", "block_dict", "layer_dict", "report_csv",
           "report_dict", "report_markdown", "report_renderable", "summary_line"]

#: One line per metric, repeated in every JSON report so a reader never has to guess.
CONVENTIONS = {
    "macs": "multiply-accumulates of convolution and linear layers only, bias excluded",
    "flops": "2 per MAC + bias adds + batch norm, activation, pooling, add, upsample and softmax work "
             "(see flops_by_category and docs/conventions.md)",
    "params": "trainable weights, biases and batch-norm scale/shift; running statistics are buffers",
    "bytes": "element counts x dtype size; activation_bytes is each layer's output tensor, "
             "peak_activation_bytes the most alive at once when tensors are freed after their last reader",
    "shapes": "channels-first, batch excluded: [C], [C, L], [C, H, W] or [C, D, H, W]",
    "graph": "a layer's inputs name the tensors it reads (layers or network inputs); outputs are what the "
             "network returns, kept alive to the end in the peak",
}


# --------------------------------------------------------------------------- JSON

def layer_dict(row: LayerCost) -> dict[str, Any]:
    return {
        "name": row.name,
        "kind": row.kind,
        "category": row.category,
        "line": row.line,
        "input_shape": list(row.input_shape),
        "input_shapes": [list(shape) for shape in row.input_shapes],
        "inputs": list(row.inputs),
        "output_shape": list(row.output_shape),
        "macs": row.macs,
        "flops": row.flops,
        "flops_by_category": dict(row.flops_by_category),
        "params": row.params,
        "buffers": row.buffers,
        "weight_bytes": row.weight_bytes,
        "activation_bytes": row.activation_bytes,
    }


def block_dict(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "kind": group.kind or "block",
        "layers": group.layers,
        "output_shape": list(group.output_shape),
        "macs": group.macs,
        "flops": group.flops,
        "params": group.params,
        "weight_bytes": group.weight_bytes,
        "activation_bytes": group.activation_bytes,
    }


def report_dict(report: NetworkCost, view: View = View()) -> dict[str, Any]:
    """The whole report as JSON-ready data (exact integers, shapes as channels-first lists)."""
    totals = report.totals
    return {
        "schema_version": SCHEMA_VERSION,
        "name": report.name,
        "source": report.source,
        "input": {"shape": list(report.input_shape), "batch": report.batch, "dtype": report.dtype},
        "inputs": [{"name": name, "shape": list(shape)} for name, shape in report.inputs],
        "output_shape": list(report.output_shape),
        "outputs": [{"name": name, "shape": list(shape)} for name, shape in report.outputs],
        "conventions": CONVENTIONS,
        "layers": [layer_dict(row) for row in report.layers],
        "blocks": [block_dict(group) for group in block_groups(report)],
        "by_kind": {
            k.category: {"layers": k.layers, "macs": k.macs, "flops": k.flops, "params": k.params}
            for k in kind_summary(report)
        },
        "totals": {
            "macs": totals.macs,
            "flops": totals.flops,
            "flops_by_category": dict(totals.flops_by_category),
            "params": totals.params,
            "buffers": totals.buffers,
            "weight_bytes": totals.weight_bytes,
            "buffer_bytes": totals.buffer_bytes,
            "input_bytes": totals.input_bytes,
            "activation_bytes": totals.activation_bytes,
            "peak_activation_bytes": totals.peak_activation_bytes,
        },
    }


# --------------------------------------------------------------------------- table

def _count(value: int, exact: bool) -> str:
    return humanize(value, "", exact=exact).strip()


def _report_table(report: NetworkCost, exact: bool, depth: int | None) -> Table:
    """One row per layer (name, kind, output shape, MACs, params, activation memory, share of MACs),
    with a subtotal row for each block, indented by level; ``depth`` collapses deeper levels."""
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
        item: Group | LayerCost | None = entry.group or entry.layer
        assert item is not None  # a row is a group or a layer
        kind = (entry.group.kind or "block") if entry.group is not None else item.kind
        table.add_row(label, kind, format_shape(item.output_shape), _count(item.macs, exact),
                      _count(item.params, exact), humanize(item.activation_bytes, "B", exact=exact),
                      percent(item.macs, totals.macs), style="bold" if entry.group is not None else None)
    table.caption = summary_line(report, exact=exact)
    table.caption_justify = "left"
    return table


def _kind_table(report: NetworkCost, exact: bool) -> Table:
    """Where the cost goes by layer category: 1x1 vs kxk vs depthwise convolution, linear, ..."""
    totals = report.totals
    table = Table(title="By kind", title_justify="left")
    table.add_column("Kind")
    for header in ("Layers", "MACs", "% MACs", "FLOPs", "Params", "% Params"):
        table.add_column(header, justify="right")
    for kind in kind_summary(report):
        table.add_row(kind.category, str(kind.layers), _count(kind.macs, exact), percent(kind.macs, totals.macs),
                      _count(kind.flops, exact), _count(kind.params, exact), percent(kind.params, totals.params))
    return table


def report_renderable(report: NetworkCost, view: View = View()) -> RichGroup:
    """The full terminal view: the layer table, then the per-kind summary."""
    return RichGroup(_report_table(report, view.exact, view.depth), _kind_table(report, view.exact))


def summary_line(report: NetworkCost, *, exact: bool = False) -> str:
    t = report.totals
    return (
        f"{humanize(t.macs, 'MACs', exact=exact)}, {humanize(t.flops, 'FLOPs', exact=exact)} | "
        f"params {_count(t.params, exact)} ({humanize(t.weight_bytes, 'B', exact=exact)}), "
        f"buffers {_count(t.buffers, exact)} | "
        f"peak activations {humanize(t.peak_activation_bytes, 'B', exact=exact)} "
        f"(input {humanize(t.input_bytes, 'B', exact=exact)})"
    )


# --------------------------------------------------------------------------- markdown

MARKDOWN_NOTE = ("MACs are multiply-accumulates of conv and linear layers, bias excluded; "
                 "FLOPs = 2 x MACs + bias and elementwise work (see docs/conventions.md).")


def report_markdown(report: NetworkCost, view: View = View()) -> str:
    """Totals (short and exact), then every layer in a collapsed section, ready for a pull-request comment."""
    t = report.totals
    lines = [
        f"### convcost: {code(report.name)}",
        "",
        f"{code(report.source)}: input {format_shape(report.input_shape)}, batch {report.batch}, {report.dtype}; "
        f"output {format_shape(report.output_shape)}",
        "",
        "| Total | Value | Exact |",
        "|---|---:|---:|",
    ]
    for label, value, unit in (
        ("MACs", t.macs, "MACs"),
        ("FLOPs", t.flops, "FLOPs"),
        ("Params", t.params, ""),
        ("Buffers", t.buffers, ""),
        ("Weight bytes", t.weight_bytes, "B"),
        ("Peak activation bytes", t.peak_activation_bytes, "B"),
        ("Activation bytes (sum)", t.activation_bytes, "B"),
    ):
        lines.append(f"| {label} | {humanize(value, unit).strip()} | {humanize(value, unit, exact=True).strip()} |")
    lines += [
        "",
        "<details>",
        f"<summary>Per-layer costs ({len(report.layers)} layers)</summary>",
        "",
        "| # | Layer | Kind | Output | MACs | Params | Activation bytes | % MACs |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for index, row in enumerate(report.layers):
        lines.append(
            f"| {index} | {code(row.name)} | {escape(row.kind)} | {format_shape(row.output_shape)} | "
            f"{row.macs:,} | {row.params:,} | {row.activation_bytes:,} | {percent(row.macs, t.macs)} |"
        )
    lines += ["", "</details>", "", f"<sub>{MARKDOWN_NOTE}</sub>", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CSV

#: Columns of the per-layer CSV, in order; ``flops_<category>`` itemise ``flops``.
REPORT_COLUMNS = (
    "index", "name", "kind", "line", "input_shape", "output_shape", "macs", "flops", "params", "buffers",
    "weight_bytes", "activation_bytes", *(f"flops_{category}" for category in FLOP_CATEGORIES),
)


def report_csv(report: NetworkCost, view: View = View()) -> str:
    """One row per layer in execution order; shapes as CxHxW, counts as plain integers."""
    rows = []
    for index, row in enumerate(report.layers):
        by_category = dict(row.flops_by_category)
        rows.append([
            index, row.name, row.kind, row.line, "+".join(format_shape(s) for s in row.input_shapes),
            format_shape(row.output_shape), row.macs, row.flops, row.params, row.buffers, row.weight_bytes,
            row.activation_bytes, *(by_category.get(category, 0) for category in FLOP_CATEGORIES),
        ])
    return csv_text(REPORT_COLUMNS, rows)


#: Output format -> renderer of an analysis (a test checks every format is here).
ANALYSIS_RENDERERS: Mapping[str, Callable[[NetworkCost, View], Any]] = MappingProxyType(
    {"table": report_renderable, "json": report_dict, "markdown": report_markdown, "csv": report_csv})
