"""Render a comparison: Rich renderable | JSON-ready dict | Markdown | CSV (``COMPARISON_RENDERERS``).

Pure functions; nothing here prints. Lower is better for every compared
quantity, so a negative delta is a saving (green) and a positive one a cost
(red), and a bottleneck's extra intermediate tensor shows up in red next to
the MACs it saves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from ..bottleneck import SKIP_CATEGORIES
from ..compare import LAYER_FIELDS, TOTAL_FIELDS, Comparison
from ..units import format_seconds, format_shape, humanize
from .analysis import CONVENTIONS_HINT, report_dict
from .common import SCHEMA_VERSION, View, code, csv_text, escape, format_percent, format_ratio
from .layout import Cell, Column, Lines, choose_columns, glyphs_for, layout, wrap_parts

__all__ = ["COMPARISON_RENDERERS", "MATCHING_RULE", "METRICS", "compare_csv", "compare_dict", "compare_markdown",
           "compare_table", "delta_style", "header_lines", "human", "layers_table", "matching_sentence", "signed",
           "skipped_sentences", "totals_table", "verdict"]

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
    "macs_nonpadding": ("MACs (no pad)", ""),
    "training_macs": ("Training MACs", ""),
    "saved_activation_bytes": ("Saved for backward", "B"),
    "training_memory_bytes": ("Training memory", "B"),
    "roofline_seconds": ("Roofline time", "s"),
})
#: Rows of the totals table, in order (the issue's list: compute, weights, memory), then the figures beyond
#: MACs both sides have (training, and the roofline with --hardware).
TABLE_TOTALS = ("macs", "flops", "params", "weight_bytes", "activation_bytes", "peak_activation_bytes")
TABLE_FIGURES = ("training_macs", "training_memory_bytes", "roofline_seconds")


def total_rows(comparison: Comparison) -> list[tuple[str, int | Fraction, int | Fraction]]:
    """(field, baseline, candidate) for each row of the totals table."""
    rows: list[tuple[str, int | Fraction, int | Fraction]] = [
        (field, comparison.total("baseline", field), comparison.total("candidate", field)) for field in TABLE_TOTALS]
    return rows + [row for row in comparison.figure_pairs() if row[0] in TABLE_FIGURES]


def human(value: int | Fraction | None, unit: str, exact: bool) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return format_seconds(value)
    assert isinstance(value, int)
    return humanize(value, unit, exact=exact).strip()


def signed(value: int | Fraction, unit: str, exact: bool) -> str:
    if unit == "s":
        text = format_seconds(-value if value < 0 else value)
        return "0 s" if value == 0 else f"-{text}" if value < 0 else f"+{text}"
    assert isinstance(value, int)
    text = humanize(value, unit, exact=exact).strip()
    return text if value <= 0 else f"+{text}"


def delta_style(delta: int | Fraction) -> str:
    return "green" if delta < 0 else "red" if delta > 0 else "dim"


# --------------------------------------------------------------------------- dict

def _float_ratio(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _layer_values(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    values: dict[str, Any] = {"name": row.name, "kind": row.kind, "output_shape": list(row.output_shape),
                              "options": {key: list(value) if isinstance(value, tuple) else value
                                          for key, value in row.options}}
    values.update({field: getattr(row, field) for field in LAYER_FIELDS})
    return values


def _side(comparison: Comparison, side: int) -> dict[str, Any]:
    report = comparison.baseline if side == 0 else comparison.candidate
    return {"label": comparison.labels[side], "name": report.name, "source": report.source,
            "input_shape": list(report.input_shape)}


def compare_dict(comparison: Comparison, view: View = View()) -> dict[str, Any]:
    """One JSON document: both analyze-shaped reports, total deltas and ratios, per-layer matches
    (how each pair was matched) and the convs a bottleneck rewrite skipped."""
    delta: dict[str, Any] = {field: float(value) if isinstance(value, Fraction) else value
                             for field, value in comparison.deltas().items()}
    delta["flops_by_category"] = comparison.flops_by_category_delta()
    return {
        "schema_version": SCHEMA_VERSION,
        "sides": {"baseline": _side(comparison, 0), "candidate": _side(comparison, 1)},
        "baseline": report_dict(comparison.baseline),
        "candidate": report_dict(comparison.candidate),
        "delta": delta,
        "ratio": {field: _float_ratio(value) for field, value in comparison.ratios().items()},
        "counts": comparison.counts(),
        "matching": {"rule": MATCHING_RULE, **{f"by_{how}": count for how, count in comparison.matching().items()}},
        "skipped": [{"name": skip.name, "category": skip.category, "reason": skip.reason}
                    for skip in comparison.skipped],
        "layers": [
            {
                "name": row.name,
                "status": row.status,
                "matched_by": row.matched_by,
                "baseline": _layer_values(row.baseline),
                "candidate": _layer_values(row.candidate),
                "delta": {field: row.delta(field) for field in LAYER_FIELDS},
            }
            for row in comparison.layers
        ],
        "groups": [
            {
                "name": group.name,
                "status": _group_status(group.statuses),
                "baseline": group.baseline,
                "candidate": group.candidate,
                "delta": {field: group.delta(field) for field in LAYER_FIELDS},
                "ratio": {field: _float_ratio(group.ratio(field)) for field in LAYER_FIELDS},
            }
            for group in comparison.groups()
        ],
    }


# --------------------------------------------------------------------------- table

MATCHING_RULE = ("layers are matched by name where both sides name one, else by kind and kernel in order "
                 "within their block; replaced = a different kind or kernel shape")


_STATUS_STYLE = {"added": "cyan", "removed": "magenta", "changed": "yellow", "replaced": "yellow", "same": "dim"}


def _group_status(statuses: Sequence[str]) -> str:
    return "same" if set(statuses) <= {"same"} else "changed"


def source_text(report: Any) -> str:
    """Where a side came from: its spec's path (kept whole when a header wraps), or ``flags``."""
    return "flags" if report.source == "<command line>" else report.source


def header_lines(comparison: Comparison, width: int | None) -> list[str]:
    """Both sides (label, source and input) and the common settings, wrapped between whole parts."""
    lines = []
    for index, (role, report) in enumerate((("Baseline:", comparison.baseline), ("Candidate:", comparison.candidate))):
        words = comparison.labels[index].split(" ")
        lines += wrap_parts([f"{role:<10} {words[0]}", *words[1:-1], f"{words[-1]};", f"{source_text(report)},",
                             f"input {format_shape(report.input_shape)}"] if len(words) > 1 else
                            [f"{role:<10} {words[0]};", f"{source_text(report)},",
                             f"input {format_shape(report.input_shape)}"], width)
    b = comparison.baseline
    lines += wrap_parts([f"batch {b.batch},", f"{b.dtype};", "MACs exclude bias", f"({CONVENTIONS_HINT})"], width)
    return lines


def _totals_columns(comparison: Comparison, exact: bool, width: int | None) -> list[Column]:
    rows = []
    for field, base, cand in total_rows(comparison):
        label, unit = METRICS[field]
        shade = delta_style(cand - base)
        rows.append((label, human(base, unit, exact), (human(cand, unit, exact), shade),
                     (signed(cand - base, unit, exact), shade), (format_ratio(base, cand), shade),
                     (format_percent(base, cand), shade)))
    headers = ("Total", "Baseline", "Candidate", "Change", "Ratio", "%")
    keys = ("total", "baseline", "candidate", "change", "ratio", "percent")
    candidates = [(key, (lambda i=i, key=key: Column(key, headers[i], [row[i] for row in rows], right=i > 0)))
                  for i, key in enumerate(keys)]
    return choose_columns(candidates, (("total", "baseline", "candidate", "ratio"), ("percent",), ("change",)), width)


def totals_table(comparison: Comparison, *, exact: bool = False, width: int | None = None,
                 ascii: bool = False) -> Lines:
    """One row per metric: baseline, candidate, change, ratio and percentage; worse values in red."""
    return layout(_totals_columns(comparison, exact, width), glyphs=glyphs_for(ascii))


def verdict_parts(comparison: Comparison, *, exact: bool = False) -> list[tuple[str, list[str]]]:
    """("green", parts of the 'Better:' sentence) and ("red", parts of 'Worse:'), where there are any."""
    better, worse = [], []
    for field, base, cand in total_rows(comparison):
        label, unit = METRICS[field]
        text = f"{label} {format_ratio(base, cand)} ({signed(cand - base, unit, exact)}, {format_percent(base, cand)})"
        if cand < base:
            better.append(text)
        elif cand > base:
            worse.append(text)
    sentences = []
    if better:
        sentences.append(("green", ["Better:", *_joined(better)]))
    if worse:
        added = [row for row in comparison.layers if row.status == "added"]
        cause = f" ({len(added)} added layer{'s' if len(added) != 1 else ''} with new tensors)" if added else ""
        sentences.append(("red", [f"Worse{cause}:", *_joined(worse)]))
    return sentences


def _joined(items: list[str]) -> list[str]:
    return [item + (";" if index < len(items) - 1 else "") for index, item in enumerate(items)]


def verdict(comparison: Comparison, *, exact: bool = False) -> str:
    """Better and worse totals, one sentence each (plain text)."""
    sentences = verdict_parts(comparison, exact=exact)
    return "\n".join(" ".join(parts) for _, parts in sentences) or "No difference in totals."


def _pairs(values: Sequence[tuple[int | None, int | None]], unit: str, exact: bool, arrow: str) -> list[Cell]:
    """``baseline → candidate`` cells whose arrows line up; coloured by the change."""
    left = [human(b, unit, exact) for b, _ in values]
    right = [human(c, unit, exact) for _, c in values]
    wide_left, wide_right = max(map(len, left), default=0), max(map(len, right), default=0)
    return [(f"{before:>{wide_left}} {arrow} {after:>{wide_right}}",
             "dim" if c is None or b is None else delta_style(c - b))
            for before, after, (b, c) in zip(left, right, values)]


class _Row:
    def __init__(self, level: int, label: str, status: str, values: dict[str, tuple[int | None, int | None]],
                 block: bool):
        self.level, self.label, self.status, self.values, self.block = level, label, status, values, block


def _tree_rows(comparison: Comparison, arrow: str) -> list[_Row]:
    """The per-layer rows with a subtotal row before each block's layers, indented by level; a layer matched
    to a baseline layer of another name shows ``baseline → candidate``."""
    rows: list[_Row] = []
    opened: list[tuple[str, _Row]] = []
    for delta in comparison.layers:
        parts = delta.name.split(".")
        while opened and not delta.name.startswith(opened[-1][0] + "."):
            opened.pop()
        for level in range(len(opened), len(parts) - 1):
            prefix = ".".join(parts[:level + 1])
            block = _Row(level, parts[level], "same", {field: (0, 0) for field in LAYER_FIELDS}, True)
            opened.append((prefix, block))
            rows.append(block)
        values = {field: (delta.value("baseline", field), delta.value("candidate", field)) for field in LAYER_FIELDS}
        label = parts[-1]
        if delta.baseline is not None and delta.candidate is not None:
            before = delta.baseline.name.rsplit(".", 1)[-1]
            if before != label:
                label = f"{before} {arrow} {label}"
        rows.append(_Row(len(parts) - 1, label, delta.status, values, False))
        for _, block in opened:
            block.values = {field: ((block.values[field][0] or 0) + (values[field][0] or 0),
                                    (block.values[field][1] or 0) + (values[field][1] or 0)) for field in LAYER_FIELDS}
            if delta.status != "same":
                block.status = "changed"
    return rows


def layers_table(comparison: Comparison, *, exact: bool = False, by_block: bool = False, width: int | None = None,
                 ascii: bool = False) -> Lines:
    """Per layer (tree-indented, with block subtotals) or per top-level block: status, MACs, params and
    activation memory side by side; a candidate value is green when smaller, red when larger."""
    glyphs = glyphs_for(ascii)
    rows: list[_Row]
    if by_block:
        rows = [_Row(0, group.name, _group_status(group.statuses),
                     {field: (group.baseline[field], group.candidate[field]) for field in LAYER_FIELDS}, False)
                for group in comparison.groups()]
    else:
        rows = _tree_rows(comparison, glyphs.arrow)
    statuses: list[Cell] = [(row.status, _STATUS_STYLE[row.status]) for row in rows]
    ratios: list[Cell] = []
    for row in rows:
        base, cand = row.values["macs"]
        if row.status in ("added", "removed"):
            ratios.append((row.status, _STATUS_STYLE[row.status]))
        else:
            ratios.append((format_ratio(base or 0, cand or 0), delta_style((cand or 0) - (base or 0))))
    makers: dict[str, Callable[[], Column]] = {
        "layer": lambda: Column("layer", "Block" if by_block else "Layer", ["  " * r.level + r.label for r in rows]),
        "status": lambda: Column("status", "Status", statuses),
        "macs": lambda: Column("macs", "MACs", _pairs([r.values["macs"] for r in rows], "", exact, glyphs.arrow),
                               right=True),
        "ratio": lambda: Column("ratio", "Ratio", ratios, right=True),
        "params": lambda: Column("params", "Params", _pairs([r.values["params"] for r in rows], "", exact,
                                                            glyphs.arrow), right=True),
        "activations": lambda: Column("activations", "Activations",
                                      _pairs([r.values["activation_bytes"] for r in rows], "B", exact, glyphs.arrow),
                                      right=True),
    }
    steps = (("layer", "status", "macs"), ("ratio",), ("params",), ("activations",))
    columns = choose_columns(list(makers.items()), steps, width)
    return layout(columns, glyphs=glyphs, row_styles=["bold" if row.block else None for row in rows])


def matching_sentence(comparison: Comparison, arrow: str = "→") -> str:
    counts, how = comparison.counts(), comparison.matching()
    renamed = any(row.baseline is not None and row.candidate is not None
                  and row.baseline.name.rsplit(".", 1)[-1] != row.candidate.name.rsplit(".", 1)[-1]
                  for row in comparison.layers)
    layers = "layer" if how["name"] == 1 else "layers"
    text = (f"Matched {how['name']} {layers} by name and {how['position']} by kind and position within their "
            f"block; {counts['replaced']} replaced (a different kind or kernel), {counts['added']} added, "
            f"{counts['removed']} removed.")
    if renamed:
        text += f" 'a {arrow} b' pairs baseline layer a with candidate layer b."
    return text


def skipped_sentences(comparison: Comparison) -> list[str]:
    """One sentence per kind of reason the rewrite left convs alone: how many, and which (the first few)."""
    by_category: dict[str, list[str]] = {}
    for skip in comparison.skipped:
        by_category.setdefault(skip.category, []).append(skip.name)
    sentences = []
    for category, names in by_category.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        count = f"{len(names)} conv{'s' if len(names) != 1 else ''}"
        sentences.append(f"Left alone: {count}, {SKIP_CATEGORIES[category]}: {shown}.")
    return sentences


def _sentence(lines: Lines, text: str, width: int | None, style: str | None = None) -> None:
    for part in wrap_parts(text.split(" "), width):
        lines.add((part, style))


def compare_table(comparison: Comparison, view: View = View()) -> Lines:
    """Both sides, the totals table and the verdict, then the per-layer (or per-block) table, how rows were
    matched and what a rewrite left alone."""
    width, glyphs = view.width, glyphs_for(view.ascii)
    lines = Lines()
    for text in header_lines(comparison, width):
        lines.add(text)
    lines.extend(totals_table(comparison, exact=view.exact, width=width, ascii=view.ascii))
    sentences = verdict_parts(comparison, exact=view.exact)
    for style, parts in sentences:
        for text in wrap_parts(parts, width):
            lines.add((text, style))
    if not sentences:
        lines.add("No difference in totals.")
    lines.blank().add(("Per block" if view.by_block else "Per layer", "bold"))
    lines.extend(layers_table(comparison, exact=view.exact, by_block=view.by_block, width=width, ascii=view.ascii))
    _sentence(lines, matching_sentence(comparison, glyphs.arrow), width)
    for text in skipped_sentences(comparison):
        _sentence(lines, text, width)
    return lines


# --------------------------------------------------------------------------- text formats

def compare_markdown(comparison: Comparison, view: View = View()) -> str:
    exact, by_block = view.exact, view.by_block
    b, c = comparison.baseline, comparison.candidate
    lines = [f"**Baseline:** {escape(comparison.labels[0])}; {code(source_text(b))}, "
             f"input {format_shape(b.input_shape)}  ",
             f"**Candidate:** {escape(comparison.labels[1])}; {code(source_text(c))}, "
             f"input {format_shape(c.input_shape)}  ",
             f"batch {b.batch}, {b.dtype}; MACs exclude bias", "",
             "| Total | Baseline | Candidate | Change | Ratio | % |", "|---|---:|---:|---:|---:|---:|"]
    for field, base, cand in total_rows(comparison):
        label, unit = METRICS[field]
        lines.append(f"| {label} | {human(base, unit, exact)} | {human(cand, unit, exact)} | "
                     f"{signed(cand - base, unit, exact)} | {format_ratio(base, cand)} | "
                     f"{format_percent(base, cand)} |")
    lines += ["", f"| {'Block' if by_block else 'Layer'} | Status | Baseline MACs | Candidate MACs | Baseline params | "
                  "Candidate params | Baseline activations | Candidate activations |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    if by_block:
        for group in comparison.groups():
            cells = [human(side[field], unit, exact) for field, unit in
                     (("macs", "MACs"), ("params", ""), ("activation_bytes", "B")) for side in (group.baseline,
                                                                                               group.candidate)]
            lines.append(f"| {group.name} | {_group_status(group.statuses)} | " + " | ".join(cells) + " |")
    else:
        for row in comparison.layers:
            cells = [human(row.value(side, field), unit, exact) for field, unit in
                     (("macs", "MACs"), ("params", ""), ("activation_bytes", "B")) for side in ("baseline",
                                                                                                "candidate")]
            name = row.name
            if row.baseline is not None and row.candidate is not None and row.baseline.name != row.name:
                name = f"{row.baseline.name} → {row.name}"
            lines.append(f"| {name} | {row.status} | " + " | ".join(cells) + " |")
    lines += ["", matching_sentence(comparison), *skipped_sentences(comparison)]
    return "\n".join(lines) + "\n"


def compare_csv(comparison: Comparison, view: View = View()) -> str:
    """One row per layer (``--by-block``: per top-level block) and one ``total`` row; exact integers; empty cells
    where a side is absent. ``baseline_name`` is the baseline layer a row was matched to."""
    header = ["scope", "name", "baseline_name", "status", "matched_by"]
    beyond = comparison.figure_pairs()  # totals beyond MACs: in the total row only
    for field in (*TOTAL_FIELDS, *(field for field, _, _ in beyond)):
        header += [f"baseline_{field}", f"candidate_{field}", f"delta_{field}"]
    rows: list[list[Any]] = []
    if view.by_block:
        for group in comparison.groups():
            cells: list[Any] = ["block", group.name, group.name, _group_status(group.statuses), ""]
            for field in TOTAL_FIELDS:
                if field in LAYER_FIELDS:
                    cells += [group.baseline[field], group.candidate[field], group.delta(field)]
                else:
                    cells += ["", "", ""]
            rows.append(cells)
    else:
        for row in comparison.layers:
            cells = ["layer", row.name, row.baseline_name or "", row.status, row.matched_by or ""]
            for field in TOTAL_FIELDS:
                if field in LAYER_FIELDS:
                    base, cand = row.value("baseline", field), row.value("candidate", field)
                    cells += ["" if base is None else base, "" if cand is None else cand, row.delta(field)]
                else:
                    cells += ["", "", ""]
            rows.append(cells)
    total: list[Any] = ["total", "", "", "", ""]
    for field in TOTAL_FIELDS:
        total += [comparison.total("baseline", field), comparison.total("candidate", field), comparison.delta(field)]
    for _, before, after in beyond:  # exact integers; a roofline time in seconds
        total += [float(value) if isinstance(value, Fraction) else value for value in (before, after, after - before)]
    rows = [row + [""] * 3 * len(beyond) for row in rows]
    rows.append(total)
    return csv_text(header, rows)


#: Output format -> renderer of a comparison (a test checks every format is here).
COMPARISON_RENDERERS: Mapping[str, Callable[[Comparison, View], Any]] = MappingProxyType(
    {"table": compare_table, "json": compare_dict, "markdown": compare_markdown, "csv": compare_csv})
