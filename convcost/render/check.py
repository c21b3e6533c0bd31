"""Render ``convcost check`` results: summary lines | JSON-ready dict | Markdown | CSV (``CHECK_RENDERERS``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..budget import BUDGET_KEYS
from ..check import FileCheck, exit_code
from ..errors import SpecError, printable
from ..units import humanize
from .common import View, code, csv_text, escape

__all__ = ["CHECK_COLUMNS", "CHECK_RENDERERS", "CHECK_SCHEMA_VERSION", "check_csv", "check_dict", "check_lines",
           "check_markdown", "problem_dict", "short"]

CHECK_SCHEMA_VERSION = 1

CHECK_COLUMNS = (
    "file", "status", "exit_code", "problems", "exceeded", "macs", "flops", "params", "weight_bytes",
    "peak_activation_bytes",
)


def short(key: str, value: int) -> str:
    """A budget quantity in the unit of its key: ``4.1 G`` (a count) or ``8.0 MiB`` (bytes)."""
    return humanize(value, BUDGET_KEYS[key].unit if BUDGET_KEYS[key].kind == "bytes" else "").strip()


def problem_dict(error: SpecError) -> dict[str, Any]:
    where = error.where
    return {
        "file": where.file if where else None,
        "line": where.line if where else 0,
        "column": where.column if where else 0,
        "layer": error.layer,
        "message": error.message,
        "text": error.format(),
    }


def check_dict(results: Sequence[FileCheck], view: View = View()) -> dict[str, Any]:
    files = []
    for result in results:
        t = result.report.totals if result.report is not None else None
        files.append({
            "source": result.source,
            "status": result.status,
            "exit_code": result.exit_code,
            "problems": [problem_dict(error) for error in result.problems],
            "warnings": [problem_dict(warning) for warning in result.warnings],
            "unlisted_problems": result.unlisted,
            "totals": None if t is None else {
                "macs": t.macs, "flops": t.flops, "params": t.params, "weight_bytes": t.weight_bytes,
                "peak_activation_bytes": t.peak_activation_bytes,
            },
            "budget": [
                {"key": r.key, "metric": BUDGET_KEYS[r.key].metric, "actual": r.actual, "limit": r.limit.value,
                 "within": r.within, "origin": r.limit.origin}
                for r in result.budget
            ],
        })
    return {"schema_version": CHECK_SCHEMA_VERSION, "exit_code": exit_code(results), "files": files}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def check_lines(results: Sequence[FileCheck], view: View = View()) -> str:
    """A summary line per file (and a final tally when there are several)."""
    lines = []
    for result in results:
        source = result.source
        if result.report is None:
            lines.append(f"{source}: invalid: {_plural(result.problem_count, 'problem')}")
            continue
        t = result.report.totals
        if result.status == "over_budget":
            over = "; ".join(
                f"{BUDGET_KEYS[r.key].label} {r.actual:,} > {r.limit.value:,} "
                f"({short(r.key, r.actual)} > {short(r.key, r.limit.value)}, {r.limit.origin})"
                for r in result.exceeded
            )
            lines.append(f"{source}: over budget: {over}")
            continue
        within = ", ".join(
            f"{BUDGET_KEYS[r.key].label} {short(r.key, r.actual)} <= {short(r.key, r.limit.value)}"
            for r in result.budget
        )
        totals = (f"{humanize(t.macs, 'MACs')}, {humanize(t.params, 'params')}, "
                  f"peak activations {humanize(t.peak_activation_bytes, 'B')}")
        lines.append(f"{source}: ok: {totals}" + (f"; within budget: {within}" if within else "; no budget"))
    if len(results) > 1:
        counts = {status: sum(1 for r in results if r.status == status) for status in ("ok", "over_budget", "invalid")}
        lines.append(f"{_plural(len(results), 'spec')}: {counts['ok']} ok, {counts['over_budget']} over budget, "
                     f"{counts['invalid']} invalid")
    return "\n".join(printable(line) for line in lines) + "\n"  # one line per spec, whatever its file is called


_STATUS = {"ok": "ok", "over_budget": "**over budget**", "invalid": "**invalid**"}


def check_markdown(results: Sequence[FileCheck], view: View = View()) -> str:
    """One row per spec (status, totals, budget), then every problem and exceeded limit."""
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
            budget = _plural(result.problem_count, "problem")
        else:
            t = result.report.totals
            cells = [humanize(t.macs, "MACs"), humanize(t.params, "").strip(), humanize(t.weight_bytes, "B"),
                     humanize(t.peak_activation_bytes, "B")]
            budget = ", ".join(
                f"{BUDGET_KEYS[r.key].label} {short(r.key, r.actual)} {'within' if r.within else 'over'} "
                f"{short(r.key, r.limit.value)}"
                for r in result.budget
            ) or "none"
        lines.append(f"| {code(printable(result.source))} | {_STATUS[result.status]} | {' | '.join(cells)} | "
                     f"{escape(budget)} |")
        details += [f"- {escape(printable(problem.format()))}" for problem in result.problems]
        if result.unlisted:
            details.append(f"- {code(printable(result.source))}: and {_plural(result.unlisted, 'more problem')}")
        details += [f"- warning: {escape(printable(warning.format()))}" for warning in result.warnings]
        for r in result.exceeded:
            details.append(f"- {code(printable(result.source))}: {BUDGET_KEYS[r.key].label} {r.actual:,} exceed the "
                           f"limit {r.limit.value:,} ({escape(printable(r.limit.origin))})")
    if details:
        lines += ["", "#### Problems", "", *details]
    lines.append("")
    return "\n".join(lines)


def check_csv(results: Sequence[FileCheck], view: View = View()) -> str:
    """One row per spec; totals are empty for an invalid spec; ``exceeded`` lists budget keys, ';'-separated."""
    rows = []
    for result in results:
        t = result.report.totals if result.report is not None else None
        totals: list[Any] = [t.macs, t.flops, t.params, t.weight_bytes, t.peak_activation_bytes] if t else [""] * 5
        rows.append([result.source, result.status, result.exit_code, result.problem_count,
                     ";".join(r.key for r in result.exceeded), *totals])
    return csv_text(CHECK_COLUMNS, rows)


#: Output format -> renderer of check results (a test checks every format is here).
CHECK_RENDERERS: Mapping[str, Callable[[Sequence[FileCheck], View], Any]] = MappingProxyType(
    {"table": check_lines, "json": check_dict, "markdown": check_markdown, "csv": check_csv})
