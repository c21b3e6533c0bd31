"""Render a sweep: Rich table | JSON-ready dict | Markdown | CSV (``SWEEP_RENDERERS``). Nothing here prints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from ..sweep import SweepResult
from ..units import format_shape
from .common import SCHEMA_VERSION, View, bar, csv_text, format_ratio
from .comparison import delta_style, human
from .layout import GAP, Cell, Column, Lines, choose_columns, glyphs_for, layout, table_width, wrap_parts

__all__ = ["SWEEP_RENDERERS", "sweep_csv", "sweep_dict", "sweep_markdown", "sweep_table"]


def _sweep_rows(result: SweepResult, limit: int | None) -> tuple[list[int], str]:
    """Which points a table shows: all when they fit, else the Pareto-optimal ones (evenly thinned)."""
    count = len(result)
    if limit is None or count <= limit:
        return list(range(count)), f"{count} points"
    pareto = np.flatnonzero(result.columns["pareto"])
    chosen = pareto if len(pareto) else np.arange(count)
    if len(chosen) > limit:
        chosen = chosen[np.linspace(0, len(chosen) - 1, limit).round().astype(int)]
    what = "Pareto-optimal " if len(pareto) else ""
    note = (f"showing {len(chosen)} {what}points of {count:,} ({len(pareto):,} Pareto-optimal); "
            "--format csv or --json lists them all")
    return [int(i) for i in chosen], note


def _width_text(result: SweepResult, point: Mapping[str, Any]) -> str:
    return f"{point['width']:g}" if result.width_kind == "fraction" else str(point["width"])


def _kernel_text(value: Any) -> str:
    if value is None:
        return "-"
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)


def _what(result: SweepResult) -> str:
    return "fraction of input channels" if result.width_kind == "fraction" else "bottleneck width"


#: How a Pareto metric reads in a sentence.
METRIC_WORDS = {"macs": "MACs", "flops": "FLOPs", "params": "params", "activation_bytes": "activation memory",
                "peak_activation_bytes": "peak memory", "training_memory_bytes": "training memory",
                "roofline_seconds": "roofline time"}


def _pareto_legend(result: SweepResult) -> str:
    within = [axis for axis in ("kernel", "resolution") if axis in result.swept]
    scope = f" among points of the same {' and '.join(within)}" if within else ""
    words = [METRIC_WORDS.get(metric, metric) for metric in result.pareto_metrics]
    return f"* = Pareto-optimal{scope}: no design keeps at least the width for no more {', '.join(words)}"


def _sweep_header(result: SweepResult) -> str:
    return (f"sweep of {result.target}: input {format_shape(result.input_shape)}, batch {result.batch}, "
            f"{result.dtype}; {_what(result)} vs cost; {_pareto_legend(result)}")


#: Columns measured design by design (convcost.sweep_figures), when present: header and unit.
_MEASURED = {"training_memory_bytes": ("Train memory", "B"), "roofline_seconds": ("Roofline", "s")}

BAR_WIDTH = 24  # at most; narrower tables get a shorter bar (none under 8)


def sweep_table(result: SweepResult, view: View = View()) -> Lines:
    """Per point: the swept values, MACs against the no-bottleneck design, params, peak memory,
    an inline bar of MACs (full = the largest shown) and the Pareto mark."""
    exact = view.exact
    rows, note = _sweep_rows(result, view.limit)
    points = [result.point(i) for i in rows]
    largest = max([p["macs"] for p in points] + [0])
    cells: dict[str, tuple[str, bool, list[Cell]]] = {
        "width": ("Fraction" if result.width_kind == "fraction" else "Width", True,
                  [_width_text(result, p) for p in points]),
        "kernel": ("Kernel", True, [_kernel_text(p["kernel"]) for p in points]),
        "resolution": ("Resolution", True, [str(p["resolution"]) for p in points]),
        "macs": ("MACs", True, [human(p["macs"], "", exact) for p in points]),
        "vs": ("vs none", True, [
            (format_ratio(p["baseline_macs"], p["macs"]), delta_style(p["macs"] - p["baseline_macs"]))
            if p["applied"] else ("not applied", "dim") for p in points]),
        "params": ("Params", True, [human(p["params"], "", exact) for p in points]),
        "peak": ("Peak memory", True, [
            (human(p["peak_activation_bytes"], "B", exact),
             delta_style(p["peak_activation_bytes"] - p["baseline_peak_activation_bytes"])) for p in points]),
        "pareto": ("*", False, ["*" if p["pareto"] else "" for p in points]),
    }
    measured = [key for key in _MEASURED if key in result.columns]
    for key in measured:
        label, unit = _MEASURED[key]
        cells[key] = (label, True, [(human(p[key], unit, exact), delta_style(p[key] - p["baseline_" + key]))
                                    for p in points])
    axes = tuple(axis for axis in ("kernel", "resolution") if axis in result.swept)
    candidates = [(key, (lambda key=key: Column(key, cells[key][0], cells[key][2], right=cells[key][1])))
                  for key in ("width", *axes, "macs", "vs", "params", "peak", *measured, "pareto")]
    steps = (("width", *axes, "macs"), ("vs",), ("pareto",), *((key,) for key in measured), ("params",), ("peak",))
    columns = choose_columns(candidates, steps, view.width)
    room = BAR_WIDTH if view.width is None else min(BAR_WIDTH, view.width - table_width(c.width for c in columns) - GAP)
    if room >= 8:
        bars: list[Cell] = [(bar(p["macs"], largest, room, ascii=view.ascii), "green" if p["pareto"] else "blue")
                            for p in points]
        columns.insert(len(columns) - ("pareto" in (c.key for c in columns)),
                       Column("bar", "MACs bar", bars))
    lines = Lines()
    for text in wrap_parts([f"sweep of {result.target}:", f"input {format_shape(result.input_shape)},",
                            f"batch {result.batch},", f"{result.dtype};", f"{_what(result)} vs cost"], view.width):
        lines.add(text)
    lines.extend(layout(columns, glyphs=glyphs_for(view.ascii)))
    legend = [_pareto_legend(result) + "."]
    if room >= 8:
        legend.append("Bar: MACs, full = the largest shown.")
    legend.append(note[:1].upper() + note[1:] + ".")
    for sentence in legend:
        for text in wrap_parts(sentence.split(" "), view.width):
            lines.add(text)
    return lines


def _column_values(result: SweepResult, name: str) -> list[Any]:
    column = result.columns[name]
    if name == "kernel":
        return [result.kernel_value(i) for i in column.tolist()]
    if name == "resolution":
        written = result.written_resolution
        return [value or written for value in column.tolist()]
    return [int(v) for v in column.tolist()] if column.dtype == object else column.tolist()


def sweep_dict(result: SweepResult, view: View = View()) -> dict[str, Any]:
    """Every point, exact integers (fractions as floats); ``kernel`` is 5 for 5x5, [1, 7] per axis, null for a
    whole network; ``resolution`` the input's side, as written when not swept (null for a non-square input)."""
    names = list(result.columns)
    lists = [_column_values(result, name) for name in names]
    return {
        "schema_version": SCHEMA_VERSION,
        "target": result.target,
        "input": {"shape": list(result.input_shape), "batch": result.batch, "dtype": result.dtype},
        "width_kind": result.width_kind,
        "swept": list(result.swept),
        "pareto_metrics": list(result.pareto_metrics),
        "count": len(result),
        "points": [dict(zip(names, values)) for values in zip(*lists)],
    }


def sweep_markdown(result: SweepResult, view: View = View()) -> str:
    exact = view.exact
    rows, note = _sweep_rows(result, view.limit)
    points = [result.point(i) for i in rows]
    largest = max([p["macs"] for p in points] + [0])
    axes = ["kernel"] * ("kernel" in result.swept) + ["resolution"] * ("resolution" in result.swept)
    measured = [key for key in _MEASURED if key in result.columns]
    head = ["Fraction" if result.width_kind == "fraction" else "Width", *(a.capitalize() for a in axes),
            "MACs", "vs none", "Params", "Peak activations", *(_MEASURED[key][0] for key in measured),
            "MACs bar (full = largest shown)", "Pareto"]
    lines = [f"**{_sweep_header(result)}**", "", "| " + " | ".join(head) + " |",
             "|" + "---:|" * (len(head) - 2) + "---|:---:|"]
    for p in points:
        cells = [_width_text(result, p), *(_kernel_text(p[a]) if a == "kernel" else str(p[a]) for a in axes),
                 human(p["macs"], "", exact),
                 format_ratio(p["baseline_macs"], p["macs"]) if p["applied"] else "not applied",
                 human(p["params"], "", exact), human(p["peak_activation_bytes"], "B", exact),
                 *(human(p[key], _MEASURED[key][1], exact) for key in measured),
                 f"`{bar(p['macs'], largest)}`" if p["macs"] else "", "*" if p["pareto"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", note]
    return "\n".join(lines) + "\n"


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        return "x".join(map(str, value))
    return "" if value is None else value


def sweep_csv(result: SweepResult, view: View = View()) -> str:
    """Every point, every column, exact integers (a per-axis kernel as 1x7; empty where JSON has null)."""
    names = list(result.columns)
    lists = [_column_values(result, name) for name in names]
    return csv_text(names, ([_csv_cell(v) for v in values] for values in zip(*lists)))


#: Output format -> renderer of a sweep (a test checks every format is here).
SWEEP_RENDERERS: Mapping[str, Callable[[SweepResult, View], Any]] = MappingProxyType(
    {"table": sweep_table, "json": sweep_dict, "markdown": sweep_markdown, "csv": sweep_csv})
