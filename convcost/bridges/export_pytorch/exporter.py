"""The exporter: the network's class and a class per template block, written entry by entry: a layer
list's entries, ``if:`` and ``repeat:``, a block's call, a leaf layer's module (from ``LEAVES``)."""

from __future__ import annotations

from typing import Any

from ...builder import STRUCTURE_KINDS
from ...errors import Location
from ...kinds import LAYER_KINDS
from ...located import LocatedDict, LocatedList
from ...structures import STRUCTURES
from .leaves import LEAVES, Leaf, Module
from .names import RESERVED_NAMES, Class, Tensor, class_name, error, expression, identifier, substitute
from .scan import (
    JOINS, read_entry, reads_block_input, referenced, template_defaults, template_params, tensor_parameters,
)
from .structures import StructureWriter
from .text import HELPERS

__all__ = ["Exporter"]


class Exporter(StructureWriter):
    """Writes the classes of a spec: :meth:`network_class`, and the templates' classes it calls, in ``order``."""

    # ---------------------------------------------------------------- classes

    def network_class(self) -> Class:
        spec = self.spec
        cls = Class(class_name(spec.name), f"The {spec.name} network.", True)
        scope: dict[str, Tensor] = {}
        inputs = []
        read_by_name = referenced(spec, spec.layers) | set(spec.outputs or ())
        for name, shape in spec.inputs:
            var = "x" if len(spec.inputs) == 1 and name not in read_by_name else cls.local(
                "inputs" if name == "input" else name)
            cls.locals.add(var)
            inputs.append(var)
            scope[name] = Tensor(var, repr(shape[0]), len(shape))
        cls.forward_args = inputs
        first = scope[spec.inputs[0][0]]
        out = self.sequence(spec.layers, first, cls, scope, "", read_by_name)
        if spec.outputs:
            names = [self.lookup(name, scope, "", cls, spec.outputs.at(k)).var for k, name in enumerate(spec.outputs)]
            cls.forward.append(f"return {', '.join(names)}")
        else:
            cls.forward.append(f"return {out.var}")
        return cls

    def template_class(self, kind: str, rank: int) -> Class:
        if kind in self.classes:
            cls = self.classes[kind]
            if cls.out_rank and rank != getattr(cls, "in_rank", rank):
                raise error(f"block '{kind}' is used on tensors of different ranks", None)
            return cls
        body = self.spec.blocks[kind]
        where = self.spec.blocks.at(kind)
        params = template_params(self.spec, kind)
        layers = body["layers"]
        tensor_params = tensor_parameters(layers, params)
        name = class_name(kind)
        cls = Class(name if name not in HELPERS else f"{name}Block", f"The '{kind}' block.", False)
        cls.params = {param: identifier(param) if identifier(param) not in RESERVED_NAMES
                      else f"{identifier(param)}_" for param in params if param not in tensor_params}
        required = [cls.params[p] for p, default in params.items() if p in cls.params and default is None]
        optional = [f"{cls.params[p]}={default!r}" for p, default in params.items()
                    if p in cls.params and default is not None]
        cls.args = ["in_channels", *required, *optional]
        for param in tensor_params:
            cls.tensor_params[param] = identifier(param)
            cls.args.append(f"{identifier(param)}_channels")
        cls.locals.update(cls.params.values())
        setattr(cls, "in_rank", rank)
        self.classes[kind] = cls
        scope: dict[str, Tensor] = {}
        references = referenced(self.spec, layers)
        uses_input = "input" in references
        x = Tensor("x", "in_channels", rank)
        if uses_input:  # the block's input is read again later: keep it
            cls.forward.append("identity = x")
            cls.locals.add("identity")
            scope["input"] = Tensor("identity", "in_channels", rank)
        for param, var in cls.tensor_params.items():
            scope[f"${param}"] = Tensor(var, f"{var}_channels", rank)
        cls.forward_args = (["x"] if reads_block_input(layers) or uses_input else []) + list(
            cls.tensor_params.values())
        if len(layers) == 1 and not isinstance(layers[0], str):
            only_kind, only_raw = read_entry(layers[0], layers.at(0))
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

    def block_args(self, block: Class, kind: str, raw: LocatedDict, cls: Class,
                   name: str) -> tuple[list[str], dict[str, str]]:
        """The call's arguments after in_channels, and each parameter's value (for channel expressions)."""
        values: dict[str, str] = {}
        call = []
        defaults = template_defaults(self.spec, kind)
        for param, var in block.params.items():
            if param in raw:
                value = expression(raw[param], cls, raw.at(param), name)
                values[var] = value
                call.append(f", {var}={value}")
            elif defaults.get(param) is not None:
                values[var] = repr(defaults[param])
        for param, var in block.tensor_params.items():
            values[f"{var}_channels"] = f"__{param}_channels__"  # filled by the caller
        return call, values

    # ---------------------------------------------------------------- layer lists

    def sequence(self, items: LocatedList, x: Tensor, cls: Class, scope: dict[str, Tensor], prefix: str,
                 references: set[str], where: Location | None = None) -> Tensor:
        counters: dict[str, int] = {}
        for index, item in enumerate(items):
            x = self.entry(item, items.at(index), x, cls, scope, prefix, counters, references)
        return x

    def entry(self, item: Any, where: Location, x: Tensor, cls: Class, scope: dict[str, Tensor], prefix: str,
              counters: dict[str, int], references: set[str]) -> Tensor:
        kind, raw = read_entry(item, where)
        local = raw.get("name")
        if local is None:
            counters[kind] = counters.get(kind, 0) + 1
            local = f"{kind}_{counters[kind]}"
        elif isinstance(local, str) and local.startswith("$"):
            raise error("a name given by a parameter", where, str(local))
        name = f"{prefix}.{local}" if prefix else str(local)
        full = name  # the builder's name when cls is the network's class
        condition = None
        if "if" in raw:
            condition = expression(raw["if"], cls, raw.at("if"), name)
            if condition in ("True", "False"):
                if condition == "False":
                    return x
                condition = None
        repeat = expression(raw["repeat"], cls, raw.at("repeat"), name) if "repeat" in raw else "1"
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
            out = Tensor(var, out.channels, out.rank)
        scope[name] = out
        return out

    def inputs(self, kind: str, raw: LocatedDict, x: Tensor, cls: Class, scope: dict[str, Tensor], prefix: str,
               name: str) -> list[Tensor]:
        joins = kind in JOINS and not (kind == "concat" and "branches" in raw)
        if "from" not in raw:
            return [x]
        value = raw["from"]
        names = value if isinstance(value, list) else [value]
        found = [self.lookup(item, scope, prefix, cls, raw.at("from")) for item in names]
        return [x, *found] if joins and len(found) == 1 else found

    def conditional(self, kind: str, raw: LocatedDict, where: Location, inputs: list[Tensor], cls: Class,
                    scope: dict[str, Tensor], prefix: str, name: str, condition: str,
                    references: set[str]) -> Tensor:
        """``if:``: the layer exists only when the condition holds (a flag for a join)."""
        x = inputs[0]
        if x.var != "x":  # both paths must leave the result in x
            cls.forward.append(f"x = {x.var}")
            x = inputs[0] = Tensor("x", x.channels, x.rank)
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
        return Tensor(x.var, channels, out.rank)

    def repeated(self, kind: str, raw: LocatedDict, where: Location, x: Tensor, cls: Class,
                 scope: dict[str, Tensor], name: str, repeat: str, references: set[str]) -> Tensor:
        """``repeat: N``: an nn.Sequential of N copies."""
        module, channels, rank = self.element(kind, raw, where, x, cls, name)
        attr = cls.attr(name.rpartition(".")[2])
        cls.init.append(f"self.{attr} = {module}")
        cls.forward.append(f"x = self.{attr}({x.var})")
        return Tensor("x", channels, rank)

    def element(self, kind: str, raw: LocatedDict, where: Location, x: Tensor, cls: Class,
                name: str) -> tuple[str, str, int]:
        """(module expression, output channels, rank) of a layer or a block call, repeated as ``repeat:`` says
        (an nn.Sequential of copies; the first reads the input's channels, the others the output's)."""
        repeat = expression(raw["repeat"], cls, raw.at("repeat"), name) if "repeat" in raw else "1"
        if kind in self.spec.blocks:
            block = self.template_class(kind, x.rank)
            call, values = self.block_args(block, kind, raw, cls, name)
            first = substitute(block.out_channels, {"in_channels": x.channels, **values})
            make = f"{block.name}({{}}{''.join(call)})"
            if repeat == "1":
                return make.format(x.channels), first, block.out_rank
            again = substitute(block.out_channels, {"in_channels": first, **values})
            if first == x.channels:
                return f"nn.Sequential(*[{make.format(x.channels)} for _ in range({repeat})])", first, block.out_rank
            if again != first:
                raise error("a repeated block whose width changes with every copy", where, name)
            copies = make.format(f"{x.channels} if i == 0 else {first}")
            return f"nn.Sequential(*[{copies} for i in range({repeat})])", first, block.out_rank
        if kind not in LAYER_KINDS or kind in JOINS or kind in STRUCTURES or kind in ("crop", "opaque"):
            raise error(f"'repeat' on a {kind}", where, name)
        if repeat == "1":
            return self.leaf(kind, raw, where, x, cls, name)
        module, channels, rank = self.leaf(kind, raw, where, x, cls, name, f"{x.channels} if i == 0 else ")
        loop = "i" if "i == 0" in module else "_"
        return f"nn.Sequential(*[{module} for {loop} in range({repeat})])", channels, rank

    def one(self, kind: str, raw: LocatedDict, where: Location, inputs: list[Tensor], cls: Class,
            scope: dict[str, Tensor], prefix: str, name: str, references: set[str]) -> Tensor:
        x = inputs[0]
        local = name.rpartition(".")[2]
        if kind in self.spec.blocks:
            block = self.template_class(kind, x.rank)
            call, values = self.block_args(block, kind, raw, cls, name)
            forward_inputs = [x.var] if "x" in block.forward_args else []
            for param, var in block.tensor_params.items():
                if param not in raw:
                    raise error(f"block '{kind}' needs the tensor '{param}'", where, name)
                tensor = self.lookup(raw[param], scope, prefix, cls, raw.at(param))
                call.append(f", {var}_channels={tensor.channels}")
                values[f"{var}_channels"] = tensor.channels
                forward_inputs.append(tensor.var)
            attr = cls.attr(local)
            cls.init.append(f"self.{attr} = {block.name}({x.channels}{''.join(call)})")
            cls.forward.append(f"x = self.{attr}({', '.join(forward_inputs)})")
            return Tensor("x", substitute(block.out_channels, {"in_channels": x.channels, **values}), block.out_rank)
        if kind in STRUCTURE_KINDS and not (kind in JOINS and "branches" not in raw):
            return self.structure(kind, raw, where, x, cls, scope, name, local, references)
        if kind in JOINS:
            return self.join(kind, raw, where, inputs, cls, name)
        if kind == "crop":
            return self.crop(raw, where, x, cls, scope, prefix, name)
        module, channels, rank = self.leaf(kind, raw, where, x, cls, name)
        attr = cls.attr(local)
        cls.init.append(f"self.{attr} = {module}")
        cls.forward.append(f"x = self.{attr}({x.var})")
        return Tensor("x", channels, rank)

    def leaf(self, kind: str, raw: LocatedDict, where: Location, x: Tensor, cls: Class, name: str,
             first: str = "") -> Module:
        """(module expression, output channels, output rank) of a leaf layer reading ``x``. ``first``, when
        given, prefixes the input channels of repeated copies (``c if i == 0 else ``)."""
        try:
            write = LEAVES[kind]
        except KeyError:
            raise error(f"no PyTorch form for {kind}", where, name) from None
        return write(Leaf(kind, raw, where, x, cls, name, first, self.nodes, self.helper))
