"""Stage 4: a baseline report against a candidate report, layer by layer.

Layers are matched structurally, block by block (a layer's block is its dotted
name's prefix):

1. by name, where both sides name a layer (a ``name:`` in the spec, a
   structure's own parts such as ``branch2`` or ``body``, a repeat's index, a
   rewrite's ``x_reduce``); names the builder generates from the kind and
   position (``conv_1``, ``relu_2``) say nothing about what a layer is, so
2. the layers left in a block are aligned in order by kind and kernel shape
   (``difflib``'s matching over the sequences of (kind, kernel)); where a
   stretch of layers is swapped for a stretch of the same length, they pair
   up in order as ``replaced``.

A matched pair is ``same`` when its shapes and counts are all equal,
``changed`` when kind and kernel agree but something else differs, and
``replaced`` when the kind or the kernel shape differs. A layer only in the
candidate is ``added``, only in the baseline ``removed``. Blocks pair the same
way, and their layers pair within them. Deltas are candidate - baseline
(negative is a saving); ratios are baseline / candidate as exact fractions
(``None`` when the candidate's value is 0), so 9.68 means "9.68x fewer".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from fractions import Fraction
from typing import Union

from .bottleneck import Skip
from .builder import STRUCTURE_KINDS
from .costs import LayerCost, NetworkCost, Totals
from .kinds import LAYER_KINDS

__all__ = ["ADDED", "CHANGED", "FIGURE_FIELDS", "LAYER_FIELDS", "REMOVED", "REPLACED", "SAME", "STATUSES", "TOTAL_FIELDS",
           "Comparison", "GroupDelta", "LayerDelta", "compare", "is_generated_name", "ratio"]

#: Per-layer quantities compared (all exact ints).
LAYER_FIELDS = ("macs", "flops", "params", "buffers", "weight_bytes", "activation_bytes")
#: Network totals compared.
TOTAL_FIELDS = ("macs", "flops", "params", "buffers", "weight_bytes", "buffer_bytes", "input_bytes",
                "activation_bytes", "peak_activation_bytes")
#: Totals beyond MACs (``NetworkCost.figures``) compared where both reports have them: exact ints, and the
#: roofline time in seconds as an exact Fraction.
FIGURE_FIELDS = ("macs_nonpadding", "training_macs", "saved_activation_bytes", "training_memory_bytes",
                 "roofline_seconds")

ADDED, REMOVED, CHANGED, REPLACED, SAME = "added", "removed", "changed", "replaced", "same"
STATUSES = (SAME, CHANGED, REPLACED, ADDED, REMOVED)
BY_NAME, BY_POSITION = "name", "position"


def ratio(baseline: int, candidate: int) -> Fraction | None:
    """baseline / candidate exactly; None when the candidate is 0."""
    return None if candidate == 0 else Fraction(baseline, candidate)


@dataclass(frozen=True, slots=True)
class LayerDelta:
    """A matched pair of layers, or a layer on one side only.

    ``name`` is the candidate's name (the baseline's for a removed layer);
    ``matched_by`` is ``"name"`` or ``"position"`` for a pair, None otherwise.
    """

    name: str
    status: str
    baseline: LayerCost | None
    candidate: LayerCost | None
    matched_by: str | None = None

    @property
    def baseline_name(self) -> str | None:
        return None if self.baseline is None else self.baseline.name

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
    """Both reports, their layers matched, and what the candidate is.

    ``labels`` say what each side is (a spec's path, "as written", "with 1x1
    bottlenecks (--reduce 0.25)"); ``skipped`` lists the convs a bottleneck
    rewrite left alone, each with the reason.
    """

    baseline: NetworkCost
    candidate: NetworkCost
    layers: tuple[LayerDelta, ...]
    labels: tuple[str, str] = ("", "")
    skipped: tuple[Skip, ...] = field(default=())

    def total(self, side: str, field: str) -> int:
        totals: Totals = (self.baseline if side == "baseline" else self.candidate).totals
        return getattr(totals, field)

    def delta(self, field: str) -> int:
        return self.total("candidate", field) - self.total("baseline", field)

    def ratio(self, field: str) -> Fraction | None:
        return ratio(self.total("baseline", field), self.total("candidate", field))

    def figure(self, side: str, field: str) -> int | Fraction | None:
        """A total beyond MACs (:data:`FIGURE_FIELDS`) of one side; None where that side has none (no
        figures computed, no hardware profile, an int8 report's training memory)."""
        figures = (self.baseline if side == "baseline" else self.candidate).figures
        return None if figures is None else getattr(figures, field)

    def figure_pairs(self) -> list[tuple[str, int | Fraction, int | Fraction]]:
        """(field, baseline, candidate) for each total beyond MACs that both sides have."""
        pairs = []
        for name in FIGURE_FIELDS:
            base, cand = self.figure("baseline", name), self.figure("candidate", name)
            if base is not None and cand is not None:
                pairs.append((name, base, cand))
        return pairs

    def deltas(self) -> dict[str, int | Fraction]:
        deltas: dict[str, int | Fraction] = {field: self.delta(field) for field in TOTAL_FIELDS}
        deltas.update({field: cand - base for field, base, cand in self.figure_pairs()})
        return deltas

    def ratios(self) -> dict[str, Fraction | None]:
        ratios = {field: self.ratio(field) for field in TOTAL_FIELDS}
        ratios.update({field: None if not cand else Fraction(base) / cand for field, base, cand in self.figure_pairs()})
        return ratios

    def flops_by_category_delta(self) -> dict[str, int]:
        base = dict(self.baseline.totals.flops_by_category)
        cand = dict(self.candidate.totals.flops_by_category)
        return {category: cand.get(category, 0) - base.get(category, 0) for category in {**base, **cand}}

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((ADDED, REMOVED, CHANGED, REPLACED, SAME), 0)
        for row in self.layers:
            counts[row.status] += 1
        return counts

    def matching(self) -> dict[str, int]:
        """How many pairs were matched by name and how many by kind and position."""
        counts = dict.fromkeys((BY_NAME, BY_POSITION), 0)
        for row in self.layers:
            if row.matched_by is not None:
                counts[row.matched_by] += 1
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
            for name in LAYER_FIELDS:
                base[name] += row.value("baseline", name) or 0
                cand[name] += row.value("candidate", name) or 0
            statuses.append(row.status)
        return tuple(GroupDelta(key, sums[key][0], sums[key][1], tuple(sums[key][2])) for key in order)


def _kernel(row: LayerCost) -> tuple[int, ...] | None:
    return dict(row.options).get("kernel")


def _same(a: LayerCost, b: LayerCost) -> bool:
    return (a.kind == b.kind and a.input_shapes == b.input_shapes and a.output_shape == b.output_shape
            and a.options == b.options and all(getattr(a, field) == getattr(b, field) for field in LAYER_FIELDS))


def _status(a: LayerCost, b: LayerCost) -> str:
    if a.kind != b.kind or _kernel(a) != _kernel(b):
        return REPLACED
    return SAME if _same(a, b) else CHANGED


_GENERATED = re.compile(r"(?P<kind>.+)_(?P<count>[1-9][0-9]*)")


def is_generated_name(local: str, kinds: Iterable[str] = ()) -> bool:
    """Is ``local`` a name the builder made up (``kind_N``: convcost.builder's ``_Scope.full``)?

    ``kinds`` adds template names to the layer and structure kinds.
    """
    match = _GENERATED.fullmatch(local)
    if match is None:
        return False
    kind = match["kind"]
    return kind in LAYER_KINDS or kind in STRUCTURE_KINDS or kind in kinds or kind == "?"


@dataclass(slots=True)
class _Block:
    """A block of a report: its layers and sub-blocks in order of first appearance."""

    name: str
    kind: str
    children: list[Union[_Block, LayerCost]] = field(default_factory=list)


_Child = Union[_Block, LayerCost]


def _tree(report: NetworkCost) -> _Block:
    kinds = dict(report.blocks)
    root = _Block("", "")
    blocks: dict[str, _Block] = {"": root}
    for row in report.layers:
        parts = row.name.split(".")
        parent = root
        for level in range(1, len(parts)):
            prefix = ".".join(parts[:level])
            block = blocks.get(prefix)
            if block is None:
                block = blocks[prefix] = _Block(prefix, kinds.get(prefix, "block"))
                parent.children.append(block)
            parent = block
        parent.children.append(row)
    return root


def _local(child: _Child) -> str:
    return child.name.rsplit(".", 1)[-1]


def _signature(child: _Child) -> tuple[object, ...]:
    if isinstance(child, _Block):
        return ("block", child.kind)
    return ("layer", child.kind, _kernel(child))


def _opcodes(left: list[tuple[object, ...]],
             right: list[tuple[object, ...]]) -> Sequence[tuple[str, int, int, int, int]]:
    """``difflib``'s opcodes turning ``left`` into ``right``, the same pairs whichever side is which:
    difflib breaks ties by position in its first sequence, so the two sides go in in a fixed order."""
    if (len(left), repr(left)) <= (len(right), repr(right)):
        return SequenceMatcher(None, left, right, autojunk=False).get_opcodes()
    return [(tag, i1, i2, j1, j2) for tag, j1, j2, i1, i2
            in SequenceMatcher(None, right, left, autojunk=False).get_opcodes()]


class _Matcher:
    def __init__(self, baseline: NetworkCost, candidate: NetworkCost):
        self.templates = {kind.split(" x", 1)[0] for report in (baseline, candidate) for _, kind in report.blocks}

    def named(self, child: _Child) -> bool:
        return not is_generated_name(_local(child), self.templates)

    def pairs(self, a: Sequence[_Child], b: Sequence[_Child]) -> list[tuple[_Child | None, _Child | None, str | None]]:
        """The children of two matched blocks as (baseline, candidate, how) in the candidate's order,
        each removed child placed before the candidate child paired with the next baseline child."""
        partner: dict[int, tuple[int, str]] = {}  # baseline index -> (candidate index, how)
        by_name = {_local(child): j for j, child in enumerate(b) if self.named(child)}
        for i, child in enumerate(a):
            j = by_name.get(_local(child)) if self.named(child) else None
            if j is not None and isinstance(b[j], _Block) == isinstance(child, _Block):
                partner[i] = (j, BY_NAME)
        taken = {j for j, _ in partner.values()}
        rest_a = [i for i in range(len(a)) if i not in partner]
        rest_b = [j for j in range(len(b)) if j not in taken]
        for tag, i1, i2, j1, j2 in _opcodes([_signature(a[i]) for i in rest_a], [_signature(b[j]) for j in rest_b]):
            if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
                for offset in range(i2 - i1):
                    left, right = a[rest_a[i1 + offset]], b[rest_b[j1 + offset]]
                    if isinstance(left, _Block) == isinstance(right, _Block):
                        partner[rest_a[i1 + offset]] = (rest_b[j1 + offset], BY_POSITION)
        before: dict[int, list[int]] = {}  # candidate index -> removed baseline children placed before it
        pending: list[int] = []
        for i in range(len(a)):
            if i in partner:
                before.setdefault(partner[i][0], []).extend(pending)
                pending = []
            else:
                pending.append(i)
        paired = {j: (i, how) for i, (j, how) in partner.items()}
        result: list[tuple[_Child | None, _Child | None, str | None]] = []
        for j, child in enumerate(b):
            result += [(a[i], None, None) for i in before.get(j, ())]
            if j in paired:
                i, how = paired[j]
                result.append((a[i], child, how))
            else:
                result.append((None, child, None))
        result += [(a[i], None, None) for i in pending]
        return result

    def walk(self, a: _Child | None, b: _Child | None, how: str | None) -> Iterator[LayerDelta]:
        if isinstance(a, _Block) or isinstance(b, _Block):
            left = a.children if isinstance(a, _Block) else []
            right = b.children if isinstance(b, _Block) else []
            for x, y, pair_how in self.pairs(left, right):
                yield from self.walk(x, y, pair_how)
        elif a is not None and b is not None:
            yield LayerDelta(b.name, _status(a, b), a, b, how)
        elif b is not None:
            yield LayerDelta(b.name, ADDED, None, b)
        elif a is not None:
            yield LayerDelta(a.name, REMOVED, a, None)


def compare(baseline: NetworkCost, candidate: NetworkCost, *, labels: tuple[str, str] | None = None,
            skipped: Iterable[Skip] = ()) -> Comparison:
    """Match layers structurally (see the module's docstring) and keep both reports; deltas and ratios are
    computed on demand. ``labels`` default to the reports' names."""
    rows = tuple(_Matcher(baseline, candidate).walk(_tree(baseline), _tree(candidate), None))
    return Comparison(baseline=baseline, candidate=candidate, layers=rows,
                      labels=labels or (baseline.name, candidate.name), skipped=tuple(skipped))
