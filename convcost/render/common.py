"""Pieces every renderer shares: the view options, JSON text layout, Markdown escaping, ratios and bars."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["FORMATS", "SCHEMA_VERSION", "View", "bar", "code", "csv_text", "escape", "format_percent",
           "format_ratio", "json_chunks", "json_text", "percent"]

#: Every command's output formats; ``table`` is the default.
FORMATS = ("table", "json", "markdown", "csv")
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class View:
    """How a result is shown; each renderer reads the options that apply to it."""

    exact: bool = False  # exact integers instead of K/M/G
    depth: int | None = None  # analysis tables: collapse blocks below this level
    by_block: bool = False  # comparisons: one row per top-level block
    limit: int | None = 40  # sweep tables: most rows shown
    width: int | None = None  # tables: the most columns of text a line may take; None = natural width
    ascii: bool = False  # tables: plain ASCII (no box, arrow or bar characters): TERM=dumb, NO_COLOR
    columns: tuple[str, ...] | None = None  # analysis tables and markdown: these columns (None = fit the width)


# --------------------------------------------------------------------------- JSON

def json_text(value: Any) -> str:
    """JSON with the top two levels indented and each deeper value on one line (one layer per line)."""
    return "".join(json_chunks(value))


def json_chunks(value: Any, level: int = 0) -> Iterator[str]:
    """``json_text(value)`` in pieces, for writing a large report as it is made."""
    yield from _json_pieces(value, level)
    if level == 0:
        yield "\n"


def _json_pieces(value: Any, level: int) -> Iterator[str]:
    nested = level < 2 and bool(value) and (
        (isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value))
        or (isinstance(value, dict) and all(isinstance(key, str) for key in value)))
    if not nested:
        yield json.dumps(value)
        return
    pad = "\n" + "  " * (level + 1)
    items = value.items() if isinstance(value, dict) else enumerate(value)
    yield "{" if isinstance(value, dict) else "["
    for index, (key, item) in enumerate(items):
        yield ("," if index else "") + pad + (f"{json.dumps(key)}: " if isinstance(value, dict) else "")
        yield from _json_pieces(item, level + 1)
    yield "\n" + "  " * level + ("}" if isinstance(value, dict) else "]")


# --------------------------------------------------------------------------- text

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def escape(text: Any) -> str:
    """Text safe inside a Markdown table cell: specials backslash-escaped, newlines flattened."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def code(text: str) -> str:
    """Markdown inline code, or escaped text when the text holds a backtick."""
    flat = " ".join(text.splitlines())
    return f"`{flat}`" if "`" not in flat else escape(flat)


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def percent(part: int, whole: int) -> str:
    """Exact share with one decimal, rounded half up: ``percent(1, 3) == "33.3%"``."""
    if whole == 0:
        return "-"
    tenths = (part * 1000 * 2 + whole) // (2 * whole)
    return f"{tenths // 10}.{tenths % 10}%"


def _round_half_up(value: Fraction, digits: int) -> str:
    scale = 10**digits
    sign = "-" if value < 0 else ""
    whole, frac = divmod(int((abs(value) * scale * 2 + 1) // 2), scale)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def format_ratio(baseline: int | Fraction, candidate: int | Fraction) -> str:
    """``9.68x fewer`` / ``1.07x more`` / ``same`` (two decimals, rounded half up, exact)."""
    if baseline == candidate:
        return "same"
    if candidate == 0:
        return "all saved"
    if baseline == 0:
        return "new"
    if candidate < baseline:
        return f"{_round_half_up(Fraction(baseline, candidate), 2)}x fewer"
    return f"{_round_half_up(Fraction(candidate, baseline), 2)}x more"


def format_percent(baseline: int | Fraction, candidate: int | Fraction) -> str:
    """Change relative to the baseline: ``-89.7%``, ``+3.6%``; ``-`` when the baseline is 0."""
    if baseline == 0:
        return "-" if candidate == 0 else "new"
    if candidate == baseline:
        return "0.0%"
    change = Fraction(candidate - baseline, baseline) * 100
    text = _round_half_up(change, 1) + "%"
    return text if change < 0 else f"+{text}"


_EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(value: int, largest: int, width: int = 24, *, ascii: bool = False) -> str:
    """An inline bar of ``width`` characters at full scale, in eighths of a character
    (whole ``#`` characters in ASCII). A non-zero value always shows."""
    if largest <= 0 or value <= 0:
        return ""
    if ascii:
        return "#" * max(1, min(width, (value * width * 2 + largest) // (2 * largest)))
    eighths = (value * width * 8 + largest - 1) // largest  # round up: a non-zero value always shows
    full, part = divmod(min(eighths, width * 8), 8)
    return "█" * full + (_EIGHTHS[part] if part else "")
