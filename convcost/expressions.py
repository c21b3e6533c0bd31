"""Template parameters in option values: ``$name`` and ``${expression}``.

``${...}`` is read with Python's own parser (``ast``) and evaluated over a
small whitelist: integer literals, ``true``/``false``, parameter names,
``+ - * //``, unary minus, comparisons (``== != < <= > >=``), ``and``, ``or``,
``not`` and parentheses. Its length and literals are bounded before parsing,
and every intermediate value is bounded, so no input can recurse deeply or
grow huge. Arithmetic takes integers and gives integers; ``and``/``or``/``not``
take booleans (a template entry's ``if:``).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import Location, SpecError, did_you_mean

__all__ = ["MAX_EXPRESSION_CHARS", "MAX_VALUE", "condition", "resolve"]

MAX_EXPRESSION_CHARS = 200
MAX_VALUE = 10**30  # largest magnitude of a literal, a parameter used in arithmetic or an intermediate value
_LONG_LITERAL = re.compile(r"[0-9]{31}")

_BINARY: Mapping[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
}
_COMPARE: Mapping[type, Callable[[int, int], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ALLOWED = "integers, true/false, parameter names, + - * //, comparisons, and/or/not and parentheses"


def resolve(value: Any, params: Mapping[str, Any], where: Location, layer: str | None,
            parsed: dict[str, ast.Expression] | None = None) -> Any:
    """``value`` with ``$param`` and ``${expr}`` substituted from ``params``; anything else unchanged.

    ``parsed`` (optional) keeps each expression's syntax tree by its text, for a caller that
    evaluates the same expressions many times over (counting a template's instances).
    """
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    if value.startswith("${") and value.endswith("}"):
        return _Evaluation(value[2:-1], params, where, layer).run(parsed)
    return _lookup(value[1:], params, where, layer)


def condition(value: Any, params: Mapping[str, Any], where: Location, layer: str | None) -> bool:
    """A template entry's ``if:``: ``true``/``false``, a boolean parameter, or a ``${...}`` that gives one."""
    result = resolve(value, params, where, layer)
    if not isinstance(result, bool):
        raise SpecError(f"'if' must be true or false (or a ${{...}} comparison), got {result!r}", where, layer)
    return result


def _lookup(param: str, params: Mapping[str, Any], where: Location, layer: str | None) -> Any:
    if param not in params:
        hint = did_you_mean(param, params) if params else " (no template parameters here)"
        raise SpecError(f"unknown parameter '${param}'{hint}", where, layer)
    return params[param]


class _Evaluation:
    def __init__(self, text: str, params: Mapping[str, Any], where: Location, layer: str | None):
        self.text, self.params, self.where, self.layer = text, params, where, layer

    def fail(self, message: str) -> SpecError:
        return SpecError(f"expression '${{{self.text}}}': {message}", self.where, self.layer)

    def run(self, parsed: dict[str, ast.Expression] | None = None) -> int | bool:
        tree = parsed.get(self.text) if parsed is not None else None
        if tree is None:
            tree = self.parse()
            if parsed is not None:
                parsed[self.text] = tree
        return self.value(tree.body)

    def parse(self) -> ast.Expression:
        if len(self.text) > MAX_EXPRESSION_CHARS:
            raise self.fail(f"longer than {MAX_EXPRESSION_CHARS} characters")
        if _LONG_LITERAL.search(self.text):
            raise self.fail("a number has more than 30 digits")
        try:
            return ast.parse(self.text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise self.fail(f"cannot read it; use {_ALLOWED}") from None

    def value(self, node: ast.expr) -> int | bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, bool)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in ("true", "false") and node.id not in self.params:
                return node.id == "true"
            result = _lookup(node.id, self.params, self.where, self.layer)
            if isinstance(result, bool):
                return result
            if not isinstance(result, int):
                raise self.fail(f"parameter '{node.id}' is {result!r}, not an integer or a boolean")
            return self.bounded(result)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not self.boolean(node.operand)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.integer(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BoolOp):
            values = [self.boolean(item) for item in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            items = [self.integer(item) for item in (node.left, *node.comparators)]
            return all(_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, items, items[1:]))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.integer(node.left), self.integer(node.right)
            if isinstance(node.op, ast.FloorDiv) and right == 0:
                raise self.fail("division by zero")
            return self.bounded(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            raise self.fail("'/' is not integer division; write '//'")
        raise self.fail(f"'{ast.unparse(node)}' is not allowed; use {_ALLOWED}")

    def integer(self, node: ast.expr) -> int:
        value = self.value(node)
        if isinstance(value, bool):
            raise self.fail(f"'{ast.unparse(node)}' is a boolean where a number is needed")
        return value

    def boolean(self, node: ast.expr) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.fail(f"'{ast.unparse(node)}' is a number where true or false is needed")
        return value

    def bounded(self, result: int) -> int:
        if abs(result) > MAX_VALUE:
            raise self.fail("value too large")
        return result
