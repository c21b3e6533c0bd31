"""Domain exceptions. The library raises these; only the CLI turns them into exit codes."""

from __future__ import annotations

from .record import Record

__all__ = ["ConvcostError", "Location", "SpecError", "UsageError"]


class Location(Record):
    """Where a spec item came from: file, 1-based line and column."""

    file: str
    line: int = 0
    column: int = 0

    def __new__(cls, file: str, line: int = 0, column: int = 0) -> Location:  # one per YAML collection
        self = object.__new__(cls._storage)  # plain stores, then frozen: see convcost.record
        self.file = file
        self.line = line
        self.column = column
        self.__class__ = cls
        return self

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        if self.column <= 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class ConvcostError(Exception):
    """Base class of every error convcost raises on purpose."""


class SpecError(ConvcostError):
    """An invalid spec: the message names file, line, layer, rule and value."""

    def __init__(self, message: str, where: Location | None = None, layer: str | None = None):
        self.message = message
        self.where = where
        self.layer = layer
        super().__init__(self.format())

    def format(self) -> str:
        parts = []
        if self.where is not None:
            parts.append(f"{self.where}:")
        if self.layer:
            parts.append(f"layer '{self.layer}':")
        parts.append(self.message)
        return " ".join(parts)


class UsageError(ConvcostError):
    """Invalid command-line usage (bad option value or combination)."""
