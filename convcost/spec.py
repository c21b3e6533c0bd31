"""Stage 1: YAML text -> a validated, located spec tree.

Every mapping and list keeps the file, line and column of each of its items so
later stages can point at the exact line of a mistake. Loading is safe (no
Python objects), bounded (file size, nesting depth, alias expansion) and uses
libyaml's C parser when present.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from .errors import Location, SpecError
from .record import Record

__all__ = [
    "LocatedDict",
    "LocatedList",
    "Spec",
    "did_you_mean",
    "load_spec",
    "loads_spec",
    "parse_shape",
]

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 1_000_000
MAX_INT_DIGITS = 30

TOP_LEVEL_KEYS = ("name", "description", "input", "layers", "blocks", "budget")


# A key's or item's location is kept as a (line, column) pair and made a Location
# (same file as its container) only when asked for by ``at()``: a 100,000-layer
# spec has about 800,000 keys and items and creating a frozen Location costs ~1 us,
# while the builder asks for about one per layer.


class LocatedDict(dict):
    """A mapping from a spec; ``where`` is its own location, ``at(k)`` each key's."""

    __slots__ = ("where", "key_where")

    def __init__(self, where: Location):
        # No super().__init__(): the dict is already empty, and the call tripled the cost
        # of creating one (one per YAML mapping).
        self.where = where
        self.key_where: dict[Any, Location | tuple[int, int]] = {}  # read through at()

    def at(self, key: Any) -> Location:
        where = self.key_where.get(key, self.where)
        return where if type(where) is Location else Location(self.where.file, *where)


class LocatedList(list):
    """A sequence from a spec; ``at(i)`` is the location of item i."""

    __slots__ = ("where", "item_where")

    def __init__(self, where: Location):
        self.where = where  # no super().__init__(): see LocatedDict
        self.item_where: list[Location | tuple[int, int]] = []  # read through at()

    def at(self, index: int) -> Location:
        if index >= len(self.item_where):
            return self.where
        where = self.item_where[index]
        return where if type(where) is Location else Location(self.where.file, *where)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'kernel'?)`` for a near miss, else an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Spec(Record):
    """A loaded spec: the input shape and the raw, located layer tree."""

    source: str
    name: str
    input_shape: tuple[int, ...]
    layers: LocatedList
    blocks: LocatedDict  # the ``blocks:`` templates (empty when there are none)
    budget: LocatedDict | None = None
    where: Location = Location("<none>")

    @classmethod
    def single_layer(cls, input_shape: tuple[int, ...], kind: str, options: dict[str, Any],
                     source: str = "<command line>") -> Spec:
        """A one-layer spec built from command-line flags."""
        where = Location(source)
        layer = LocatedDict(where)
        layer["kind"] = kind
        for key, value in options.items():
            if value is not None:
                layer[key] = value
        layers = LocatedList(where)
        layers.append(layer)
        layers.item_where.append(where)
        return cls(source=source, name="layer", input_shape=input_shape, layers=layers, blocks=LocatedDict(where),
                   where=where)


# --------------------------------------------------------------------------- YAML


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def loads_spec(text: str, source: str = "<string>", *, errors: list[SpecError] | None = None) -> Spec:
    """Parse spec text (YAML) into a :class:`Spec`; raises :class:`SpecError`.

    With an ``errors`` list, problems that do not stop the reading (an unknown
    top-level key, a bad name or budget) are appended to it instead of raised,
    so a checker can report them all; the first fatal problem is still raised.
    """
    if (len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))) > MAX_FILE_BYTES:
        raise SpecError(f"spec is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit", Location(source))
    tree = _compose(text, source)
    if not isinstance(tree, LocatedDict):
        raise SpecError("a spec must be a mapping with 'input' and 'layers'", Location(source, 1))
    return _spec_from_tree(tree, source, errors)


def load_spec(path: str, *, errors: list[SpecError] | None = None) -> Spec:
    """Read a spec file (``-`` for standard input) into a :class:`Spec`."""
    import sys

    if path == "-":
        source = "<stdin>"
        text = sys.stdin.read(MAX_FILE_BYTES + 1)
    else:
        source = path
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SpecError(f"cannot read spec: {exc.strerror or exc}", Location(path)) from None
        if len(raw) > MAX_FILE_BYTES:
            raise SpecError(f"spec is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit", Location(path))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"spec is not valid UTF-8 (byte {exc.start})", Location(path)) from None
        del raw  # the tree is built in its memory
    return loads_spec(text, source, errors=errors)


def _compose(text: str, source: str) -> Any:
    """Stream libyaml's parse events into located values.

    No node graph is composed: nesting is checked as it opens (libyaml's own
    composer recurses in C and can overflow the stack on deep input), an alias
    reuses the value its anchor built, and the size the document would expand
    to is counted, so an alias bomb is refused after reading a few events.
    """
    import yaml

    from .yaml_subset import Unsupported, read

    builder = _TreeBuilder(source)
    try:
        # Most specs, and large generated ones, are plain block YAML: read line by line
        # (same tree and locations); anything else, and every error, goes through libyaml.
        return read(text, source, builder.scalar, MAX_NODES)
    except Unsupported:
        pass
    parser = _yaml_loader()(text)
    try:
        builder.build(parser)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            problem = f"{problem} ({exc.context} that starts at line {exc.context_mark.line + 1})"
            if "flow" in exc.context:
                mark = exc.context_mark  # an unclosed [ or { is fixed where it opens
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        raise SpecError(f"malformed YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {str(exc).splitlines()[0]}", Location(source)) from None
    finally:
        parser.dispose()
    if builder.root is _NOTHING:
        raise SpecError("spec is empty", Location(source, 1))
    return builder.root


_NOTHING: Any = object()
_PER_AXIS = re.compile(r"^[0-9]+(?:[xX][0-9]+)+$")
_DECIMAL = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_STANDARD_COLLECTION_TAGS = (None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
_SCALAR_TAGS = tuple(f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "binary", "timestamp", "str"))


class _Frame:
    """A YAML collection being filled by the tree builder."""

    __slots__ = ("container", "anchor", "start_count", "height", "key", "key_where")

    def __init__(self, container: Any, anchor: str | None, start_count: int):
        self.container = container  # LocatedDict or LocatedList being filled
        self.anchor = anchor
        self.start_count = start_count  # expanded nodes counted before this collection opened
        self.height = 1  # levels of nesting below and including this collection
        self.key: Any = _NOTHING  # a mapping's key waiting for its value
        self.key_where: Location | tuple[int, int] | None = None


class _TreeBuilder:
    """libyaml parse events -> located values, refusing alias bombs, deep nesting and unsafe tags."""

    def __init__(self, source: str):
        import yaml

        self.yaml = yaml
        self.source = source
        self.resolver = yaml.SafeLoader("")  # scalar tag resolution and safe construction only
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # anchor -> (value, expanded size, height)
        self.count = 0  # nodes the document expands to, aliases expanded
        self.documents = 0
        self.root: Any = _NOTHING
        self.scalars: dict[tuple[Any, str, Any], Any] = {}  # (tag, text, implicit) -> value: specs repeat scalars

    def where(self, event: Any) -> Location:
        mark = event.start_mark
        return Location(self.source, mark.line + 1, mark.column + 1) if mark else Location(self.source)

    def counted(self, nodes: int, event: Any) -> None:
        self.count += nodes
        if self.count > MAX_NODES:
            raise SpecError(f"spec expands to more than {MAX_NODES:,} YAML nodes (an alias bomb?); refused",
                            self.where(event))

    def build(self, parser: Any) -> None:
        """Read every event of ``parser`` (yaml.parse() without its generator).

        The three commonest events (a scalar, a collection opening, a collection
        closing) are handled inline with the state in local names: this loop is most
        of the time of loading a 100,000-layer spec beyond libyaml's own. Everything
        else, and every error, goes through the methods below.
        """
        yaml = self.yaml
        scalar_event, mapping_start, sequence_start = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
        mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
        stack, scalars, source = self.stack, self.scalars, self.source
        more, next_event = parser.check_event, parser.get_event
        while more():
            event = next_event()
            kind = type(event)
            if kind is scalar_event:
                self.count += 1
                if self.count > MAX_NODES or len(stack) > MAX_DEPTH:
                    self.counted(0, event)
                    self.check_depth(1, event)
                key = (event.tag, event.value, event.implicit)
                value = scalars.get(key, _NOTHING)
                if value is _NOTHING:
                    value = scalars[key] = self.scalar(event)
                if event.anchor is not None or not stack:
                    self.place(value, event, 1)
                    continue
                frame = stack[-1]
                if frame.height == 1:
                    frame.height = 2
                container = frame.container
                mark = event.start_mark
                if type(container) is LocatedList:
                    container.append(value)
                    container.item_where.append((mark.line + 1, mark.column + 1))
                elif frame.key is not _NOTHING:
                    container[frame.key] = value
                    container.key_where[frame.key] = frame.key_where
                    frame.key = _NOTHING
                elif value in container:
                    self.place(value, event, 1)  # raises: duplicate key
                else:
                    frame.key, frame.key_where = value, (mark.line + 1, mark.column + 1)
            elif kind is mapping_start or kind is sequence_start:
                if event.tag not in _STANDARD_COLLECTION_TAGS:
                    raise SpecError(f"unsupported YAML tag {event.tag!r}", self.where(event))
                self.count += 1
                if self.count > MAX_NODES or len(stack) > MAX_DEPTH:
                    self.counted(0, event)
                    self.check_depth(1, event)
                mark = event.start_mark
                where = Location(source, mark.line + 1, mark.column + 1)
                container = LocatedDict(where) if kind is mapping_start else LocatedList(where)
                stack.append(_Frame(container, event.anchor, self.count - 1))
            elif kind is mapping_end or kind is sequence_end:
                frame = stack.pop()
                container = frame.container
                if frame.key is not _NOTHING and type(container) is LocatedDict:
                    raise SpecError("mapping key without a value", self.located(frame.key_where))
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (container, self.count - frame.start_count, frame.height)
                if not stack:
                    self.root = container
                    continue
                parent = stack[-1]
                if parent.height <= frame.height:
                    parent.height = frame.height + 1
                into = parent.container
                if type(into) is LocatedList:
                    into.append(container)
                    into.item_where.append(container.where)
                elif parent.key is not _NOTHING:
                    into[parent.key] = container
                    into.key_where[parent.key] = parent.key_where
                    parent.key = _NOTHING
                else:
                    self.place(container, event, frame.height, anchored=True)  # raises: a collection as a key
            else:
                self.other(event)

    def other(self, event: Any) -> None:
        """An alias, or a stream or document boundary."""
        yaml = self.yaml
        if isinstance(event, yaml.AliasEvent):
            if any(frame.anchor == event.anchor for frame in self.stack):
                raise SpecError(f"alias '*{event.anchor}' refers to a node that contains it", self.where(event))
            if event.anchor not in self.anchors:
                raise SpecError(f"undefined alias '*{event.anchor}'", self.where(event))
            value, size, height = self.anchors[event.anchor]
            self.counted(size, event)
            self.check_depth(height, event)
            self.place(value, event, height)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise SpecError("a spec file holds one YAML document; found a second", self.where(event))

    def check_depth(self, height: int, event: Any) -> None:
        # The root sits at depth 0; a value at depth d below MAX_DEPTH is fine.
        if len(self.stack) + height - 1 > MAX_DEPTH:
            raise SpecError(f"YAML nested deeper than {MAX_DEPTH} levels", self.where(event))

    def place(self, value: Any, event: Any, height: int, anchored: bool = False) -> None:
        if not anchored and isinstance(event, self.yaml.ScalarEvent) and event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 1)
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if frame.height <= height:
            frame.height = height + 1
        container = frame.container
        if isinstance(container, LocatedList):
            container.append(value)
            container.item_where.append(self.value_where(value, event, anchored))
            return
        if frame.key is _NOTHING:
            where = self.value_where(value, event, anchored)  # a mapping value's own location is not kept
            if isinstance(value, (dict, list)):
                raise SpecError("a mapping key must be a plain value", self.located(where))
            if value in container:
                raise SpecError(f"duplicate key '{value}'", self.located(where))
            frame.key, frame.key_where = value, where
            return
        container[frame.key] = value
        container.key_where[frame.key] = frame.key_where
        frame.key = _NOTHING

    def value_where(self, value: Any, event: Any, anchored: bool) -> Location | tuple[int, int]:
        if anchored and isinstance(value, (LocatedDict, LocatedList)):
            return value.where
        mark = event.start_mark  # kept as (line, column); at() makes the Location if it is ever needed
        return (mark.line + 1, mark.column + 1) if mark else Location(self.source)

    def located(self, where: Location | tuple[int, int] | None) -> Location | None:
        return Location(self.source, *where) if type(where) is tuple else where

    def scalar(self, event: Any) -> Any:
        yaml = self.yaml
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
            digits = event.value.lstrip("+-").replace("_", "")
            if len(digits) > MAX_INT_DIGITS:
                raise SpecError(f"integer with more than {MAX_INT_DIGITS} digits", self.where(event))
        construct = yaml.SafeLoader.yaml_constructors.get(tag) if tag in _SCALAR_TAGS else None
        if construct is None:
            raise SpecError(f"unsupported YAML tag {tag!r}", self.where(event))
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return construct(self.resolver, node)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"invalid value {event.value!r}: {detail}", self.where(event)) from None


# --------------------------------------------------------------------------- top level

_SHAPE_AXES = {
    ("channels", "length"): 1,
    ("channels", "height", "width"): 2,
    ("channels", "depth", "height", "width"): 3,
    ("features",): 0,
}
_SHAPE_RE = re.compile(r"^\s*\d+(\s*[xX×]\s*\d+)*\s*$")


def parse_shape(value: Any, where: Location, what: str = "input") -> tuple[int, ...]:
    """``192x28x28``, ``[192, 28, 28]``, ``4096`` or a mapping -> a channels-first tuple."""
    if isinstance(value, bool):
        raise SpecError(f"{what} shape must be like 3x224x224, got {value!r}", where)
    if isinstance(value, int):
        dims: list[Any] = [value]
    elif isinstance(value, str):
        if not _SHAPE_RE.match(value):
            raise SpecError(f"{what} shape must be channels-first like 3x224x224, got {value!r}", where)
        parts = re.split(r"[xX×]", value)
        if any(len(part.strip()) > MAX_INT_DIGITS for part in parts):
            raise SpecError(f"{what} shape sizes must have at most {MAX_INT_DIGITS} digits", where)
        dims = [int(part) for part in parts]
    elif isinstance(value, list):
        dims = list(value)
    elif isinstance(value, dict):
        keys = tuple(value)
        for axes in _SHAPE_AXES:
            if set(keys) == set(axes):
                dims = [value[axis] for axis in axes]
                break
        else:
            choices = " | ".join("{" + ", ".join(axes) + "}" for axes in _SHAPE_AXES)
            raise SpecError(f"{what} shape mapping must have keys {choices}, got {{{', '.join(map(str, keys))}}}", where)
    else:
        raise SpecError(f"{what} shape must be like 3x224x224, got {value!r}", where)
    if not 1 <= len(dims) <= 4:
        raise SpecError(f"{what} shape must have 1 to 4 axes (C, CxL, CxHxW or CxDxHxW), got {len(dims)}", where)
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise SpecError(f"{what} shape sizes must be integers, got {dim!r}", where)
        if dim <= 0:
            raise SpecError(f"{what} shape sizes must be positive, got {dim}", where)
    return tuple(dims)


def _spec_from_tree(tree: LocatedDict, source: str, errors: list[SpecError] | None = None) -> Spec:
    # Without ``errors`` the first problem is raised. With it, every problem is
    # appended; if one makes the spec unusable (no input, no layers) the first
    # such is raised as well, already in the list.
    fatal: list[SpecError] = []

    def problem(error: SpecError, stops: bool = False) -> None:
        if errors is None:
            raise error
        errors.append(error)
        if stops:
            fatal.append(error)

    for key in tree:
        if key not in TOP_LEVEL_KEYS:
            problem(SpecError(f"unknown top-level key '{key}'{did_you_mean(key, TOP_LEVEL_KEYS)}", tree.at(key)))
    for required in ("input", "layers"):
        if required not in tree:
            problem(SpecError(f"spec has no '{required}' key", tree.where), stops=True)
    name = tree.get("name", _stem(source))
    if not isinstance(name, str) or not name:
        problem(SpecError(f"'name' must be a non-empty string, got {name!r}", tree.at("name")))
        name = _stem(source)
    if "description" in tree and not isinstance(tree["description"], str):
        problem(SpecError("'description' must be a string", tree.at("description")))
    input_shape: tuple[int, ...] = ()
    if "input" in tree:
        try:
            input_shape = parse_shape(tree["input"], tree.at("input"))
        except SpecError as error:
            problem(error, stops=True)
    layers = tree.get("layers")
    if "layers" in tree and not isinstance(layers, LocatedList):
        problem(SpecError("'layers' must be a list of layers", tree.at("layers")), stops=True)
    elif "layers" in tree and not layers:
        problem(SpecError("'layers' is empty", tree.at("layers")), stops=True)
    blocks = tree.get("blocks", LocatedDict(tree.where))
    if not isinstance(blocks, LocatedDict):
        problem(SpecError("'blocks' must be a mapping from block name to {params, layers}", tree.at("blocks")))
        blocks = LocatedDict(tree.where)
    budget = tree.get("budget")
    if budget is not None and not isinstance(budget, LocatedDict):
        problem(SpecError("'budget' must be a mapping", tree.at("budget")))
        budget = None
    if fatal:
        raise fatal[0]
    return Spec(source=source, name=name, input_shape=input_shape, layers=layers, blocks=blocks,
                budget=budget, where=tree.where)


def _stem(source: str) -> str:
    base = source.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base
