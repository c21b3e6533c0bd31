"""Stage 2b: a located spec -> a ``Network`` of immutable nodes with inferred shapes.

The builder walks the spec's layer list once, in order. Leaf kinds are built by
one read-only table ``LAYER_KINDS`` (kind name -> constructor); structures
(``sequence``, ``concat``, ``residual``, ``dense``) and ``blocks:`` templates
expand into leaf nodes whose names are unique dotted paths. Every error is a
:class:`SpecError` naming file, line, layer, rule and value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from types import MappingProxyType
from typing import Any

from .errors import Location, SpecError
from .layers import (
    ACTIVATIONS,
    Activation,
    AdaptivePool,
    Add,
    BatchNorm,
    Concat,
    Conv,
    ConvTranspose,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LayerError,
    Linear,
    Pool,
    Shape,
    Softmax,
    Upsample,
)
from .record import Record
from .spec import LocatedDict, LocatedList, Spec, did_you_mean

__all__ = ["LAYER_KINDS", "STRUCTURE_KINDS", "Block", "Network", "Node", "build_network"]

INPUT = -1  # tensor reference of the network input

MAX_NODES = 2_000_000
MAX_REPEAT = 100_000
MAX_NESTING = 50  # layer lists within structures and blocks; keeps the builder's recursion bounded
MAX_SIZE = 10**30  # largest length of any tensor axis
MAX_ERRORS = 100  # a collecting build stops after this many problems


class Node(Record):
    """One layer in the network: what it is, what it reads and what it produces."""

    index: int
    name: str
    layer: Layer
    inputs: tuple[int, ...]  # producer node indices; INPUT (-1) is the network input
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    where: Location

    def __new__(cls, index: int, name: str, layer: Layer, inputs: tuple[int, ...], input_shapes: tuple[Shape, ...],
                output_shape: Shape, where: Location) -> Node:  # one per layer
        self = object.__new__(cls._storage)  # plain stores, then frozen: see convcost.record
        self.index = index
        self.name = name
        self.layer = layer
        self.inputs = inputs
        self.input_shapes = input_shapes
        self.output_shape = output_shape
        self.where = where
        self.__class__ = cls
        return self

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]


class Block(Record):
    """A named structure or template instance; its layers' names start with ``name + '.'``."""

    name: str
    kind: str
    where: Location

    def __new__(cls, name: str, kind: str, where: Location) -> Block:  # one per structure
        self = object.__new__(cls._storage)  # plain stores, then frozen: see convcost.record
        self.name = name
        self.kind = kind
        self.where = where
        self.__class__ = cls
        return self


class Network(Record):
    """A built network: nodes in execution order (a topological order)."""

    name: str
    source: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    blocks: tuple[Block, ...] = ()

    @property
    def output_shape(self) -> Shape:
        return self.nodes[-1].output_shape if self.nodes else self.input_shape


# --------------------------------------------------------------------------- options

_MISSING: Any = object()
_EXPR_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_]\w*)|(//|[-+*()]))")


class _Scope:
    """Where the builder is: the name prefix, visible template parameters and generated-name counters."""

    __slots__ = ("prefix", "params", "stack", "counters")

    def __init__(self, prefix: str, params: MappingProxyType, stack: tuple[str, ...]):
        self.prefix = prefix
        self.params = params  # template parameters visible here
        self.stack = stack  # templates being expanded, to refuse recursion
        self.counters: dict[str, int] = {}

    def child(self, prefix: str) -> _Scope:
        return _Scope(prefix, self.params, self.stack)

    def full(self, local: str | None, kind: str = "") -> str:
        """The dotted name of ``local`` here; without a local name, the next ``kind_N``."""
        if local is None:
            count = self.counters.get(kind, 0) + 1
            self.counters[kind] = count
            local = f"{kind}_{count}"
        return f"{self.prefix}.{local}" if self.prefix else local


class _Options:
    """Typed, located access to one layer's options; unknown keys are errors."""

    def __init__(self, kind: str, raw: LocatedDict, where: Location, name: str, scope: _Scope):
        self.kind = kind
        self.raw = raw
        self.where = where
        self.name = name
        self.scope = scope

    def error(self, message: str, key: str | None = None) -> SpecError:
        where = self.raw.at(key) if key is not None and key in self.raw else self.where
        return SpecError(message, where, self.name)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.raw:
            if key not in allowed:
                raise self.error(
                    f"unknown key '{key}' for {self.kind}{did_you_mean(key, allowed)}; "
                    f"allowed: {', '.join(allowed)}",
                    key,
                )

    def value(self, key: str, default: Any = _MISSING) -> Any:
        if key not in self.raw:
            if default is _MISSING:
                raise self.error(f"{self.kind} needs '{key}'")
            return default
        value = self.raw[key]
        if isinstance(value, str) and value.startswith("$"):  # only then is the location (built by at()) needed
            return _resolve(value, self.scope, self.raw.at(key), self.name)
        return value

    def int(self, key: str, default: Any = _MISSING, minimum: int = 1) -> int:
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"'{key}' must be an integer, got {value!r}", key)
        if value < minimum:
            raise self.error(f"'{key}' must be >= {minimum}, got {value}", key)
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self.value(key, default)
        if not isinstance(value, bool):
            raise self.error(f"'{key}' must be true or false, got {value!r}", key)
        return value

    def number(self, key: str, default: Any = _MISSING, minimum: float = 0) -> float:
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise self.error(f"'{key}' must be a number, got {value!r}", key)
        if value < minimum:
            raise self.error(f"'{key}' must be >= {minimum}, got {value}", key)
        return value

    def axes(self, key: str, dims: int, default: Any = _MISSING, minimum: int = 1) -> tuple[int, ...]:
        value = self.value(key, default)
        if isinstance(value, str) and re.fullmatch(r"\s*\d+(\s*[xX]\s*\d+)*\s*", value):
            if re.search(r"\d{31}", value):  # also keeps int() below its 4300-digit limit
                raise self.error(f"'{key}' values must have at most 30 digits", key)
            value = [int(part) for part in re.split(r"[xX]", value)]
        if isinstance(value, (list, tuple)):
            items = [_resolve(item, self.scope, self.raw.at(key), self.name) for item in value]
        else:
            items = [value] * dims
        if len(items) == 1 and dims > 1:
            items = items * dims
        if len(items) != dims:
            raise self.error(f"'{key}' needs 1 or {dims} values for a {dims}-D input, got {len(items)}", key)
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int):
                raise self.error(f"'{key}' must be an integer or {dims} integers, got {value!r}", key)
            if item < minimum:
                raise self.error(f"'{key}' values must be >= {minimum}, got {item}", key)
        return tuple(items)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.value(key, default)
        if value not in choices:
            raise self.error(f"'{key}' must be one of {', '.join(choices)}, got {value!r}{did_you_mean(value, choices)}", key)
        return value


def _resolve(value: Any, scope: _Scope, where: Location, name: str) -> Any:
    """Substitute ``$param`` and ``${expr}`` from the enclosing template."""
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    if value.startswith("${") and value.endswith("}"):
        return _evaluate(value[2:-1], scope, where, name)
    return _lookup(value[1:], scope, where, name)


def _lookup(param: str, scope: _Scope, where: Location, name: str) -> Any:
    if param not in scope.params:
        hint = did_you_mean(param, scope.params) if scope.params else " (no template parameters here)"
        raise SpecError(f"unknown parameter '${param}'{hint}", where, name)
    return scope.params[param]


def _evaluate(expr: str, scope: _Scope, where: Location, name: str) -> int:
    tokens: list[str] = []
    position = 0
    text = expr.rstrip()
    while position < len(text):
        match = _EXPR_TOKEN.match(text, position)
        if not match:
            raise SpecError(f"cannot read expression '${{{expr}}}' at {text[position:]!r}", where, name)
        tokens.append(match.group(match.lastindex or 0))
        position = match.end()
    tokens.append("")

    def fail(message: str) -> SpecError:
        return SpecError(f"expression '${{{expr}}}': {message}", where, name)

    index = 0

    def peek() -> str:
        return tokens[index]

    def take() -> str:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def atom() -> int:
        token = take()
        if token == "(":
            result = summed()
            if take() != ")":
                raise fail("missing ')'")
            return result
        if token == "-":
            return -atom()
        if token.isdigit():
            return int(token)
        if token and (token[0].isalpha() or token[0] == "_"):
            result = _lookup(token, scope, where, name)
            if isinstance(result, bool) or not isinstance(result, int):
                raise fail(f"parameter '{token}' is {result!r}, not an integer")
            return result
        raise fail(f"unexpected {token!r}" if token else "unexpected end")

    def product() -> int:
        result = atom()
        while peek() in ("*", "//"):
            op = take()
            right = atom()
            if op == "*":
                result *= right
            elif right == 0:
                raise fail("division by zero")
            else:
                result //= right
            if abs(result) > 10**30:
                raise fail("value too large")
        return result

    def summed() -> int:
        result = product()
        while peek() in ("+", "-"):
            op = take()
            right = product()
            result = result + right if op == "+" else result - right
        return result

    value = summed()
    if peek() != "":
        raise fail(f"unexpected {peek()!r}")
    return value


# --------------------------------------------------------------------------- leaf kinds

_COMMON = ("name", "repeat")
#: Template parameter names that are not free: in_channels is bound to the input's channel count.
_RESERVED = ("name", "repeat", "in_channels")


def _dims_for(shape: Shape, dims: int | None, kind: str) -> int:
    spatial = len(shape) - 1
    if dims is None:
        if not 1 <= spatial <= 3:
            raise LayerError(f"{kind} needs a CxL, CxHxW or CxDxHxW input, got {'x'.join(map(str, shape))}")
        return spatial
    return dims


def _padding(o: _Options, dims: int, allow_same: bool) -> tuple[tuple[int, ...], bool]:
    value = o.value("padding", 0)
    if value == "valid" and allow_same:
        return (0,) * dims, False
    if value == "same" and allow_same:
        return (0,) * dims, True
    if isinstance(value, str) and not re.fullmatch(r"\s*\d+(\s*[xX]\s*\d+)*\s*", value):
        allowed = "an integer, per-axis integers, 'same' or 'valid'" if allow_same else "an integer or per-axis integers"
        raise o.error(f"'padding' must be {allowed}, got {value!r}", "padding")
    return o.axes("padding", dims, 0, minimum=0), False


def _conv(o: _Options, shape: Shape, dims: int | None = None, kind: str = "conv") -> Layer:
    o.check_keys((*_COMMON, "out", "kernel", "stride", "padding", "dilation", "groups", "bias", "bottleneck",
                  "reduction"))
    dims = _dims_for(shape, dims, kind)
    padding, same = _padding(o, dims, allow_same=True)
    return Conv(
        dims=dims,
        in_channels=shape[0],
        out_channels=o.int("out"),
        kernel=o.axes("kernel", dims),
        stride=o.axes("stride", dims, 1),
        padding=padding,
        dilation=o.axes("dilation", dims, 1),
        groups=o.int("groups", 1),
        bias=o.bool("bias", True),
        same=same,
        kind=f"conv{dims}d",
        bottleneck=_bottleneck_width(o),
        reduction=o.bool("reduction", False),
    )


def _bottleneck_width(o: _Options) -> int | Fraction | None:
    """``bottleneck:`` is a width (int >= 1) or a fraction of the input channels in (0, 1)."""
    value = o.value("bottleneck", None)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and 0 < value < 1:
        return Fraction(str(value))
    raise o.error(f"'bottleneck' must be a width >= 1 or a fraction between 0 and 1, got {value!r}", "bottleneck")


def _pointwise(o: _Options, shape: Shape) -> Layer:
    o.check_keys((*_COMMON, "out", "stride", "groups", "bias", "reduction"))
    dims = _dims_for(shape, None, "pointwise")
    return Conv(dims=dims, in_channels=shape[0], out_channels=o.int("out"), kernel=(1,) * dims,
                stride=o.axes("stride", dims, 1), padding=(0,) * dims, dilation=(1,) * dims,
                groups=o.int("groups", 1), bias=o.bool("bias", True), kind="pointwise",
                reduction=o.bool("reduction", False))


def _depthwise(o: _Options, shape: Shape) -> Layer:
    o.check_keys((*_COMMON, "multiplier", "kernel", "stride", "padding", "dilation", "bias"))
    dims = _dims_for(shape, None, "depthwise")
    padding, same = _padding(o, dims, allow_same=True)
    return Conv(dims=dims, in_channels=shape[0], out_channels=shape[0] * o.int("multiplier", 1),
                kernel=o.axes("kernel", dims), stride=o.axes("stride", dims, 1), padding=padding,
                dilation=o.axes("dilation", dims, 1), groups=shape[0], bias=o.bool("bias", True),
                same=same, kind="depthwise")


def _conv_transpose(o: _Options, shape: Shape, dims: int | None = None) -> Layer:
    o.check_keys((*_COMMON, "out", "kernel", "stride", "padding", "output_padding", "dilation", "groups", "bias"))
    dims = _dims_for(shape, dims, "conv_transpose")
    padding, _ = _padding(o, dims, allow_same=False)
    return ConvTranspose(
        dims=dims, in_channels=shape[0], out_channels=o.int("out"), kernel=o.axes("kernel", dims),
        stride=o.axes("stride", dims, 1), padding=padding,
        output_padding=o.axes("output_padding", dims, 0, minimum=0),
        dilation=o.axes("dilation", dims, 1), groups=o.int("groups", 1), bias=o.bool("bias", True),
        kind=f"conv_transpose{dims}d",
    )


def _pool(o: _Options, shape: Shape, op: str, dims: int | None = None) -> Layer:
    keys = ("kernel", "stride", "padding", "ceil_mode") + (("dilation",) if op == "max" else ())
    o.check_keys((*_COMMON, *keys))
    dims = _dims_for(shape, dims, f"{op}_pool")
    kernel = o.axes("kernel", dims)
    padding, _ = _padding(o, dims, allow_same=False)
    return Pool(op=op, dims=dims, kernel=kernel, stride=o.axes("stride", dims, kernel), padding=padding,
                dilation=o.axes("dilation", dims, 1) if op == "max" else (1,) * dims,
                ceil_mode=o.bool("ceil_mode", False), kind=f"{op}_pool{dims}d")


def _adaptive_pool(o: _Options, shape: Shape, op: str, global_: bool = False) -> Layer:
    dims = _dims_for(shape, None, f"adaptive_{op}_pool")
    if global_:
        o.check_keys(_COMMON)
        return AdaptivePool(op=op, dims=dims, output_size=(1,) * dims, kind=f"global_{op}_pool")
    o.check_keys((*_COMMON, "output_size"))
    return AdaptivePool(op=op, dims=dims, output_size=o.axes("output_size", dims),
                        kind=f"adaptive_{op}_pool{dims}d")


def _linear(o: _Options, shape: Shape) -> Layer:
    o.check_keys((*_COMMON, "out", "bias"))
    return Linear(in_features=shape[-1], out_features=o.int("out"), bias=o.bool("bias", True))


def _flatten(o: _Options, shape: Shape) -> Layer:
    o.check_keys(_COMMON)
    return Flatten()


def _batch_norm(o: _Options, shape: Shape) -> Layer:
    o.check_keys((*_COMMON, "affine", "track_running_stats"))
    return BatchNorm(num_features=shape[0], affine=o.bool("affine", True),
                     track_running_stats=o.bool("track_running_stats", True))


def _activation(o: _Options, shape: Shape, function: str) -> Layer:
    keys = ("inplace", "negative_slope") if function == "leaky_relu" else ("inplace",)
    o.check_keys((*_COMMON, *keys))
    if function == "leaky_relu":
        o.number("negative_slope", 0.01, minimum=float("-inf"))
    return Activation(function=function, inplace=o.bool("inplace", False), kind=function)


def _dropout(o: _Options, shape: Shape) -> Layer:
    o.check_keys((*_COMMON, "p"))
    p = o.number("p", 0.5)
    if p > 1:
        raise o.error(f"'p' must be between 0 and 1, got {p}", "p")
    return Dropout(p=float(p))


def _identity(o: _Options, shape: Shape) -> Layer:
    o.check_keys(_COMMON)
    return Identity()


def _softmax(o: _Options, shape: Shape) -> Layer:
    o.check_keys((*_COMMON, "dim"))
    return Softmax(dim=o.int("dim", 1, minimum=-(len(shape) + 1)))


def _upsample(o: _Options, shape: Shape) -> Layer:
    o.check_keys((*_COMMON, "scale", "mode"))
    dims = _dims_for(shape, None, "upsample")
    value = o.value("scale")
    items = value if isinstance(value, list) else [value] * dims
    if len(items) != dims:
        raise o.error(f"'scale' needs 1 or {dims} values for a {dims}-D input, got {len(items)}", "scale")
    scales = []
    for item in items:
        item = _resolve(item, o.scope, o.raw.at("scale"), o.name)
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not item > 0 or item == float("inf"):
            raise o.error(f"'scale' must be a positive number, got {item!r}", "scale")
        # Fraction(str(x)) keeps the decimal the user wrote: 1.1 is 11/10, not a binary float.
        scales.append(Fraction(str(item)) if isinstance(item, float) else Fraction(item))
    modes = tuple(Upsample.MODES)
    return Upsample(dims=dims, scale=tuple(scales), mode=o.choice("mode", modes, "nearest"))


LayerBuilder = Callable[[_Options, Shape], Layer]

#: Leaf kind name -> constructor. Read-only; every kind a spec may name is here.
LAYER_KINDS: MappingProxyType[str, LayerBuilder] = MappingProxyType(
    {
        "conv": _conv,
        **{f"conv{d}d": partial(_conv, dims=d) for d in (1, 2, 3)},
        "pointwise": _pointwise,
        "depthwise": _depthwise,
        "conv_transpose": _conv_transpose,
        **{f"conv_transpose{d}d": partial(_conv_transpose, dims=d) for d in (1, 2, 3)},
        "max_pool": partial(_pool, op="max"),
        "avg_pool": partial(_pool, op="avg"),
        **{f"max_pool{d}d": partial(_pool, op="max", dims=d) for d in (1, 2, 3)},
        **{f"avg_pool{d}d": partial(_pool, op="avg", dims=d) for d in (1, 2, 3)},
        "adaptive_avg_pool": partial(_adaptive_pool, op="avg"),
        "adaptive_max_pool": partial(_adaptive_pool, op="max"),
        "global_avg_pool": partial(_adaptive_pool, op="avg", global_=True),
        "global_max_pool": partial(_adaptive_pool, op="max", global_=True),
        "linear": _linear,
        "flatten": _flatten,
        "batch_norm": _batch_norm,
        **{name: partial(_activation, function=name) for name in ACTIVATIONS},
        "dropout": _dropout,
        "identity": _identity,
        "softmax": _softmax,
        "upsample": _upsample,
    }
)

STRUCTURE_KINDS = ("sequence", "concat", "residual", "dense")


# --------------------------------------------------------------------------- builder


def build_network(spec: Spec, *, errors: list[SpecError] | None = None) -> Network:
    """Expand a spec into nodes, inferring every shape; raises :class:`SpecError`.

    With an ``errors`` list the build collects instead of stopping: a bad layer's
    problem is appended and the layer stands in as passing its input through;
    problems that only follow from an earlier one (shape rules downstream of a
    bad layer, uses of a bad block) are not reported. The network returned is
    then a sketch, to be used only if ``errors`` stayed empty.
    """
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
        self.made: dict[Any, tuple[Layer, Shape]] = {}  # layers built, by (key, input shapes)

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

    def add(self, name: str, layer_factory: Callable[[tuple[Shape, ...]], Layer], inputs: tuple[int, ...],
            where: Location, key: Any = None, shapes: tuple[Shape, ...] | None = None) -> int:
        """Append a node whose layer ``layer_factory(input shapes)`` makes; ``key`` (see _leaf_key) names
        what the layer depends on besides its input shapes, and reuses the layer and output shape of an
        identical one on the same shapes. ``shapes``: the input shapes, when the caller has them."""
        if shapes is None:
            nodes = self.nodes
            shapes = tuple([nodes[ref].output_shape if ref != INPUT else self.spec.input_shape for ref in inputs])
        try:
            made_key = None if key is None else (key, shapes)
            made = None if made_key is None else self.made.get(made_key)
            if made is not None:
                layer, output = made
            else:
                layer = layer_factory(shapes)
                output = layer.output_shape(*shapes)
                if any(size > MAX_SIZE for size in output):
                    raise LayerError(f"output has an axis longer than the limit of 10^{len(str(MAX_SIZE)) - 1}")
                if made_key is not None:
                    self.made[made_key] = layer, output
        except LayerError as exc:
            # A shape rule broken downstream of a bad layer is a consequence, not a new problem.
            error = SpecError(str(exc), where, name)
            if self.errors is None:
                raise error from None
            follows = bool(self.tainted) and any(ref in self.tainted for ref in inputs)
            return self.failed(None if follows else error, name, inputs, where)
        except SpecError as error:
            if self.errors is None:
                raise
            return self.failed(error, name, inputs, where)
        return self.append(name, layer, inputs, shapes, output, where)

    def append(self, name: str, layer: Layer, inputs: tuple[int, ...], shapes: tuple[Shape, ...], output: Shape,
               where: Location) -> int:
        """Append a node whose layer and shapes are known; returns its index."""
        nodes = self.nodes
        if len(nodes) >= MAX_NODES:
            raise self.stop(SpecError(f"network expands to more than {MAX_NODES:,} layers", where, name))
        if name in self.names:
            self.claim(name, where)  # a duplicate: raised, or noted when collecting
        self.names.add(name)
        index = len(nodes)
        nodes.append(Node(index, name, layer, inputs, shapes, output, where))
        if self.tainted and any(ref in self.tainted for ref in inputs):
            self.tainted.add(index)  # its shape follows from a bad layer
        return index

    def claim(self, name: str, where: Location) -> None:
        if name in self.names:
            error = SpecError(f"duplicate layer name '{name}'", where, name)
            if self.errors is None:
                raise error
            self.errors.append(error)
        self.names.add(name)

    def sequence(self, items: Any, x: int, scope: _Scope, where: Location | None = None) -> int:
        if not isinstance(items, LocatedList):
            raise SpecError(f"expected a list of layers, got {items!r}", where or self.spec.where, scope.prefix or None)
        if self.depth >= MAX_NESTING:
            raise SpecError(f"layers nested more than {MAX_NESTING} levels deep (structures and blocks within "
                            "each other)", where or self.spec.where, scope.prefix or None)
        self.depth += 1
        entry = self.checked_entry if self.errors is None else self.entry  # entry() only adds collecting
        try:
            for index, item in enumerate(items):
                x = entry(item, items.at(index), x, scope)
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
        kind, raw = _split_entry(item, where, scope)
        if kind in self.broken:
            return self.failed(None, scope.full(str(kind)), (x,), where)
        if kind not in LAYER_KINDS and kind not in STRUCTURE_KINDS and kind not in self.templates:
            known = (*LAYER_KINDS, *STRUCTURE_KINDS, *self.templates)
            raise SpecError(f"unknown layer kind '{kind}'{did_you_mean(kind, known)}", where)
        local = raw.get("name")
        if local is not None:
            local = _resolve(local, scope, raw.at("name"), str(local))
            if not isinstance(local, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", local):
                raise SpecError(f"'name' must be letters, digits, '_' or '-' (dots separate levels), got {local!r}",
                                raw.at("name"))
        name = scope.full(local, kind)
        repeat = raw.get("repeat", 1)
        if repeat == 1 and type(repeat) is int:  # most entries have no 'repeat'
            return self.one(kind, raw, where, x, scope, name)
        repeat = _resolve(repeat, scope, raw.at("repeat"), name)
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
            shapes = (self.nodes[x].output_shape if x != INPUT else self.spec.input_shape,)
            key = _leaf_key(kind, raw)
            made = None if key is None else self.made.get((key, shapes))
            if made is not None:  # most layers of a large spec: one already built (see _leaf_key)
                return self.append(name, made[0], (x,), shapes, made[1], where)
            # The options are read only here, when the layer is not one already built.
            return self.add(name, lambda inputs: LAYER_KINDS[kind](_Options(kind, raw, where, name, scope), inputs[0]),
                            (x,), where, key, shapes)
        self.claim(name, where)
        self.blocks.append(Block(name, kind, where))
        if kind in self.templates:
            return self.template(kind, raw, where, x, scope, name)
        return self.structure(kind, raw, where, x, scope, name)

    def structure(self, kind: str, raw: LocatedDict, where: Location, x: int, scope: _Scope, name: str) -> int:
        inner = scope.child(name)
        options = _Options(kind, raw, where, name, scope)
        if kind == "sequence":
            options.check_keys((*_COMMON, "layers"))
            return self.sequence(options.raw.get("layers"), x, inner, where)
        if kind == "concat":
            options.check_keys((*_COMMON, "branches"))
            branches = raw.get("branches")
            if not isinstance(branches, LocatedList) or not branches:
                raise SpecError("concat needs 'branches', a list of layer lists", raw.at("branches"), name)
            outputs = []
            for index, branch in enumerate(branches):
                outputs.append(self.sequence(branch, x, inner.child(f"{name}.branch{index + 1}"), branches.at(index)))
            count = len(outputs)
            return self.add(f"{name}.concat", lambda _: Concat(inputs=count), tuple(outputs), where, ("concat", count))
        if kind == "residual":
            options.check_keys((*_COMMON, "body", "shortcut"))
            if "body" not in raw:
                raise SpecError("residual needs 'body', a list of layers", where, name)
            body = self.sequence(raw["body"], x, inner.child(f"{name}.body"), raw.at("body"))
            shortcut_items = raw.get("shortcut") or LocatedList(where)
            shortcut = self.sequence(shortcut_items, x, inner.child(f"{name}.shortcut"), raw.at("shortcut"))
            return self.add(f"{name}.add", lambda _: Add(inputs=2), (body, shortcut), where, ("add", 2))
        # dense
        options.check_keys((*_COMMON, "body"))
        if "body" not in raw:
            raise SpecError("dense needs 'body', a list of layers", where, name)
        body = self.sequence(raw["body"], x, inner.child(f"{name}.body"), raw.at("body"))
        return self.add(f"{name}.concat", lambda _: Concat(inputs=2), (x, body), where, ("concat", 2))

    def template(self, kind: str, raw: LocatedDict, where: Location, x: int, scope: _Scope, name: str) -> int:
        params, layers, template_where = self.templates[kind]
        if kind in scope.stack:
            raise SpecError(f"block '{kind}' uses itself ({' -> '.join((*scope.stack, kind))})", where, name)
        bound: dict[str, Any] = {}
        for key in raw:
            if key in _COMMON:
                continue
            if key not in params:
                raise SpecError(f"unknown parameter '{key}' for block '{kind}'{did_you_mean(key, params)}; "
                                f"parameters: {', '.join(params) or 'none'}", raw.at(key), name)
            bound[key] = _resolve(raw[key], scope, raw.at(key), name)
        for param, default in params.items():
            if param not in bound:
                if default is _MISSING:
                    raise SpecError(f"block '{kind}' needs parameter '{param}'", where, name)
                bound[param] = default
        bound.setdefault("in_channels", self.shape(x)[0])
        inner = _Scope(name, MappingProxyType(bound), (*scope.stack, kind))
        if len(layers) == 1:
            # A template that is one unnamed structure is that structure: no extra name level
            # (inception_3a.branch1.conv_1, not inception_3a.concat_1.branch1.conv_1).
            only_kind, only_raw = _split_entry(layers[0], layers.at(0), inner)
            if only_kind in STRUCTURE_KINDS and "name" not in only_raw and "repeat" not in only_raw:
                return self.structure(only_kind, only_raw, layers.at(0), x, inner, name)
        return self.sequence(layers, x, inner, template_where)


_PLAIN_TYPES = (int, bool, str, type(None))  # not float: -0.0 == 0.0 would share a layer
_NUMBER_TYPES = frozenset({int, bool, type(None)})  # plain values that need no further look


def _leaf_key(kind: str, raw: LocatedDict) -> Any:
    """What a leaf layer depends on besides its input shape, or None if that is not just plain values.

    Large specs repeat the same few layers (conv 3x3 16 -> 16 on 16x8x8, ...); building one
    (option checks, a frozen record, shape rules) costs ~10-20 us, so the builder builds
    each distinct (kind, options, input shape) once and shares the immutable result
    (``add()`` puts the input shapes in the key; joins are keyed the same way). Only
    successful builds are kept, so every error is still raised with its own name and location.
    ``name`` and ``repeat`` never change the layer; the value's type is part of the key
    because ``1 == True``. ``$param`` strings depend on the scope and are not keyed.
    """
    types = tuple(map(type, raw.values()))
    if _NUMBER_TYPES.issuperset(types) and "name" not in raw and "repeat" not in raw:
        return kind, tuple(raw.items()), types  # the common case (numbers, booleans), read in C
    items = []
    for option, value in raw.items():
        if option == "name" or option == "repeat":
            continue
        if type(value) not in _PLAIN_TYPES or (type(value) is str and value.startswith("$")):
            return None
        items.append((option, type(value), value))
    return kind, tuple(items)


def _split_entry(item: Any, where: Location, scope: _Scope) -> tuple[str, LocatedDict]:
    """``relu`` | ``{conv: {...}}`` | ``{kind: conv, ...}`` -> (kind, options)."""
    if isinstance(item, str):
        return item, LocatedDict(where)
    if isinstance(item, LocatedDict):
        if "kind" in item:
            kind = item["kind"]
            options = LocatedDict(item.where)
            for key, value in item.items():
                if key != "kind":
                    options[key] = value
                    options.key_where[key] = item.at(key)
            if not isinstance(kind, str):
                raise SpecError(f"'kind' must be a layer kind name, got {kind!r}", item.at("kind"))
            return kind, options
        if len(item) == 1:
            (kind, options), = item.items()
            if not isinstance(kind, str):
                raise SpecError(f"a layer must be named by its kind, got {kind!r}", where)
            if options is None:
                return kind, LocatedDict(item.at(kind))
            if not isinstance(options, LocatedDict):
                raise SpecError(f"options of '{kind}' must be a mapping like {{out: 64, kernel: 3}}, got {options!r}",
                                item.at(kind))
            return kind, options
        raise SpecError("a layer must be one kind with its options, like '- conv: {out: 64, kernel: 3}'; "
                        f"got keys {', '.join(map(str, item))}", where)
    raise SpecError(f"a layer must be a kind name or a mapping, got {item!r}", where)


def _templates(spec: Spec, errors: list[SpecError] | None = None,
               broken: set[Any] | None = None) -> dict[str, tuple[dict[str, Any], LocatedList, Location]]:
    """The ``blocks:`` section; collecting (``errors`` given), a bad block is noted in ``broken``."""
    templates: dict[str, tuple[dict[str, Any], LocatedList, Location]] = {}
    for name, body in spec.blocks.items():
        try:
            templates[name] = _template(spec, name, body)
        except SpecError as error:
            if errors is None or broken is None:
                raise
            errors.append(error)
            broken.add(name)
    return templates


def _template(spec: Spec, name: Any, body: Any) -> tuple[dict[str, Any], LocatedList, Location]:
    where = spec.blocks.at(name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w\-]*", name):
        raise SpecError(f"block name must be an identifier, got {name!r}", where)
    if name in LAYER_KINDS or name in STRUCTURE_KINDS:
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
            params[param] = _MISSING
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
    return (params, layers, body.at("layers"))
