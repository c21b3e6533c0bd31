"""Typed, located access to one layer's options, with template parameters substituted."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import Location, SpecError, did_you_mean
from .expressions import resolve
from .located import LocatedDict

__all__ = ["REQUIRED", "Options", "PER_AXIS"]

#: ``1x7``-style per-axis text (ASCII digits only: ``٣`` is not a number).
PER_AXIS = re.compile(r"\s*[0-9]+(\s*[xX]\s*[0-9]+)*\s*")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of an option that must be given.
REQUIRED: Any = _Required()


class Options:
    """One layer's options: ``kind`` and ``name`` for messages, ``params`` of the enclosing template, and
    ``tensors``, which finds the shape of an earlier tensor by the name an option gives (``crop: {like: x}``)."""

    def __init__(self, kind: str, raw: LocatedDict, where: Location, name: str, params: Mapping[str, Any],
                 tensors: Callable[[str, Location], tuple[int, ...]] | None = None):
        self.kind = kind
        self.raw = raw
        self.where = where
        self.name = name
        self.params = params
        self.tensors = tensors

    def tensor_shape(self, key: str) -> tuple[int, ...]:
        """The shape of the earlier tensor that option ``key`` names."""
        value = self.value(key)
        if not isinstance(value, str) or self.tensors is None:
            raise self.error(f"'{key}' must name an earlier tensor, got {value!r}", key)
        return self.tensors(value, self.raw.at(key))

    def error(self, message: str, key: str | None = None) -> SpecError:
        where = self.raw.at(key) if key is not None and key in self.raw else self.where
        return SpecError(message, where, self.name)

    def resolve(self, value: Any, key: str) -> Any:
        return resolve(value, self.params, self.raw.at(key), self.name)

    def value(self, key: str, default: Any = REQUIRED) -> Any:
        if key not in self.raw:
            if default is REQUIRED:
                raise self.error(f"{self.kind} needs '{key}'")
            return default
        return self.resolve(self.raw[key], key)

    def integer(self, key: str, default: Any = REQUIRED, minimum: int = 1) -> int:
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"'{key}' must be an integer, got {value!r}", key)
        if value < minimum:
            raise self.error(f"'{key}' must be >= {minimum}, got {value}", key)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.value(key, default)
        if not isinstance(value, bool):
            raise self.error(f"'{key}' must be true or false, got {value!r}", key)
        return value

    def number(self, key: str, default: Any = REQUIRED, minimum: float = 0) -> float:
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise self.error(f"'{key}' must be a number, got {value!r}", key)
        if value < minimum:
            raise self.error(f"'{key}' must be >= {minimum}, got {value}", key)
        return value

    def axes(self, key: str, dims: int, default: Any = REQUIRED, minimum: int = 1) -> tuple[int, ...]:
        """One integer for every axis, per-axis integers (``[1, 7]`` or ``1x7``), or ``$param``s."""
        value = self.value(key, default)
        if isinstance(value, str) and PER_AXIS.fullmatch(value):
            if re.search(r"[0-9]{31}", value):  # also keeps int() below its 4300-digit limit
                raise self.error(f"'{key}' values must have at most 30 digits", key)
            value = [int(part) for part in re.split(r"[xX]", value)]
        items = [self.resolve(item, key) for item in value] if isinstance(value, (list, tuple)) else [value] * dims
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
            raise self.error(f"'{key}' must be one of {', '.join(choices)}, got {value!r}"
                             f"{did_you_mean(value, choices)}", key)
        return str(value)
