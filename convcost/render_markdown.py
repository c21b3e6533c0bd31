"""Render results as GitHub-flavoured Markdown, ready to paste into a pull-request comment.

Totals come first with both a short and an exact figure; the per-layer table
sits in a collapsed ``<details>`` block so a long network does not flood the
thread. Returns strings; never prints.
"""

from __future__ import annotations

import re
from typing import Any

from .costs import NetworkCost
from .layers import format_shape
from .render_table import percent
from .units import humanize

__all__ = ["check_markdown", "escape", "report_markdown"]

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")

CONVENTIONS_NOTE = ("MACs are multiply-accumulates of conv and linear layers, bias excluded; "
                    "FLOPs = 2 x MACs + bias and elementwise work (see docs/conventions.md).")


def escape(text: Any) -> str:
    """Text safe inside a Markdown table cell: specials backslash-escaped, newlines flattened."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def _code(text: str) -> str:
    flat = " ".join(text.splitlines())
    return f"`{flat}`" if "`" not in flat else escape(flat)


def _both(value: int, unit: str) -> tuple[str, str]:
    return humanize(value, unit), humanize(value, unit, exact=True)


def report_markdown(report: NetworkCost) -> str:
    """Totals table, then every layer in a collapsed section."""
    t = report.totals
    lines = [
        f"### convcost: {_code(report.name)}",
        "",
        f"{_code(report.source)}: input {format_shape(report.input_shape)}, batch {report.batch}, {report.dtype}; "
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
        short, exact = _both(value, unit)
        lines.append(f"| {label} | {short.strip()} | {exact.strip()} |")
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
            f"| {index} | {_code(row.name)} | {escape(row.kind)} | {format_shape(row.output_shape)} | "
            f"{row.macs:,} | {row.params:,} | {row.activation_bytes:,} | {percent(row.macs, t.macs)} |"
        )
    lines += ["", "</details>", "", f"<sub>{CONVENTIONS_NOTE}</sub>", ""]
    return "\n".join(lines)


_STATUS = {"ok": "ok", "over_budget": "**over budget**", "invalid": "**invalid**"}


def check_markdown(results: Any) -> str:
    """One row per spec (status, totals, budget), then every problem and exceeded limit."""
    from .budget import BUDGET_KEYS
    from .render_check import short

    lines = [
        "### convcost check",
        "",
        "| Spec | Status | MACs | Params | Weight bytes | Peak activation bytes | Budget |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    details: list[str] = []
    for result in results:
        if result.report is None:
            cells = ["-"] * 4
            budget = f"{len(result.problems)} problem{'s' if len(result.problems) != 1 else ''}"
        else:
            t = result.report.totals
            cells = [humanize(t.macs, "MACs"), humanize(t.params, "").strip(), humanize(t.weight_bytes, "B"),
                     humanize(t.peak_activation_bytes, "B")]
            budget = ", ".join(
                f"{BUDGET_KEYS[r.key].label} {short(r.key, r.actual)} {'within' if r.within else 'over'} "
                f"{short(r.key, r.limit.value)}"
                for r in result.budget
            ) or "none"
        lines.append(f"| {_code(result.source)} | {_STATUS[result.status]} | {' | '.join(cells)} | "
                     f"{escape(budget)} |")
        for problem in result.problems:
            details.append(f"- {escape(problem.format())}")
        for r in result.exceeded:
            key = BUDGET_KEYS[r.key]
            details.append(f"- {_code(result.source)}: {key.label} {r.actual:,} exceed the limit "
                           f"{r.limit.value:,} ({escape(r.limit.origin)})")
    if details:
        lines += ["", "#### Problems", "", *details]
    lines.append("")
    return "\n".join(lines)
