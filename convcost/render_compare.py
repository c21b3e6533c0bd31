"""Render a comparison or a sweep: Rich renderable | JSON-ready dict | markdown str | csv str.

Pure functions; nothing here prints. Lower is better for every compared
quantity, so a negative delta is a saving (green) and a positive one a cost
(red), and a bottleneck's extra intermediate tensor shows up in red next to
the MACs it saves.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from .compare import LAYER_FIELDS, TOTAL_FIELDS, Comparison, GroupDelta, LayerDelta
from .layers import format_shape
from .render_json import SCHEMA_VERSION, report_dict
from .units import humanize

__all__ = [
    "COMPARE_RENDERERS",
    "SWEEP_RENDERERS",
    "compare_csv",
    "compare_dict",
    "compare_markdown",
    "compare_table",
    "format_percent",
    "format_ratio",
    "sweep_csv",
    "sweep_dict",
    "sweep_markdown",
    "sweep_table",
]

#: Display name and unit (for humanize) of each compared quantity.
METRICS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "macs": ("MACs", ""),
    "flops": ("FLOPs", ""),
    "params": ("Params", ""),
    "buffers": ("Buffers", ""),
    "weight_bytes": ("Weight memory", "B"),
    "buffer_bytes": ("Buffer memory", "B"),
    "input_bytes": ("Input memory", "B"),
    "activation_bytes": ("Activations (sum)", "B"),
    "peak_activation_bytes": ("Peak activations", "B"),
})
#: Rows of the totals table, in order (the issue's list: compute, weights, memory).
TABLE_TOTALS = ("macs", "flops", "params", "weight_bytes", "activation_bytes", "peak_activation_bytes")


def _round_half_up(value: Fraction, digits: int) -> str:
    scale = 10**digits
    sign = "-" if value < 0 else ""
    scaled = (abs(value) * scale * 2 + 1) // 2
    whole, frac = divmod(int(scaled), scale)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def format_ratio(baseline: int, candidate: int) -> str:
    """``9.68x fewer`` / ``1.07x more`` / ``same`` (two decimals, rounded half up, exact)."""
    if baseline == candidate:
        return "same"
    if candidate == 0:
        return "all saved"
    if baseline == 0:
        return "new"
    if candidate < baseline:
        return f"{_round_half_up(Fraction(baseline, candidate), 2)}x fewer"
    return f"{_round_half_up(Fraction(candidate, baseline), 2)}x more"


def format_percent(baseline: int, candidate: int) -> str:
    """Change relative to the baseline: ``-89.7%``, ``+3.6%``; ``-`` when the baseline is 0."""
    if baseline == 0:
        return "-" if candidate == 0 else "new"
    if candidate == baseline:
        return "0.0%"
    change = Fraction(candidate - baseline, baseline) * 100
    text = _round_half_up(change, 1) + "%"
    return text if change < 0 else f"+{text}"


def _human(value: int | None, unit: str, exact: bool) -> str:
    if value is None:
        return "-"
    return humanize(value, unit, exact=exact).strip()


def _signed(value: int, unit: str, exact: bool) -> str:
    text = humanize(value, unit, exact=exact).strip()
    return text if value <= 0 else f"+{text}"


def _style(delta: int) -> str:
    return "green" if delta < 0 else "red" if delta > 0 else "dim"


# --------------------------------------------------------------------------- compare: dict

def _float_ratio(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _layer_values(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    values: dict[str, Any] = {"kind": row.kind, "output_shape": list(row.output_shape)}
    values.update({field: getattr(row, field) for field in LAYER_FIELDS})
    return values


def compare_dict(comparison: Comparison) -> dict[str, Any]:
    """One JSON document: both analyze-shaped reports, total deltas and ratios, per-layer matches."""
    delta: dict[str, Any] = comparison.deltas()
    delta["flops_by_category"] = comparison.flops_by_category_delta()
    return {
        "schema_version": SCHEMA_VERSION,
        "baseline": report_dict(comparison.baseline),
        "candidate": report_dict(comparison.candidate),
        "delta": delta,
        "ratio": {field: _float_ratio(value) for field, value in comparison.ratios().items()},
        "counts": comparison.counts(),
        "layers": [
            {
                "name": row.name,
                "status": row.status,
                "baseline": _layer_values(row.baseline),
                "candidate": _layer_values(row.candidate),
                "delta": {field: row.delta(field) for field in LAYER_FIELDS},
            }
            for row in comparison.layers
        ],
        "groups": [
            {
                "name": group.name,
                "baseline": group.baseline,
                "candidate": group.candidate,
                "delta": {field: group.delta(field) for field in LAYER_FIELDS},
                "ratio": {field: _float_ratio(group.ratio(field)) for field in LAYER_FIELDS},
            }
            for group in comparison.groups()
        ],
    }


# --------------------------------------------------------------------------- compare: table

_STATUS_STYLE = {"added": "cyan", "removed": "magenta", "changed": "yellow", "same": "dim"}


def _title(comparison: Comparison) -> str:
    b, c = comparison.baseline, comparison.candidate
    return (f"{b.name} (baseline) vs {c.name} (candidate): input {format_shape(b.input_shape)}, "
            f"batch {b.batch}, {b.dtype} (MACs exclude bias)")


def totals_table(comparison: Comparison, *, exact: bool = False) -> Any:
    """One row per metric: baseline, candidate, change, ratio and percentage; worse values in red."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=_title(comparison), title_justify="left")
    for header in ("Total", "Baseline", "Candidate", "Change", "Ratio", "%"):
        table.add_column(header, justify="left" if header == "Total" else "right")
    for field in TABLE_TOTALS:
        label, unit = METRICS[field]
        base, cand = comparison.total("baseline", field), comparison.total("candidate", field)
        style = _style(cand - base)
        table.add_row(
            label,
            _human(base, unit, exact),
            Text(_human(cand, unit, exact), style=style),
            Text(_signed(cand - base, unit, exact), style=style),
            Text(format_ratio(base, cand), style=style),
            Text(format_percent(base, cand), style=style),
        )
    return table


def verdict(comparison: Comparison, *, exact: bool = False) -> str:
    """Better and worse totals in one or two lines of Rich markup (the cost as plain as the saving)."""
    better, worse = [], []
    for field in TABLE_TOTALS:
        label, unit = METRICS[field]
        base, cand = comparison.total("baseline", field), comparison.total("candidate", field)
        text = f"{label} {format_ratio(base, cand)} ({_signed(cand - base, unit, exact)}, {format_percent(base, cand)})"
        if cand < base:
            better.append(text)
        elif cand > base:
            worse.append(text)
    lines = []
    if better:
        lines.append("[green]Better: " + "; ".join(better) + "[/green]")
    if worse:
        added = [row for row in comparison.layers if row.status == "added"]
        cause = f" ({len(added)} added layer{'s' if len(added) != 1 else ''} with new tensors)" if added else ""
        lines.append(f"[red]Worse{cause}: " + "; ".join(worse) + "[/red]")
    return "\n".join(lines) or "No difference in totals."


def _pair(base: int | None, cand: int | None, unit: str, exact: bool) -> Any:
    from rich.text import Text

    text = Text(_human(base, unit, exact))
    text.append(" → ")
    style = "dim" if cand is None else _style(cand - (base or 0))
    text.append(_human(cand, unit, exact), style=style)
    return text


def layers_table(comparison: Comparison, *, exact: bool = False, by_block: bool = False) -> Any:
    """Per layer (or per top-level block): status, MACs, params and activation memory side by side;
    a candidate value is green when smaller, red when larger."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Per block" if by_block else "Per layer", title_justify="left")
    table.add_column("Block" if by_block else "Layer")
    table.add_column("Status")
    table.add_column("MACs", justify="right")
    table.add_column("Ratio", justify="right")
    table.add_column("Params", justify="right")
    table.add_column("Activations", justify="right")
    rows: list[LayerDelta] | tuple[GroupDelta, ...] = comparison.groups() if by_block else list(comparison.layers)
    for row in rows:
        if isinstance(row, GroupDelta):
            status = "same" if set(row.statuses) == {"same"} else "changed"
            values = {field: (row.baseline[field], row.candidate[field]) for field in LAYER_FIELDS}
        else:
            status = row.status
            values = {field: (row.value("baseline", field), row.value("candidate", field)) for field in LAYER_FIELDS}
        macs_b, macs_c = values["macs"]
        if status in ("added", "removed"):
            ratio_text = Text(status, style=_STATUS_STYLE[status])
        else:
            ratio_text = Text(format_ratio(macs_b or 0, macs_c or 0), style=_style((macs_c or 0) - (macs_b or 0)))
        table.add_row(
            row.name,
            Text(status, style=_STATUS_STYLE[status]),
            _pair(macs_b, macs_c, "", exact),
            ratio_text,
            _pair(*values["params"], "", exact),
            _pair(*values["activation_bytes"], "B", exact),
        )
    return table


def compare_table(comparison: Comparison, *, exact: bool = False, by_block: bool = False) -> Any:
    """The totals table followed by the per-layer (or per-block) table, as one renderable."""
    from rich.console import Group
    from rich.text import Text

    return Group(totals_table(comparison, exact=exact), Text.from_markup(verdict(comparison, exact=exact)),
                 layers_table(comparison, exact=exact, by_block=by_block))


# --------------------------------------------------------------------------- compare: text formats

def compare_markdown(comparison: Comparison, *, exact: bool = False, by_block: bool = False) -> str:
    lines = [f"**{_title(comparison)}**", "", "| Total | Baseline | Candidate | Change | Ratio | % |",
             "|---|---:|---:|---:|---:|---:|"]
    for field in TABLE_TOTALS:
        label, unit = METRICS[field]
        base, cand = comparison.total("baseline", field), comparison.total("candidate", field)
        lines.append(f"| {label} | {_human(base, unit, exact)} | {_human(cand, unit, exact)} | "
                     f"{_signed(cand - base, unit, exact)} | {format_ratio(base, cand)} | {format_percent(base, cand)} |")
    lines += ["", f"| {'Block' if by_block else 'Layer'} | Status | Baseline MACs | Candidate MACs | Baseline params | "
                  "Candidate params | Baseline activations | Candidate activations |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    if by_block:
        for group in comparison.groups():
            status = "same" if set(group.statuses) == {"same"} else "changed"
            cells = [_human(side[field], unit, exact) for field, unit in
                     (("macs", "MACs"), ("params", ""), ("activation_bytes", "B")) for side in (group.baseline,
                                                                                               group.candidate)]
            lines.append(f"| {group.name} | {status} | " + " | ".join(cells) + " |")
    else:
        for row in comparison.layers:
            cells = [_human(row.value(side, field), unit, exact) for field, unit in
                     (("macs", "MACs"), ("params", ""), ("activation_bytes", "B")) for side in ("baseline",
                                                                                                "candidate")]
            lines.append(f"| {row.name} | {row.status} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare_csv(comparison: Comparison) -> str:
    """One row per layer and one ``total`` row; exact integers; empty cells where a side is absent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["scope", "name", "status"]
    for field in TOTAL_FIELDS:
        header += [f"baseline_{field}", f"candidate_{field}", f"delta_{field}"]
    writer.writerow(header)
    for row in comparison.layers:
        cells: list[Any] = ["layer", row.name, row.status]
        for field in TOTAL_FIELDS:
            if field in LAYER_FIELDS:
                base, cand = row.value("baseline", field), row.value("candidate", field)
                cells += ["" if base is None else base, "" if cand is None else cand, row.delta(field)]
            else:
                cells += ["", "", ""]
        writer.writerow(cells)
    total: list[Any] = ["total", "", ""]
    for field in TOTAL_FIELDS:
        total += [comparison.total("baseline", field), comparison.total("candidate", field), comparison.delta(field)]
    writer.writerow(total)
    return buffer.getvalue()


#: Output format -> renderer of a comparison (a test checks every format is here).
COMPARE_RENDERERS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "table": compare_table,
    "json": lambda comparison, **_: compare_dict(comparison),
    "markdown": compare_markdown,
    "csv": lambda comparison, **_: compare_csv(comparison),
})


# --------------------------------------------------------------------------- sweep

_BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: int, largest: int, width: int = 24) -> str:
    """An inline bar of ``width`` characters at full scale, in eighths of a character."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = (value * width * 8 + largest - 1) // largest  # round up: a non-zero value always shows
    full, part = divmod(min(eighths, width * 8), 8)
    return "█" * full + (_BLOCKS[part] if part else "")


def _sweep_rows(result: Any, limit: int | None) -> tuple[list[int], str]:
    """Which points a table shows: all when they fit, else the Pareto-optimal ones (evenly thinned)."""
    import numpy as np

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


def _width_text(result: Any, point: Mapping[str, Any]) -> str:
    return f"{point['width']:g}" if result.width_kind == "fraction" else str(point["width"])


def _sweep_header(result: Any) -> str:
    what = "fraction of input channels" if result.width_kind == "fraction" else "bottleneck width"
    return (f"sweep of {result.target}: input {format_shape(result.input_shape)}, batch {result.batch}, "
            f"{result.dtype}; {what} vs cost; * = Pareto-optimal (no design keeps at least the width "
            f"for no more {', '.join(result.pareto_metrics)})")


def sweep_table(result: Any, *, exact: bool = False, limit: int | None = 40) -> Any:
    """Per point: the swept values, MACs against the no-bottleneck design, params, peak memory,
    an inline bar of MACs and the Pareto mark."""
    from rich.table import Table
    from rich.text import Text

    rows, note = _sweep_rows(result, limit)
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
            _human(point["macs"], "", exact),
            Text(format_ratio(base, point["macs"]) if point["applied"] else "not applied",
                 style=_style(point["macs"] - base) if point["applied"] else "dim"),
            _human(point["params"], "", exact),
            Text(_human(point["peak_activation_bytes"], "B", exact),
                 style=_style(point["peak_activation_bytes"] - point["baseline_peak_activation_bytes"])),
            Text(bar(point["macs"], largest), style="green" if point["pareto"] else "blue"),
            "*" if point["pareto"] else "",
        ]
        table.add_row(*cells)
    return table


def sweep_dict(result: Any) -> dict[str, Any]:
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


def sweep_markdown(result: Any, *, exact: bool = False, limit: int | None = 40) -> str:
    rows, note = _sweep_rows(result, limit)
    points = [result.point(i) for i in rows]
    largest = max([max(p["macs"], p["baseline_macs"]) for p in points] + [0])
    axes = ["kernel"] * ("kernel" in result.swept) + ["resolution"] * ("resolution" in result.swept)
    head = ["Fraction" if result.width_kind == "fraction" else "Width", *(a.capitalize() for a in axes),
            "MACs", "vs none", "Params", "Peak activations", "MACs bar", "Pareto"]
    lines = [f"**{_sweep_header(result)}**", "", "| " + " | ".join(head) + " |",
             "|" + "---:|" * (len(head) - 2) + "---|:---:|"]
    for p in points:
        cells = [_width_text(result, p), *(str(p[a]) for a in axes), _human(p["macs"], "", exact),
                 format_ratio(p["baseline_macs"], p["macs"]) if p["applied"] else "not applied",
                 _human(p["params"], "", exact), _human(p["peak_activation_bytes"], "B", exact),
                 f"`{bar(p['macs'], largest)}`" if p["macs"] else "", "*" if p["pareto"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", note]
    return "\n".join(lines) + "\n"


def sweep_csv(result: Any) -> str:
    """Every point, every column, exact integers."""
    document = sweep_dict(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(result.columns)
    writer.writerow(names)
    for point in document["points"]:
        writer.writerow([int(v) if isinstance(v, bool) else v for v in (point[n] for n in names)])
    return buffer.getvalue()


#: Output format -> renderer of a sweep (a test checks every format is here).
SWEEP_RENDERERS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "table": sweep_table,
    "json": lambda result, **_: sweep_dict(result),
    "markdown": sweep_markdown,
    "csv": lambda result, **_: sweep_csv(result),
})
