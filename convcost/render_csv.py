"""Render results as CSV: a header, then one row per layer (or per spec), raw integers only."""

from __future__ import annotations

import csv
import io
from typing import Any

from .costs import FLOP_CATEGORIES, NetworkCost
from .layers import format_shape

__all__ = ["CHECK_COLUMNS", "REPORT_COLUMNS", "check_csv", "report_csv"]

#: Columns of the per-layer CSV, in order; ``flops_<category>`` itemise ``flops``.
REPORT_COLUMNS = (
    "index", "name", "kind", "line", "input_shape", "output_shape", "macs", "flops", "params", "buffers",
    "weight_bytes", "activation_bytes", *(f"flops_{category}" for category in FLOP_CATEGORIES),
)

CHECK_COLUMNS = (
    "file", "status", "exit_code", "problems", "exceeded", "macs", "flops", "params", "weight_bytes",
    "peak_activation_bytes",
)


def _write(header: tuple[str, ...], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def report_csv(report: NetworkCost) -> str:
    """One row per layer in execution order; shapes as CxHxW, counts as plain integers."""
    rows = []
    for index, row in enumerate(report.layers):
        by_category = dict(row.flops_by_category)
        rows.append([
            index, row.name, row.kind, row.line, "+".join(format_shape(s) for s in row.input_shapes),
            format_shape(row.output_shape), row.macs, row.flops, row.params, row.buffers, row.weight_bytes,
            row.activation_bytes, *(by_category.get(category, 0) for category in FLOP_CATEGORIES),
        ])
    return _write(REPORT_COLUMNS, rows)


def check_csv(results: Any) -> str:
    """One row per spec; totals are empty for an invalid spec; ``exceeded`` lists budget keys, ';'-separated."""
    rows = []
    for result in results:
        t = result.report.totals if result.report is not None else None
        totals = [t.macs, t.flops, t.params, t.weight_bytes, t.peak_activation_bytes] if t else [""] * 5
        rows.append([result.source, result.status, result.exit_code, len(result.problems),
                     ";".join(r.key for r in result.exceeded), *totals])
    return _write(CHECK_COLUMNS, rows)
