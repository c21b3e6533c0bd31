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
from typing import Any, NamedTuple, TextIO

from ..render.common import View
from ..render.layout import Lines

__all__ = ["STYLED_MAX_LINES", "Display", "display", "for_output"]

STYLED_MAX_LINES = 5_000


class Display(NamedTuple):
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


def for_output(result: Any, shown: Display) -> Any:
    """A rendered table as ``emit`` should get it: the :class:`Lines` themselves when they are styled on a
    terminal, else their text (past STYLED_MAX_LINES with a note on stderr saying so)."""
    if not isinstance(result, Lines):
        return result
    if not shown.styled:
        return result.text()
    if len(result.lines) > STYLED_MAX_LINES:
        sys.stderr.write(f"convcost: note: {len(result.lines):,} lines: a plain table (no colour) past "
                         f"{STYLED_MAX_LINES:,}; --format csv or --json suits tools better\n")
        return result.text()
    if shown.width is not None and result.width > shown.width:
        return result.text()  # wider than the terminal (--columns asked for it): let the terminal wrap it
    return result
