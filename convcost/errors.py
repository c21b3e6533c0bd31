"""Domain exceptions and where they point. The library raises these; only the CLI turns them into exit codes."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ConvcostError", "Location", "OutputError", "SpecError", "UsageError", "did_you_mean", "printable"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a spec item came from: file, 1-based line and column (0 when unknown)."""

    file: str
    line: int = 0
    column: int = 0

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


class OutputError(ConvcostError):
    """The result could not be written (a full disk, a closed pipe, an unwritable ``--output``)."""


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` on one line, with nothing a terminal would act on: newlines, ESC and every other
    control, format or separator character (Unicode categories C* and Z* but the plain space) are
    shown escaped, as ``\\n``, ``\\x1b`` or ``\\u202e``."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _ESCAPES.get(char) or repr(char)[1:-1] for char in text)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'kernel'?)`` for a near miss, else an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
