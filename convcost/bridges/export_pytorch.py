"""A spec -> readable PyTorch source (``convcost export SPEC --to pytorch``): starting code for a draft.

The design follows the spec tree, not only the built network, because a network has lost what a person
writes: its templates. Each ``blocks:`` template becomes an ``nn.Module`` class whose ``__init__`` takes
``in_channels`` and the template's parameters (``$p`` and ``${...}`` become Python expressions over them,
``if:`` becomes ``if``, ``repeat:`` a loop), and the network is a class whose layers are attributes named
after the spec's names, so module paths follow convcost's layer names. Channel counts are tracked as
expressions; where a value depends on a spatial size (a ``linear`` over the last axis or after a flatten,
a ``layer_norm`` over the last axis) it is read from the built network, which is possible outside
templates only. Joins, crops and splits are written in ``forward``, which follows the graph: a tensor read
by name later gets a variable of that name.

The code imports only torch. A few small modules that torch lacks are written out when used
(``LayerNormOverChannels``, ``LinearOverChannels``, ``LayerScale``, ``SqueezeExcitation``,
``ChannelShuffle``, ``center_crop``), each exporting to the ONNX ops ``convcost import`` maps back.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..builder import STRUCTURE_KINDS
from ..errors import Location, SpecError
from ..kinds import LAYER_KINDS
from ..located import LocatedDict, LocatedList
from ..network import Network, Node
from ..options import PER_AXIS
from ..spec import Spec
from ..structures import STRUCTURES

__all__ = ["export_pytorch"]

_JOINS = ("add", "sub", "mul", "max", "concat")
_MODULE_NAMES = {"forward", "training", "to", "eval", "train", "type", "apply", "half", "float", "double", "cuda",
                 "cpu", "parameters", "modules", "children", "buffers", "state_dict", "register_buffer",
                 "register_parameter", "add_module", "zero_grad", "requires_grad_", "extra_repr", "named_modules",
                 "get_submodule", "bfloat16", "share_memory", "load_state_dict", "named_parameters",
                 "named_buffers", "named_children", "register_module", "get_parameter", "get_buffer", "ipu", "xpu",
                 "mtia", "to_empty", "compile", "call_super_init", "dump_patches"}
_RESERVED_NAMES = {"self", "nn", "torch", "x", "identity", "in_channels", "super", "input", "range", "max", "min",
                   "int", "float", "len", "sum", "list", "tuple", "print"}
_ACTIVATIONS = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "leaky_relu": "nn.LeakyReLU", "sigmoid": "nn.Sigmoid",
                "tanh": "nn.Tanh", "gelu": "nn.GELU", "silu": "nn.SiLU", "hardswish": "nn.Hardswish",
                "hardsigmoid": "nn.Hardsigmoid", "mish": "nn.Mish", "elu": "nn.ELU", "softplus": "nn.Softplus"}
_ACTIVATION_ARGS = {"leaky_relu": ("negative_slope",), "elu": ("alpha",), "softplus": ("beta", "threshold")}

_HELPERS = {
    "LayerNormOverChannels": '''class LayerNormOverChannels(nn.LayerNorm):
    """LayerNorm over the channels at every position (ConvNeXt's LayerNorm2d)."""

    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(x.dim() - 1, 1)
''',
    "LinearOverChannels": '''class LinearOverChannels(nn.Linear):
    """nn.Linear on the channels at every position (ConvNeXt's MLP; a 1x1 conv's arithmetic)."""

    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(x.dim() - 1, 1)
''',
    "LayerScale": '''class LayerScale(nn.Module):
    """A learned scale per channel (ConvNeXt, CaiT)."""

    def __init__(self, channels, spatial_dims=2, init=1e-6):
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,) + (1,) * spatial_dims, init))

    def forward(self, x):
        return x * self.scale
''',
    "SqueezeExcitation": '''class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation as torchvision's: pool, 1x1 conv down and up, gate, multiply."""

    def __init__(self, channels, squeeze, activation=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.activation = activation()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.expand(self.activation(self.reduce(self.pool(x)))))
''',
    "ChannelShuffle": '''class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: reshape to groups, swap, flatten back."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, *spatial = x.shape
        x = x.reshape(n, self.groups, c // self.groups, *spatial).transpose(1, 2)
        return x.reshape(n, c, *spatial)
''',
    "center_crop": '''def center_crop(x, size):
    """The centre of x's spatial axes, cut to size (as torchvision's center_crop)."""
    starts = [(have - want) // 2 for have, want in zip(x.shape[2:], size)]
    return x[(..., *(slice(s, s + want) for s, want in zip(starts, size)))]
''',
    "cat_cropped": '''def cat_cropped(tensors, dim=1):
    """Concatenate after a centre crop of every tensor to the smallest (U-Net's skips)."""
    size = [min(t.shape[axis] for t in tensors) for axis in range(2, tensors[0].dim())]
    cropped = [t if list(t.shape[2:]) == size else center_crop(t, size) for t in tensors]
    return torch.cat(cropped, dim)
''',
}
_HELPER_NEEDS = {"cat_cropped": ("center_crop",)}


def _error(message: str, where: Location | None, name: str | None = None) -> SpecError:
    return SpecError(f"export to PyTorch: {message}", where, name)


@dataclass
class _Tensor:
    """A tensor in ``forward``: the expression that holds it, its channels (a Python expression of
    ``__init__``) and its rank (channels and spatial axes)."""

    var: str
    channels: str
    rank: int


@dataclass
class _Class:
    """An ``nn.Module`` class being written."""

    name: str
    doc: str
    concrete: bool  # the network's own class: values can be read from the built network
    args: list[str] = field(default_factory=list)  # __init__ arguments after self
    forward_args: list[str] = field(default_factory=list)
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    attrs: set[str] = field(default_factory=set)
    locals: set[str] = field(default_factory=set)
    params: dict[str, str] = field(default_factory=dict)  # template parameter -> Python name
    tensor_params: dict[str, str] = field(default_factory=dict)  # tensor-naming parameter -> forward argument
    out_channels: str = ""
    out_rank: int = 0

    def attr(self, name: str) -> str:
        base = _identifier(name)
        candidate, k = base, 1
        while candidate in self.attrs or candidate in _MODULE_NAMES:
            k += 1
            candidate = f"{base}_{k}"
        self.attrs.add(candidate)
        return candidate

    def local(self, name: str) -> str:
        base = _identifier(name)
        candidate, k = base, 1
        while candidate in self.locals or candidate in _RESERVED_NAMES or candidate in self.forward_args:
            k += 1
            candidate = f"{base}_{k}"
        self.locals.add(candidate)
        return candidate


def _identifier(name: str) -> str:
    text = re.sub(r"\W", "_", str(name))
    if not text or text[0].isdigit():
        text = f"layer_{text}"
    return f"{text}_" if keyword.iskeyword(text) else text


def _class_name(name: str) -> str:
    words = [word for word in re.split(r"[^A-Za-z0-9]+", str(name)) if word]
    text = "".join(word[:1].upper() + word[1:] for word in words) or "Model"
    return f"Net{text}" if text[0].isdigit() else text


def _simplify(expression: str) -> str:
    """Fold an expression without names to its value: ``64 * 4`` is ``256``."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return expression
    if any(isinstance(node, ast.Name) for node in ast.walk(tree)):
        return expression
    try:
        value = eval(compile(tree, "<expression>", "eval"), {"__builtins__": {}})  # literals and + - * // only
    except Exception:
        return expression
    return repr(value)


def _substitute(expression: str, names: dict[str, str]) -> str:
    """``expression`` with each name replaced by an expression (parenthesized as needed), folded."""
    tree = ast.parse(expression, mode="eval")

    class Replace(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> Any:
            if node.id in names:
                return ast.parse(names[node.id], mode="eval").body
            return node

    return _simplify(ast.unparse(Replace().visit(tree)))


class _Exporter:
    def __init__(self, spec: Spec, network: Network):
        self.spec = spec
        self.network = network
        self.nodes = {node.name: node for node in network.nodes}
        self.helpers: list[str] = []
        self.classes: dict[str, _Class] = {}  # template name -> its class (written once)
        self.order: list[_Class] = []

    # ---------------------------------------------------------------- values

    def expression(self, value: Any, cls: _Class, where: Location, name: str) -> str:
        """A spec value as Python source: ``$p`` -> p, ``${a * b}`` -> a * b, literals as literals."""
        if isinstance(value, str) and value.startswith("$"):
            text = value[2:-1] if value.startswith("${") else value[1:]
            try:
                tree = ast.parse(text, mode="eval")
            except SyntaxError:
                raise _error(f"cannot read {value!r}", where, name) from None

            class Rename(ast.NodeTransformer):
                def visit_Name(self, node: ast.Name) -> Any:
                    if node.id in ("true", "false"):
                        return ast.Constant(node.id == "true")
                    if node.id in cls.params:
                        return ast.Name(cls.params[node.id], ast.Load())
                    if node.id == "in_channels" and not cls.concrete:
                        return ast.Name("in_channels", ast.Load())
                    if node.id in cls.tensor_params:
                        raise _error(f"'${node.id}' names a tensor; it can be used only in 'from:'", where, name)
                    raise _error(f"unknown parameter '${node.id}'", where, name)

            return _simplify(ast.unparse(Rename().visit(tree)))
        if isinstance(value, str) and PER_AXIS.fullmatch(value):
            parts = [int(part) for part in re.split(r"[xX]", value)]
            return repr(parts[0]) if len(set(parts)) == 1 else repr(tuple(parts))
        if isinstance(value, list):
            items = [self.expression(item, cls, where, name) for item in value]
            return items[0] if len(set(items)) == 1 else "(" + ", ".join(items) + ")"
        return repr(value)

    def option(self, raw: LocatedDict, key: str, cls: _Class, name: str, default: Any = None) -> str | None:
        if key not in raw:
            return None if default is None else repr(default)
        return self.expression(raw[key], cls, raw.at(key), name)

    def helper(self, name: str) -> str:
        for need in _HELPER_NEEDS.get(name, ()):
            self.helper(need)
        if name not in self.helpers:
            self.helpers.append(name)
        return name

    # ---------------------------------------------------------------- classes

    def network_class(self) -> _Class:
        spec = self.spec
        cls = _Class(_class_name(spec.name), f"The {spec.name} network.", True)
        scope: dict[str, _Tensor] = {}
        inputs = []
        read_by_name = self.references(spec.layers) | set(spec.outputs or ())
        for name, shape in spec.inputs:
            var = "x" if len(spec.inputs) == 1 and name not in read_by_name else cls.local(
                "inputs" if name == "input" else name)
            cls.locals.add(var)
            inputs.append(var)
            scope[name] = _Tensor(var, repr(shape[0]), len(shape))
        cls.forward_args = inputs
        first = scope[spec.inputs[0][0]]
        references = self.references(spec.layers) | set(spec.outputs or ())
        out = self.sequence(spec.layers, first, cls, scope, "", references)
        if spec.outputs:
            names = [self.lookup(name, scope, "", cls, spec.outputs.at(k)).var for k, name in enumerate(spec.outputs)]
            cls.forward.append(f"return {', '.join(names)}")
        else:
            cls.forward.append(f"return {out.var}")
        return cls

    def template_class(self, kind: str, rank: int) -> _Class:
        if kind in self.classes:
            cls = self.classes[kind]
            if cls.out_rank and rank != getattr(cls, "in_rank", rank):
                raise _error(f"block '{kind}' is used on tensors of different ranks", None)
            return cls
        body = self.spec.blocks[kind]
        where = self.spec.blocks.at(kind)
        raw_params = body.get("params") or []
        params: dict[str, Any] = {}
        if isinstance(raw_params, list):
            params = {param: None for param in raw_params}
        else:
            params = dict(raw_params.items())
        layers = body["layers"]
        tensor_params = self.tensor_params(layers, params)
        name = _class_name(kind)
        cls = _Class(name if name not in _HELPERS else f"{name}Block", f"The '{kind}' block.", False)
        cls.params = {param: _identifier(param) if _identifier(param) not in _RESERVED_NAMES
                      else f"{_identifier(param)}_" for param in params if param not in tensor_params}
        required = [cls.params[p] for p, default in params.items() if p in cls.params and default is None]
        optional = [f"{cls.params[p]}={default!r}" for p, default in params.items()
                    if p in cls.params and default is not None]
        cls.args = ["in_channels", *required, *optional]
        for param in tensor_params:
            cls.tensor_params[param] = _identifier(param)
            cls.args.append(f"{_identifier(param)}_channels")
        cls.locals.update(cls.params.values())
        setattr(cls, "in_rank", rank)
        self.classes[kind] = cls
        scope: dict[str, _Tensor] = {}
        uses_input = "input" in self.references(layers)
        x = _Tensor("x", "in_channels", rank)
        if uses_input:  # the block's input is read again later: keep it
            cls.forward.append("identity = x")
            cls.locals.add("identity")
            scope["input"] = _Tensor("identity", "in_channels", rank)
        for param, var in cls.tensor_params.items():
            scope[f"${param}"] = _Tensor(var, f"{var}_channels", rank)
        cls.forward_args = (["x"] if self.reads_block_input(layers) or uses_input else []) + list(
            cls.tensor_params.values())
        references = self.references(layers)
        if len(layers) == 1 and not isinstance(layers[0], str):
            only_kind, only_raw = _entry(layers[0], layers.at(0))
            structure = only_kind in STRUCTURES and (only_kind != "concat" or "branches" in only_raw)
            if structure and not set(only_raw) & {"name", "repeat", "from", "if"}:
                out = self.structure(only_kind, only_raw, layers.at(0), x, cls, scope, "", "", references)
                cls.forward.append(f"return {out.var}")
                cls.out_channels, cls.out_rank = out.channels, out.rank
                self.order.append(cls)
                return cls
        out = self.sequence(layers, x, cls, scope, "", references, where)
        cls.forward.append(f"return {out.var}")
        cls.out_channels, cls.out_rank = out.channels, out.rank
        self.order.append(cls)
        return cls

    def template_defaults(self, kind: str) -> dict[str, Any]:
        raw_params = self.spec.blocks[kind].get("params") or []
        return {} if isinstance(raw_params, list) else dict(raw_params.items())

    def tensor_params(self, items: Any, params: dict[str, Any]) -> list[str]:
        """Template parameters that name tensors (used in from: or like:)."""
        found: list[str] = []
        stack = [items]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key in ("from", "like"):
                    refs = value.get(key)
                    for ref in refs if isinstance(refs, list) else [refs]:
                        if isinstance(ref, str) and ref.startswith("$") and ref[1:] in params \
                                and ref[1:] not in found:
                            found.append(ref[1:])
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
        return [param for param in params if param in found]

    def references(self, items: Any) -> set[str]:
        """Every tensor name a layer list (and what it holds) reads by name: in from: and like:, and as the
        value of a block's tensor parameter (U-Net's skip: enc4)."""
        found: set[str] = set()
        stack = [items]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key in ("from", "like"):
                    refs = value.get(key)
                    for ref in refs if isinstance(refs, list) else [refs]:
                        if isinstance(ref, str):
                            found.add(ref)
                for kind, options in value.items():
                    if kind in self.spec.blocks and isinstance(options, dict):
                        params = self.template_defaults(kind) or dict.fromkeys(
                            self.spec.blocks[kind].get("params") or [])
                        for param in self.tensor_params(self.spec.blocks[kind]["layers"], params):
                            if isinstance(options.get(param), str):
                                found.add(options[param])
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
        return found

    def reads_block_input(self, layers: Any) -> bool:
        """Does a template's first entry read the block's input (no from:)?"""
        first = layers[0]
        return isinstance(first, str) or (isinstance(first, dict) and "from" not in (
            first if "kind" in first else next(iter(first.values()), None) or {}))

    # ---------------------------------------------------------------- layer lists

    def sequence(self, items: LocatedList, x: _Tensor, cls: _Class, scope: dict[str, _Tensor], prefix: str,
                 references: set[str], where: Location | None = None) -> _Tensor:
        counters: dict[str, int] = {}
        for index, item in enumerate(items):
            x = self.entry(item, items.at(index), x, cls, scope, prefix, counters, references)
        return x

    def entry(self, item: Any, where: Location, x: _Tensor, cls: _Class, scope: dict[str, _Tensor], prefix: str,
              counters: dict[str, int], references: set[str]) -> _Tensor:
        kind, raw = _entry(item, where)
        local = raw.get("name")
        if local is None:
            counters[kind] = counters.get(kind, 0) + 1
            local = f"{kind}_{counters[kind]}"
        elif isinstance(local, str) and local.startswith("$"):
            raise _error("a name given by a parameter", where, str(local))
        name = f"{prefix}.{local}" if prefix else str(local)
        full = name  # the builder's name when cls is the network's class
        condition = None
        if "if" in raw:
            condition = self.expression(raw["if"], cls, raw.at("if"), name)
            if condition in ("True", "False"):
                if condition == "False":
                    return x
                condition = None
        repeat = self.expression(raw["repeat"], cls, raw.at("repeat"), name) if "repeat" in raw else "1"
        if repeat == "0":
            return x
        inputs = self.inputs(kind, raw, x, cls, scope, prefix, name)
        named = name in references or local in references or any(
            ref.endswith(f".{local}") or ref == full for ref in references)
        if condition is not None:
            out = self.conditional(kind, raw, where, inputs, cls, scope, prefix, name, condition, references)
        elif repeat != "1":
            out = self.repeated(kind, raw, where, inputs[0], cls, scope, name, repeat, references)
        else:
            out = self.one(kind, raw, where, inputs, cls, scope, prefix, name, references)
        if named and out.var == "x":
            var = cls.local(str(local))
            cls.forward[-1] = cls.forward[-1].replace("x = ", f"{var} = ", 1) if cls.forward[-1].startswith(
                "x = ") else cls.forward[-1]
            if not cls.forward[-1].startswith(f"{var} = "):
                cls.forward.append(f"{var} = x")
            out = _Tensor(var, out.channels, out.rank)
        scope[name] = out
        return out

    def inputs(self, kind: str, raw: LocatedDict, x: _Tensor, cls: _Class, scope: dict[str, _Tensor], prefix: str,
               name: str) -> list[_Tensor]:
        joins = kind in _JOINS and not (kind == "concat" and "branches" in raw)
        if "from" not in raw:
            return [x]
        value = raw["from"]
        names = value if isinstance(value, list) else [value]
        found = [self.lookup(item, scope, prefix, cls, raw.at("from")) for item in names]
        return [x, *found] if joins and len(found) == 1 else found

    def lookup(self, name: Any, scope: dict[str, _Tensor], prefix: str, cls: _Class, where: Location) -> _Tensor:
        if isinstance(name, str) and name.startswith("$"):
            if name[1:] in cls.tensor_params:
                return scope[name]
            raise _error(f"'from: {name}' outside a block that has that parameter", where)
        while True:
            full = f"{prefix}.{name}" if prefix else str(name)
            if full in scope:
                return scope[full]
            if not prefix:
                break
            prefix = prefix.rpartition(".")[0]
        raise _error(f"'{name}' is not a tensor the generated code can reach here (a layer inside another block "
                     "is not returned by that block's forward)", where)

    def conditional(self, kind: str, raw: LocatedDict, where: Location, inputs: list[_Tensor], cls: _Class,
                    scope: dict[str, _Tensor], prefix: str, name: str, condition: str,
                    references: set[str]) -> _Tensor:
        """``if:``: the layer exists only when the condition holds (a flag for a join)."""
        x = inputs[0]
        if x.var != "x":  # both paths must leave the result in x
            cls.forward.append(f"x = {x.var}")
            x = inputs[0] = _Tensor("x", x.channels, x.rank)
        init_before, forward_before = len(cls.init), len(cls.forward)
        out = self.one(kind, raw, where, inputs, cls, scope, prefix, name, references)
        init, forward = cls.init[init_before:], cls.forward[forward_before:]
        del cls.init[init_before:], cls.forward[forward_before:]
        if init:
            attr = init[0].split("=", 1)[0].strip().removeprefix("self.")
            cls.init.append(f"self.{attr} = None")
            cls.init.append(f"if {condition}:")
            cls.init += [f"    {line}" for line in init]
            cls.forward.append(f"if self.{attr} is not None:")
        else:
            flag = cls.attr(f"use_{name.rpartition('.')[2]}")
            cls.init.append(f"self.{flag} = {condition}")
            cls.forward.append(f"if self.{flag}:")
        cls.forward += [f"    {line.replace(out.var + ' = ', x.var + ' = ', 1)}" for line in forward]
        channels = out.channels if out.channels == x.channels else f"({out.channels} if {condition} else " \
                                                                   f"{x.channels})"
        if channels != out.channels:
            local = cls.local(f"{name.rpartition('.')[2]}_channels")
            cls.init.append(f"{local} = {channels[1:-1]}")
            channels = local
        return _Tensor(x.var, channels, out.rank)

    def repeated(self, kind: str, raw: LocatedDict, where: Location, x: _Tensor, cls: _Class,
                 scope: dict[str, _Tensor], name: str, repeat: str, references: set[str]) -> _Tensor:
        """``repeat: N``: an nn.Sequential of N copies."""
        module, channels, rank = self.element(kind, raw, where, x, cls, name)
        attr = cls.attr(name.rpartition(".")[2])
        cls.init.append(f"self.{attr} = {module}")
        cls.forward.append(f"x = self.{attr}({x.var})")
        return _Tensor("x", channels, rank)

    def element(self, kind: str, raw: LocatedDict, where: Location, x: _Tensor, cls: _Class,
                name: str) -> tuple[str, str, int]:
        """(module expression, output channels, rank) of a layer or a block call, repeated as ``repeat:`` says
        (an nn.Sequential of copies; the first reads the input's channels, the others the output's)."""
        repeat = self.expression(raw["repeat"], cls, raw.at("repeat"), name) if "repeat" in raw else "1"
        if kind in self.spec.blocks:
            block = self.template_class(kind, x.rank)
            call, values = self.block_args(block, kind, raw, cls, name)
            first = _substitute(block.out_channels, {"in_channels": x.channels, **values})
            make = f"{block.name}({{}}{''.join(call)})"
            if repeat == "1":
                return make.format(x.channels), first, block.out_rank
            again = _substitute(block.out_channels, {"in_channels": first, **values})
            if first == x.channels:
                return f"nn.Sequential(*[{make.format(x.channels)} for _ in range({repeat})])", first, block.out_rank
            if again != first:
                raise _error("a repeated block whose width changes with every copy", where, name)
            copies = make.format(f"{x.channels} if i == 0 else {first}")
            return f"nn.Sequential(*[{copies} for i in range({repeat})])", first, block.out_rank
        if kind not in LAYER_KINDS or kind in _JOINS or kind in STRUCTURES or kind in ("crop", "opaque"):
            raise _error(f"'repeat' on a {kind}", where, name)
        if repeat == "1":
            return self.leaf(kind, raw, where, x, cls, name)
        module, channels, rank = self.leaf(kind, raw, where, x, cls, name, f"{x.channels} if i == 0 else ")
        loop = "i" if "i == 0" in module else "_"
        return f"nn.Sequential(*[{module} for {loop} in range({repeat})])", channels, rank

    def block_args(self, block: _Class, kind: str, raw: LocatedDict, cls: _Class,
                   name: str) -> tuple[list[str], dict[str, str]]:
        """The call's arguments after in_channels, and each parameter's value (for channel expressions)."""
        values: dict[str, str] = {}
        call = []
        defaults = self.template_defaults(kind)
        for param, var in block.params.items():
            if param in raw:
                value = self.expression(raw[param], cls, raw.at(param), name)
                values[var] = value
                call.append(f", {var}={value}")
            elif defaults.get(param) is not None:
                values[var] = repr(defaults[param])
        for param, var in block.tensor_params.items():
            values[f"{var}_channels"] = f"__{param}_channels__"  # filled by the caller
        return call, values

    # ---------------------------------------------------------------- one entry

    def one(self, kind: str, raw: LocatedDict, where: Location, inputs: list[_Tensor], cls: _Class,
            scope: dict[str, _Tensor], prefix: str, name: str, references: set[str]) -> _Tensor:
        x = inputs[0]
        local = name.rpartition(".")[2]
        if kind in self.spec.blocks:
            block = self.template_class(kind, x.rank)
            call, values = self.block_args(block, kind, raw, cls, name)
            forward_inputs = [x.var] if "x" in block.forward_args else []
            for param, var in block.tensor_params.items():
                if param not in raw:
                    raise _error(f"block '{kind}' needs the tensor '{param}'", where, name)
                tensor = self.lookup(raw[param], scope, prefix, cls, raw.at(param))
                call.append(f", {var}_channels={tensor.channels}")
                values[f"{var}_channels"] = tensor.channels
                forward_inputs.append(tensor.var)
            attr = cls.attr(local)
            cls.init.append(f"self.{attr} = {block.name}({x.channels}{''.join(call)})")
            cls.forward.append(f"x = self.{attr}({', '.join(forward_inputs)})")
            return _Tensor("x", _substitute(block.out_channels, {"in_channels": x.channels, **values}), block.out_rank)
        if kind in STRUCTURE_KINDS and not (kind in _JOINS and "branches" not in raw):
            return self.structure(kind, raw, where, x, cls, scope, name, local, references)
        if kind in _JOINS:
            return self.join(kind, raw, where, inputs, cls, name)
        if kind == "crop":
            return self.crop(raw, where, x, cls, scope, prefix, name)
        module, channels, rank = self.leaf(kind, raw, where, x, cls, name)
        attr = cls.attr(local)
        cls.init.append(f"self.{attr} = {module}")
        cls.forward.append(f"x = self.{attr}({x.var})")
        return _Tensor("x", channels, rank)

    def join(self, kind: str, raw: LocatedDict, where: Location, inputs: list[_Tensor], cls: _Class,
             name: str) -> _Tensor:
        names = [tensor.var for tensor in inputs]
        if kind == "concat":
            axis = raw.get("axis", "channels")
            rank = inputs[0].rank
            axes = ("channels", *(("length",) if rank == 2 else ("height", "width") if rank == 3 else
                                  ("depth", "height", "width") if rank == 4 else ()))
            dim = axes.index(axis) + 1 if axis in axes else 1
            crop = raw.get("crop", "none") == "center"
            listed = "[" + ", ".join(names) + "]"
            expression = f"{self.helper('cat_cropped')}({listed}, {dim})" if crop else f"torch.cat({listed}, {dim})"
            channels = " + ".join(t.channels for t in inputs) if dim == 1 else inputs[0].channels
            cls.forward.append(f"x = {expression}")
            return _Tensor("x", _simplify(channels), inputs[0].rank)
        if kind == "max":
            expression = names[0]
            for other in names[1:]:
                expression = f"torch.maximum({expression}, {other})"
        else:
            expression = {"add": " + ", "sub": " - ", "mul": " * "}[kind].join(names)
        cls.forward.append(f"x = {expression}")
        return _Tensor("x", inputs[0].channels, inputs[0].rank)

    def crop(self, raw: LocatedDict, where: Location, x: _Tensor, cls: _Class, scope: dict[str, _Tensor],
             prefix: str, name: str) -> _Tensor:
        helper = self.helper("center_crop")
        if "like" in raw:
            other = self.lookup(raw["like"], scope, prefix, cls, raw.at("like"))
            cls.forward.append(f"x = {helper}({x.var}, {other.var}.shape[2:])")
        else:
            size = self.expression(raw["size"], cls, raw.at("size"), name)
            if not size.startswith("("):
                size = "(" + ", ".join([size] * (x.rank - 1)) + ",)"
            cls.forward.append(f"x = {helper}({x.var}, {size})")
        return _Tensor("x", x.channels, x.rank)

    def structure(self, kind: str, raw: LocatedDict, where: Location, x: _Tensor, cls: _Class,
                  scope: dict[str, _Tensor], name: str, local: str, references: set[str]) -> _Tensor:
        """A structure, written inline: its layer lists become nn.Sequential attributes when they are chains."""
        sub = local if "name" in raw or not local else ""  # an unnamed structure does not prefix its parts
        if kind == "sequence":
            return self.chain_or_inline(raw["layers"], raw.at("layers"), x, cls, scope, name, local or name,
                                        references)
        if kind == "concat":
            outputs = []
            for index, branch in enumerate(raw["branches"]):
                label = f"{sub}_branch{index + 1}" if sub else f"branch{index + 1}"
                outputs.append(self.chain_or_inline(branch, raw["branches"].at(index), x, cls, scope,
                                                    f"{name}.branch{index + 1}", label, references, call=True))
            cls.forward.append(f"x = torch.cat([{', '.join(o.var for o in outputs)}], 1)")
            return _Tensor("x", _simplify(" + ".join(o.channels for o in outputs)), x.rank)
        if kind == "residual":
            body = self.chain_or_inline(raw["body"], raw.at("body"), x, cls, scope, f"{name}.body",
                                        f"{sub}_body" if sub else "body", references, call=True)
            shortcut = self.chain_or_inline(raw.get("shortcut") or LocatedList(where), raw.at("shortcut")
                                            if "shortcut" in raw else where, x, cls, scope, f"{name}.shortcut",
                                            f"{sub}_shortcut" if sub else "shortcut", references, call=True)
            cls.forward.append(f"x = {body.var} + {shortcut.var}")
            return _Tensor("x", body.channels, body.rank)
        if kind == "dense":
            body = self.chain_or_inline(raw["body"], raw.at("body"), x, cls, scope, f"{name}.body",
                                        f"{sub}_body" if sub else "body", references, call=True)
            cls.forward.append(f"x = torch.cat([{x.var}, {body.var}], 1)")
            return _Tensor("x", _simplify(f"{x.channels} + {body.channels}"), x.rank)
        if kind == "split":
            if "parts" in raw:
                parts = self.expression(raw["parts"], cls, raw.at("parts"), name)
                count = int(parts) if parts.isdigit() else None
                if count is None:
                    raise _error("'parts' given by a parameter", where, name)
                sizes = [_simplify(f"{x.channels} // {parts}")] * count
            else:
                sizes = [self.expression(size, cls, raw.at("sizes"), name) for size in raw["sizes"]]
            parts_names = [str(part) for part in raw.get("names", [str(k) for k in range(len(sizes))])]
            variables = [cls.local(f"{local}_{part}") for part in parts_names]
            cls.forward.append(f"{', '.join(variables)} = torch.split({x.var}, [{', '.join(sizes)}], 1)")
            for part, var, size in zip(parts_names, variables, sizes):
                scope[f"{name}.{part}"] = _Tensor(var, size, x.rank)
            return _Tensor(variables[-1], sizes[-1], x.rank)
        if kind == "squeeze_excite":
            if "reduce" in raw:
                squeeze = self.expression(raw["reduce"], cls, raw.at("reduce"), name)
            else:
                ratio = Fraction(str(raw["ratio"]))
                squeeze = _simplify(f"max(1, {x.channels} * {ratio.numerator} // {ratio.denominator})")
            activation = _ACTIVATIONS[str(raw.get("activation", "relu"))]
            gate = _ACTIVATIONS[str(raw.get("gate", "sigmoid"))]
            attr = cls.attr(local)
            arguments = [x.channels, squeeze]
            if activation != "nn.ReLU" or gate != "nn.Sigmoid":
                arguments.append(activation)
            if gate != "nn.Sigmoid":
                arguments.append(gate)
            cls.init.append(f"self.{attr} = {self.helper('SqueezeExcitation')}({', '.join(arguments)})")
            cls.forward.append(f"x = self.{attr}({x.var})")
            return _Tensor("x", x.channels, x.rank)
        raise _error(f"no PyTorch form for {kind}", where, name)

    def chain_or_inline(self, items: Any, where: Location, x: _Tensor, cls: _Class, scope: dict[str, _Tensor],
                        name: str, label: str, references: set[str], call: bool = False) -> _Tensor:
        """A layer list: an nn.Sequential attribute when it is a plain chain of layers (``call``: the tensor is
        then the expression ``self.label(x)``), else its entries written one by one."""
        if not isinstance(items, LocatedList) or not items:
            return x
        if self.plain(items, references, name):
            attr = cls.attr(label)
            modules: list[str] = []
            channels, rank = x.channels, x.rank
            counters: dict[str, int] = {}
            conditional = False
            block: tuple[str, str] | None = None  # the open ``if``: (condition, channels before it)
            for index, item in enumerate(items):
                kind, raw = _entry(item, items.at(index))
                counters[kind] = counters.get(kind, 0) + 1
                local = raw.get("name", f"{kind}_{counters[kind]}")
                entry_name = f"{name}.{local}"
                condition = self.expression(raw["if"], cls, raw.at("if"), entry_name) if "if" in raw else None
                if block is not None and condition != block[0]:  # the if ends: channels depend on it
                    if channels != block[1]:
                        channels = f"({channels} if {block[0]} else {block[1]})"
                    block = None
                if condition is not None and block is None:
                    block = (condition, channels)
                    modules.append(f"if {condition}:")
                    conditional = True
                module, channels, rank = self.element(kind, raw, items.at(index), _Tensor("x", channels, rank), cls,
                                                      entry_name)
                modules.append(f"    {attr}.append({module})" if condition is not None else module)
            if block is not None and channels != block[1]:
                channels = f"({channels} if {block[0]} else {block[1]})"
            if conditional:
                cls.init.append(f"{attr} = []")
                cls.init += [line if line.startswith(("if ", "    ")) else f"{attr}.append({line})" for line in modules]
                cls.init.append(f"self.{attr} = nn.Sequential(*{attr})")
                cls.locals.add(attr)
            elif len(modules) == 1:
                cls.init.append(f"self.{attr} = {modules[0]}")
            else:
                cls.init.append(f"self.{attr} = nn.Sequential(")
                cls.init += [f"    {module}," for module in modules]
                cls.init.append(")")
            if call:
                return _Tensor(f"self.{attr}({x.var})", channels, rank)
            cls.forward.append(f"x = self.{attr}({x.var})")
            return _Tensor("x", channels, rank)
        out = self.sequence(items, x, cls, scope, name, references, where)
        if call and out.var == "x":
            var = cls.local(label)
            cls.forward[-1] = f"{var} = " + cls.forward[-1][len("x = "):] if cls.forward[-1].startswith("x = ") \
                else cls.forward[-1]
            return _Tensor(var, out.channels, out.rank)
        return out

    def plain(self, items: LocatedList, references: set[str], name: str) -> bool:
        """A chain of leaf layers: no from:, no joins, no blocks, nothing read by name, no repeat."""
        counters: dict[str, int] = {}
        for index, item in enumerate(items):
            kind, raw = _entry(item, items.at(index))
            template = kind in self.spec.blocks
            if template and self.tensor_params(self.spec.blocks[kind]["layers"], self.template_defaults(kind)
                                               or dict.fromkeys(self.spec.blocks[kind].get("params") or [])):
                return False
            if not template and (kind not in LAYER_KINDS or kind in _JOINS or kind in ("crop", "opaque")
                                 or kind in STRUCTURES) or "from" in raw or ("if" in raw and template):
                return False
            counters[kind] = counters.get(kind, 0) + 1
            local = raw.get("name", f"{kind}_{counters[kind]}")
            if any(ref == local or ref.endswith(f".{local}") for ref in references):
                return False
        return True

    # ---------------------------------------------------------------- leaf layers

    def leaf(self, kind: str, raw: LocatedDict, where: Location, x: _Tensor, cls: _Class, name: str,
             first: str = "") -> tuple[str, str, int]:
        """(module expression, output channels, output rank) of a leaf layer reading ``x``. ``first``, when
        given, prefixes the input channels of repeated copies (``c if i == 0 else ``)."""

        def opt(key: str) -> str | None:
            return self.option(raw, key, cls, name)

        c, rank = x.channels, x.rank
        dims = rank - 1
        c_in = f"{first}{opt('out')}" if first and opt("out") else c

        def args(*pairs: tuple[str, str | None, str]) -> str:
            return "".join(f", {key}={value}" for key, value, default in pairs if value is not None
                           and value != default)

        if kind in ("conv", "conv1d", "conv2d", "conv3d", "pointwise", "conv_transpose", "conv_transpose1d",
                    "conv_transpose2d", "conv_transpose3d"):
            d = int(kind[-2]) if kind[-2:-1].isdigit() else dims
            out = opt("out") or "1"
            transposed = kind.startswith("conv_transpose")
            kernel = "1" if kind == "pointwise" else opt("kernel")
            padding = opt("padding")
            if padding in ("'same'", "'valid'"):
                padding = '"same"' if padding == "'same'" else None
            c_in = f"{first}{out}" if first else c
            module = (f"nn.{'ConvTranspose' if transposed else 'Conv'}{d}d({c_in}, {out}, {kernel}"
                      + args(("stride", opt("stride"), "1"), ("padding", padding, "0"),
                             ("output_padding", opt("output_padding") if transposed else None, "0"),
                             ("dilation", opt("dilation"), "1"), ("groups", opt("groups"), "1"),
                             ("bias", opt("bias"), "True")) + ")")
            return module, out, rank
        if kind == "depthwise":
            multiplier = opt("multiplier") or "1"
            out = c if multiplier == "1" else _simplify(f"{c} * {multiplier}")
            module = (f"nn.Conv{dims}d({c}, {out}, {opt('kernel')}"
                      + args(("stride", opt("stride"), "1"), ("padding", opt("padding"), "0"),
                             ("dilation", opt("dilation"), "1"), ("groups", c, ""), ("bias", opt("bias"), "True"))
                      + ")")
            return module.replace("padding='same'", 'padding="same"'), out, rank
        if kind.startswith(("max_pool", "avg_pool")):
            d = int(kind[-2]) if kind[-2:-1].isdigit() else dims
            op = "Max" if kind.startswith("max") else "Avg"
            module = (f"nn.{op}Pool{d}d({opt('kernel')}"
                      + args(("stride", opt("stride"), opt("kernel") or ""), ("padding", opt("padding"), "0"),
                             ("dilation", opt("dilation") if op == "Max" else None, "1"),
                             ("ceil_mode", opt("ceil_mode"), "False")) + ")")
            return module, c, rank
        if kind.startswith(("adaptive_", "global_")):
            op = "Avg" if "avg" in kind else "Max"
            size = opt("output_size") if kind.startswith("adaptive") else "1"
            return f"nn.Adaptive{op}Pool{dims}d({size})", c, rank
        if kind == "linear":
            out = opt("out") or "1"
            bias = args(("bias", opt("bias"), "True"))
            if opt("axis") == "'channels'" and rank > 1:
                return f"{self.helper('LinearOverChannels')}({c}, {out}{bias})", out, rank
            features = c if rank == 1 else self.concrete(cls, name, where, "in_features")
            return f"nn.Linear({first + out if first else features}, {out}{bias})", out if rank == 1 else c, rank
        if kind == "flatten":
            if rank == 1:
                return "nn.Flatten()", c, 1
            return "nn.Flatten()", self.concrete(cls, name, where, "flat"), 1
        if kind == "batch_norm":
            d = 1 if rank <= 2 else rank - 1
            return (f"nn.BatchNorm{d}d({c}" + args(("affine", opt("affine"), "True"),
                                                   ("track_running_stats", opt("track_running_stats"), "True"))
                    + ")"), c, rank
        if kind == "layer_norm":
            affine = args(("elementwise_affine", opt("affine"), "True"))
            if opt("over") == "'last'" and rank > 1:
                return f"nn.LayerNorm({self.concrete(cls, name, where, 'last')}{affine})", c, rank
            if rank == 1:
                return f"nn.LayerNorm({c}{affine})", c, rank
            return f"{self.helper('LayerNormOverChannels')}({c}{affine})", c, rank
        if kind == "group_norm":
            return f"nn.GroupNorm({opt('groups')}, {c}" + args(("affine", opt("affine"), "True")) + ")", c, rank
        if kind == "instance_norm":
            return f"nn.InstanceNorm{max(1, dims)}d({c}" + args(("affine", opt("affine"), "False")) + ")", c, rank
        if kind == "layer_scale":
            spatial = "" if dims == 2 else f", spatial_dims={dims}"
            return f"{self.helper('LayerScale')}({c}{spatial})", c, rank
        if kind in _ACTIVATIONS:
            extra = [(key, opt(key), "") for key in _ACTIVATION_ARGS.get(kind, ())]
            inplace = [("inplace", opt("inplace"), "False")]
            text = args(*extra, *inplace).lstrip(", ")
            return f"{_ACTIVATIONS[kind]}({text})", c, rank
        if kind == "prelu":
            return ("nn.PReLU()" if opt("parameters") in (None, "1") else f"nn.PReLU({c})"), c, rank
        if kind == "channel_shuffle":
            return f"{self.helper('ChannelShuffle')}({opt('groups')})", c, rank
        if kind in ("pixel_shuffle", "pixel_unshuffle"):
            r = opt("factor")
            out = _simplify(f"{c} // {r} ** 2" if kind == "pixel_shuffle" else f"{c} * {r} ** 2")
            return f"nn.{'PixelShuffle' if kind == 'pixel_shuffle' else 'PixelUnshuffle'}({r})", out, rank
        if kind == "dropout":
            return f"nn.Dropout({opt('p') or ''})", c, rank
        if kind == "identity":
            return "nn.Identity()", c, rank
        if kind == "softmax":
            return f"nn.Softmax(dim={opt('dim') or '1'})", c, rank
        if kind == "upsample":
            mode = opt("mode")
            return (f"nn.Upsample(scale_factor={opt('scale')}" + (f", mode={mode}" if mode and mode != "'nearest'"
                                                                   else "") + ")"), c, rank
        if kind == "opaque":
            raise _error(f"opaque layer (op {raw.get('op')}) has no PyTorch counterpart", where, name)
        raise _error(f"no PyTorch form for {kind}", where, name)

    def concrete(self, cls: _Class, name: str, where: Location, what: str) -> str:
        """A size that depends on the input's spatial size, read from the built network."""
        node: Node | None = self.nodes.get(name) if cls.concrete else None
        if node is None:
            raise _error(f"a {what.replace('_', ' ')} size that depends on the spatial size inside a block "
                         "(a linear over the last axis, or after a flatten); move the layer out of the block",
                         where, name)
        if what == "in_features":
            return repr(getattr(node.layer, "in_features"))
        if what == "flat":
            return repr(node.output_shape[0])
        return repr(node.input_shape[-1])

    # ---------------------------------------------------------------- the file

    def source(self) -> str:
        network_cls = self.network_class()
        blocks = [self.render(cls) for cls in self.order]
        helpers = [_HELPERS[name] for name in sorted(self.helpers, key=list(_HELPERS).index)]
        inputs = ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in self.spec.inputs)
        header = (f'"""{self.spec.name} as PyTorch modules, exported by convcost.\n\n'
                  f"Spec: {self.spec.source}\n"
                  f"Input{'s' if len(self.spec.inputs) > 1 else ''} (channels first, batch excluded): {inputs}.\n"
                  '"""\n\nimport torch\nfrom torch import nn\n')
        parts = [header, *helpers, *blocks, self.render(network_cls)]
        shapes = ", ".join(f"torch.randn(1, {', '.join(map(str, shape))})" for _, shape in self.spec.inputs)
        parts.append(f'if __name__ == "__main__":\n    model = {network_cls.name}().eval()\n'
                     f"    print(sum(p.numel() for p in model.parameters()), \"parameters\")\n"
                     f"    model({shapes})\n")
        return "\n\n".join(part.rstrip("\n") + "\n" for part in parts)

    def render(self, cls: _Class) -> str:
        init_args = ", ".join(["self", *cls.args])
        forward_args = ", ".join(["self", *cls.forward_args])
        lines = [f"class {cls.name}(nn.Module):", f'    """{cls.doc}"""', "", f"    def __init__({init_args}):",
                 "        super().__init__()"]
        for line in cls.init:
            indent = "        " + " " * (len(line) - len(line.lstrip(" ")))
            lines += _wrapped(line.lstrip(" "), indent)
        if not cls.concrete:
            lines.append(f"        self.out_channels = {cls.out_channels}")
        lines += ["", f"    def forward({forward_args}):"]
        for line in cls.forward:
            indent = "        " + " " * (len(line) - len(line.lstrip(" ")))
            lines += _wrapped(line.lstrip(" "), indent)
        return "\n".join(lines) + "\n"


_WIDTH = 100


def _split_arguments(text: str) -> list[str]:
    """The top-level comma-separated parts of ``text`` (brackets and strings kept whole)."""
    parts, depth, start, quote = [], 0, 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _wrapped(line: str, indent: str) -> list[str]:
    """A line too long for the page as a formatter writes it: the call's arguments on the next line, or
    one per line with a trailing comma."""
    if len(indent) + len(line) <= _WIDTH or not line.endswith(")") or "(" not in line:
        return [indent + line]
    head, _, rest = line.partition("(")
    if head.count("[") != head.count("]"):
        return [indent + line]
    arguments = _split_arguments(rest[:-1])
    inner = indent + "    "
    joined = ", ".join(arguments)
    if len(inner) + len(joined) <= _WIDTH:
        return [f"{indent}{head}(", inner + joined, f"{indent})"]
    return [f"{indent}{head}(", *(f"{inner}{argument}," for argument in arguments), f"{indent})"]


def _entry(item: Any, where: Location) -> tuple[str, LocatedDict]:
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


def export_pytorch(spec: Spec, network: Network) -> str:
    """Readable PyTorch source for a spec (and the network built from it); raises :class:`SpecError` for
    what has no PyTorch form here (an opaque layer, a block reading a tensor from outside)."""
    return _Exporter(spec, network).source()
