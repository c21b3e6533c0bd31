"""The spec text of an imported model: a header saying where it came from, the inputs, and the layers in nested
``sequence`` blocks, each reading by the shortest name that resolves to its input."""

from __future__ import annotations

import os
import re
from typing import Any

from ...units import format_shape
from .names import final_levels, input_names, rename
from .walk import Entry, Mapper, Ref

__all__ = ["write_spec"]

_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", ""}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):  # YAML 1.1 reads 1e-06 as text: always a decimal point
        text = repr(value)
        if "e" in text or "E" in text:
            text = f"{value:.20f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    text = str(value)
    if (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-.]*", text) and text.lower() not in _YAML_WORDS) \
            or re.fullmatch(r"\d+(x\d+)+", text):  # a shape like 8x4x4 is text to YAML
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Shadowed(Exception):
    """A layer cannot name ``target``: from where it stands, ``shadow`` (a nearer tensor) takes the name."""

    def __init__(self, target: str, shadow: str):
        super().__init__(target)
        self.target, self.shadow = target, shadow


def write_spec(m: Mapper) -> str:
    """The spec text. Names resolve in the enclosing block first: where a nearer tensor hides the one a layer
    reads (ConvNeXt's first block reads the stem's layer_norm_1 and holds a layer_norm_1 of its own), the
    hidden one is renamed with a suffix and the text written again."""
    m.input_names = input_names(m)
    final_levels(m)
    inputs = {name for name, _ in m.input_names}
    for _ in range(len(m.entries) + 1):
        try:
            return _spec_text(m)
        except _Shadowed as problem:
            rename(m, problem.shadow if problem.target in inputs else problem.target)
    raise AssertionError("renaming did not end")  # each rename removes a clash: unreachable


def _spec_text(m: Mapper) -> str:
    live = [entry for entry in m.entries if not entry.deleted]
    names = {index: ".".join(entry.levels) for index, entry in enumerate(m.entries) if not entry.deleted}

    def full(ref: Ref) -> str:
        if ref.entry < 0:
            return m.input_names[-1 - ref.entry][0]
        return names[ref.entry] + (f".{ref.part}" if ref.part is not None else "")

    defined: set[str] = {name for name, _ in m.input_names}

    def reference(target: str, scope: tuple[str, ...]) -> str:
        """The shortest name the builder resolves to ``target`` from ``scope`` (nearest scope first)."""
        levels = target.split(".")
        shadow = ""
        for k in range(len(levels) - 1, -1, -1):
            candidate = ".".join(levels[k:])
            for depth in range(len(scope), -1, -1):
                found = ".".join((*scope[:depth], candidate))
                if found in defined:
                    if found == target:
                        return candidate
                    shadow = shadow or found
                    break
        raise _Shadowed(target, shadow)

    lines = _header(m, live)
    lines.append("layers:")
    stack: list[tuple[str, ...]] = []
    x = full(Ref(-1))
    for entry in live:
        group = entry.levels[:-1]
        while stack and stack[-1] != group[:len(stack[-1])]:
            defined.add(".".join(stack.pop()))  # a block's name stands for its output
        while len(stack) < len(group):
            path = group[:len(stack) + 1]
            pad = "  " + "      " * len(stack)
            lines += [f"{pad}- sequence:", f"{pad}    name: {_scalar(path[-1])}", f"{pad}    layers:"]
            stack.append(path)
        pad = "  " + "      " * len(stack)
        options: dict[str, Any] = {"name": entry.levels[-1]}
        sources = [full(ref) for ref in entry.inputs]
        if entry.kind in ("add", "sub", "mul", "max", "concat", "opaque"):  # these read what from: lists
            options["from"] = [reference(source, group) for source in sources]
        elif sources != [x]:
            options["from"] = reference(sources[0], group)
        options.update({key: format_shape(value) if key == "shape" else value
                        for key, value in entry.options.items()})
        body = ", ".join(f"{key}: {_scalar(value)}" for key, value in options.items())
        lines.append(f"{pad}- {entry.kind}: {{{body}}}")
        name = ".".join(entry.levels)
        defined.add(name)
        if entry.parts:
            defined.update(f"{name}.{part}" for part, _ in entry.parts)
            x = f"{name}.{entry.parts[-1][0]}"
        else:
            x = name
    outputs = [full(ref) for ref in m.outputs]
    if outputs != [x]:
        lines.insert(lines.index("layers:"), f"outputs: {_scalar(outputs)}")
    return "\n".join(lines) + "\n"


def _header(m: Mapper, live: list[Entry]) -> list[str]:
    producer = " ".join(part for part in (m.model.producer_name, m.model.producer_version) if part)
    origin = f"{os.path.basename(m.source)}" + (f" ({producer}, ONNX opset {m.opset})" if producer
                                                   else f" (ONNX opset {m.opset})")
    lines = [f"# Imported by convcost from {origin}: {len(m.graph.node)} ONNX nodes, {len(live)} layers.",
             "# Weights became options (out channels, kernel, bias); shapes are the model's (docs/onnx.md)."]
    if m.unknown:
        listing = ", ".join(f"{label} x{count} (first: '{first}')" for label, (count, first) in m.unknown.items())
        lines.append(f"# Opaque layers (zero cost by declaration, shapes kept; --allow-unknown): {listing}")
    lines += [f"# Note: {note}" for note in m.notes]
    stem = os.path.splitext(os.path.basename(m.source))[0] if m.source and not m.source.startswith("<") else ""
    name = stem or m.graph.name or "model"
    lines.append(f"name: {_scalar(name)}")
    names = m.input_names
    if len(names) == 1 and names[0][0] == "input":
        lines.append(f"input: {format_shape(names[0][1])}")
    else:
        lines.append("inputs:")
        lines += [f"  {_scalar(name)}: {format_shape(shape)}" for name, shape in names]
    return lines
