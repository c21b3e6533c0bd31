"""The figures beyond MACs as JSON-ready data: added to every layer row and to the totals of a report.

Counts and bytes are exact integers. Receptive-field jumps and offsets, arithmetic
intensities and roofline seconds are not counts: they are written as JSON numbers
(exact where they are integers or halves, else the nearest float); ``None`` where a
figure is not defined for the report (see ``notes``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..figures import FieldAxis, Figures, LayerFigures
from ..roofline import LayerRoofline

__all__ = ["CONVENTIONS", "layer_figures", "totals_figures"]

#: One line per figure, added to the report's ``conventions``.
CONVENTIONS = {
    "macs_nonpadding": "the MACs whose kernel tap reads real input rather than zero padding",
    "training_macs": "one training step: forward MACs + weight-gradient MACs + input-gradient MACs (none for a "
                     "layer whose input needs no gradient), each over the forward's (output, tap) pairs",
    "training_memory": "bytes PyTorch autograd keeps for backward (saved_activation_bytes; a tensor saved by two "
                       "layers counts once) + parameters, gradients and optimizer state (+ half-precision weight "
                       "copies under mixed precision)",
    "receptive_field": "per spatial axis of the first input: size in input pixels, jump (effective stride) and "
                       "offset (centre of position 0's field); interior fields, padding not cutting them",
    "roofline": "a LOWER BOUND on latency on the named hardware: max(FLOPs / peak, bytes / bandwidth) per layer, "
                "no fusion, caches or launch overheads; for comparing drafts, not a prediction",
}


def _number(value: Fraction | None) -> int | float | None:
    if value is None:
        return None
    return value.numerator if value.denominator == 1 else float(value)


def _axes(axes: tuple[FieldAxis, ...] | None) -> list[dict[str, Any]] | None:
    if axes is None:
        return None
    return [{"size": axis.size, "jump": _number(axis.jump), "offset": _number(axis.offset), "whole": axis.whole}
            for axis in axes]


def _roofline_row(row: LayerRoofline | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"bytes_read": row.bytes_read, "bytes_written": row.bytes_written,
            "arithmetic_intensity": _number(row.intensity), "roofline_seconds": float(row.seconds),
            "bound": row.bound}


def layer_figures(row: LayerFigures) -> dict[str, Any]:
    """The figures of one layer row."""
    return {
        "macs_nonpadding": row.macs_nonpadding,
        "weight_grad_macs": row.weight_grad_macs,
        "input_grad_macs": row.input_grad_macs,
        "training_macs": row.training_macs,
        "saved_activation_bytes": row.saved_activation_bytes,
        "receptive_field": _axes(row.receptive_field),
        "roofline": _roofline_row(row.roofline),
    }


def totals_figures(figures: Figures) -> dict[str, Any]:
    """The figures of the whole report."""
    memory = figures.memory
    bound = figures.roofline
    settings = figures.settings
    return {
        "macs_nonpadding": figures.macs_nonpadding,
        "training_macs": figures.training_macs,
        "training": {
            "forward_macs": figures.forward_macs,
            "weight_grad_macs": figures.weight_grad_macs,
            "input_grad_macs": figures.input_grad_macs,
            "training_macs": figures.training_macs,
        },
        "training_memory_bytes": None if memory is None else memory.total_bytes,
        "training_memory": None if memory is None else {
            "optimizer": settings.optimizer,
            "mixed_precision": settings.mixed_precision,
            "saved_activation_bytes": memory.saved_activation_bytes,
            "weight_copy_bytes": memory.weight_copy_bytes,
            "param_bytes": memory.param_bytes,
            "gradient_bytes": memory.gradient_bytes,
            "optimizer_state_bytes": memory.optimizer_state_bytes,
            "total_bytes": memory.total_bytes,
        },
        "receptive_field": None if figures.receptive_outputs is None else [
            {"output": name, "axes": _axes(axes)} for name, axes in figures.receptive_outputs],
        "roofline_seconds": None if bound is None else float(bound.seconds),
        "roofline": None if bound is None else {
            "hardware": bound.profile.id,
            "precision": bound.precision,
            "peak_ops_per_second": bound.peak_ops_per_second,
            "memory_bytes_per_second": bound.memory_bytes_per_second,
            "bytes_read": bound.bytes_read,
            "bytes_written": bound.bytes_written,
            "arithmetic_intensity": _number(bound.intensity),
            "roofline_seconds": float(bound.seconds),
            "seconds_per_image": float(bound.seconds_per_image),
            "images_per_second": _number(bound.images_per_second),
            "compute_bound_layers": sum(1 for row in bound.layers if row.bound == "compute"),
            "memory_bound_layers": sum(1 for row in bound.layers if row.bound == "memory"),
        },
        "notes": list(figures.notes),
    }
