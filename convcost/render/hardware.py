"""Render hardware profiles (``convcost hardware``): table | JSON-ready dict | Markdown | CSV."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..hardware import PRECISIONS, Figure, HardwareProfile
from ..units import humanize
from .common import SCHEMA_VERSION, View, code, csv_text, escape
from .layout import Column, Lines, choose_columns, glyphs_for, layout, wrap_parts

__all__ = ["HARDWARE_RENDERERS", "hardware_csv", "hardware_dict", "hardware_markdown", "hardware_table"]


def _figure(figure: Figure) -> dict[str, Any]:
    return {"value": figure.value, "source": figure.source.key, "notes": figure.notes}


def hardware_dict(profiles: Sequence[HardwareProfile], view: View = View()) -> dict[str, Any]:
    """Every profile with every number, its source and its notes (exact integers: ops/s, bytes/s)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "profiles": [
            {
                "id": profile.id,
                "name": profile.name,
                "peak_ops_per_second": {precision: _figure(figure) for precision, figure in profile.peak_ops_per_second},
                "memory_bytes_per_second": _figure(profile.memory_bytes_per_second),
                "sources": {figure.source.key: {"title": figure.source.title, "url": figure.source.url}
                            for _, figure in (*profile.peak_ops_per_second, ("", profile.memory_bytes_per_second))},
                "notes": profile.notes,
            }
            for profile in profiles
        ],
    }


def _bandwidth(profile: HardwareProfile) -> str:
    """Bytes per second in GB/s (10^9), as datasheets print it."""
    value = profile.memory_bytes_per_second.value
    return f"{value // 10**9:,} GB/s" if value % 10**9 == 0 else f"{value / 10**9:,.2f} GB/s"


def _peaks(profile: HardwareProfile) -> list[str]:
    known = dict(profile.peak_ops_per_second)
    return [humanize(known[p].value, "").strip() if p in known else "-" for p in PRECISIONS]


def hardware_table(profiles: Sequence[HardwareProfile], view: View = View()) -> Lines:
    """One row per profile: peak operations per second by precision and bandwidth; '-' is refused. Columns
    the width cannot hold are left out, the device name first (the id names it)."""
    cells: dict[str, tuple[str, bool, list[str]]] = {
        "id": ("Id", False, [profile.id for profile in profiles]),
        "device": ("Device", False, [profile.name for profile in profiles]),
        **{p: (p, True, [_peaks(profile)[index] for profile in profiles]) for index, p in enumerate(PRECISIONS)},
        "bandwidth": ("Bandwidth", True, [_bandwidth(profile) for profile in profiles]),
    }
    candidates = [(key, (lambda key=key: Column(key, cells[key][0], cells[key][2], right=cells[key][1])))
                  for key in cells]
    steps = (("id", "float32", "float16", "bandwidth"), ("int8",), ("bfloat16",), ("tf32",), ("device",))
    columns = choose_columns(candidates, steps, view.width)
    order = list(cells)
    columns.sort(key=lambda column: order.index(column.key))
    lines = Lines()
    for text in wrap_parts("Hardware profiles: dense peak operations per second, memory bandwidth".split(" "),
                           view.width):
        lines.add((text, "bold"))
    lines.extend(layout(columns, glyphs=glyphs_for(view.ascii)))
    for text in wrap_parts(_NOTE.split(" "), view.width):
        lines.add(text)
    return lines


_NOTE = ("A roofline time is a lower bound on latency (no launch, cache or fusion effects), for comparing drafts "
         "on one device. '-': no published figure, refused. Sources: convcost hardware --json.")


def hardware_markdown(profiles: Sequence[HardwareProfile], view: View = View()) -> str:
    lines = ["| Id | Device | " + " | ".join(PRECISIONS) + " | Bandwidth | Sources |",
             "|---|---|" + "---:|" * (len(PRECISIONS) + 1) + "---|"]
    for profile in profiles:
        sources = {figure.source.url for _, figure in (*profile.peak_ops_per_second,
                                                       ("", profile.memory_bytes_per_second)) if figure.source.url}
        lines.append(f"| {code(profile.id)} | {escape(profile.name)} | " + " | ".join(_peaks(profile))
                     + f" | {_bandwidth(profile)} | "
                     + ", ".join(f"<{url}>" for url in sorted(sources)) + " |")
    return "\n".join(lines) + "\n"


def hardware_csv(profiles: Sequence[HardwareProfile], view: View = View()) -> str:
    """Exact integers; an empty cell where a precision has no published peak."""
    header = ["id", "name", *(f"peak_{p}_ops_per_second" for p in PRECISIONS), "memory_bytes_per_second"]
    rows = []
    for profile in profiles:
        known = dict(profile.peak_ops_per_second)
        rows.append([profile.id, profile.name, *(known[p].value if p in known else "" for p in PRECISIONS),
                     profile.memory_bytes_per_second.value])
    return csv_text(header, rows)


#: Output format -> renderer of hardware profiles.
HARDWARE_RENDERERS: Mapping[str, Callable[[Sequence[HardwareProfile], View], Any]] = MappingProxyType(
    {"table": hardware_table, "json": hardware_dict, "markdown": hardware_markdown, "csv": hardware_csv})
