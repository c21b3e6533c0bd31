"""Where a table goes decides how it is drawn: its width, ASCII or not, colour or not.

* On a terminal: the terminal's width (``COLUMNS`` when set), colour and bold,
  box-drawing rules, arrows and bars.
* Off a terminal (a pipe, a file, a CI log): the table's natural width, no
  colour, plain ASCII, no trailing spaces; ``COLUMNS``, when set, is still
  the width to fit.
* ``TERM=dumb`` or ``NO_COLOR`` (https://no-color.org): plain ASCII, no
  colour, no box, arrow or bar characters, on a terminal too.

A table past :data:`STYLED_MAX_LINES` lines is written as plain text even on a
terminal (styling every line would cost more than the analysis), and says so
on stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from ..render.common import View
from ..render.layout import Lines

__all__ = ["STYLED_MAX_LINES", "Display", "display", "for_output"]

STYLED_MAX_LINES = 5_000


@dataclass(frozen=True, slots=True)
class Display:
    width: int | None  # None: the natural width
    ascii: bool
    styled: bool  # colour and bold (a terminal without NO_COLOR or TERM=dumb)

    def view(self, **options: Any) -> View:
        return View(width=self.width, ascii=self.ascii, **options)


def _columns_env() -> int | None:
    try:
        value = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def display(stream: TextIO | None = None, *, to_file: bool = False) -> Display:
    """How a table written to ``stream`` (stdout) or, with ``to_file``, to ``--output`` is drawn."""
    stream = sys.stdout if stream is None else stream
    no_color = bool(os.environ.get("NO_COLOR", ""))
    dumb = os.environ.get("TERM", "") == "dumb"
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "").replace("_", "")
    ascii = no_color or dumb or not encoding.startswith("utf")
    if to_file:
        return Display(width=None, ascii=True, styled=False)
    if _isatty(stream):
        width = _columns_env() or shutil.get_terminal_size().columns
        return Display(width=width, ascii=ascii, styled=not (no_color or dumb))
    return Display(width=_columns_env(), ascii=True, styled=False)


def for_output(result: Any, shown: Display) -> tuple[Any, str | None]:
    """A rendered table as ``emit`` should get it: the :class:`Lines` themselves when they are styled on a
    terminal, else their text; and a note for stderr, or None."""
    if not isinstance(result, Lines):
        return result, None
    if not shown.styled:
        return result.text(), None
    if len(result.lines) > STYLED_MAX_LINES:
        return result.text(), (f"{len(result.lines):,} lines: written as a plain table (no colour) past "
                               f"{STYLED_MAX_LINES:,}; --format csv or --json suits tools better")
    if shown.width is not None and result.width > shown.width:
        return result.text(), None  # wider than the terminal (--columns asked for it): let the terminal wrap it
    return result, None
