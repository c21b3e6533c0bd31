"""YAML text -> a located tree of :class:`LocatedDict`, :class:`LocatedList` and plain scalars.

One loop over libyaml's parse events (PyYAML's C parser when present). No node
graph is composed: nesting is checked as it opens (a composer recursing on deep
input can overflow the C stack), an alias reuses the value its anchor built,
and the size the document would expand to is counted, so an alias bomb is
refused after a few events. Only safe scalar tags are read; ``1x7`` and
``0x3`` are per-axis sizes, never YAML 1.1 hex; integers must be decimal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Location, SpecError
from .located import LocatedDict, LocatedList

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "MAX_NODES", "WrittenFloat", "read_yaml"]

MAX_DEPTH = 64  # collections within each other
MAX_NODES = 1_000_000  # values the document expands to, aliases expanded
MAX_INT_DIGITS = 30

_PER_AXIS = re.compile(r"^[0-9]+(?:[xX][0-9]+)+$")
_DECIMAL = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_COLLECTION_TAGS = (None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
_SCALAR_TAGS = tuple(f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "binary", "timestamp",
                                                                "str"))
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NO_KEY: Any = object()


def _lines_between(text: str, start: Any, end: Any) -> str:
    """The source lines from one YAML mark to another (both included), or '' without marks."""
    if start is None or end is None:
        return ""
    return "\n".join(text.splitlines()[start.line:end.line + 1])


class WrittenFloat(float):
    """A YAML float that keeps the digits it was written with, so an exact reader (a budget's
    ``9.007199254740993e+15``) need not go through the nearest binary float."""

    written: str

    def __new__(cls, value: float, written: str) -> WrittenFloat:
        number = super().__new__(cls, value)
        number.written = written
        return number


def read_yaml(text: str, source: str) -> Any:
    """The one YAML document of ``text`` as located values; raises :class:`SpecError`."""
    parser = _LOADER(text)
    tree = _Tree(source)
    try:
        while parser.check_event():
            tree.feed(parser.get_event())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            problem = f"{problem} ({exc.context} that starts at line {exc.context_mark.line + 1})"
            if "flow" in exc.context:
                mark = exc.context_mark  # an unclosed [ or { is fixed where it opens
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        expression = re.search(r"\$\{[^}\n]*\}?", _lines_between(text, exc.context_mark, exc.problem_mark))
        if exc.context and "flow" in exc.context and expression:
            problem += f"; a ${{...}} inside [...] or {{...}} must be quoted: \"{expression.group()}\""
        raise SpecError(f"malformed YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {str(exc).splitlines()[0]}", Location(source)) from None
    finally:
        parser.dispose()
    if tree.root is _NO_KEY:
        raise SpecError("spec is empty", Location(source, 1))
    return tree.root


@dataclass(slots=True)
class _Open:
    """A collection being filled."""

    container: LocatedDict | LocatedList
    anchor: str | None
    counted_before: int  # values counted before it opened, for its anchor's expanded size
    height: int = 1  # levels of nesting in it, itself included
    key: Any = _NO_KEY  # a mapping's key waiting for its value
    key_where: Location = field(default_factory=lambda: Location(""))


class _Tree:
    def __init__(self, source: str):
        self.source = source
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # anchor -> (value, expanded size, height)
        self.count = 0
        self.documents = 0
        self.root: Any = _NO_KEY
        self.resolver = yaml.SafeLoader("")  # scalar tag resolution and safe construction only

    def where(self, event: Any) -> Location:
        mark = event.start_mark
        return Location(self.source, mark.line + 1, mark.column + 1) if mark else Location(self.source)

    def feed(self, event: Any) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self.grow(1, 1, event)
            value = self.scalar(event)
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, 1, 1)
            self.place(value, self.where(event), 1)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if event.tag not in _COLLECTION_TAGS:
                raise SpecError(f"unsupported YAML tag {event.tag!r}", self.where(event))
            self.grow(1, 1, event)
            kind = LocatedDict if isinstance(event, yaml.MappingStartEvent) else LocatedList
            self.stack.append(_Open(kind(self.where(event)), event.anchor, self.count - 1))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            done = self.stack.pop()
            if done.key is not _NO_KEY:
                raise SpecError("mapping key without a value", done.key_where)
            if done.anchor is not None:
                self.anchors[done.anchor] = (done.container, self.count - done.counted_before, done.height)
            self.place(done.container, done.container.where, done.height)
        elif isinstance(event, yaml.AliasEvent):
            if any(entry.anchor == event.anchor for entry in self.stack):
                raise SpecError(f"alias '*{event.anchor}' refers to a node that contains it", self.where(event))
            if event.anchor not in self.anchors:
                raise SpecError(f"undefined alias '*{event.anchor}'", self.where(event))
            value, size, height = self.anchors[event.anchor]
            self.grow(size, height, event)
            self.place(value, self.where(event), height)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise SpecError("a spec file holds one YAML document; found a second", self.where(event))

    def grow(self, size: int, height: int, event: Any) -> None:
        """Count ``size`` more values, ``height`` levels deep, at the current depth."""
        self.count += size
        if self.count > MAX_NODES:
            raise SpecError(f"spec expands to more than {MAX_NODES:,} YAML nodes (an alias bomb?); refused",
                            self.where(event))
        if len(self.stack) + height - 1 > MAX_DEPTH:  # the root is at depth 0
            raise SpecError(f"YAML nested deeper than {MAX_DEPTH} levels", self.where(event))

    def place(self, value: Any, where: Location, height: int) -> None:
        """Put a finished value into the open collection (or make it the root)."""
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        top.height = max(top.height, height + 1)
        container = top.container
        if isinstance(container, LocatedList):
            container.put(value, where)
        elif top.key is not _NO_KEY:
            container.put(top.key, value, top.key_where)
            top.key = _NO_KEY
        elif isinstance(value, (dict, list)):
            raise SpecError("a mapping key must be a plain value", where)
        elif value in container:
            raise SpecError(f"duplicate key '{value}'", where)
        else:
            top.key, top.key_where = value, where

    def scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None and event.implicit[0] and _PER_AXIS.match(event.value):
            return event.value  # '1x7', '0x3': per-axis sizes, not YAML 1.1 hex integers
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == "tag:yaml.org,2002:merge":
            raise SpecError("YAML merge keys ('<<') are not supported", self.where(event))
        if tag == "tag:yaml.org,2002:int":
            if not _DECIMAL.match(event.value):
                raise SpecError(f"write integers in decimal, got {event.value!r} (YAML 1.1 reads it as octal, hex "
                                "or base 60)", self.where(event))
            if len(event.value.lstrip("+-").replace("_", "")) > MAX_INT_DIGITS:
                raise SpecError(f"integer with more than {MAX_INT_DIGITS} digits", self.where(event))
        construct = yaml.SafeLoader.yaml_constructors.get(tag) if tag in _SCALAR_TAGS else None
        if construct is None:
            raise SpecError(f"unsupported YAML tag {tag!r}", self.where(event))
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = construct(self.resolver, node)
            return WrittenFloat(value, event.value) if type(value) is float else value
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"invalid value {event.value!r}: {detail}", self.where(event)) from None
