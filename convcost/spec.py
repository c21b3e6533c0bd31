"""Stage 1: YAML text -> a validated, located spec.

Every mapping and list of the tree keeps the file, line and column of each of
its items (convcost.reader), so later stages point at the exact line of a
mistake. Loading is safe (no Python objects) and bounded (file size, nesting,
alias expansion).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from .errors import Location, SpecError, did_you_mean, printable
from .located import LocatedDict, LocatedList
from .reader import MAX_INT_DIGITS, read_yaml

__all__ = ["MAX_FILE_BYTES", "NAME", "SHAPE_AXES", "TOP_LEVEL_KEYS", "Spec", "load_spec", "loads_spec", "parse_shape"]

MAX_FILE_BYTES = 8 * 1024 * 1024

TOP_LEVEL_KEYS = ("name", "description", "input", "inputs", "outputs", "layers", "blocks", "budget")
#: A tensor name written in a spec (an input, a layer, a block): no dots, which separate levels.
NAME = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True, slots=True, eq=False)
class Spec:
    """A loaded spec: the input shape and the raw, located layer tree."""

    source: str
    name: str
    inputs: tuple[tuple[str, tuple[int, ...]], ...]  # (name, shape): ``input:`` is one input named "input"
    layers: LocatedList
    blocks: LocatedDict  # the ``blocks:`` templates (empty when there are none)
    budget: LocatedDict | None = None
    where: Location = Location("<none>")
    outputs: LocatedList | None = None  # the tensor names of ``outputs:``; None: the last layer

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.inputs[0][1]

    @classmethod
    def single_layer(cls, input_shape: tuple[int, ...], kind: str, options: dict[str, Any],
                     source: str = "<command line>") -> Spec:
        """A one-layer spec built from command-line flags."""
        where = Location(source)
        layer = LocatedDict(where)
        layer.put("kind", kind, where)
        for key, value in options.items():
            if value is not None:
                layer.put(key, value, where)
        layers = LocatedList(where)
        layers.put(layer, where)
        return cls(source=source, name="layer", inputs=(("input", input_shape),), layers=layers,
                   blocks=LocatedDict(where), where=where)


def loads_spec(text: str, source: str = "<string>", *, errors: list[SpecError] | None = None) -> Spec:
    """Parse spec text (YAML) into a :class:`Spec`; raises :class:`SpecError`.

    With an ``errors`` list, problems that do not stop the reading (an unknown
    top-level key, a bad name or budget) are appended to it instead of raised,
    so a checker can report them all; the first fatal problem is still raised.
    """
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates: what undecodable bytes become in a str
        raise SpecError(f"spec is not valid UTF-8 (character {exc.start})", Location(source)) from None
    if size > MAX_FILE_BYTES:
        raise SpecError(f"spec is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit", Location(source))
    tree = read_yaml(text, source)
    if not isinstance(tree, LocatedDict):
        raise SpecError("a spec must be a mapping with 'input' and 'layers'", Location(source, 1))
    return _spec_from_tree(tree, source, errors)


def load_spec(path: str, *, errors: list[SpecError] | None = None) -> Spec:
    """Read a spec file (``-`` for standard input) into a :class:`Spec`.

    Standard input is read as bytes and decoded like a file, so bytes that are
    not UTF-8 and a read that fails are one clear error, wherever they come from.
    """
    source = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            stream = getattr(sys.stdin, "buffer", None)
            raw = stream.read(MAX_FILE_BYTES + 1) if stream is not None else sys.stdin.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", Location(source)) from None
    except UnicodeDecodeError as exc:  # a text stdin without bytes underneath
        raise SpecError(f"spec is not valid UTF-8 (byte {exc.start})", Location(source)) from None
    if isinstance(raw, str):  # a text stream without bytes underneath: loads_spec checks its characters
        return loads_spec(raw, source, errors=errors)
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(f"spec is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit", Location(source))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec is not valid UTF-8 (byte {exc.start})", Location(source)) from None
    return loads_spec(text, source, errors=errors)


# --------------------------------------------------------------------------- top level

SHAPE_AXES = {
    ("channels", "length"): 1,
    ("channels", "height", "width"): 2,
    ("channels", "depth", "height", "width"): 3,
    ("features",): 0,
}
_SHAPE_RE = re.compile(r"^\s*[0-9]+(\s*[xX×]\s*[0-9]+)*\s*$")  # ASCII digits only: '٣' is not a number here


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
        for axes in SHAPE_AXES:
            if set(keys) == set(axes):
                dims = [value[axis] for axis in axes]
                break
        else:
            choices = " | ".join("{" + ", ".join(axes) + "}" for axes in SHAPE_AXES)
            got = ", ".join(map(str, keys))
            raise SpecError(f"{what} shape mapping must have keys {choices}, got {{{got}}}", where)
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
    if "layers" not in tree:
        problem(SpecError("spec has no 'layers' key", tree.where), stops=True)
    name = tree.get("name", _stem(source))
    if not isinstance(name, str) or not name:
        problem(SpecError(f"'name' must be a non-empty string, got {name!r}", tree.at("name")))
        name = _stem(source)
    if "name" in tree and isinstance(name, str) and not name.isprintable():  # printed: no ESC reaches a terminal
        problem(SpecError(f"'name' must be printable text without control characters, got {name!r}", tree.at("name")))
        name = _stem(source)
    if "description" in tree and not isinstance(tree["description"], str):
        problem(SpecError("'description' must be a string", tree.at("description")))
    inputs: list[tuple[str, tuple[int, ...]]] = []
    try:
        inputs = _inputs(tree)
    except SpecError as error:
        problem(error, stops=True)
    outputs = tree.get("outputs")
    if isinstance(outputs, str):
        listed = LocatedList(tree.at("outputs"))
        listed.put(outputs, tree.at("outputs"))
        outputs = listed
    if outputs is not None and (not isinstance(outputs, LocatedList) or not outputs
                                or not all(isinstance(item, str) for item in outputs)):
        problem(SpecError("'outputs' must be a list of tensor names, like [p3, p4, p5]", tree.at("outputs")))
        outputs = None
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
    assert isinstance(layers, LocatedList)  # else a fatal problem was raised above
    return Spec(source=source, name=name, inputs=tuple(inputs), layers=layers, blocks=blocks,
                budget=budget, where=tree.where, outputs=outputs)


def _inputs(tree: LocatedDict) -> list[tuple[str, tuple[int, ...]]]:
    """``input: 3x224x224`` (one input, named ``input``) or ``inputs: {rgb: 3x224x224, depth: 1x224x224}``."""
    if ("input" in tree) == ("inputs" in tree):
        if "input" in tree:
            raise SpecError("give 'input' (one input) or 'inputs' (named inputs), not both", tree.at("inputs"))
        raise SpecError("spec has no 'input' key (or 'inputs' for several)", tree.where)
    if "input" in tree:
        return [("input", parse_shape(tree["input"], tree.at("input")))]
    named = tree["inputs"]
    if not isinstance(named, LocatedDict) or not named:
        raise SpecError("'inputs' must map input names to shapes, like {rgb: 3x224x224, depth: 1x224x224}",
                        tree.at("inputs"))
    inputs = []
    for key, value in named.items():
        if not isinstance(key, str) or not NAME.fullmatch(key):
            raise SpecError(f"input name must be letters, digits, '_' or '-', got {key!r}", named.at(key))
        inputs.append((key, parse_shape(value, named.at(key), f"input '{key}'")))
    return inputs


def _stem(source: str) -> str:
    """The file's name without its extension: a spec's default name (control characters escaped)."""
    base = printable(source.replace("\\", "/").rsplit("/", 1)[-1])
    return base.rsplit(".", 1)[0] if "." in base else base
