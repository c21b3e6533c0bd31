"""Stage 4: a baseline report against a candidate report.

Layers are matched by name. A layer only in the candidate is ``added``, only
in the baseline ``removed``; a matched layer is ``same`` when its shapes and
counts are all equal, else ``changed``. Deltas are candidate - baseline
(negative is a saving); ratios are baseline / candidate as exact fractions
(``None`` when the candidate's value is 0), so 9.68 means "9.68x fewer".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from .costs import LayerCost, NetworkCost, Totals

__all__ = ["LAYER_FIELDS", "TOTAL_FIELDS", "Comparison", "GroupDelta", "LayerDelta", "compare", "ratio"]

#: Per-layer quantities compared (all exact ints).
LAYER_FIELDS = ("macs", "flops", "params", "buffers", "weight_bytes", "activation_bytes")
#: Network totals compared.
TOTAL_FIELDS = ("macs", "flops", "params", "buffers", "weight_bytes", "buffer_bytes", "input_bytes",
                "activation_bytes", "peak_activation_bytes")

ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"


def ratio(baseline: int, candidate: int) -> Fraction | None:
    """baseline / candidate exactly; None when the candidate is 0."""
    return None if candidate == 0 else Fraction(baseline, candidate)


@dataclass(frozen=True, slots=True)
class LayerDelta:
    """One matched (or unmatched) layer name."""

    name: str
    status: str
    baseline: LayerCost | None
    candidate: LayerCost | None

    def value(self, side: str, field: str) -> int | None:
        row = self.baseline if side == "baseline" else self.candidate
        return None if row is None else getattr(row, field)

    def delta(self, field: str) -> int:
        return (self.value("candidate", field) or 0) - (self.value("baseline", field) or 0)


@dataclass(frozen=True, slots=True)
class GroupDelta:
    """Sums over the layers of one top-level block (the first part of their dotted names)."""

    name: str
    baseline: dict[str, int]
    candidate: dict[str, int]
    statuses: tuple[str, ...]

    def delta(self, field: str) -> int:
        return self.candidate[field] - self.baseline[field]

    def ratio(self, field: str) -> Fraction | None:
        return ratio(self.baseline[field], self.candidate[field])


@dataclass(frozen=True, slots=True)
class Comparison:
    baseline: NetworkCost
    candidate: NetworkCost
    layers: tuple[LayerDelta, ...]

    def total(self, side: str, field: str) -> int:
        totals: Totals = (self.baseline if side == "baseline" else self.candidate).totals
        return getattr(totals, field)

    def delta(self, field: str) -> int:
        return self.total("candidate", field) - self.total("baseline", field)

    def ratio(self, field: str) -> Fraction | None:
        return ratio(self.total("baseline", field), self.total("candidate", field))

    def deltas(self) -> dict[str, int]:
        return {field: self.delta(field) for field in TOTAL_FIELDS}

    def ratios(self) -> dict[str, Fraction | None]:
        return {field: self.ratio(field) for field in TOTAL_FIELDS}

    def flops_by_category_delta(self) -> dict[str, int]:
        base = dict(self.baseline.totals.flops_by_category)
        cand = dict(self.candidate.totals.flops_by_category)
        return {category: cand.get(category, 0) - base.get(category, 0) for category in {**base, **cand}}

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((ADDED, REMOVED, CHANGED, SAME), 0)
        for row in self.layers:
            counts[row.status] += 1
        return counts

    def groups(self) -> tuple[GroupDelta, ...]:
        """Per top-level block (``inception_3a``...): summed layer fields, in execution order."""
        order: list[str] = []
        sums: dict[str, tuple[dict[str, int], dict[str, int], list[str]]] = {}
        for row in self.layers:
            key = row.name.split(".", 1)[0]
            if key not in sums:
                order.append(key)
                sums[key] = (dict.fromkeys(LAYER_FIELDS, 0), dict.fromkeys(LAYER_FIELDS, 0), [])
            base, cand, statuses = sums[key]
            for field in LAYER_FIELDS:
                base[field] += row.value("baseline", field) or 0
                cand[field] += row.value("candidate", field) or 0
            statuses.append(row.status)
        return tuple(GroupDelta(key, sums[key][0], sums[key][1], tuple(sums[key][2])) for key in order)


def _same(a: LayerCost, b: LayerCost) -> bool:
    return (a.kind == b.kind and a.input_shapes == b.input_shapes and a.output_shape == b.output_shape
            and all(getattr(a, field) == getattr(b, field) for field in LAYER_FIELDS))


def _merged(baseline: NetworkCost, candidate: NetworkCost) -> Iterator[LayerDelta]:
    """Candidate order, with each removed layer placed before the next layer that follows it in the baseline."""
    base_index = {row.name: index for index, row in enumerate(baseline.layers)}
    cand_names = {row.name for row in candidate.layers}
    emitted = 0  # baseline rows before this position have been placed

    def removed_up_to(stop: int) -> Iterator[LayerDelta]:
        for row in baseline.layers[emitted:stop]:
            if row.name not in cand_names:
                yield LayerDelta(row.name, REMOVED, row, None)

    for row in candidate.layers:
        index = base_index.get(row.name)
        if index is None:
            yield LayerDelta(row.name, ADDED, None, row)
            continue
        if index >= emitted:
            yield from removed_up_to(index)
            emitted = index + 1
        base = baseline.layers[index]
        yield LayerDelta(row.name, SAME if _same(base, row) else CHANGED, base, row)
    yield from removed_up_to(len(baseline.layers))


def compare(baseline: NetworkCost, candidate: NetworkCost) -> Comparison:
    """Match layers by name and keep both reports; deltas and ratios are computed on demand."""
    return Comparison(baseline=baseline, candidate=candidate, layers=tuple(_merged(baseline, candidate)))
