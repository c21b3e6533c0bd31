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
from dataclasses import dataclass, field
from typing import Any

from .errors import Location, SpecError

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


class LocatedDict(dict):
    """A mapping from a spec; ``where`` is its own location, ``key_where[k]`` each key's."""

    __slots__ = ("where", "key_where")

    def __init__(self, where: Location):
        super().__init__()
        self.where = where
        self.key_where: dict[Any, Location] = {}

    def at(self, key: Any) -> Location:
        return self.key_where.get(key, self.where)


class LocatedList(list):
    """A sequence from a spec; ``item_where[i]`` is the location of item i."""

    __slots__ = ("where", "item_where")

    def __init__(self, where: Location):
        super().__init__()
        self.where = where
        self.item_where: list[Location] = []

    def at(self, index: int) -> Location:
        return self.item_where[index] if index < len(self.item_where) else self.where


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'kernel'?)`` for a near miss, else an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True, slots=True)
class Spec:
    """A loaded spec: the input shape and the raw, located layer tree."""

    source: str
    name: str
    input_shape: tuple[int, ...]
    layers: LocatedList
    blocks: LocatedDict = field(default_factory=lambda: LocatedDict(Location("<none>")))
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
        return cls(source=source, name="layer", input_shape=input_shape, layers=layers, where=where)


# --------------------------------------------------------------------------- YAML


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def loads_spec(text: str, source: str = "<string>") -> Spec:
    """Parse spec text (YAML) into a :class:`Spec`; raises :class:`SpecError`."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise SpecError(f"spec is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit", Location(source))
    tree = _compose(text, source)
    if not isinstance(tree, LocatedDict):
        raise SpecError("a spec must be a mapping with 'input' and 'layers'", Location(source, 1))
    return _spec_from_tree(tree, source)


def load_spec(path: str) -> Spec:
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
    return loads_spec(text, source)


def _compose(text: str, source: str) -> Any:
    import yaml

    try:
        node = yaml.compose(text, Loader=_yaml_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        problem = exc.problem or exc.context or "malformed YAML"
        raise SpecError(f"malformed YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {str(exc).splitlines()[0]}", Location(source)) from None
    except RecursionError:
        raise SpecError(f"YAML nested deeper than {MAX_DEPTH} levels", Location(source)) from None
    if node is None:
        raise SpecError("spec is empty", Location(source, 1))
    return _Converter(source).convert(node, 0)


class _Converter:
    """YAML node graph -> located Python values, refusing alias bombs and deep nesting."""

    def __init__(self, source: str):
        import yaml

        self.source = source
        self.visited = 0
        self.constructor = yaml.SafeLoader("")  # only for scalar resolution
        self.yaml = yaml

    def where(self, node: Any) -> Location:
        mark = node.start_mark
        return Location(self.source, mark.line + 1, mark.column + 1)

    def convert(self, node: Any, depth: int) -> Any:
        yaml = self.yaml
        self.visited += 1
        if self.visited > MAX_NODES:
            raise SpecError(
                f"spec expands to more than {MAX_NODES:,} YAML nodes (an alias bomb?); refused",
                self.where(node),
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"YAML nested deeper than {MAX_DEPTH} levels", self.where(node))
        if isinstance(node, yaml.MappingNode):
            result = LocatedDict(self.where(node))
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise SpecError("YAML merge keys ('<<') are not supported", self.where(key_node))
                key = self.convert(key_node, depth + 1)
                if isinstance(key, (dict, list)):
                    raise SpecError("a mapping key must be a plain value", self.where(key_node))
                if key in result:
                    raise SpecError(f"duplicate key '{key}'", self.where(key_node))
                result[key] = self.convert(value_node, depth + 1)
                result.key_where[key] = self.where(key_node)
            return result
        if isinstance(node, yaml.SequenceNode):
            result_list = LocatedList(self.where(node))
            for item in node.value:
                result_list.append(self.convert(item, depth + 1))
                result_list.item_where.append(self.where(item))
            return result_list
        if node.tag == "tag:yaml.org,2002:int":
            digits = node.value.lstrip("+-").replace("_", "")
            if len(digits) > MAX_INT_DIGITS:
                raise SpecError(f"integer with more than {MAX_INT_DIGITS} digits", self.where(node))
        try:
            return self.constructor.construct_object(node, deep=True)
        except (self.yaml.YAMLError, ValueError, OverflowError) as exc:
            raise SpecError(f"invalid value {node.value!r}: {exc}", self.where(node)) from None


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
        dims = [int(part) for part in re.split(r"[xX×]", value)]
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


def _spec_from_tree(tree: LocatedDict, source: str) -> Spec:
    for key in tree:
        if key not in TOP_LEVEL_KEYS:
            raise SpecError(f"unknown top-level key '{key}'{did_you_mean(key, TOP_LEVEL_KEYS)}", tree.at(key))
    for required in ("input", "layers"):
        if required not in tree:
            raise SpecError(f"spec has no '{required}' key", tree.where)
    name = tree.get("name", _stem(source))
    if not isinstance(name, str) or not name:
        raise SpecError(f"'name' must be a non-empty string, got {name!r}", tree.at("name"))
    if "description" in tree and not isinstance(tree["description"], str):
        raise SpecError("'description' must be a string", tree.at("description"))
    input_shape = parse_shape(tree["input"], tree.at("input"))
    layers = tree["layers"]
    if not isinstance(layers, LocatedList):
        raise SpecError("'layers' must be a list of layers", tree.at("layers"))
    if not layers:
        raise SpecError("'layers' is empty", tree.at("layers"))
    blocks = tree.get("blocks", LocatedDict(tree.where))
    if not isinstance(blocks, LocatedDict):
        raise SpecError("'blocks' must be a mapping from block name to {params, layers}", tree.at("blocks"))
    budget = tree.get("budget")
    if budget is not None and not isinstance(budget, LocatedDict):
        raise SpecError("'budget' must be a mapping", tree.at("budget"))
    return Spec(source=source, name=name, input_shape=input_shape, layers=layers, blocks=blocks,
                budget=budget, where=tree.where)


def _stem(source: str) -> str:
    base = source.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base
