"""Names and values in the generated code: Python identifiers for attributes and locals, class names, the
classes and tensors being written, and spec values (``$p``, ``${...}``, ``3x3``) as Python expressions."""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import Location, SpecError
from ...located import LocatedDict
from ...options import PER_AXIS

__all__ = [
    "RESERVED_NAMES", "Class", "Tensor", "class_name", "error", "expression", "identifier", "option", "simplify",
    "substitute",
]

_MODULE_NAMES = {"forward", "training", "to", "eval", "train", "type", "apply", "half", "float", "double", "cuda",
                 "cpu", "parameters", "modules", "children", "buffers", "state_dict", "register_buffer",
                 "register_parameter", "add_module", "zero_grad", "requires_grad_", "extra_repr", "named_modules",
                 "get_submodule", "bfloat16", "share_memory", "load_state_dict", "named_parameters",
                 "named_buffers", "named_children", "register_module", "get_parameter", "get_buffer", "ipu", "xpu",
                 "mtia", "to_empty", "compile", "call_super_init", "dump_patches"}
RESERVED_NAMES = {"self", "nn", "torch", "x", "identity", "in_channels", "super", "input", "range", "max", "min",
                  "int", "float", "len", "sum", "list", "tuple", "print"}


def error(message: str, where: Location | None, name: str | None = None) -> SpecError:
    return SpecError(f"export to PyTorch: {message}", where, name)


@dataclass
class Tensor:
    """A tensor in ``forward``: the expression that holds it, its channels (a Python expression of
    ``__init__``) and its rank (channels and spatial axes)."""

    var: str
    channels: str
    rank: int


@dataclass
class Class:
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
        candidate = _unused(name, lambda candidate: candidate in self.attrs or candidate in _MODULE_NAMES)
        self.attrs.add(candidate)
        return candidate

    def local(self, name: str) -> str:
        candidate = _unused(name, lambda candidate: candidate in self.locals or candidate in RESERVED_NAMES
                            or candidate in self.forward_args)
        self.locals.add(candidate)
        return candidate


def _unused(name: str, taken: Callable[[str], bool]) -> str:
    """``name`` as an identifier, with the first suffix _2, _3 ... that is not ``taken``."""
    base = identifier(name)
    candidate, k = base, 1
    while taken(candidate):
        k += 1
        candidate = f"{base}_{k}"
    return candidate


def identifier(name: str) -> str:
    text = re.sub(r"\W", "_", str(name))
    if not text or text[0].isdigit():
        text = f"layer_{text}"
    return f"{text}_" if keyword.iskeyword(text) else text


def class_name(name: str) -> str:
    words = [word for word in re.split(r"[^A-Za-z0-9]+", str(name)) if word]
    text = "".join(word[:1].upper() + word[1:] for word in words) or "Model"
    return f"Net{text}" if text[0].isdigit() else text


def simplify(expression: str) -> str:
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


def substitute(expression: str, names: dict[str, str]) -> str:
    """``expression`` with each name replaced by an expression (parenthesized as needed), folded."""
    tree = ast.parse(expression, mode="eval")

    class Replace(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> Any:
            if node.id in names:
                return ast.parse(names[node.id], mode="eval").body
            return node

    return simplify(ast.unparse(Replace().visit(tree)))


def expression(value: Any, cls: Class, where: Location, name: str) -> str:
    """A spec value as Python source: ``$p`` -> p, ``${a * b}`` -> a * b, literals as literals."""
    if isinstance(value, str) and value.startswith("$"):
        text = value[2:-1] if value.startswith("${") else value[1:]
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError:
            raise error(f"cannot read {value!r}", where, name) from None

        class Rename(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> Any:
                if node.id in ("true", "false"):
                    return ast.Constant(node.id == "true")
                if node.id in cls.params:
                    return ast.Name(cls.params[node.id], ast.Load())
                if node.id == "in_channels" and not cls.concrete:
                    return ast.Name("in_channels", ast.Load())
                if node.id in cls.tensor_params:
                    raise error(f"'${node.id}' names a tensor; it can be used only in 'from:'", where, name)
                raise error(f"unknown parameter '${node.id}'", where, name)

        return simplify(ast.unparse(Rename().visit(tree)))
    if isinstance(value, str) and PER_AXIS.fullmatch(value):
        parts = [int(part) for part in re.split(r"[xX]", value)]
        return repr(parts[0]) if len(set(parts)) == 1 else repr(tuple(parts))
    if isinstance(value, list):
        items = [expression(item, cls, where, name) for item in value]
        return items[0] if len(set(items)) == 1 else "(" + ", ".join(items) + ")"
    return repr(value)


def option(raw: LocatedDict, key: str, cls: Class, name: str, default: Any = None) -> str | None:
    """Option ``key`` of a layer as Python source (None, or ``default``, when it is not given)."""
    if key not in raw:
        return None if default is None else repr(default)
    return expression(raw[key], cls, raw.at(key), name)
