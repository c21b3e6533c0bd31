"""Render ``convcost check`` results: summary lines | JSON-ready dict | Markdown | CSV (``CHECK_RENDERERS``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from ..budget import BUDGET_KEYS
from ..check import BudgetResult, FileCheck, exit_code
from ..errors import SpecError, printable
from ..units import humanize
from .common import View, code, csv_text, escape

__all__ = ["CHECK_COLUMNS", "CHECK_RENDERERS", "CHECK_SCHEMA_VERSION", "check_csv", "check_dict", "check_lines",
           "check_markdown", "problem_dict", "short"]

CHECK_SCHEMA_VERSION = 1

CHECK_COLUMNS = (
    "file", "status", "exit_code", "problems", "exceeded", "macs", "flops", "params", "weight_bytes",
    "peak_activation_bytes", "training_macs", "training_memory_bytes", "roofline_seconds",
)


def short(key: str, value: int | Fraction) -> str:
    """A budget quantity in the unit of its key: ``4.1 G`` (a count), ``8.0 MiB`` (bytes) or ``1.23 ms``."""
    return BUDGET_KEYS[key].short(value)


def _json_number(value: int | Fraction) -> int | float:
    return value if isinstance(value, int) else float(value)


def _relation(key: str, over: bool) -> str:
    """How an actual value stands to its limit: ``>`` over a ceiling, ``<`` under a floor."""
    if BUDGET_KEYS[key].minimum:
        return "<" if over else ">="
    return ">" if over else "<="


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
                "peak_activation_bytes": t.peak_activation_bytes, **_figure_totals(result),
            },
            "budget": [
                {"key": r.key, "metric": BUDGET_KEYS[r.key].metric, "actual": _json_number(r.actual),
                 "limit": _json_number(r.limit.value), "within": r.within, "origin": r.limit.origin}
                for r in result.budget
            ],
        })
    return {"schema_version": CHECK_SCHEMA_VERSION, "exit_code": exit_code(results), "files": files}


def _figure_totals(result: FileCheck) -> dict[str, Any]:
    """The training and roofline totals of a checked spec (None where not defined)."""
    figures = result.report.figures if result.report is not None else None
    if figures is None:
        return {}
    seconds = figures.roofline_seconds
    return {"training_macs": figures.training_macs, "training_memory_bytes": figures.training_memory_bytes,
            "roofline_seconds": None if seconds is None else float(seconds)}


def _exceeded(r: BudgetResult) -> str:
    """``MACs 4,089,184,256 > 1,500,000,000 (4.1 G > 1.5 G, --max-macs 1.5G)``; a time is readable as it is."""
    key, relation = BUDGET_KEYS[r.key], _relation(r.key, True)
    shown = "" if key.kind == "seconds" else f"{short(r.key, r.actual)} {relation} {short(r.key, r.limit.value)}, "
    return f"{key.label} {key.exact(r.actual)} {relation} {key.exact(r.limit.value)} ({shown}{r.limit.origin})"


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
                _exceeded(r) for r in result.exceeded
            )
            lines.append(f"{source}: over budget: {over}")
            continue
        within = ", ".join(
            f"{BUDGET_KEYS[r.key].label} {short(r.key, r.actual)} {_relation(r.key, False)} "
            f"{short(r.key, r.limit.value)}"
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
            details.append(f"- {code(printable(result.source))}: {BUDGET_KEYS[r.key].label} "
                           f"{BUDGET_KEYS[r.key].exact(r.actual)} {'under' if BUDGET_KEYS[r.key].minimum else 'over'} "
                           f"the limit {BUDGET_KEYS[r.key].exact(r.limit.value)} ({escape(printable(r.limit.origin))})")
    if details:
        lines += ["", "#### Problems", "", *details]
    lines.append("")
    return "\n".join(lines)


def check_csv(results: Sequence[FileCheck], view: View = View()) -> str:
    """One row per spec; totals are empty for an invalid spec; ``exceeded`` lists budget keys, ';'-separated."""
    rows = []
    for result in results:
        t = result.report.totals if result.report is not None else None
        beyond = _figure_totals(result)
        totals: list[Any] = [t.macs, t.flops, t.params, t.weight_bytes, t.peak_activation_bytes] if t else [""] * 5
        totals += ["" if beyond.get(key) is None else beyond[key] for key in CHECK_COLUMNS[-3:]]
        rows.append([result.source, result.status, result.exit_code, result.problem_count,
                     ";".join(r.key for r in result.exceeded), *totals])
    return csv_text(CHECK_COLUMNS, rows)


#: Output format -> renderer of check results (a test checks every format is here).
CHECK_RENDERERS: Mapping[str, Callable[[Sequence[FileCheck], View], Any]] = MappingProxyType(
    {"table": check_lines, "json": check_dict, "markdown": check_markdown, "csv": check_csv})
