"""Layer names from ONNX node names: PyTorch's scopes (``/layer1/layer1.0/conv1/Conv``) become nested blocks
(``layer1.0.conv1``), dotted names are kept, and every name is made valid and unique."""

from __future__ import annotations

import re

from ...layers import Shape
from .walk import Entry, Mapper

__all__ = ["final_levels", "input_names", "rename"]


def _clean(level: str, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_\-]+", "_", level)
    return cleaned if cleaned.strip("_") else fallback


def _raw_levels(entries: list[Entry]) -> list[tuple[str, ...]]:
    """Each entry's name as levels: PyTorch's '/a/a.b/Op' scopes become a.b (with the op when the module
    holds several layers); a dotted name keeps its dots; anything else is one level."""
    parsed: list[tuple[tuple[str, ...], str | None]] = []
    counts: dict[tuple[str, ...], int] = {}
    for entry in entries:
        fallback = entry.kind
        raw = entry.raw
        if "/" in raw:
            segments = [segment for segment in raw.split("/") if segment]
            op, scopes = (segments[-1] if segments else entry.op), segments[:-1]
            path: list[str] = []
            for before, segment in zip(["", *scopes], scopes):  # PyTorch: /layer1/layer1.0/conv1/Conv
                nested = before and segment.startswith(before + ".")
                path += (segment[len(before) + 1:] if nested else segment).split(".")
            scope = tuple(_clean(level, fallback) for level in path if level)
            parsed.append((scope, _clean(op, fallback)))
            for depth in range(1, len(scope) + 1):
                counts[scope[:depth]] = counts.get(scope[:depth], 0) + 1
        else:
            parsed.append((tuple(_clean(level, fallback) for level in raw.split(".") if level) or (fallback,), None))
    levels = []
    for module, last in parsed:
        if last is None:
            levels.append(module)
        elif module and counts.get(module) == 1:
            levels.append(module)  # a module with one layer: the layer is the module
        else:
            levels.append((*module, last))
    return levels


def final_levels(m: Mapper) -> None:
    """Unique names that nest into contiguous sequences: a name taken (as a layer, a block or an input), or a
    block that would reopen after it closed, gets a suffix _2, _3 ..."""
    live = [entry for entry in m.entries if not entry.deleted]
    used: set[tuple[str, ...]] = {(name,) for name, _ in m.input_names}
    stack: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (written path, final path) of open blocks

    def free(parent: tuple[str, ...], name: str) -> tuple[str, ...]:
        candidate, k = (*parent, name), 1
        while candidate in used:
            k += 1
            candidate = (*parent, f"{name}_{k}")
        used.add(candidate)
        return candidate

    for entry, levels in zip(live, _raw_levels(live)):
        group = levels[:-1]
        depth = 0
        while depth < len(stack) and depth < len(group) and stack[depth][0] == group[:depth + 1]:
            depth += 1
        del stack[depth:]
        for k in range(depth, len(group)):
            stack.append((group[:k + 1], free(stack[-1][1] if stack else (), group[k])))
        entry.levels = free(stack[-1][1] if stack else (), levels[-1])


def rename(m: Mapper, name: str) -> None:
    """Give the layer or block called ``name`` (a split part: its split) the next free suffix."""
    live = [entry for entry in m.entries if not entry.deleted]
    taken = {entry.levels[:k] for entry in live for k in range(1, len(entry.levels) + 1)}
    levels = tuple(name.split("."))
    while levels not in taken:
        levels = levels[:-1]
    k = 2
    while (*levels[:-1], f"{levels[-1]}_{k}") in taken:
        k += 1
    renamed = (*levels[:-1], f"{levels[-1]}_{k}")
    for entry in live:
        if entry.levels[:len(levels)] == levels:
            entry.levels = (*renamed, *entry.levels[len(levels):])


def input_names(m: Mapper) -> list[tuple[str, Shape]]:
    names: list[tuple[str, Shape]] = []
    for raw, shape in m.inputs:
        name, k = _clean(raw or "input", "input"), 1
        base = name
        while name in {taken for taken, _ in names}:
            k += 1
            name = f"{base}_{k}"
        names.append((name, shape))
    return names
