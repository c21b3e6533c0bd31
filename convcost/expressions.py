"""Template parameters in option values: ``$name`` and ``${integer expression}``.

``${...}`` is read with Python's own parser (``ast``) and evaluated over a
small whitelist: integer literals, parameter names, ``+ - * //``, unary minus
and parentheses. Its length and literals are bounded before parsing, and every
intermediate value is bounded, so no input can recurse deeply or grow huge.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import Location, SpecError, did_you_mean

__all__ = ["MAX_EXPRESSION_CHARS", "MAX_VALUE", "resolve"]

MAX_EXPRESSION_CHARS = 200
MAX_VALUE = 10**30  # largest magnitude of a literal, a parameter used in arithmetic or an intermediate value
_LONG_LITERAL = re.compile(r"[0-9]{31}")

_BINARY: Mapping[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
}


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

    def run(self, parsed: dict[str, ast.Expression] | None = None) -> int:
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
            raise self.fail("cannot read it; use integers, parameter names, + - * // and parentheses") from None

    def value(self, node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            result = _lookup(node.id, self.params, self.where, self.layer)
            if isinstance(result, bool) or not isinstance(result, int):
                raise self.fail(f"parameter '{node.id}' is {result!r}, not an integer")
            return self.bounded(result)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.value(node.left), self.value(node.right)
            if isinstance(node.op, ast.FloorDiv) and right == 0:
                raise self.fail("division by zero")
            return self.bounded(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            raise self.fail("'/' is not integer division; write '//'")
        raise self.fail(f"'{ast.unparse(node)}' is not allowed; use integers, parameter names, + - * // and "
                        "parentheses")

    def bounded(self, result: int) -> int:
        if abs(result) > MAX_VALUE:
            raise self.fail("value too large")
        return result
