"""Render a sweep: Rich table | JSON-ready dict | Markdown | CSV (``SWEEP_RENDERERS``). Nothing here prints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text

from ..sweep import SweepResult
from ..units import format_shape
from .common import SCHEMA_VERSION, View, bar, csv_text, format_ratio
from .comparison import delta_style, human

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


def _sweep_header(result: Any) -> str:
    what = "fraction of input channels" if result.width_kind == "fraction" else "bottleneck width"
    return (f"sweep of {result.target}: input {format_shape(result.input_shape)}, batch {result.batch}, "
            f"{result.dtype}; {what} vs cost; * = Pareto-optimal (no design keeps at least the width "
            f"for no more {', '.join(result.pareto_metrics)})")


def sweep_table(result: SweepResult, view: View = View()) -> Table:
    """Per point: the swept values, MACs against the no-bottleneck design, params, peak memory,
    an inline bar of MACs and the Pareto mark."""
    exact = view.exact
    rows, note = _sweep_rows(result, view.limit)
    points = [result.point(i) for i in rows]
    largest = max([max(p["macs"], p["baseline_macs"]) for p in points] + [0])
    table = Table(title=_sweep_header(result), title_justify="left", caption=note, caption_justify="left")
    table.add_column("Fraction" if result.width_kind == "fraction" else "Width", justify="right")
    if "kernel" in result.swept:
        table.add_column("Kernel", justify="right")
    if "resolution" in result.swept:
        table.add_column("Resolution", justify="right")
    for header in ("MACs", "vs none", "Params", "Peak activations"):
        table.add_column(header, justify="right")
    table.add_column("MACs (bar: full = largest shown)", no_wrap=True)
    table.add_column("*", justify="center")
    for point in points:
        cells: list[Any] = [_width_text(result, point)]
        if "kernel" in result.swept:
            cells.append(point["kernel"])
        if "resolution" in result.swept:
            cells.append(str(point["resolution"]))
        base = point["baseline_macs"]
        cells += [
            human(point["macs"], "", exact),
            Text(format_ratio(base, point["macs"]) if point["applied"] else "not applied",
                 style=delta_style(point["macs"] - base) if point["applied"] else "dim"),
            human(point["params"], "", exact),
            Text(human(point["peak_activation_bytes"], "B", exact),
                 style=delta_style(point["peak_activation_bytes"] - point["baseline_peak_activation_bytes"])),
            Text(bar(point["macs"], largest), style="green" if point["pareto"] else "blue"),
            "*" if point["pareto"] else "",
        ]
        table.add_row(*cells)
    return table


def sweep_dict(result: SweepResult, view: View = View()) -> dict[str, Any]:
    """Every point, exact integers (fractions as floats)."""
    names = list(result.columns)
    lists = []
    for name in names:
        column = result.columns[name]
        if name == "kernel":
            lists.append([result.kernel_labels[i] for i in column.tolist()])
        else:
            lists.append([int(v) for v in column.tolist()] if column.dtype == object else column.tolist())
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
    largest = max([max(p["macs"], p["baseline_macs"]) for p in points] + [0])
    axes = ["kernel"] * ("kernel" in result.swept) + ["resolution"] * ("resolution" in result.swept)
    head = ["Fraction" if result.width_kind == "fraction" else "Width", *(a.capitalize() for a in axes),
            "MACs", "vs none", "Params", "Peak activations", "MACs bar", "Pareto"]
    lines = [f"**{_sweep_header(result)}**", "", "| " + " | ".join(head) + " |",
             "|" + "---:|" * (len(head) - 2) + "---|:---:|"]
    for p in points:
        cells = [_width_text(result, p), *(str(p[a]) for a in axes), human(p["macs"], "", exact),
                 format_ratio(p["baseline_macs"], p["macs"]) if p["applied"] else "not applied",
                 human(p["params"], "", exact), human(p["peak_activation_bytes"], "B", exact),
                 f"`{bar(p['macs'], largest)}`" if p["macs"] else "", "*" if p["pareto"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", note]
    return "\n".join(lines) + "\n"


def sweep_csv(result: SweepResult, view: View = View()) -> str:
    """Every point, every column, exact integers."""
    names = list(result.columns)
    points = sweep_dict(result)["points"]
    return csv_text(names, ([int(v) if isinstance(v, bool) else v for v in (point[n] for n in names)]
                            for point in points))


#: Output format -> renderer of a sweep (a test checks every format is here).
SWEEP_RENDERERS: Mapping[str, Callable[[SweepResult, View], Any]] = MappingProxyType(
    {"table": sweep_table, "json": sweep_dict, "markdown": sweep_markdown, "csv": sweep_csv})
