"""The figures beyond MACs as JSON-ready data: added to every layer row and to the totals of a report.

Counts and bytes are exact integers. Receptive-field jumps and offsets, arithmetic
intensities and roofline seconds are not counts: they are written as JSON numbers
(exact where they are integers or halves, else the nearest float); ``None`` where a
figure is not defined for the report (see ``notes``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from ..costs import NetworkCost
from ..figures import FieldAxis, Figures, LayerFigures
from ..grouping import Row
from ..roofline import LayerRoofline
from ..units import format_seconds, humanize

__all__ = ["CONVENTIONS", "FIGURE_COLUMNS", "FIGURE_CSV_COLUMNS", "figure_csv_cells", "figure_cells",
           "figure_footers", "figure_markdown_rows", "figure_summary_parts", "layer_figures", "totals_figures"]

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
        "saved_activation_bytes": None if memory is None else memory.saved_activation_bytes,
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


# --------------------------------------------------------------------------- table, Markdown and CSV

#: Per-layer columns the figures add (``--columns``), with their headers; none is shown by default except
#: ``latency`` and ``bound`` when a hardware profile is given.
FIGURE_COLUMNS: Mapping[str, str] = MappingProxyType({
    "nonpadding": "MACs (no pad)", "train_macs": "Train MACs", "saved": "Saved", "rf": "RF", "jump": "Jump",
    "traffic": "Bytes moved", "intensity": "FLOP/B", "latency": "Roofline", "bound": "Bound",
})
#: Columns whose block rows show the sum of the block's layers.
_ADDITIVE = ("nonpadding", "train_macs", "saved", "traffic", "latency")


def _fields_text(axes: tuple[FieldAxis, ...] | None, part: str) -> str:
    """``196`` (every axis alike) or ``7x11``; ``all`` for a field that covers the whole input axis."""
    if not axes:
        return ""
    if part == "size":
        texts = ["all" if axis.whole else str(axis.size) for axis in axes]
    else:
        texts = ["-" if axis.jump is None else str(axis.jump) for axis in axes]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def _layer_value(row: LayerFigures, key: str) -> int | Fraction | None:
    bound = row.roofline
    values: dict[str, int | Fraction | None] = {
        "nonpadding": row.macs_nonpadding, "train_macs": row.training_macs, "saved": row.saved_activation_bytes,
        "traffic": None if bound is None else bound.bytes_moved,
        "latency": None if bound is None else bound.seconds,
    }
    return values[key]


def _text(key: str, value: int | Fraction | None, exact: bool) -> str:
    if value is None:
        return ""
    if key == "latency":
        return format_seconds(value)
    assert isinstance(value, int)
    return humanize(value, "B" if key in ("saved", "traffic") else "", exact=exact).strip()


def figure_cells(report: NetworkCost, exact: bool) -> dict[str, Callable[[Row], str]]:
    """Column key -> the text of a hierarchy row in that column (a block row sums its layers where the
    figure adds up, else stays empty); empty cells where the report has no figures."""
    figures = report.figures
    if figures is None:
        return {key: (lambda entry: "") for key in FIGURE_COLUMNS}
    by_name = dict(zip((row.name for row in report.layers), figures.layers))
    sums: dict[tuple[str, str], int | Fraction] = {}
    for name, row in by_name.items():
        prefix = name.split(".")
        for depth in range(1, len(prefix)):
            block = ".".join(prefix[:depth])
            for key in _ADDITIVE:
                value = _layer_value(row, key)
                if value is not None:
                    sums[block, key] = sums.get((block, key), 0) + value

    def additive(key: str) -> Callable[[Row], str]:
        def cell(entry: Row) -> str:
            if entry.layer is not None:
                return _text(key, _layer_value(by_name[entry.layer.name], key), exact)
            assert entry.group is not None
            return _text(key, sums.get((entry.group.name, key)), exact)
        return cell

    def per_layer(text: Callable[[LayerFigures], str]) -> Callable[[Row], str]:
        return lambda entry: "" if entry.layer is None else text(by_name[entry.layer.name])

    cells = {key: additive(key) for key in _ADDITIVE}
    cells.update({
        "rf": per_layer(lambda row: _fields_text(row.receptive_field, "size")),
        "jump": per_layer(lambda row: _fields_text(row.receptive_field, "jump")),
        "intensity": per_layer(lambda row: "" if row.roofline is None or row.roofline.intensity is None
                               else f"{float(row.roofline.intensity):.3g}"),
        "bound": per_layer(lambda row: "" if row.roofline is None else row.roofline.bound),
    })
    return cells


def figure_footers(report: NetworkCost, exact: bool) -> dict[str, str]:
    """The total row's cells of the figure columns."""
    figures = report.figures
    if figures is None:
        return {}
    bound = figures.roofline
    footers = {
        "nonpadding": _text("nonpadding", figures.macs_nonpadding, exact),
        "train_macs": _text("train_macs", figures.training_macs, exact),
        "saved": _text("saved", figures.saved_activation_bytes, exact),
    }
    if bound is not None:
        footers.update(traffic=_text("traffic", bound.bytes_moved, exact), latency=format_seconds(bound.seconds),
                       intensity="" if bound.intensity is None else f"{float(bound.intensity):.3g}")
    return footers


def figure_summary_parts(report: NetworkCost, *, exact: bool = False) -> list[str]:
    """The figures' totals as unbreakable parts, after the MAC totals: a training step's MACs and memory,
    and the roofline bound when a hardware profile is given."""
    figures = report.figures
    if figures is None:
        return []
    parts = ["training step", f"{humanize(figures.training_macs, 'MACs', exact=exact)}"]
    memory = figures.memory
    if memory is not None:
        settings = figures.settings
        how = settings.optimizer + (", mixed precision" if settings.mixed_precision else "")
        parts[-1] += ","
        parts += ["memory", f"{humanize(memory.total_bytes, 'B', exact=exact)}", f"({how})"]
    parts[-1] += ";"
    bound = figures.roofline
    if bound is not None:
        memory_bound = sum(1 for row in bound.layers if row.bound == "memory")
        timed = sum(1 for row in bound.layers if row.bound != "none")
        parts += [f"roofline on {bound.profile.id} {bound.precision}", f">= {format_seconds(bound.seconds)}",
                  f"({memory_bound} of {timed} layers memory-bound)"]
        if bound.images_per_second is not None:
            parts[-1] += ","
            parts.append(f"<= {float(bound.images_per_second):,.0f} images/s")
    else:
        parts[-1] = parts[-1].rstrip(";")
    return parts


def figure_markdown_rows(report: NetworkCost) -> list[tuple[str, str, str]]:
    """(label, short, exact) rows for the Markdown totals table."""
    figures = report.figures
    if figures is None:
        return []

    def row(label: str, value: int, unit: str) -> tuple[str, str, str]:
        return label, humanize(value, unit).strip(), humanize(value, unit, exact=True).strip()

    rows = [row("MACs on real input (no padding)", figures.macs_nonpadding, "MACs"),
            row("Training MACs per step", figures.training_macs, "MACs")]
    if figures.memory is not None:
        rows += [row("Saved activation bytes (training)", figures.memory.saved_activation_bytes, "B"),
                 row(f"Training memory ({figures.settings.optimizer})", figures.memory.total_bytes, "B")]
    bound = figures.roofline
    if bound is not None:
        rows.append((f"Roofline time, {bound.profile.id} {bound.precision} (lower bound)",
                     format_seconds(bound.seconds), f"{float(bound.seconds):.6g} s"))
    return rows


#: Per-layer CSV columns the figures add (empty cells where a figure is not defined).
FIGURE_CSV_COLUMNS = ("macs_nonpadding", "training_macs", "saved_activation_bytes", "receptive_field",
                      "bytes_read", "bytes_written", "roofline_seconds", "bound")


def figure_csv_cells(row: LayerFigures | None) -> list[Any]:
    if row is None:
        return [""] * len(FIGURE_CSV_COLUMNS)
    bound = row.roofline
    fields = row.receptive_field
    return [row.macs_nonpadding, row.training_macs, _blank(row.saved_activation_bytes),
            "" if not fields else "x".join(str(axis.size) for axis in fields),
            "" if bound is None else bound.bytes_read, "" if bound is None else bound.bytes_written,
            "" if bound is None else float(bound.seconds), "" if bound is None else bound.bound]


def _blank(value: int | None) -> int | str:
    return "" if value is None else value
