"""Render an analysis (:class:`NetworkCost`): JSON-ready dict, Rich table, Markdown or CSV.

``ANALYSIS_RENDERERS`` maps each output format to its renderer. Renderers
return data, text or a Rich renderable; they never print.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..costs import FLOP_CATEGORIES, LayerCost, NetworkCost
from ..grouping import Group, Row, block_groups, hierarchy, kind_summary
from ..units import format_shape, humanize
from .common import SCHEMA_VERSION, View, code, csv_text, escape, percent
from .figures import (
    CONVENTIONS as FIGURE_CONVENTIONS, FIGURE_COLUMNS, FIGURE_CSV_COLUMNS, figure_cells, figure_csv_cells, figure_footers,
    figure_markdown_rows, figure_summary_parts, layer_figures, totals_figures,
)
from .layout import Column, Lines, choose_columns, glyphs_for, layout, wrap_parts

__all__ = ["ANALYSIS_COLUMNS", "ANALYSIS_RENDERERS", "CONVENTIONS", "REPORT_COLUMNS", "block_dict", "layer_dict",
           "option_texts", "report_csv", "report_dict", "report_markdown", "report_renderable", "shape_layout",
           "summary_line", "summary_parts"]

#: One line per metric, repeated in every JSON report so a reader never has to guess.
CONVENTIONS = {
    "macs": "multiply-accumulates of convolution and linear layers only, bias excluded",
    "flops": "2 per MAC + bias adds + batch norm, activation, pooling, add, upsample and softmax work "
             "(itemised in flops_by_category; the conventions: convcost --help)",
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
        "options": {key: list(value) if isinstance(value, tuple) else value for key, value in row.options},
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
    figures = report.figures
    layers = [layer_dict(row) for row in report.layers]
    totals_dict: dict[str, Any] = {
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
    }
    conventions = dict(CONVENTIONS)
    if figures is not None:  # the figures beyond MACs, per layer and in total
        for entry, row in zip(layers, figures.layers, strict=True):
            entry.update(layer_figures(row))
        totals_dict.update(totals_figures(figures))
        conventions.update(FIGURE_CONVENTIONS)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": report.name,
        "source": report.source,
        "input": {"shape": list(report.input_shape), "batch": report.batch, "dtype": report.dtype},
        "inputs": [{"name": name, "shape": list(shape)} for name, shape in report.inputs],
        "output_shape": list(report.output_shape),
        "outputs": [{"name": name, "shape": list(shape)} for name, shape in report.outputs],
        "conventions": conventions,
        "layers": layers,
        "blocks": [block_dict(group) for group in block_groups(report)],
        "by_kind": {
            k.category: {"layers": k.layers, "macs": k.macs, "flops": k.flops, "params": k.params}
            for k in kind_summary(report)
        },
        "totals": totals_dict,
    }


# --------------------------------------------------------------------------- table

#: Columns of the per-layer table and the per-layer Markdown (``--columns``); the layer's name is always first.
ANALYSIS_COLUMNS = ("kind", "from", "input", "output", "kernel", "stride", "padding", "dilation", "groups", "macs",
                    "flops", "params", "activations", "percent", *FIGURE_COLUMNS)
#: What a table shows by default, most important first; each step is taken if the table still fits the width
#: (``-key`` drops a merged column for its parts).
_TABLE_STEPS = (("layer", "macs"), ("output",), ("params",), ("percent",), ("kind",), ("kernel/s",),
                ("activations",), ("input",), ("-kernel/s", "kernel", "stride", "padding"), ("groups",), ("from",))
#: The per-layer Markdown's default columns.
MARKDOWN_COLUMNS = ("kind", "from", "input", "output", "kernel", "stride", "padding", "groups", "macs", "params",
                    "activations", "percent")
_DIMS = {1: "C", 2: "CxL", 3: "CxHxW", 4: "CxDxHxW"}
CONVENTIONS_HINT = "see convcost --help"


def shape_layout(shape: tuple[int, ...]) -> str:
    """``CxHxW`` for a 2-D input (``C``, ``CxL``, ``CxDxHxW`` for the others)."""
    return _DIMS.get(len(shape), "C" + "x?" * (len(shape) - 1))


def _axes(value: Any) -> str:
    """Per-axis option text: ``3x3`` for a kernel is written by the caller; equal axes show once: ``2``."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return str(value[0]) if len(set(value)) == 1 else "x".join(map(str, value))
    return str(value)


def option_texts(row: LayerCost) -> dict[str, str]:
    """The row's options as table cells: kernel ``3x3``, stride ``2``, padding ``same`` or ``1``, groups ``1``."""
    options = dict(row.options)
    texts = {key: _axes(value) for key, value in options.items() if key in ("stride", "padding", "dilation")}
    if "kernel" in options:
        texts["kernel"] = "x".join(map(str, options["kernel"]))
    if "groups" in options:
        texts["groups"] = str(options["groups"])
    return texts


def _count(value: int, exact: bool) -> str:
    return humanize(value, "", exact=exact).strip()


def reads_from(report: NetworkCost) -> dict[str, str]:
    """Layer name -> the tensors it reads, for the layers that read anything but the layer just before them
    (a graph's ``from:``, a join, a skip); the others are absent. A name inside the layer's own block is
    written from there (``branch1.relu_1`` in ``inception_3a``)."""
    texts = {}
    previous = report.inputs[0][0] if report.inputs else "input"
    for row in report.layers:
        if row.inputs != (previous,):
            block = row.name.rpartition(".")[0] + "."
            texts[row.name] = ", ".join(name[len(block):] if block != "." and name.startswith(block) else name
                                        for name in row.inputs)
        previous = row.name
    return texts


def _inputs_text(row: LayerCost) -> str:
    first = format_shape(row.input_shapes[0]) if row.input_shapes else ""
    return first if len(row.input_shapes) <= 1 else f"{first} +{len(row.input_shapes) - 1}"


_HEADERS = {
    "layer": "Layer", "kind": "Kind", "from": "From", "input": "Input", "kernel": "Kernel", "stride": "Stride", "padding": "Pad",
    "dilation": "Dilation", "groups": "Groups", "kernel/s": "Kernel/s", "macs": "MACs", "flops": "FLOPs",
    "params": "Params", "activations": "Activations", "percent": "% MACs",
}
_HEADERS.update(FIGURE_COLUMNS)
_RIGHT = {"macs", "flops", "params", "activations", "percent", "groups", *FIGURE_COLUMNS} - {"bound"}


def _option_cell(key: str) -> Callable[[Row], str]:
    def cell(entry: Row) -> str:
        return "" if entry.layer is None else option_texts(entry.layer).get(key, "")
    return cell


def _kernel_stride(entry: Row) -> str:
    if entry.layer is None:
        return ""
    options = option_texts(entry.layer)
    return f"{options['kernel']}/{options.get('stride', '1')}" if "kernel" in options else ""


def _cell_functions(report: NetworkCost, exact: bool) -> dict[str, Callable[[Row], str]]:
    """Column key -> the text of a hierarchy row (a block's subtotals or a layer) in that column."""
    total = report.totals.macs
    reads = reads_from(report)

    def item(entry: Row) -> Group | LayerCost:
        found = entry.group or entry.layer
        assert found is not None  # a hierarchy row is a block or a layer
        return found

    return {
        "layer": lambda entry: "  " * entry.level + entry.label,
        "kind": lambda entry: (entry.group.kind or "block") if entry.group is not None else item(entry).kind,
        "from": lambda entry: "" if entry.layer is None else reads.get(entry.layer.name, ""),
        "input": lambda entry: "" if entry.layer is None else _inputs_text(entry.layer),
        "output": lambda entry: format_shape(item(entry).output_shape),
        **{key: _option_cell(key) for key in ("kernel", "stride", "padding", "dilation", "groups")},
        "kernel/s": _kernel_stride,
        "macs": lambda entry: _count(item(entry).macs, exact),
        "flops": lambda entry: _count(item(entry).flops, exact),
        "params": lambda entry: _count(item(entry).params, exact),
        "activations": lambda entry: humanize(item(entry).activation_bytes, "B", exact=exact),
        "percent": lambda entry: percent(item(entry).macs, total),
        **figure_cells(report, exact),
    }


def _layer_columns(report: NetworkCost, view: View) -> tuple[list[Column], tuple[Row, ...]]:
    """The per-layer table's columns, chosen for the view's width (or as ``--columns`` asks); a column's
    cells are only made when it is considered."""
    rows = hierarchy(report, view.depth)
    functions = _cell_functions(report, view.exact)
    totals = report.totals
    exact = view.exact
    footers = {
        "layer": "Total", "output": format_shape(report.output_shape), "macs": _count(totals.macs, exact),
        "flops": _count(totals.flops, exact), "params": _count(totals.params, exact),
        "activations": humanize(totals.activation_bytes, "B", exact=exact),
        "percent": percent(totals.macs, totals.macs),
        **figure_footers(report, exact),
    }
    headers = dict(_HEADERS, output=f"Output ({shape_layout(report.input_shape)})")

    def make(key: str) -> Callable[[], Column]:
        return lambda: Column(key, headers[key], list(map(functions[key], rows)), right=key in _RIGHT,
                              footer=footers.get(key, ""))

    keys = ("layer", *ANALYSIS_COLUMNS[:4], "kernel/s", *ANALYSIS_COLUMNS[4:])
    candidates = [(key, make(key)) for key in keys]
    if view.columns is not None:
        steps: Sequence[Sequence[str]] = (("layer", *view.columns),)
        chosen = choose_columns(candidates, steps, None)
        order = {key: index for index, key in enumerate(("layer", *view.columns))}
        chosen.sort(key=lambda column: order[column.key])
    else:  # a chain (every layer reads the one before it) has no From column
        steps = _TABLE_STEPS if reads_from(report) else tuple(step for step in _TABLE_STEPS if step != ("from",))
        if report.figures is not None and report.figures.roofline is not None:  # --hardware: its time and bound
            steps = (*steps[:4], ("latency",), *steps[4:5], ("bound",), *steps[5:])
        chosen = choose_columns(candidates, steps, view.width)
    return chosen, rows


def _title(report: NetworkCost, width: int | None) -> list[str]:
    return wrap_parts([f"{report.name}:", f"input {format_shape(report.input_shape)},", f"batch {report.batch},",
                       report.dtype, "(MACs exclude bias;", f"{CONVENTIONS_HINT})"], width)


def _kind_lines(report: NetworkCost, view: View) -> Lines:
    """Where the cost goes by layer category: 1x1 vs kxk vs depthwise convolution, linear, ..."""
    totals = report.totals
    kinds = kind_summary(report)
    exact = view.exact
    values = {
        "kind": ("Kind", False, [k.category for k in kinds]),
        "layers": ("Layers", True, [str(k.layers) for k in kinds]),
        "macs": ("MACs", True, [_count(k.macs, exact) for k in kinds]),
        "percent": ("% MACs", True, [percent(k.macs, totals.macs) for k in kinds]),
        "flops": ("FLOPs", True, [_count(k.flops, exact) for k in kinds]),
        "params": ("Params", True, [_count(k.params, exact) for k in kinds]),
        "percent_params": ("% Params", True, [percent(k.params, totals.params) for k in kinds]),
    }
    candidates = [(key, (lambda key=key: Column(key, values[key][0], values[key][2], right=values[key][1])))
                  for key in values]
    steps = (("kind", "macs"), ("percent",), ("params",), ("layers",), ("percent_params",), ("flops",))
    lines = Lines().add(("By kind", "bold"))
    return lines.extend(layout(choose_columns(candidates, steps, view.width), glyphs=glyphs_for(view.ascii)))


def summary_parts(report: NetworkCost, *, exact: bool = False) -> list[str]:
    """The totals as unbreakable parts: a number always stays with its unit."""
    t = report.totals
    return [
        f"{humanize(t.macs, 'MACs', exact=exact)},", f"{humanize(t.flops, 'FLOPs', exact=exact)};",
        f"params {_count(t.params, exact)} ({humanize(t.weight_bytes, 'B', exact=exact)}),",
        f"buffers {_count(t.buffers, exact)};",
        f"peak activations {humanize(t.peak_activation_bytes, 'B', exact=exact)}",
        f"(input {humanize(t.input_bytes, 'B', exact=exact)})",
    ]


def summary_line(report: NetworkCost, *, exact: bool = False) -> str:
    return " ".join(summary_parts(report, exact=exact))


def report_renderable(report: NetworkCost, view: View = View()) -> Lines:
    """The terminal view: title, one row per layer with block subtotals and a total row, the per-kind
    summary, and last (the line left on screen) the totals in bold."""
    columns, rows = _layer_columns(report, view)
    lines = Lines()
    for text in _title(report, view.width):
        lines.add(text)
    styles = ["bold" if entry.group is not None else None for entry in rows]
    lines.extend(layout(columns, glyphs=glyphs_for(view.ascii), row_styles=styles))
    lines.blank().extend(_kind_lines(report, view)).blank()
    beyond = figure_summary_parts(report, exact=view.exact)
    for text in wrap_parts([beyond[0].capitalize(), *beyond[1:]] if beyond else [], view.width):
        lines.add(text)
    for text in wrap_parts(["Total:", *summary_parts(report, exact=view.exact)], view.width):
        lines.add((text, "bold"))
    return lines


# --------------------------------------------------------------------------- markdown

MARKDOWN_NOTE = ("MACs are multiply-accumulates of conv and linear layers, bias excluded; "
                 "FLOPs = 2 x MACs + bias and elementwise work (see convcost --help).")


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
    lines += [f"| {label} | {short} | {exact} |" for label, short, exact in figure_markdown_rows(report)]
    reads = reads_from(report)
    keys = view.columns if view.columns is not None else tuple(
        key for key in MARKDOWN_COLUMNS if key != "from" or reads)
    headers = dict(_HEADERS, output="Output", activations="Activation bytes", padding="Padding")
    lines += [
        "",
        "<details>",
        f"<summary>Per-layer costs ({len(report.layers)} layers)</summary>",
        "",
        "| # | Layer | " + " | ".join(headers[key] for key in keys) + " |",
        "|---:|---|" + "".join("---:|" if key in _RIGHT else "---|" for key in keys),
    ]
    beyond = {key: cell for key, cell in figure_cells(report, exact=False).items() if key in keys}
    for index, row in enumerate(report.layers):
        cells = option_texts(row)
        cells.update({key: cell(Row(0, row.name, layer=row)) for key, cell in beyond.items()})
        cells.update({
            "kind": escape(row.kind), "from": code(reads[row.name]) if row.name in reads else "",
            "input": _inputs_text(row), "output": format_shape(row.output_shape),
            "macs": f"{row.macs:,}", "flops": f"{row.flops:,}", "params": f"{row.params:,}",
            "activations": f"{row.activation_bytes:,}", "percent": percent(row.macs, t.macs),
        })
        lines.append(f"| {index} | {code(row.name)} | " + " | ".join(cells.get(key, "") for key in keys) + " |")
    lines += ["", "</details>", "", f"<sub>{MARKDOWN_NOTE}</sub>", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CSV

#: Columns of the per-layer CSV, in order; ``flops_<category>`` itemise ``flops``.
REPORT_COLUMNS = (
    "index", "name", "kind", "line", "inputs", "input_shape", "output_shape", "kernel", "stride", "padding",
    "dilation", "groups", "bias", "macs", "flops", "params", "buffers", "weight_bytes", "activation_bytes",
    *(f"flops_{category}" for category in FLOP_CATEGORIES), *FIGURE_CSV_COLUMNS,
)


def _csv_option(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return value


def report_csv(report: NetworkCost, view: View = View()) -> str:
    """One row per layer in execution order; shapes and per-axis options as CxHxW, counts as plain integers;
    an option a layer does not have is an empty cell."""
    rows = []
    figures = report.figures.layers if report.figures is not None else (None,) * len(report.layers)
    for index, (row, beyond) in enumerate(zip(report.layers, figures, strict=True)):
        by_category = dict(row.flops_by_category)
        options = dict(row.options)
        rows.append([
            index, row.name, row.kind, row.line, "+".join(row.inputs), "+".join(format_shape(s) for s in row.input_shapes),
            format_shape(row.output_shape),
            *(_csv_option(options[key]) if key in options else "" for key in REPORT_COLUMNS[7:13]),
            row.macs, row.flops, row.params, row.buffers, row.weight_bytes,
            row.activation_bytes, *(by_category.get(category, 0) for category in FLOP_CATEGORIES),
            *figure_csv_cells(beyond),
        ])
    return csv_text(REPORT_COLUMNS, rows)


#: Output format -> renderer of an analysis (a test checks every format is here).
ANALYSIS_RENDERERS: Mapping[str, Callable[[NetworkCost, View], Any]] = MappingProxyType(
    {"table": report_renderable, "json": report_dict, "markdown": report_markdown, "csv": report_csv})
