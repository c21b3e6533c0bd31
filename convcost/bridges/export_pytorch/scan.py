"""What a spec's layer lists say before any code is written: each entry's kind and options, a template's
parameters (and which of them name tensors), the tensor names a list reads, and whether a list is a plain
chain of layers (written as one ``nn.Sequential``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...errors import Location
from ...kinds import LAYER_KINDS
from ...located import LocatedDict, LocatedList
from ...spec import Spec
from ...structures import STRUCTURES

__all__ = [
    "JOINS", "plain", "read_entry", "reads_block_input", "referenced", "template_defaults", "template_params",
    "tensor_parameters",
]

JOINS = ("add", "sub", "mul", "max", "concat")


def read_entry(item: Any, where: Location) -> tuple[str, LocatedDict]:
    """A layer list's entry as its kind and options: ``relu``, ``{conv: {...}}`` or ``{kind: conv, ...}``."""
    if isinstance(item, str):
        return item, LocatedDict(where)
    if "kind" in item:
        options = LocatedDict(item.where)
        for key, value in item.items():
            if key != "kind":
                options.put(key, value, item.at(key))
        return str(item["kind"]), options
    ((kind, options),) = item.items()
    return str(kind), options if isinstance(options, LocatedDict) else LocatedDict(item.at(kind))


def template_defaults(spec: Spec, kind: str) -> dict[str, Any]:
    """A template's parameters with their defaults; empty when its parameters are a list."""
    raw_params = spec.blocks[kind].get("params") or []
    return {} if isinstance(raw_params, list) else dict(raw_params.items())


def template_params(spec: Spec, kind: str) -> dict[str, Any]:
    """A template's parameters, each with its default (None: none)."""
    return template_defaults(spec, kind) or dict.fromkeys(spec.blocks[kind].get("params") or [])


def _mappings(items: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in ``items`` and what it holds, depth first."""
    stack = [items]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            yield value
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _named(mapping: dict[str, Any]) -> list[Any]:
    """What a mapping's from: and like: name."""
    named: list[Any] = []
    for key in ("from", "like"):
        refs = mapping.get(key)
        named += refs if isinstance(refs, list) else [refs]
    return named


def tensor_parameters(items: Any, params: dict[str, Any]) -> list[str]:
    """Template parameters that name tensors (used in from: or like:)."""
    found = {ref[1:] for mapping in _mappings(items) for ref in _named(mapping)
             if isinstance(ref, str) and ref.startswith("$")}
    return [param for param in params if param in found]


def referenced(spec: Spec, items: Any) -> set[str]:
    """Every tensor name a layer list (and what it holds) reads by name: in from: and like:, and as the
    value of a block's tensor parameter (U-Net's skip: enc4)."""
    found: set[str] = set()
    for mapping in _mappings(items):
        found.update(ref for ref in _named(mapping) if isinstance(ref, str))
        for kind, options in mapping.items():
            if kind in spec.blocks and isinstance(options, dict):
                for param in tensor_parameters(spec.blocks[kind]["layers"], template_params(spec, kind)):
                    if isinstance(options.get(param), str):
                        found.add(options[param])
    return found


def reads_block_input(layers: Any) -> bool:
    """Does a template's first entry read the block's input (no from:)?"""
    first = layers[0]
    return isinstance(first, str) or (isinstance(first, dict) and "from" not in (
        first if "kind" in first else next(iter(first.values()), None) or {}))


def plain(spec: Spec, items: LocatedList, references: set[str]) -> bool:
    """A chain of leaf layers: no from:, no joins, no blocks, nothing read by name, no repeat."""
    counters: dict[str, int] = {}
    for index, item in enumerate(items):
        kind, raw = read_entry(item, items.at(index))
        template = kind in spec.blocks
        if template and tensor_parameters(spec.blocks[kind]["layers"], template_params(spec, kind)):
            return False
        if not template and (kind not in LAYER_KINDS or kind in JOINS or kind in ("crop", "opaque")
                             or kind in STRUCTURES) or "from" in raw or ("if" in raw and template):
            return False
        counters[kind] = counters.get(kind, 0) + 1
        local = raw.get("name", f"{kind}_{counters[kind]}")
        if any(ref == local or ref.endswith(f".{local}") for ref in references):
            return False
    return True
