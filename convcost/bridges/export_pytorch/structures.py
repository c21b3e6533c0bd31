"""The exporter's state, and what it writes inline in ``forward``: joins, crops and structures (``sequence``,
``concat`` of branches, ``residual``, ``dense``, ``split``, ``squeeze_excite``), whose layer lists become
``nn.Sequential`` attributes when they are plain chains. Layer lists and blocks are written by the subclass
(``Exporter``), which these call back through :meth:`StructureWriter.sequence` and
:meth:`StructureWriter.element`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction
from typing import Any

from ...errors import Location
from ...located import LocatedDict, LocatedList
from ...network import Network
from ...spec import Spec
from .leaves import ACTIVATIONS
from .names import Class, Tensor, error, expression, simplify
from .scan import plain, read_entry
from .text import HELPER_NEEDS

__all__ = ["StructureWriter"]


class StructureWriter(ABC):
    """What the exporter knows and has written so far, and the parts of ``forward`` written inline."""

    def __init__(self, spec: Spec, network: Network):
        self.spec = spec
        self.network = network
        self.nodes = {node.name: node for node in network.nodes}
        self.helpers: list[str] = []
        self.classes: dict[str, Class] = {}  # template name -> its class (written once)
        self.order: list[Class] = []

    def helper(self, name: str) -> str:
        for need in HELPER_NEEDS.get(name, ()):
            self.helper(need)
        if name not in self.helpers:
            self.helpers.append(name)
        return name

    def lookup(self, name: Any, scope: dict[str, Tensor], prefix: str, cls: Class, where: Location) -> Tensor:
        if isinstance(name, str) and name.startswith("$"):
            if name[1:] in cls.tensor_params:
                return scope[name]
            raise error(f"'from: {name}' outside a block that has that parameter", where)
        while True:
            full = f"{prefix}.{name}" if prefix else str(name)
            if full in scope:
                return scope[full]
            if not prefix:
                break
            prefix = prefix.rpartition(".")[0]
        raise error(f"'{name}' is not a tensor the generated code can reach here (a layer inside another block "
                    "is not returned by that block's forward)", where)

    @abstractmethod
    def sequence(self, items: LocatedList, x: Tensor, cls: Class, scope: dict[str, Tensor], prefix: str,
                 references: set[str], where: Location | None = None) -> Tensor:
        """A layer list's entries written one after another; the tensor the last one makes."""

    @abstractmethod
    def element(self, kind: str, raw: LocatedDict, where: Location, x: Tensor, cls: Class,
                name: str) -> tuple[str, str, int]:
        """(module expression, output channels, rank) of a layer or a block call, repeated as ``repeat:`` says."""

    def join(self, kind: str, raw: LocatedDict, where: Location, inputs: list[Tensor], cls: Class,
             name: str) -> Tensor:
        names = [tensor.var for tensor in inputs]
        if kind == "concat":
            axis = raw.get("axis", "channels")
            rank = inputs[0].rank
            axes = ("channels", *(("length",) if rank == 2 else ("height", "width") if rank == 3 else
                                  ("depth", "height", "width") if rank == 4 else ()))
            dim = axes.index(axis) + 1 if axis in axes else 1
            crop = raw.get("crop", "none") == "center"
            listed = "[" + ", ".join(names) + "]"
            code = f"{self.helper('cat_cropped')}({listed}, {dim})" if crop else f"torch.cat({listed}, {dim})"
            channels = " + ".join(t.channels for t in inputs) if dim == 1 else inputs[0].channels
            cls.forward.append(f"x = {code}")
            return Tensor("x", simplify(channels), inputs[0].rank)
        if kind == "max":
            code = names[0]
            for other in names[1:]:
                code = f"torch.maximum({code}, {other})"
        else:
            code = {"add": " + ", "sub": " - ", "mul": " * "}[kind].join(names)
        cls.forward.append(f"x = {code}")
        return Tensor("x", inputs[0].channels, inputs[0].rank)

    def crop(self, raw: LocatedDict, where: Location, x: Tensor, cls: Class, scope: dict[str, Tensor],
             prefix: str, name: str) -> Tensor:
        helper = self.helper("center_crop")
        if "like" in raw:
            other = self.lookup(raw["like"], scope, prefix, cls, raw.at("like"))
            cls.forward.append(f"x = {helper}({x.var}, {other.var}.shape[2:])")
        else:
            size = expression(raw["size"], cls, raw.at("size"), name)
            if not size.startswith("("):
                size = "(" + ", ".join([size] * (x.rank - 1)) + ",)"
            cls.forward.append(f"x = {helper}({x.var}, {size})")
        return Tensor("x", x.channels, x.rank)

    def structure(self, kind: str, raw: LocatedDict, where: Location, x: Tensor, cls: Class,
                  scope: dict[str, Tensor], name: str, local: str, references: set[str]) -> Tensor:
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
            return Tensor("x", simplify(" + ".join(o.channels for o in outputs)), x.rank)
        if kind == "residual":
            body = self.chain_or_inline(raw["body"], raw.at("body"), x, cls, scope, f"{name}.body",
                                        f"{sub}_body" if sub else "body", references, call=True)
            shortcut = self.chain_or_inline(raw.get("shortcut") or LocatedList(where), raw.at("shortcut")
                                            if "shortcut" in raw else where, x, cls, scope, f"{name}.shortcut",
                                            f"{sub}_shortcut" if sub else "shortcut", references, call=True)
            cls.forward.append(f"x = {body.var} + {shortcut.var}")
            return Tensor("x", body.channels, body.rank)
        if kind == "dense":
            body = self.chain_or_inline(raw["body"], raw.at("body"), x, cls, scope, f"{name}.body",
                                        f"{sub}_body" if sub else "body", references, call=True)
            cls.forward.append(f"x = torch.cat([{x.var}, {body.var}], 1)")
            return Tensor("x", simplify(f"{x.channels} + {body.channels}"), x.rank)
        if kind == "split":
            if "parts" in raw:
                parts = expression(raw["parts"], cls, raw.at("parts"), name)
                count = int(parts) if parts.isdigit() else None
                if count is None:
                    raise error("'parts' given by a parameter", where, name)
                sizes = [simplify(f"{x.channels} // {parts}")] * count
            else:
                sizes = [expression(size, cls, raw.at("sizes"), name) for size in raw["sizes"]]
            parts_names = [str(part) for part in raw.get("names", [str(k) for k in range(len(sizes))])]
            variables = [cls.local(f"{local}_{part}") for part in parts_names]
            cls.forward.append(f"{', '.join(variables)} = torch.split({x.var}, [{', '.join(sizes)}], 1)")
            for part, var, size in zip(parts_names, variables, sizes):
                scope[f"{name}.{part}"] = Tensor(var, size, x.rank)
            return Tensor(variables[-1], sizes[-1], x.rank)
        if kind == "squeeze_excite":
            if "reduce" in raw:
                squeeze = expression(raw["reduce"], cls, raw.at("reduce"), name)
            else:
                ratio = Fraction(str(raw["ratio"]))
                squeeze = simplify(f"max(1, {x.channels} * {ratio.numerator} // {ratio.denominator})")
            activation = ACTIVATIONS[str(raw.get("activation", "relu"))]
            gate = ACTIVATIONS[str(raw.get("gate", "sigmoid"))]
            attr = cls.attr(local)
            arguments = [x.channels, squeeze]
            if activation != "nn.ReLU" or gate != "nn.Sigmoid":
                arguments.append(activation)
            if gate != "nn.Sigmoid":
                arguments.append(gate)
            cls.init.append(f"self.{attr} = {self.helper('SqueezeExcitation')}({', '.join(arguments)})")
            cls.forward.append(f"x = self.{attr}({x.var})")
            return Tensor("x", x.channels, x.rank)
        raise error(f"no PyTorch form for {kind}", where, name)

    def chain_or_inline(self, items: Any, where: Location, x: Tensor, cls: Class, scope: dict[str, Tensor],
                        name: str, label: str, references: set[str], call: bool = False) -> Tensor:
        """A layer list: an nn.Sequential attribute when it is a plain chain of layers (``call``: the tensor is
        then the expression ``self.label(x)``), else its entries written one by one."""
        if not isinstance(items, LocatedList) or not items:
            return x
        if plain(self.spec, items, references):
            attr = cls.attr(label)
            modules: list[str] = []
            channels, rank = x.channels, x.rank
            counters: dict[str, int] = {}
            conditional = False
            block: tuple[str, str] | None = None  # the open ``if``: (condition, channels before it)
            for index, item in enumerate(items):
                kind, raw = read_entry(item, items.at(index))
                counters[kind] = counters.get(kind, 0) + 1
                local = raw.get("name", f"{kind}_{counters[kind]}")
                entry_name = f"{name}.{local}"
                condition = expression(raw["if"], cls, raw.at("if"), entry_name) if "if" in raw else None
                if block is not None and condition != block[0]:  # the if ends: channels depend on it
                    if channels != block[1]:
                        channels = f"({channels} if {block[0]} else {block[1]})"
                    block = None
                if condition is not None and block is None:
                    block = (condition, channels)
                    modules.append(f"if {condition}:")
                    conditional = True
                module, channels, rank = self.element(kind, raw, items.at(index), Tensor("x", channels, rank), cls,
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
                return Tensor(f"self.{attr}({x.var})", channels, rank)
            cls.forward.append(f"x = self.{attr}({x.var})")
            return Tensor("x", channels, rank)
        out = self.sequence(items, x, cls, scope, name, references, where)
        if call and out.var == "x":
            var = cls.local(label)
            cls.forward[-1] = f"{var} = " + cls.forward[-1][len("x = "):] if cls.forward[-1].startswith("x = ") \
                else cls.forward[-1]
            return Tensor(var, out.channels, out.rank)
        return out
