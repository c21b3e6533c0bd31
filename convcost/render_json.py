"""Render a report as a JSON-ready dict (exact integers, shapes as channels-first lists)."""

from __future__ import annotations

from typing import Any

from .costs import LayerCost, NetworkCost
from .grouping import block_groups, kind_summary

__all__ = ["CONVENTIONS", "SCHEMA_VERSION", "layer_dict", "report_dict"]

SCHEMA_VERSION = 1

#: One line per metric, repeated in every JSON report so a reader never has to guess.
CONVENTIONS = {
    "macs": "multiply-accumulates of convolution and linear layers only, bias excluded",
    "flops": "2 per MAC + bias adds + batch norm, activation, pooling, add, upsample and softmax work "
             "(see flops_by_category and docs/conventions.md)",
    "params": "trainable weights, biases and batch-norm scale/shift; running statistics are buffers",
    "bytes": "element counts x dtype size; activation_bytes is each layer's output tensor, "
             "peak_activation_bytes the most alive at once when tensors are freed after their last reader",
    "shapes": "channels-first, batch excluded: [C], [C, L], [C, H, W] or [C, D, H, W]",
}


def layer_dict(row: LayerCost) -> dict[str, Any]:
    return {
        "name": row.name,
        "kind": row.kind,
        "category": row.category,
        "line": row.line,
        "input_shape": list(row.input_shape),
        "input_shapes": [list(shape) for shape in row.input_shapes],
        "output_shape": list(row.output_shape),
        "macs": row.macs,
        "flops": row.flops,
        "flops_by_category": dict(row.flops_by_category),
        "params": row.params,
        "buffers": row.buffers,
        "weight_bytes": row.weight_bytes,
        "activation_bytes": row.activation_bytes,
    }


def report_dict(report: NetworkCost) -> dict[str, Any]:
    totals = report.totals
    return {
        "schema_version": SCHEMA_VERSION,
        "name": report.name,
        "source": report.source,
        "input": {"shape": list(report.input_shape), "batch": report.batch, "dtype": report.dtype},
        "output_shape": list(report.output_shape),
        "conventions": CONVENTIONS,
        "layers": [layer_dict(row) for row in report.layers],
        "blocks": [
            {
                "name": g.name,
                "kind": g.kind or "block",
                "layers": g.layers,
                "output_shape": list(g.output_shape),
                "macs": g.macs,
                "flops": g.flops,
                "params": g.params,
                "weight_bytes": g.weight_bytes,
                "activation_bytes": g.activation_bytes,
            }
            for g in block_groups(report)
        ],
        "by_kind": {
            k.category: {"layers": k.layers, "macs": k.macs, "flops": k.flops, "params": k.params}
            for k in kind_summary(report)
        },
        "totals": {
            "macs": totals.macs,
            "flops": totals.flops,
            "flops_by_category": dict(totals.flops_by_category),
            "params": totals.params,
            "buffers": totals.buffers,
            "weight_bytes": totals.weight_bytes,
            "buffer_bytes": totals.buffer_bytes,
            "input_bytes": totals.input_bytes,
            "activation_bytes": totals.activation_bytes,
            "peak_activation_bytes": totals.peak_activation_bytes,
        },
    }
