"""Stage 2c, before building: how many layers a spec will create, counted without creating them.

A ``blocks:`` template that uses another twice, 21 levels deep, is a few
hundred bytes that expand to 2^21 layers; building them to find out takes
minutes and gigabytes. :func:`refuse_large_expansion` counts first, in time
and memory that do not grow with the expansion: the count of one template
instance is worked out once and reused for every instance with the same
parameters (those that can change a count: ``repeat`` values and what feeds
them), and multiplied by ``repeat``.

The count is an upper bound of the layers the builder makes, in the sense that
matters for a refusal:

* a leaf kind is one layer; a ``sequence`` is the layers of its list; a
  ``split`` is one layer per part, a ``squeeze_excite`` six; any other structure
  (``concat`` with branches, ``residual``, ``dense``) is one join layer plus the
  layers of every list in its options; an entry the builder will refuse counts
  one (the stand-in it records);
* an entry with an ``if:`` key counts as present; ``repeat: 0`` counts none;
* a ``repeat`` or template parameter written as ``$param`` or ``${...}`` is
  resolved from the parameters bound where the template is used, as the builder
  does. Where it cannot be (it depends on ``in_channels``, the input's shape,
  which only building knows), it counts once, and the builder's own limits
  (``repeat`` copies x the first copy's layers, the node limit) apply to it.

Only the builder calls this, with its own limits; it imports nothing after
:mod:`convcost.spec` but the kind and structure tables and the expression evaluator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import Location, SpecError
from .expressions import resolve
from .kinds import COMMON_KEYS, LAYER_KINDS
from .located import LocatedDict
from .spec import Spec
from .structures import STRUCTURES

__all__ = ["MAX_COUNT_STEPS", "count_layers", "refuse_large_expansion"]

#: Template entries visited while counting (an instance whose relevant parameters were seen before costs
#: one). Drafts take tens to a few thousand: only instances that differ in a parameter that changes a
#: ``repeat`` are counted again. Past this the spec is refused (in well under a second).
MAX_COUNT_STEPS = 25_000

_ENTRY_KEYS = (*COMMON_KEYS, "if")  # keys of a template use that are not its parameters
_NAME = re.compile(r"[A-Za-z_]\w*")


class _Unknown:
    """A parameter value only building can know (``in_channels``, or one computed from it)."""

    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN: Any = _Unknown()
_EMPTY = LocatedDict(Location("<none>"))  # the options of a bare kind name (never written to)


class _TooMuchWork(Exception):
    pass


def refuse_large_expansion(spec: Spec, *, max_nodes: int, max_repeat: int, max_nesting: int) -> None:
    """Raise :class:`SpecError` if ``spec`` would expand to more than ``max_nodes`` layers.

    ``max_repeat`` and ``max_nesting`` are the builder's: a ``repeat`` outside
    1..max_repeat (0 allowed) or a list nested deeper than ``max_nesting`` is the
    builder's to refuse, and counts one here.
    """
    counter = _Counter(spec, max_repeat, max_nesting)
    total = 0
    layers = spec.layers
    try:
        for index, item in enumerate(layers):
            total += counter.entry(item, {}, 1)
            if total > max_nodes:
                raise SpecError(f"network expands to more than {max_nodes:,} layers (counted before building: "
                                f"up to {total:,} by this entry)", layers.at(index))
    except _TooMuchWork:
        raise SpecError(f"the spec's templates take more than {MAX_COUNT_STEPS:,} steps to count (instances "
                        "whose parameters change a 'repeat'); refused before building", spec.where) from None


def count_layers(spec: Spec, *, max_repeat: int = 100_000, max_nesting: int = 50) -> int:
    """The upper bound :func:`refuse_large_expansion` holds against the limit (see the module docstring)."""
    counter = _Counter(spec, max_repeat, max_nesting)
    return sum(counter.entry(item, {}, 1) for item in spec.layers)


class _Counter:
    def __init__(self, spec: Spec, max_repeat: int, max_nesting: int):
        self.max_repeat = max_repeat
        self.max_nesting = max_nesting
        self.templates: dict[str, LocatedDict] = {
            name: body for name, body in spec.blocks.items()
            if isinstance(name, str) and isinstance(body, LocatedDict) and name not in LAYER_KINDS}
        self.relevant = _relevant_params(self.templates)
        self.memo: dict[tuple[Any, ...], int] = {}
        self.parsed: dict[str, Any] = {}  # expression text -> syntax tree, parsed once
        self.active: set[str] = set()  # templates being counted: a use of one of them is a cycle
        self.steps = 0

    def entries(self, items: Any, params: Mapping[str, Any], depth: int) -> int:
        """Layers of a layer list the builder reads at nesting ``depth`` (lists of lists: branches, same depth)."""
        if not isinstance(items, list):
            return 0
        if depth > self.max_nesting:
            return 1  # the builder refuses the nesting: one stand-in
        total = 0
        for item in items:
            total += self.entries(item, params, depth) if isinstance(item, list) else self.entry(item, params, depth)
        return total

    def entry(self, item: Any, params: Mapping[str, Any], depth: int) -> int:
        if self.active:  # inside a template's body: the part whose work can multiply
            self.steps += 1
            if self.steps > MAX_COUNT_STEPS:
                raise _TooMuchWork
        if isinstance(item, str):  # a bare kind name: most entries of a long flat spec
            if item in self.templates:
                return self.template(item, _EMPTY, params, depth)
            return 1
        kind, options = _split(item)
        if kind is None or options is None:
            return 1
        repeat = self.repeat(options, params) if "repeat" in options else 1
        if repeat == 0:
            return 0
        if kind in LAYER_KINDS and not (kind in STRUCTURES and "branches" in options):
            return repeat
        if kind in self.templates:
            return repeat * self.template(kind, options, params, depth)
        inner = sum(self.entries(value, params, depth + 1) for value in options.values() if isinstance(value, list))
        return repeat * (inner + self.own_layers(kind, options, params))

    def own_layers(self, kind: str, options: LocatedDict, params: Mapping[str, Any]) -> int:
        """The layers a structure makes itself: none for a sequence, one per part for a split, the six of a
        squeeze-excite (pool, two convs, activation, gate, multiply), else its one join."""
        if kind == "sequence":
            return 0
        if kind == "squeeze_excite":
            return 6
        if kind == "split":
            sizes = options.get("sizes")
            parts = len(sizes) if isinstance(sizes, list) else self.resolved(options.get("parts", 1), params,
                                                                             options.at("parts"))
            return parts if isinstance(parts, int) and not isinstance(parts, bool) and parts > 0 else 1
        return 1

    def repeat(self, options: LocatedDict, params: Mapping[str, Any]) -> int:
        value = self.resolved(options.get("repeat", 1), params, options.at("repeat"))
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= self.max_repeat:
            return 1  # unknown until built, or refused by the builder
        return value

    def resolved(self, value: Any, params: Mapping[str, Any], where: Location) -> Any:
        try:
            return resolve(value, params, where, None, self.parsed)
        except SpecError:
            return _UNKNOWN

    def template(self, kind: str, options: LocatedDict, params: Mapping[str, Any], depth: int) -> int:
        if kind in self.active:
            return 1  # a template using itself: the builder refuses it
        body = self.templates[kind]
        bound: dict[str, Any] = {key: self.resolved(value, params, options.at(key))
                                 for key, value in options.items() if key not in _ENTRY_KEYS}
        declared = body.get("params")
        if isinstance(declared, LocatedDict):
            for param, default in declared.items():
                bound.setdefault(param, default)
        bound["in_channels"] = _UNKNOWN
        key = (kind, depth, *((name, _frozen(bound.get(name, _UNKNOWN))) for name in self.relevant.get(kind, ())))
        if key in self.memo:
            return self.memo[key]
        layers = body.get("layers")
        # The builder reads a template's list as one more level, except a template that is one unnamed
        # structure, which it reads as that structure.
        single = (isinstance(layers, list) and len(layers) == 1 and _is_bare_structure(layers[0], self.templates))
        self.active.add(kind)
        try:
            count = self.entries(layers, bound, depth if single else depth + 1) if isinstance(layers, list) else 1
        finally:
            self.active.discard(kind)
        self.memo[key] = count
        return count


def _split(item: Any) -> tuple[str | None, LocatedDict | None]:
    """``relu`` | ``{conv: {...}}`` | ``{kind: conv, ...}`` -> (kind, options); (None, None) if malformed."""
    if isinstance(item, str):
        return item, LocatedDict(Location("<none>"))
    if not isinstance(item, LocatedDict):
        return None, None
    if "kind" in item:
        kind = item["kind"]
        return (kind, item) if isinstance(kind, str) else (None, None)
    if len(item) != 1:
        return None, None
    ((kind, options),) = item.items()
    if not isinstance(kind, str):
        return None, None
    if options is None:
        return kind, LocatedDict(item.at(kind))
    return (kind, options) if isinstance(options, LocatedDict) else (None, None)


def _is_bare_structure(item: Any, templates: Mapping[str, Any]) -> bool:
    kind, options = _split(item)
    return (kind is not None and options is not None and kind not in LAYER_KINDS and kind not in templates
            and "name" not in options and "repeat" not in options)


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a parameter value (the type included: True and 1 differ here)."""
    if isinstance(value, list):
        return ("list", tuple(_frozen(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(key), _frozen(item)) for key, item in value.items()))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return (type(value).__name__, value)


def _names(value: Any) -> set[str]:
    """Parameter names a ``$param`` or ``${...}`` value reads."""
    if isinstance(value, list):
        return set().union(*(_names(item) for item in value)) if value else set()
    if not isinstance(value, str) or not value.startswith("$"):
        return set()
    if value.startswith("${"):
        return set(_NAME.findall(value[2:]))
    return {value[1:]}


def _relevant_params(templates: Mapping[str, LocatedDict]) -> dict[str, tuple[str, ...]]:
    """Per template, the parameters that can change how many layers one instance makes: those a
    ``repeat`` reads, and those that feed a relevant parameter of a template it uses (a fixpoint)."""
    repeats: dict[str, set[str]] = {}
    uses: dict[str, list[tuple[str, str, set[str]]]] = {}  # template -> (used template, its parameter, names read)
    for name, body in templates.items():
        repeats[name], uses[name] = set(), []
        stack: list[Any] = [body.get("layers")]
        while stack:
            value = stack.pop()
            if isinstance(value, list):
                stack.extend(value)
                continue
            kind, options = _split(value)
            if kind is None or options is None:
                continue
            repeats[name] |= _names(options.get("repeat"))
            if kind in templates:
                uses[name] += [(kind, key, _names(item)) for key, item in options.items() if key not in _ENTRY_KEYS]
            elif kind not in LAYER_KINDS or (kind in STRUCTURES and "branches" in options):
                stack.extend(item for item in options.values() if isinstance(item, list))
    relevant = {name: set(found) for name, found in repeats.items()}
    changed = True
    while changed:
        changed = False
        for name, used in uses.items():
            for other, param, read in used:
                if param in relevant[other] and not read <= relevant[name]:
                    relevant[name] |= read
                    changed = True
    return {name: tuple(sorted(found)) for name, found in relevant.items()}
