"""Render ``convcost check`` results as plain summary lines or a JSON-ready dict."""

from __future__ import annotations

from typing import Any

from .budget import BUDGET_KEYS
from .units import humanize

__all__ = ["CHECK_SCHEMA_VERSION", "check_dict", "check_lines", "problem_dict", "short"]

CHECK_SCHEMA_VERSION = 1


def short(key: str, value: int) -> str:
    """A budget quantity in the unit of its key: ``4.1 G`` (a count) or ``8.0 MiB`` (bytes)."""
    return humanize(value, BUDGET_KEYS[key].unit if BUDGET_KEYS[key].kind == "bytes" else "").strip()


def problem_dict(error: Any) -> dict[str, Any]:
    where = error.where
    return {
        "file": where.file if where else None,
        "line": where.line if where else 0,
        "column": where.column if where else 0,
        "layer": error.layer,
        "message": error.message,
        "text": error.format(),
    }


def check_dict(results: Any, code: int) -> dict[str, Any]:
    files = []
    for result in results:
        t = result.report.totals if result.report is not None else None
        files.append({
            "source": result.source,
            "status": result.status,
            "exit_code": result.exit_code,
            "problems": [problem_dict(error) for error in result.problems],
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
    return {"schema_version": CHECK_SCHEMA_VERSION, "exit_code": code, "files": files}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def check_lines(results: Any) -> str:
    """A summary line per file (and a final tally when there are several)."""
    results = list(results)
    lines = []
    for result in results:
        if result.status == "invalid":
            lines.append(f"{result.source}: invalid: {_plural(len(result.problems), 'problem')}")
            continue
        t = result.report.totals
        if result.status == "over_budget":
            over = "; ".join(
                f"{BUDGET_KEYS[r.key].label} {r.actual:,} > {r.limit.value:,} "
                f"({short(r.key, r.actual)} > {short(r.key, r.limit.value)}, {r.limit.origin})"
                for r in result.exceeded
            )
            lines.append(f"{result.source}: over budget: {over}")
            continue
        within = ", ".join(
            f"{BUDGET_KEYS[r.key].label} {short(r.key, r.actual)} <= {short(r.key, r.limit.value)}"
            for r in result.budget
        )
        totals = (f"{humanize(t.macs, 'MACs')}, {humanize(t.params, 'params')}, "
                  f"peak activations {humanize(t.peak_activation_bytes, 'B')}")
        lines.append(f"{result.source}: ok: {totals}" + (f"; within budget: {within}" if within else "; no budget"))
    if len(results) > 1:
        counts = {status: sum(1 for r in results if r.status == status) for status in ("ok", "over_budget", "invalid")}
        lines.append(f"{_plural(len(results), 'spec')}: {counts['ok']} ok, {counts['over_budget']} over budget, "
                     f"{counts['invalid']} invalid")
    return "\n".join(lines) + "\n"
