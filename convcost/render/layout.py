"""Text tables that fit a width: columns chosen by priority, never a cut value.

Rich's :class:`~rich.table.Table` fits a width by shrinking columns, which
cuts layer names to ``co…`` and wraps ``3.5 M`` away from its unit. Here the
width is met the other way round: every cell keeps its full text, and whole
columns are left out (lowest priority first) or merged until the table fits.
A :class:`Lines` block is plain text with optional style spans: written as is
off a terminal (natural width, no trailing spaces, linear in the rows) and a
Rich renderable on one (colour, bold totals). Nothing here imports Rich until a
terminal asks for it. (Value types are NamedTuples: a frozen dataclass costs about a millisecond
to create at import, and ``analyze --json`` imports this module.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

__all__ = ["ASCII", "GAP", "UNICODE", "Cell", "Column", "Glyphs", "Lines", "choose_columns", "glyphs_for", "layout",
           "table_width", "text_width", "wrap_parts"]

Style = str | None
#: A cell: its text, or (text, Rich style).
Cell = str | tuple[str, Style]


class Glyphs(NamedTuple):
    """The characters a table draws with: box-drawing and arrows, or plain ASCII (TERM=dumb, NO_COLOR)."""

    rule: str
    arrow: str
    ascii: bool


UNICODE = Glyphs(rule="─", arrow="→", ascii=False)
ASCII = Glyphs(rule="-", arrow="->", ascii=True)


def glyphs_for(ascii: bool) -> Glyphs:
    return ASCII if ascii else UNICODE


def text_width(text: str) -> int:
    """Terminal cells ``text`` takes (East Asian wide characters take two)."""
    if text.isascii():
        return len(text)
    from unicodedata import east_asian_width  # only for text beyond ASCII (a spec's own name, say)

    return sum(2 if east_asian_width(char) in "WF" else 1 for char in text)


def _split(cell: Cell) -> tuple[str, Style]:
    return (cell, None) if isinstance(cell, str) else cell


class Column(NamedTuple):
    """A table column: its header, its alignment and its cells (one per row)."""

    key: str
    header: str
    cells: Sequence[Cell]
    right: bool = False  # numbers align right
    footer: Cell = ""

    @property
    def width(self) -> int:
        texts = (_split(cell)[0] for cell in self.cells)
        widest = max(map(text_width, texts), default=0)
        return max(widest, text_width(self.header), text_width(_split(self.footer)[0]))


GAP = 2  # spaces between columns


def table_width(widths: Iterable[int]) -> int:
    widths = list(widths)
    return sum(widths) + GAP * max(len(widths) - 1, 0)


def choose_columns(candidates: Sequence[tuple[str, Callable[[], Column]]], steps: Sequence[Sequence[str]],
                   width: int | None) -> list[Column]:
    """The columns to show, in ``candidates`` order.

    ``steps`` lists what to add, most important first; a step may name several
    keys, and a key starting with ``-`` removes a column added before (a merged
    column giving way to its parts). Each step is taken if the table still fits
    ``width`` with it (``None``: any width), else skipped. The first step is
    always taken, so a table is never empty even when it cannot fit.
    """
    built: dict[str, Column] = {}
    makers = dict(candidates)

    def column(key: str) -> Column:
        if key not in built:
            built[key] = makers[key]()
        return built[key]

    chosen: list[str] = []
    for index, step in enumerate(steps):
        trial = [key for key in chosen if f"-{key}" not in step]
        trial += [key for key in step if not key.startswith("-") and key not in trial]
        if index == 0 or width is None or table_width(column(key).width for key in trial) <= width:
            chosen = trial
    return [column(key) for key, _ in candidates if key in chosen]


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * (width - text_width(text))
    return space + text if right else text + space


class Lines:
    """Lines of text with optional style spans; printable by Rich, or as plain text.

    A line is its text and a tuple of (start, end, style) spans, so a long plain table costs one string
    per line.
    """

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[tuple[str, tuple[tuple[int, int, str], ...]]] = []

    def add(self, *pieces: Cell) -> Lines:
        """One line from pieces (texts or (text, style)); trailing spaces are dropped."""
        parts = [_split(piece) for piece in pieces]
        text = "".join(part for part, _ in parts).rstrip()
        spans = []
        if any(style for _, style in parts):
            start = 0
            for part, style in parts:
                end = min(start + len(part), len(text))
                if style and end > start:
                    spans.append((start, end, style))
                start += len(part)
        self.lines.append((text, tuple(spans)))
        return self

    def blank(self) -> Lines:
        if self.lines and self.lines[-1][0]:
            self.lines.append(("", ()))
        return self

    def extend(self, other: Lines) -> Lines:
        self.lines.extend(other.lines)
        return self

    @property
    def width(self) -> int:
        return max((text_width(text) for text, _ in self.lines), default=0)

    def styles(self, index: int) -> list[tuple[str, str | None]]:
        """Line ``index`` as (text, style) pieces, unstyled text included."""
        text, spans = self.lines[index]
        pieces: list[tuple[str, str | None]] = []
        at = 0
        for start, end, style in spans:
            if start > at:
                pieces.append((text[at:start], None))
            pieces.append((text[start:end], style))
            at = end
        if at < len(text) or not pieces:
            pieces.append((text[at:], None))
        return pieces

    def text(self) -> str:
        """Plain text, a newline after every line."""
        return "".join(text + "\n" for text, _ in self.lines)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.segment import Segment

        styles: dict[str, Any] = {}
        newline = Segment.line()
        for index, (text, spans) in enumerate(self.lines):
            if not spans:
                yield Segment(text)
            else:
                for piece, style in self.styles(index):
                    if style is None:
                        yield Segment(piece)
                        continue
                    if style not in styles:
                        styles[style] = console.get_style(style)
                    yield Segment(piece, styles[style])
            yield newline

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        return Measurement(self.width, self.width)


def layout(columns: Sequence[Column], *, glyphs: Glyphs = UNICODE, row_styles: Sequence[Style] | None = None,
           footer_style: Style = "bold", header_style: Style = "bold") -> Lines:
    """Header, a rule, one line per row, and (when any column has a footer) a rule and the footer line.

    Cells are padded to their column's width and never cut; a line has no trailing spaces.
    """
    lines = Lines()
    if not columns:
        return lines
    widths = [column.width for column in columns]
    gap = " " * GAP

    def line(cells: Sequence[Cell], style: Style = None) -> None:
        pieces: list[Cell] = []
        for index, (cell, column, width) in enumerate(zip(cells, columns, widths)):
            text, cell_style = _split(cell)
            if index:
                pieces.append(gap)
            pieces.append((_pad(text, width, column.right), cell_style or style))
        lines.add(*pieces)

    line([column.header for column in columns], header_style)
    rule = glyphs.rule * table_width(widths)
    lines.add((rule, "dim"))
    count = len(columns[0].cells)
    cells = [column.cells for column in columns]
    for index in range(count):
        line([column_cells[index] for column_cells in cells], row_styles[index] if row_styles else None)
    if any(_split(column.footer)[0] for column in columns):
        lines.add((rule, "dim"))
        line([column.footer for column in columns], footer_style)
    return lines


def wrap_parts(parts: Sequence[str], width: int | None, *, separator: str = " ", indent: str = "  ") -> list[str]:
    """Join ``parts`` with ``separator`` into lines of at most ``width`` cells, breaking only between parts.

    A part is never split (a number stays with its unit, a path stays whole); a
    part wider than the width gets a line of its own. Continuation lines are
    indented. ``None`` is one line.
    """
    lines: list[str] = []
    current = ""
    for part in parts:
        if not current:
            current = (indent if lines else "") + part
        elif width is None or text_width(current + separator + part) <= width:
            current += separator + part
        else:
            lines.append(current.rstrip())
            current = indent + part
    if current:
        lines.append(current.rstrip())
    return lines
