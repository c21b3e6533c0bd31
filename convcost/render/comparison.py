"""Render a comparison: Rich renderable | JSON-ready dict | Markdown | CSV (``COMPARISON_RENDERERS``).

Pure functions; nothing here prints. Lower is better for every compared
quantity, so a negative delta is a saving (green) and a positive one a cost
(red), and a bottleneck's extra intermediate tensor shows up in red next to
the MACs it saves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..compare import LAYER_FIELDS, TOTAL_FIELDS, Comparison, GroupDelta, LayerDelta
from ..units import format_shape, humanize
from .analysis import report_dict
from .common import SCHEMA_VERSION, View, csv_text, format_percent, format_ratio

__all__ = ["COMPARISON_RENDERERS", "METRICS", "compare_csv", "compare_dict", "compare_markdown", "compare_table",
           "delta_style", "human", "signed"]

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


def human(value: int | None, unit: str, exact: bool) -> str:
    if value is None:
        return "-"
    return humanize(value, unit, exact=exact).strip()


def signed(value: int, unit: str, exact: bool) -> str:
    text = humanize(value, unit, exact=exact).strip()
    return text if value <= 0 else f"+{text}"


def delta_style(delta: int) -> str:
    return "green" if delta < 0 else "red" if delta > 0 else "dim"


# --------------------------------------------------------------------------- dict

def _float_ratio(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _layer_values(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    values: dict[str, Any] = {"kind": row.kind, "output_shape": list(row.output_shape)}
    values.update({field: getattr(row, field) for field in LAYER_FIELDS})
    return values


def compare_dict(comparison: Comparison, view: View = View()) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- table

_STATUS_STYLE = {"added": "cyan", "removed": "magenta", "changed": "yellow", "same": "dim"}


def _title(comparison: Comparison) -> str:
    b, c = comparison.baseline, comparison.candidate
    return (f"{b.name} (baseline) vs {c.name} (candidate): input {format_shape(b.input_shape)}, "
            f"batch {b.batch}, {b.dtype} (MACs exclude bias)")


def totals_table(comparison: Comparison, *, exact: bool = False) -> Any:
    """One row per metric: baseline, candidate, change, ratio and percentage; worse values in red."""
    table = Table(title=_title(comparison), title_justify="left")
    for header in ("Total", "Baseline", "Candidate", "Change", "Ratio", "%"):
        table.add_column(header, justify="left" if header == "Total" else "right")
    for field in TABLE_TOTALS:
        label, unit = METRICS[field]
        base, cand = comparison.total("baseline", field), comparison.total("candidate", field)
        shade = delta_style(cand - base)
        table.add_row(
            label,
            human(base, unit, exact),
            Text(human(cand, unit, exact), style=shade),
            Text(signed(cand - base, unit, exact), style=shade),
            Text(format_ratio(base, cand), style=shade),
            Text(format_percent(base, cand), style=shade),
        )
    return table


def verdict(comparison: Comparison, *, exact: bool = False) -> str:
    """Better and worse totals in one or two lines of Rich markup (the cost as plain as the saving)."""
    better, worse = [], []
    for field in TABLE_TOTALS:
        label, unit = METRICS[field]
        base, cand = comparison.total("baseline", field), comparison.total("candidate", field)
        text = f"{label} {format_ratio(base, cand)} ({signed(cand - base, unit, exact)}, {format_percent(base, cand)})"
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
    text = Text(human(base, unit, exact))
    text.append(" → ")
    text.append(human(cand, unit, exact), style="dim" if cand is None else delta_style(cand - (base or 0)))
    return text


def layers_table(comparison: Comparison, *, exact: bool = False, by_block: bool = False) -> Any:
    """Per layer (or per top-level block): status, MACs, params and activation memory side by side;
    a candidate value is green when smaller, red when larger."""
    table = Table(title="Per block" if by_block else "Per layer", title_justify="left")
    table.add_column("Block" if by_block else "Layer")
    table.add_column("Status")
    table.add_column("MACs", justify="right")
    table.add_column("Ratio", justify="right")
    table.add_column("Params", justify="right")
    table.add_column("Activations", justify="right")
    rows: list[LayerDelta] | tuple[GroupDelta, ...] = comparison.groups() if by_block else list(comparison.layers)
    for row in rows:
        values: dict[str, tuple[int | None, int | None]]
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
            ratio_text = Text(format_ratio(macs_b or 0, macs_c or 0), style=delta_style((macs_c or 0) - (macs_b or 0)))
        table.add_row(
            row.name,
            Text(status, style=_STATUS_STYLE[status]),
            _pair(macs_b, macs_c, "", exact),
            ratio_text,
            _pair(*values["params"], "", exact),
            _pair(*values["activation_bytes"], "B", exact),
        )
    return table


def compare_table(comparison: Comparison, view: View = View()) -> Group:
    """The totals table followed by the per-layer (or per-block) table, as one renderable."""
    return Group(totals_table(comparison, exact=view.exact), Text.from_markup(verdict(comparison, exact=view.exact)),
                 layers_table(comparison, exact=view.exact, by_block=view.by_block))


# --------------------------------------------------------------------------- text formats

def compare_markdown(comparison: Comparison, view: View = View()) -> str:
    exact, by_block = view.exact, view.by_block
    lines = [f"**{_title(comparison)}**", "", "| Total | Baseline | Candidate | Change | Ratio | % |",
             "|---|---:|---:|---:|---:|---:|"]
    for field in TABLE_TOTALS:
        label, unit = METRICS[field]
        base, cand = comparison.total("baseline", field), comparison.total("candidate", field)
        lines.append(f"| {label} | {human(base, unit, exact)} | {human(cand, unit, exact)} | "
                     f"{signed(cand - base, unit, exact)} | {format_ratio(base, cand)} | "
                     f"{format_percent(base, cand)} |")
    lines += ["", f"| {'Block' if by_block else 'Layer'} | Status | Baseline MACs | Candidate MACs | Baseline params | "
                  "Candidate params | Baseline activations | Candidate activations |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    if by_block:
        for group in comparison.groups():
            status = "same" if set(group.statuses) == {"same"} else "changed"
            cells = [human(side[field], unit, exact) for field, unit in
                     (("macs", "MACs"), ("params", ""), ("activation_bytes", "B")) for side in (group.baseline,
                                                                                               group.candidate)]
            lines.append(f"| {group.name} | {status} | " + " | ".join(cells) + " |")
    else:
        for row in comparison.layers:
            cells = [human(row.value(side, field), unit, exact) for field, unit in
                     (("macs", "MACs"), ("params", ""), ("activation_bytes", "B")) for side in ("baseline",
                                                                                                "candidate")]
            lines.append(f"| {row.name} | {row.status} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare_csv(comparison: Comparison, view: View = View()) -> str:
    """One row per layer and one ``total`` row; exact integers; empty cells where a side is absent."""
    header = ["scope", "name", "status"]
    for field in TOTAL_FIELDS:
        header += [f"baseline_{field}", f"candidate_{field}", f"delta_{field}"]
    rows: list[list[Any]] = []
    for row in comparison.layers:
        cells: list[Any] = ["layer", row.name, row.status]
        for field in TOTAL_FIELDS:
            if field in LAYER_FIELDS:
                base, cand = row.value("baseline", field), row.value("candidate", field)
                cells += ["" if base is None else base, "" if cand is None else cand, row.delta(field)]
            else:
                cells += ["", "", ""]
        rows.append(cells)
    total: list[Any] = ["total", "", ""]
    for field in TOTAL_FIELDS:
        total += [comparison.total("baseline", field), comparison.total("candidate", field), comparison.delta(field)]
    rows.append(total)
    return csv_text(header, rows)


#: Output format -> renderer of a comparison (a test checks every format is here).
COMPARISON_RENDERERS: Mapping[str, Callable[[Comparison, View], Any]] = MappingProxyType(
    {"table": compare_table, "json": compare_dict, "markdown": compare_markdown, "csv": compare_csv})
