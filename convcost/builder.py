"""Stage 2c: a located spec -> a :class:`Network` of nodes with inferred shapes.

The builder walks the spec's layer list once, in order. Leaf kinds come from
``kinds.LAYER_KINDS``; structures (``sequence``, ``concat``, ``residual``,
``dense``) and ``blocks:`` templates expand into leaf nodes whose names are
unique dotted paths. Every problem is a :class:`SpecError` naming file, line,
layer, rule and value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import Location, SpecError, did_you_mean
from .expansion import refuse_large_expansion
from .expressions import resolve
from .kinds import COMMON_KEYS, LAYER_KINDS
from .layers import Add, Concat, Identity, Layer, LayerError, Shape
from .located import LocatedDict, LocatedList
from .network import INPUT, Block, Network, Node
from .options import REQUIRED, Options
from .spec import Spec

__all__ = ["MAX_NODES", "STRUCTURE_KEYS", "STRUCTURE_KINDS", "build_network"]

MAX_NODES = 2_000_000
MAX_REPEAT = 100_000
MAX_NESTING = 50  # layer lists within structures and blocks; keeps the builder's recursion bounded
MAX_SIZE = 10**30  # largest length of any tensor axis
MAX_ERRORS = 100  # a collecting build stops after this many problems

#: Structure kind -> its keys besides ``name`` and ``repeat``.
STRUCTURE_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "sequence": ("layers",), "concat": ("branches",), "residual": ("body", "shortcut"), "dense": ("body",),
})
STRUCTURE_KINDS = tuple(STRUCTURE_KEYS)
#: Template parameter names that are not free: in_channels is bound to the input's channel count.
_RESERVED = ("name", "repeat", "in_channels")


@dataclass(frozen=True, slots=True)
class _Template:
    params: Mapping[str, Any]  # name -> default, or REQUIRED
    layers: LocatedList
    where: Location


class _Scope:
    """Where the builder is: the name prefix, visible template parameters and generated-name counters."""

    def __init__(self, prefix: str, params: Mapping[str, Any], stack: tuple[str, ...]):
        self.prefix = prefix
        self.params = params
        self.stack = stack  # templates being expanded, to refuse recursion
        self.counters: dict[str, int] = {}

    def child(self, prefix: str) -> _Scope:
        return _Scope(prefix, self.params, self.stack)

    def full(self, local: str | None, kind: str = "") -> str:
        """The dotted name of ``local`` here; without a local name, the next ``kind_N``."""
        if local is None:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            local = f"{kind}_{self.counters[kind]}"
        return f"{self.prefix}.{local}" if self.prefix else local


def build_network(spec: Spec, *, errors: list[SpecError] | None = None) -> Network:
    """Expand a spec into nodes, inferring every shape; raises :class:`SpecError`.

    With an ``errors`` list the build collects instead of stopping: a bad layer's
    problem is appended and the layer stands in as passing its input through;
    problems that only follow from an earlier one (shape rules downstream of a
    bad layer, uses of a bad block) are not reported. The network returned is
    then a sketch, to be used only if ``errors`` stayed empty.
    """
    refuse_large_expansion(spec, max_nodes=MAX_NODES, max_repeat=MAX_REPEAT, max_nesting=MAX_NESTING)
    builder = _Builder(spec, errors)
    try:
        builder.sequence(spec.layers, INPUT, _Scope("", MappingProxyType({}), ()))
    except _Stop as stop:
        if errors is not None:
            errors.append(stop.error)
    return Network(name=spec.name, source=spec.source, input_shape=spec.input_shape,
                   nodes=tuple(builder.nodes), blocks=tuple(builder.blocks))


class _Stop(Exception):
    """Ends a collecting build early (a size limit, too many problems)."""

    def __init__(self, error: SpecError):
        super().__init__(error.format())
        self.error = error


def _check_keys(kind: str, raw: LocatedDict, allowed: tuple[str, ...], name: str) -> None:
    for key in raw:
        if key not in allowed:
            raise SpecError(f"unknown key '{key}' for {kind}{did_you_mean(key, allowed)}; "
                            f"allowed: {', '.join(allowed)}", raw.at(key), name)


class _Builder:
    def __init__(self, spec: Spec, errors: list[SpecError] | None = None):
        self.spec = spec
        self.errors = errors  # None: raise the first problem; a list: collect them
        self.nodes: list[Node] = []
        self.blocks: list[Block] = []
        self.names: set[str] = set()
        self.tainted: set[int] = set()  # nodes whose shape follows from a bad layer
        self.broken: set[Any] = set()  # blocks with problems of their own
        self.depth = 0
        self.templates = _templates(spec, errors, self.broken)

    def stop(self, error: SpecError) -> Exception:
        return error if self.errors is None else _Stop(error)

    def failed(self, error: SpecError | None, name: str, inputs: tuple[int, ...], where: Location) -> int:
        """Collecting: note ``error`` (None when it follows from an earlier one) and stand in for the layer."""
        errors = self.errors
        if errors is None:
            raise error if error is not None else SpecError("invalid layer", where, name)
        if error is not None and not any(e.where == error.where and e.message == error.message for e in errors):
            errors.append(error)
            if len(errors) >= MAX_ERRORS:
                raise _Stop(SpecError(f"stopped after {MAX_ERRORS} problems", Location(self.spec.source)))
        if len(self.nodes) >= MAX_NODES:
            raise _Stop(SpecError(f"network expands to more than {MAX_NODES:,} layers", where, name))
        shape = self.shape(inputs[0])
        self.nodes.append(Node(len(self.nodes), name, Identity(), inputs[:1], (shape,), shape, where))
        self.tainted.add(len(self.nodes) - 1)
        return len(self.nodes) - 1

    def shape(self, ref: int) -> Shape:
        return self.spec.input_shape if ref == INPUT else self.nodes[ref].output_shape

    def add(self, name: str, make: Callable[[tuple[Shape, ...]], Layer], inputs: tuple[int, ...],
            where: Location) -> int:
        """Append a node whose layer ``make(input shapes)`` builds; returns its index."""
        shapes = tuple(self.shape(ref) for ref in inputs)
        try:
            layer = make(shapes)
            output = layer.output_shape(*shapes)
            if any(size > MAX_SIZE for size in output):
                raise LayerError(f"output has an axis longer than the limit of 10^{len(str(MAX_SIZE)) - 1}")
        except LayerError as exc:
            # A shape rule broken downstream of a bad layer is a consequence, not a new problem.
            error = SpecError(str(exc), where, name)
            if self.errors is None:
                raise error from None
            follows = any(ref in self.tainted for ref in inputs)
            return self.failed(None if follows else error, name, inputs, where)
        except SpecError as error:
            if self.errors is None:
                raise
            return self.failed(error, name, inputs, where)
        if len(self.nodes) >= MAX_NODES:
            raise self.stop(SpecError(f"network expands to more than {MAX_NODES:,} layers", where, name))
        self.claim(name, where)
        index = len(self.nodes)
        self.nodes.append(Node(index, name, layer, inputs, shapes, output, where))
        if any(ref in self.tainted for ref in inputs):
            self.tainted.add(index)  # its shape follows from a bad layer
        return index

    def claim(self, name: str, where: Location) -> None:
        if name in self.names:
            error = SpecError(f"duplicate layer name '{name}'", where, name)
            if self.errors is None:
                raise error
            self.errors.append(error)
            if len(self.errors) >= MAX_ERRORS:  # as in failed(): a collecting build stops here
                raise _Stop(SpecError(f"stopped after {MAX_ERRORS} problems", Location(self.spec.source)))
        self.names.add(name)

    def sequence(self, items: Any, x: int, scope: _Scope, where: Location | None = None) -> int:
        if not isinstance(items, LocatedList):
            raise SpecError(f"expected a list of layers, got {items!r}", where or self.spec.where, scope.prefix or None)
        if self.depth >= MAX_NESTING:
            raise SpecError(f"layers nested more than {MAX_NESTING} levels deep (structures and blocks within "
                            "each other)", where or self.spec.where, scope.prefix or None)
        self.depth += 1
        try:
            for index, item in enumerate(items):
                x = self.entry(item, items.at(index), x, scope)
        finally:
            self.depth -= 1
        return x

    def entry(self, item: Any, where: Location, x: int, scope: _Scope) -> int:
        if self.errors is None:
            return self.checked_entry(item, where, x, scope)
        try:
            return self.checked_entry(item, where, x, scope)
        except SpecError as error:
            return self.failed(error, error.layer or scope.full("?"), (x,), where)

    def checked_entry(self, item: Any, where: Location, x: int, scope: _Scope) -> int:
        kind, raw = _split_entry(item, where)
        if kind in self.broken:
            return self.failed(None, scope.full(str(kind)), (x,), where)
        if kind not in LAYER_KINDS and kind not in STRUCTURE_KEYS and kind not in self.templates:
            known = (*LAYER_KINDS, *STRUCTURE_KINDS, *self.templates)
            raise SpecError(f"unknown layer kind '{kind}'{did_you_mean(kind, known)}", where)
        local = raw.get("name")
        if local is not None:
            local = resolve(local, scope.params, raw.at("name"), str(local))
            if not isinstance(local, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", local):
                raise SpecError(f"'name' must be letters, digits, '_' or '-' (dots separate levels), got {local!r}",
                                raw.at("name"))
        name = scope.full(local, kind)
        repeat = resolve(raw.get("repeat", 1), scope.params, raw.at("repeat"), name)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise SpecError(f"'repeat' must be an integer from 1 to {MAX_REPEAT:,}, got {repeat!r}",
                            raw.at("repeat"), name)
        if repeat == 1:
            return self.one(kind, raw, where, x, scope, name)
        self.claim(name, where)
        self.blocks.append(Block(name, f"{kind} x{repeat}", where))
        for copy in range(repeat):
            before = len(self.nodes)
            x = self.one(kind, raw, where, x, scope, f"{name}.{copy}")
            each = len(self.nodes) - before
            if copy == 0 and before + each * repeat > MAX_NODES:  # refuse now, not after building millions
                raise self.stop(SpecError(f"network expands to more than {MAX_NODES:,} layers "
                                          f"({repeat:,} copies of {each:,})", raw.at("repeat"), name))
        return x

    def one(self, kind: str, raw: LocatedDict, where: Location, x: int, scope: _Scope, name: str) -> int:
        if kind in LAYER_KINDS:
            declared = LAYER_KINDS[kind]
            _check_keys(kind, raw, declared.allowed, name)
            options = Options(kind, raw, where, name, scope.params)
            for key in declared.required:
                if key not in raw:
                    raise options.error(f"{kind} needs '{key}'")
            return self.add(name, lambda shapes: declared.build(options, shapes[0]), (x,), where)
        self.claim(name, where)
        self.blocks.append(Block(name, kind, where))
        if kind in self.templates:
            return self.template(kind, raw, where, x, scope, name)
        return self.structure(kind, raw, where, x, scope, name)

    def structure(self, kind: str, raw: LocatedDict, where: Location, x: int, scope: _Scope, name: str) -> int:
        _check_keys(kind, raw, (*COMMON_KEYS, *STRUCTURE_KEYS[kind]), name)
        inner = scope.child(name)
        if kind == "sequence":
            return self.sequence(raw.get("layers"), x, inner, where)
        if kind == "concat":
            branches = raw.get("branches")
            if not isinstance(branches, LocatedList) or not branches:
                raise SpecError("concat needs 'branches', a list of layer lists", raw.at("branches"), name)
            outputs = tuple(self.sequence(branch, x, inner.child(f"{name}.branch{index + 1}"), branches.at(index))
                            for index, branch in enumerate(branches))
            return self.add(f"{name}.concat", lambda _: Concat(inputs=len(outputs)), outputs, where)
        if "body" not in raw:
            raise SpecError(f"{kind} needs 'body', a list of layers", where, name)
        body = self.sequence(raw["body"], x, inner.child(f"{name}.body"), raw.at("body"))
        if kind == "dense":
            return self.add(f"{name}.concat", lambda _: Concat(inputs=2), (x, body), where)
        shortcut_items = raw.get("shortcut") or LocatedList(where)
        shortcut = self.sequence(shortcut_items, x, inner.child(f"{name}.shortcut"), raw.at("shortcut"))
        return self.add(f"{name}.add", lambda _: Add(inputs=2), (body, shortcut), where)

    def template(self, kind: str, raw: LocatedDict, where: Location, x: int, scope: _Scope, name: str) -> int:
        template = self.templates[kind]
        if kind in scope.stack:
            raise SpecError(f"block '{kind}' uses itself ({' -> '.join((*scope.stack, kind))})", where, name)
        bound: dict[str, Any] = {}
        for key in raw:
            if key in COMMON_KEYS:
                continue
            if key not in template.params:
                raise SpecError(f"unknown parameter '{key}' for block '{kind}'{did_you_mean(key, template.params)}; "
                                f"parameters: {', '.join(template.params) or 'none'}", raw.at(key), name)
            bound[key] = resolve(raw[key], scope.params, raw.at(key), name)
        for param, default in template.params.items():
            if param not in bound:
                if default is REQUIRED:
                    raise SpecError(f"block '{kind}' needs parameter '{param}'", where, name)
                bound[param] = default
        bound.setdefault("in_channels", self.shape(x)[0])
        inner = _Scope(name, MappingProxyType(bound), (*scope.stack, kind))
        layers = template.layers
        if len(layers) == 1:
            # A template that is one unnamed structure is that structure: no extra name level
            # (inception_3a.branch1.conv_1, not inception_3a.concat_1.branch1.conv_1).
            only_kind, only_raw = _split_entry(layers[0], layers.at(0))
            if only_kind in STRUCTURE_KEYS and "name" not in only_raw and "repeat" not in only_raw:
                return self.structure(only_kind, only_raw, layers.at(0), x, inner, name)
        return self.sequence(layers, x, inner, template.where)


def _split_entry(item: Any, where: Location) -> tuple[str, LocatedDict]:
    """``relu`` | ``{conv: {...}}`` | ``{kind: conv, ...}`` -> (kind, options)."""
    if isinstance(item, str):
        return item, LocatedDict(where)
    if not isinstance(item, LocatedDict):
        raise SpecError(f"a layer must be a kind name or a mapping, got {item!r}", where)
    if "kind" in item:
        kind = item["kind"]
        if not isinstance(kind, str):
            raise SpecError(f"'kind' must be a layer kind name, got {kind!r}", item.at("kind"))
        options = LocatedDict(item.where)
        for key, value in item.items():
            if key != "kind":
                options.put(key, value, item.at(key))
        return kind, options
    if len(item) != 1:
        raise SpecError("a layer must be one kind with its options, like '- conv: {out: 64, kernel: 3}'; "
                        f"got keys {', '.join(map(str, item))}", where)
    ((kind, options),) = item.items()
    if not isinstance(kind, str):
        raise SpecError(f"a layer must be named by its kind, got {kind!r}", where)
    if options is None:
        return kind, LocatedDict(item.at(kind))
    if not isinstance(options, LocatedDict):
        raise SpecError(f"options of '{kind}' must be a mapping like {{out: 64, kernel: 3}}, got {options!r}",
                        item.at(kind))
    return kind, options


def _templates(spec: Spec, errors: list[SpecError] | None, broken: set[Any]) -> dict[str, _Template]:
    """The ``blocks:`` section; collecting (``errors`` given), a bad block is noted in ``broken``."""
    templates: dict[str, _Template] = {}
    for name, body in spec.blocks.items():
        try:
            templates[name] = _template(spec, name, body)
        except SpecError as error:
            if errors is None:
                raise
            errors.append(error)
            broken.add(name)
    return templates


def _template(spec: Spec, name: Any, body: Any) -> _Template:
    where = spec.blocks.at(name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w\-]*", name):
        raise SpecError(f"block name must be an identifier, got {name!r}", where)
    if name in LAYER_KINDS or name in STRUCTURE_KEYS:
        raise SpecError(f"block name '{name}' is already a layer kind", where)
    if not isinstance(body, LocatedDict):
        raise SpecError(f"block '{name}' must be a mapping with 'params' and 'layers'", where)
    for key in body:
        if key not in ("params", "layers"):
            raise SpecError(f"unknown key '{key}' in block '{name}'{did_you_mean(key, ('params', 'layers'))}",
                            body.at(key))
    raw_params = body.get("params") or LocatedList(body.where)
    params: dict[str, Any] = {}
    if isinstance(raw_params, LocatedList):
        for param in raw_params:
            if isinstance(param, (dict, list)):
                raise SpecError(f"block '{name}': parameter names must be identifiers, got {param!r}",
                                body.at("params"))
            params[param] = REQUIRED
    elif isinstance(raw_params, LocatedDict):
        params.update(raw_params)
    else:
        raise SpecError(f"'params' of block '{name}' must be a list of names or a mapping of defaults",
                        body.at("params"))
    for param in params:
        if not isinstance(param, str) or not re.fullmatch(r"[A-Za-z_]\w*", param) or param in _RESERVED:
            raise SpecError(f"block '{name}': parameter name {param!r} must be an identifier other than "
                            f"{', '.join(_RESERVED)}", body.at("params"))
    layers = body.get("layers")
    if not isinstance(layers, LocatedList) or not layers:
        raise SpecError(f"block '{name}' needs 'layers', a non-empty list", body.at("layers"))
    return _Template(MappingProxyType(params), layers, body.at("layers"))
