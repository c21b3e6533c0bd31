"""Render a report as a JSON-ready dict (exact integers, shapes as channels-first lists),
and as JSON text: the top two levels indented, each layer and block on one line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from json.encoder import encode_basestring_ascii as _json_string  # what json.dumps uses for a str
from operator import attrgetter
from typing import Any

from .costs import LayerCost, NetworkCost
from .grouping import Group, block_groups, block_values, kind_summary

__all__ = ["CONVENTIONS", "SCHEMA_VERSION", "block_dict", "json_chunks", "json_text", "layer_dict", "report_dict",
           "report_json", "report_json_chunks"]

SCHEMA_VERSION = 1

#: One line per metric, repeated in every JSON report so a reader never has to guess.
CONVENTIONS = {
    "macs": "multiply-accumulates of convolution and linear layers only, bias excluded",
    "flops": "2 per MAC + bias adds + batch norm, activation, pooling, add, upsample and softmax work "
             "(see flops_by_category and docs/conventions.md)",
    "params": "trainable weights, biases and batch-norm scale/shift; running statistics are buffers",
    "bytes": "element counts x dtype size; activation_bytes is each layer's output tensor, "
             "peak_activation_bytes the most alive at once when tensors are freed after their last reader",
    "shapes": "channels-first, batch excluded: [C], [C, L], [C, H, W] or [C, D, H, W]",
}


def layer_dict(row: LayerCost) -> dict[str, Any]:
    return {
        "name": row.name,
        "kind": row.kind,
        "category": row.category,
        "line": row.line,
        "input_shape": list(row.input_shape),
        "input_shapes": [list(shape) for shape in row.input_shapes],
        "output_shape": list(row.output_shape),
        "macs": row.macs,
        "flops": row.flops,
        "flops_by_category": dict(row.flops_by_category),
        "params": row.params,
        "buffers": row.buffers,
        "weight_bytes": row.weight_bytes,
        "activation_bytes": row.activation_bytes,
    }


def block_dict(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "kind": group.kind or "block",
        "layers": group.layers,
        "output_shape": list(group.output_shape),
        "macs": group.macs,
        "flops": group.flops,
        "params": group.params,
        "weight_bytes": group.weight_bytes,
        "activation_bytes": group.activation_bytes,
    }


def report_dict(report: NetworkCost, *, rows: bool = True) -> dict[str, Any]:
    """The whole report as JSON-ready data; ``rows=False`` leaves ``layers`` and ``blocks`` empty."""
    totals = report.totals
    return {
        "schema_version": SCHEMA_VERSION,
        "name": report.name,
        "source": report.source,
        "input": {"shape": list(report.input_shape), "batch": report.batch, "dtype": report.dtype},
        "output_shape": list(report.output_shape),
        "conventions": CONVENTIONS,
        "layers": [layer_dict(row) for row in report.layers] if rows else [],
        "blocks": [block_dict(group) for group in block_groups(report)] if rows else [],
        "by_kind": {
            k.category: {"layers": k.layers, "macs": k.macs, "flops": k.flops, "params": k.params}
            for k in kind_summary(report)
        },
        "totals": {
            "macs": totals.macs,
            "flops": totals.flops,
            "flops_by_category": dict(totals.flops_by_category),
            "params": totals.params,
            "buffers": totals.buffers,
            "weight_bytes": totals.weight_bytes,
            "buffer_bytes": totals.buffer_bytes,
            "input_bytes": totals.input_bytes,
            "activation_bytes": totals.activation_bytes,
            "peak_activation_bytes": totals.peak_activation_bytes,
        },
    }


def json_text(value: Any) -> str:
    """JSON with the top two levels indented and each deeper value, or list of plain values, on
    one line (one layer per line). ``json.dumps(indent=...)`` is pure Python; this keeps json's
    C encoder doing the bulk, 5-10x faster on specs of 100,000 layers."""
    return "".join(json_chunks(value))


def json_chunks(value: Any) -> Iterator[str]:
    """``json_text(value)`` in pieces, for writing as it is made: a list given as :class:`_Lines`
    is encoded ``_BATCH`` lines at a time, so the report of a large spec (~50 MB) is never held
    whole, nor its encoded bytes (each would be tens of MB of fresh pages)."""
    out: list[Any] = []  # text, and (lines, level) where a _Lines list goes
    _write(value, 0, out)
    out.append("\n")
    text: list[str] = []
    for piece in out:
        if type(piece) is str:
            text.append(piece)
            continue
        if text:
            yield "".join(text)
            text.clear()
        lines, level = piece
        yield from lines.chunks(level)
    if text:
        yield "".join(text)


def _write(value: Any, level: int, out: list[Any]) -> None:
    if type(value) is _Lines:  # one line per item, encoded when written
        out.append((value, level))
        return
    if level < 2 and value and (
        (isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value))
        or (isinstance(value, dict) and all(isinstance(key, str) for key in value))
    ):
        pad = "\n" + "  " * (level + 1)
        if isinstance(value, dict):
            out.append("{")
            for index, (key, item) in enumerate(value.items()):
                out.append(f"{',' if index else ''}{pad}{json.dumps(key)}: ")
                _write(item, level + 1, out)
        else:
            out.append("[")
            for index, item in enumerate(value):
                out.append(f"{',' if index else ''}{pad}")
                _write(item, level + 1, out)
        out.append("\n" + "  " * level + ("}" if isinstance(value, dict) else "]"))
    else:
        out.append(json.dumps(value))


_BATCH = 2000  # lines of a _Lines list joined into one piece of json_chunks


class _Lines:
    """A list written one item per line, where ``encode(item)`` is the item's JSON (one line)."""

    __slots__ = ("items", "encode")

    def __init__(self, items: Sequence[Any], encode: Callable[[Any], str]):
        self.items = items
        self.encode = encode

    def chunks(self, level: int) -> Iterator[str]:
        items, encode = self.items, self.encode
        if not items:
            yield "[]"
            return
        pad = "\n" + "  " * (level + 1)
        separator = "," + pad
        for start in range(0, len(items), _BATCH):
            yield ("[" if start == 0 else ",") + pad + separator.join(map(encode, items[start:start + _BATCH]))
        yield "\n" + "  " * level + "]"


def report_json(report: NetworkCost) -> str:
    """``json_text(report_dict(report))``: the same text, made without a dict per layer or block."""
    return "".join(report_json_chunks(report))


def report_json_chunks(report: NetworkCost) -> Iterator[str]:
    """``report_json(report)`` in pieces (see :func:`json_chunks`), as the CLI writes it.

    A large spec repeats a few distinct layers: rows that differ only in ``name`` and
    ``line`` share everything else, so each distinct row is encoded once (from
    ``layer_dict`` itself) and every row is its name, its line and the two cached
    pieces around them. Blocks likewise, around their names. tests/test_render.py and
    tests/test_scale.py check the text is identical to the dict path.
    """
    data = report_dict(report, rows=False)
    data["layers"] = _Lines(report.layers, partial(_layer_line, cache={}))
    data["blocks"] = _Lines(block_values(report), partial(_block_line, cache={}))
    return json_chunks(data)


# Everything in a layer's line but its name and line number.
_LAYER_KEY = attrgetter("kind", "category", "input_shapes", "output_shape", "macs", "flops", "flops_by_category",
                        "params", "buffers", "weight_bytes", "activation_bytes")


def _layer_line(row: LayerCost, cache: dict[tuple[Any, ...], tuple[str, str]]) -> str:
    key = _LAYER_KEY(row)
    pieces = cache.get(key)
    if pieces is None:
        data = layer_dict(row)
        data["name"], data["line"] = "", 0
        text = json.dumps(data)
        head, tail = text[len('{"name": ""'):].split(', "line": 0', 1)  # name comes first, line once
        pieces = cache[key] = (head + ', "line": ', tail)
    return f'{{"name": {_json_string(row.name)}{pieces[0]}{row.line}{pieces[1]}'


def _block_line(values: tuple[Any, ...], cache: dict[tuple[Any, ...], str]) -> str:
    # ``values`` are a Group's fields (grouping.block_values); all but name and level are in the line.
    key = values[1:2] + values[3:]
    tail = cache.get(key)
    if tail is None:
        data = block_dict(Group(*values))
        data["name"] = ""
        tail = cache[key] = json.dumps(data)[len('{"name": ""'):]
    return '{"name": ' + _json_string(values[0]) + tail
