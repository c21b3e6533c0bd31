"""Stage 2d: a located spec -> a :class:`Network`, a graph of named tensors with inferred shapes.

The builder walks the spec's layer list once, in order. A layer reads the
previous layer's output, or with ``from:`` any earlier tensor by name (names
resolve in the enclosing scope first, then outward; dotted paths reach into
blocks). Leaf kinds come from ``kinds.LAYER_KINDS``, structures from
``structures.STRUCTURES``, ``blocks:`` templates from ``templates``; every
layer gets a unique dotted name. Every problem is a :class:`SpecError`
naming file, line, layer, rule and value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .errors import Location, SpecError, did_you_mean
from .expansion import refuse_large_expansion
from .expressions import condition, resolve
from .kinds import COMMON_KEYS, LAYER_KINDS, PYTORCH_KEYS
from .layers import Identity, Layer, LayerError, Shape
from .located import LocatedDict, LocatedList
from .network import Block, Input, Network, Node, input_ref
from .options import REQUIRED, Options
from .spec import NAME, Spec
from .structures import STRUCTURES
from .templates import read_templates
from .units import format_shape

__all__ = ["MAX_NODES", "STRUCTURE_KINDS", "build_network"]

MAX_NODES = 2_000_000
MAX_REPEAT = 100_000
MAX_NESTING = 50  # layer lists within structures and blocks; keeps the builder's recursion bounded
MAX_SIZE = 10**30  # largest length of any tensor axis
MAX_ERRORS = 100  # a collecting build stops after this many problems

STRUCTURE_KINDS = tuple(STRUCTURES)
_SPATIAL_PARAMS = {1: ("in_length",), 2: ("in_height", "in_width"), 3: ("in_depth", "in_height", "in_width")}


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
    top = _Scope("", MappingProxyType({}), ())
    outputs: tuple[int, ...] = ()
    try:
        builder.sequence(spec.layers, input_ref(0), top)
        outputs = builder.outputs(top)
    except _Stop as stop:
        if errors is not None:
            errors.append(stop.error)
    except SpecError as error:
        if errors is None:
            raise
        errors.append(error)
    return Network(name=spec.name, source=spec.source, inputs=tuple(Input(*item) for item in spec.inputs),
                   nodes=tuple(builder.nodes), blocks=tuple(builder.blocks), outputs=outputs)


class _Stop(Exception):
    """Ends a collecting build early (a size limit, too many problems)."""

    def __init__(self, error: SpecError):
        super().__init__(error.format())
        self.error = error


def _check_keys(kind: str, raw: LocatedDict, allowed: tuple[str, ...], name: str) -> None:
    for key in raw:
        if key not in allowed:
            ours = PYTORCH_KEYS.get(key, "")  # PyTorch's name for an option: say what it is called here
            hint = (f" (PyTorch's {key} is '{ours}' here)" if ours in allowed
                    else f" ({key} is not written: it is read from the input's shape)"
                    if ours is None and key in PYTORCH_KEYS else did_you_mean(key, allowed))
            raise SpecError(f"unknown key '{key}' for {kind}{hint}; allowed: {', '.join(allowed)}", raw.at(key), name)


class _Builder:
    def __init__(self, spec: Spec, errors: list[SpecError] | None = None):
        self.spec = spec
        self.errors = errors  # None: raise the first problem; a list: collect them
        self.nodes: list[Node] = []
        self.blocks: list[Block] = []
        self.names: set[str] = set()
        self.tensors: dict[str, int] = {}  # full name of a layer, block or input -> its tensor
        for k, (name, _) in enumerate(spec.inputs):
            self.tensors[name] = input_ref(k)
            self.names.add(name)
        self.tainted: set[int] = set()  # nodes whose shape follows from a bad layer
        self.broken: set[Any] = set()  # blocks with problems of their own
        self.depth = 0
        self.templates = read_templates(spec, errors, self.broken)
        self.written: set[str] | None = None  # every local name the spec writes, read on the first bad reference

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
        shape = self.shape(inputs[0])  # every entry reads a tensor ('from: []' is refused in reads())
        self.nodes.append(Node(len(self.nodes), name, Identity(), inputs[:1], (shape,), shape, where))
        self.tainted.add(len(self.nodes) - 1)
        self.tensors.setdefault(name, len(self.nodes) - 1)
        return len(self.nodes) - 1

    def shape(self, ref: int) -> Shape:
        return self.spec.inputs[-1 - ref][1] if ref < 0 else self.nodes[ref].output_shape

    def tensor_name(self, ref: int) -> str:
        return self.spec.inputs[-1 - ref][0] if ref < 0 else self.nodes[ref].name

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
            message = str(exc)
            if len(inputs) > 1:
                message += "; it reads " + ", ".join(f"'{self.tensor_name(ref)}' ({format_shape(shape)})"
                                                     for ref, shape in zip(inputs, shapes))
            error = SpecError(message, where, name)
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
        self.tensors[name] = index
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

    def lookup(self, name: Any, scope: _Scope, where: Location, layer: str | None) -> int:
        """The tensor ``name`` refers to: in the enclosing scope first, then outward."""
        if not isinstance(name, str) or not name:
            raise SpecError(f"'from' must name an earlier tensor (a layer, block or input), got {name!r}", where,
                            layer)
        prefix = scope.prefix
        while True:
            full = f"{prefix}.{name}" if prefix else name
            if full in self.tensors:
                return self.tensors[full]
            if not prefix:
                break
            prefix = prefix.rpartition(".")[0]
        if self.written is None:
            self.written = _written_names(self.spec)
        if name.rpartition(".")[2] in self.written:
            raise SpecError(f"'{name}' is not an earlier tensor here: a layer reads only tensors made before it, "
                            "so the graph has no cycles", where, layer)
        visible = {full[len(scope.prefix) + 1:] if full.startswith(scope.prefix + ".") else full
                   for full in self.tensors}
        raise SpecError(f"unknown tensor '{name}'{did_you_mean(name, visible)}", where, layer)

    def outputs(self, scope: _Scope) -> tuple[int, ...]:
        """The tensors ``outputs:`` names (none: the last layer is the output)."""
        listed = self.spec.outputs
        if listed is None:
            return ()
        refs: list[int] = []
        for index, name in enumerate(listed):
            ref = self.lookup(name, scope, listed.at(index), None)
            if ref < 0:
                raise SpecError(f"output '{name}' is a network input; outputs are layers", listed.at(index))
            if ref in refs:
                raise SpecError(f"output '{name}' is listed twice", listed.at(index))
            refs.append(ref)
        return tuple(refs)

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
        if kind not in LAYER_KINDS and kind not in STRUCTURES and kind not in self.templates:
            known = (*LAYER_KINDS, *STRUCTURES, *self.templates)
            raise SpecError(f"unknown layer kind '{kind}'{did_you_mean(kind, known)}", where)
        if "if" in raw and not condition(raw["if"], scope.params, raw.at("if"), None):
            return x  # left out: no node, no name
        local = raw.get("name")
        if local is not None:
            local = resolve(local, scope.params, raw.at("name"), str(local))
            if not isinstance(local, str) or not NAME.fullmatch(local):
                raise SpecError(f"'name' must be letters, digits, '_' or '-' (dots separate levels), got {local!r}",
                                raw.at("name"))
        name = scope.full(local, kind)
        repeat = resolve(raw.get("repeat", 1), scope.params, raw.at("repeat"), name)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_REPEAT:
            raise SpecError(f"'repeat' must be an integer from 0 to {MAX_REPEAT:,}, got {repeat!r}",
                            raw.at("repeat"), name)
        joins = _is_join(kind, raw)
        if repeat == 0:
            return x  # none: the entry passes its input on
        inputs = self.reads(kind, raw, joins, x, scope, name)
        if repeat == 1:
            return self.one(kind, raw, where, inputs, scope, name, joins)
        if joins:
            raise SpecError(f"a join ({kind}) cannot repeat: it reads named tensors", raw.at("repeat"), name)
        self.claim(name, where)
        self.blocks.append(Block(name, f"{kind} x{repeat}", where))
        for copy in range(repeat):
            before = len(self.nodes)
            x = self.one(kind, raw, where, inputs if copy == 0 else (x,), scope, f"{name}.{copy}", joins)
            each = len(self.nodes) - before
            if copy == 0 and before + each * repeat > MAX_NODES:  # refuse now, not after building millions
                raise self.stop(SpecError(f"network expands to more than {MAX_NODES:,} layers "
                                          f"({repeat:,} copies of {each:,})", raw.at("repeat"), name))
        self.tensors[name] = x
        return x

    def reads(self, kind: str, raw: LocatedDict, joins: bool, x: int, scope: _Scope, name: str) -> tuple[int, ...]:
        """The tensors an entry reads: the previous layer's output, or what ``from:`` names (a join's
        ``from:`` lists its inputs; a single name joins that tensor with the previous layer's output)."""
        variadic = joins and LAYER_KINDS[kind].variadic  # reads exactly what 'from:' names
        if "from" not in raw:
            if joins and not variadic:
                raise SpecError(f"{kind} needs 'from': the tensors to join, like 'from: [a, b]' (one name joins "
                                "it with the previous layer's output)", raw.where, name)
            return (x,)
        where = raw.at("from")
        value = resolve(raw["from"], scope.params, where, name)
        names = value if isinstance(value, list) else [value]
        if not joins and len(names) != 1:
            raise SpecError(f"'from' of a {kind} names one tensor, got {len(names)}", where, name)
        if not names:
            raise SpecError(f"'from' of a {kind} names no tensor; list what it joins, like 'from: [a, b]'", where,
                            name)
        refs = tuple(self.lookup(resolve(item, scope.params, where, name), scope, where, name) for item in names)
        return (x, *refs) if joins and len(refs) == 1 and not variadic else refs

    def one(self, kind: str, raw: LocatedDict, where: Location, inputs: tuple[int, ...], scope: _Scope, name: str,
            joins: bool) -> int:
        if kind in LAYER_KINDS and (joins or kind not in STRUCTURES):
            declared = LAYER_KINDS[kind]
            _check_keys(kind, raw, declared.allowed, name)
            options = Options(kind, raw, where, name, scope.params,
                              lambda other, at: self.shape(self.lookup(other, scope, at, name)))
            for key in declared.required:
                if key not in raw:
                    raise options.error(f"{kind} needs '{key}'")
            return self.add(name, lambda shapes: declared.make(options, shapes), inputs, where)
        self.claim(name, where)
        self.blocks.append(Block(name, kind, where))
        x = inputs[0]
        out = self.template(kind, raw, where, x, scope, name) if kind in self.templates else \
            self.structure(kind, raw, where, x, scope, name)
        self.tensors[name] = out
        return out

    def structure(self, kind: str, raw: LocatedDict, where: Location, x: int, scope: _Scope, name: str) -> int:
        declared = STRUCTURES[kind]
        _check_keys(kind, raw, (*COMMON_KEYS, *declared.keys), name)
        options = Options(kind, raw, where, name, scope.params)
        for key in declared.required:
            if key not in raw:
                raise options.error(f"{kind} needs '{key}'")
        return declared.expand(_Within(self, scope), options, x)

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
        missing = [param for param, default in template.params.items() if param not in bound and default is REQUIRED]
        if missing:
            raise SpecError(f"block '{kind}' needs parameter{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(repr(param) for param in missing)}", where, name)
        bound.update({param: default for param, default in template.params.items() if param not in bound})
        shape = self.shape(x)
        bound["in_channels"] = shape[0]
        bound.update(zip(_SPATIAL_PARAMS.get(len(shape) - 1, ()), shape[1:]))
        inner = _Scope(name, MappingProxyType(bound), (*scope.stack, kind))
        self.tensors[f"{name}.input"] = x  # inside a block, 'input' is the tensor the block reads
        layers = template.layers
        if len(layers) == 1:
            # A template that is one unnamed structure is that structure: no extra name level
            # (inception_3a.branch1.conv_1, not inception_3a.concat_1.branch1.conv_1).
            only_kind, only_raw = _split_entry(layers[0], layers.at(0))
            if only_kind in STRUCTURES and not _is_join(only_kind, only_raw) and not set(only_raw) & set(COMMON_KEYS):
                return self.structure(only_kind, only_raw, layers.at(0), x, inner, name)
        return self.sequence(layers, x, inner, template.where)


class _Within:
    """The builder as a structure's expansion sees it: bound to the structure's scope."""

    def __init__(self, builder: _Builder, scope: _Scope):
        self.builder, self.scope = builder, scope

    def add(self, name: str, make: Callable[[tuple[Shape, ...]], Layer], inputs: tuple[int, ...],
            where: Location) -> int:
        return self.builder.add(name, make, inputs, where)

    def sequence(self, items: Any, x: int, prefix: str, where: Location | None = None) -> int:
        return self.builder.sequence(items, x, self.scope.child(prefix), where)

    def shape(self, ref: int) -> Shape:
        return self.builder.shape(ref)


def _is_join(kind: str, raw: LocatedDict) -> bool:
    """Is this entry a layer that reads several tensors? (``concat`` with ``branches`` is the structure.)"""
    declared = LAYER_KINDS.get(kind)
    return declared is not None and declared.join is not None and not (kind in STRUCTURES and "branches" in raw)


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


def _written_names(spec: Spec) -> set[str]:
    """Every ``name:`` (and split part name) written anywhere in the spec, to tell a later layer from a typo."""
    found: set[str] = set()
    stack: list[Any] = [spec.layers, spec.blocks]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("name"), str):
                found.add(value["name"])
            if isinstance(value.get("names"), list):
                found.update(part for part in value["names"] if isinstance(part, str))
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found
