"""The spec tree's containers: a dict and a list that remember where each item was written."""

from __future__ import annotations

from typing import Any

from .errors import Location

__all__ = ["LocatedDict", "LocatedList"]


class LocatedDict(dict[Any, Any]):
    """A mapping from a spec; ``where`` is its own location, ``at(key)`` each key's."""

    def __init__(self, where: Location):
        super().__init__()
        self.where = where
        self.key_where: dict[Any, Location] = {}

    def put(self, key: Any, value: Any, where: Location) -> None:
        self[key] = value
        self.key_where[key] = where

    def at(self, key: Any) -> Location:
        return self.key_where.get(key, self.where)


class LocatedList(list[Any]):
    """A sequence from a spec; ``at(index)`` is the location of item ``index``."""

    def __init__(self, where: Location):
        super().__init__()
        self.where = where
        self.item_where: list[Location] = []

    def put(self, value: Any, where: Location) -> None:
        self.append(value)
        self.item_where.append(where)

    def at(self, index: int) -> Location:
        return self.item_where[index] if index < len(self.item_where) else self.where
