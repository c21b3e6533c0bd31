"""Walking the graph: each ONNX node in order is folded, mapped by the op table, or kept as an opaque layer. The
mapper holds the entries of the spec being written and the convcost tensor each ONNX tensor stands for."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import SpecError
from ...layers import Shape
from .fold import fold
from .model import Model, Unmappable, hint, info_shape

__all__ = ["Entry", "Mapper", "Op", "Poisoned", "Ref", "Tensor", "axes_value"]


@dataclass(frozen=True, slots=True)
class Ref:
    """A convcost tensor: entry ``entry``'s output (its part ``part`` for a split), or network input -1-k."""

    entry: int
    part: str | None = None


@dataclass(frozen=True, slots=True)
class Tensor:
    """What an ONNX tensor stands for: a convcost tensor (channels first, batch excluded), seen through a
    layout: ONNX axis i (batch included) holds the channels-first axis ``perm[i]`` (0 is the batch)."""

    ref: Ref
    shape: Shape
    perm: tuple[int, ...]
    via: str = ""  # the Transpose node that made the layout, for messages

    @property
    def canonical(self) -> bool:
        return self.perm == tuple(range(len(self.perm)))


@dataclass
class Entry:
    """One layer of the spec being written."""

    raw: str  # the ONNX node name it is named after
    op: str
    kind: str
    options: dict[str, Any]
    inputs: tuple[Ref, ...]
    shape: Shape | None  # the output shape the model says (None: a split, see parts)
    parts: tuple[tuple[str, Shape], ...] = ()
    deleted: bool = False  # absorbed into a later layer (a crop into a concat's crop: center)
    crop: tuple[Tensor, tuple[int, ...]] | None = None  # a crop: its source and offsets, to merge crops
    levels: tuple[str, ...] = ()


class Poisoned(Exception):
    """The node reads a tensor that could not be kept (an unmappable op's output without a shape)."""


@dataclass(frozen=True)
class _FakeNode:
    name: str
    op_type: str
    input: tuple[str, ...] = ()
    output: tuple[str, ...] = ()
    doc_string: str = ""


def axes_value(values: tuple[int, ...] | list[int]) -> Any:
    """One integer when every axis agrees, else the list (as a spec writes kernel: [1, 7])."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


class Mapper(Model):
    """The import in progress: the model as read, the spec's entries so far, and what could not be mapped."""

    def __init__(self, model: Any, source: str, allow_unknown: bool):
        super().__init__(model, source)
        self.allow_unknown = allow_unknown
        self.values: dict[str, Tensor] = {}
        self.entries: list[Entry] = []
        self.inputs: list[tuple[str, Shape]] = []
        self.unknown: dict[str, list[Any]] = {}  # label -> [count, first node name]
        self.poisoned: set[str] = set()
        self.absorbed: set[int] = set()
        self.notes: list[str] = []
        self.outputs: list[Ref] = []
        self.input_names: list[tuple[str, Shape]] = []

    def tensor(self, name: str, node: Any, layout: bool = False) -> Tensor:
        """The convcost tensor an ONNX input stands for; unless ``layout``, in channels-first order."""
        if name in self.poisoned:
            raise Poisoned()
        if name not in self.values:
            if name in self.consts or name in self.unfoldable:
                raise Unmappable(f"{node.op_type} (of constants)")
            raise SpecError(f"node '{node.name}' ({node.op_type}) reads '{name}', which no node makes", self.where)
        value = self.values[name]
        return value if layout or value.canonical else self.channels_first(value, node)

    def channels_first(self, value: Tensor, node: Any) -> Tensor:
        """A tensor left in a layout convcost does not follow: the Transpose that made it is unmappable."""
        label = "Transpose (into a layout convcost does not follow)"
        self.note_unknown(label, value.via or node.name)
        full = (1, *value.shape)
        onnx_shape = tuple(full[axis] for axis in value.perm)
        return self.add_entry(Entry(value.via or node.name, "Transpose", "opaque",
                                    {"op": "Transpose", "shape": onnx_shape[1:]}, (value.ref,), onnx_shape[1:]))

    def note_unknown(self, label: str, node_name: str) -> None:
        record = self.unknown.setdefault(label, [0, node_name])
        record[0] += 1

    def add_entry(self, entry: Entry, perm: tuple[int, ...] | None = None) -> Tensor:
        self.entries.append(entry)
        assert entry.shape is not None
        return Tensor(Ref(len(self.entries) - 1), entry.shape, perm or tuple(range(len(entry.shape) + 1)))

    def emit(self, node: Any, kind: str, options: dict[str, Any], inputs: tuple[Tensor, ...],
             output: str | None = None, perm: tuple[int, ...] | None = None, raw: str | None = None) -> Tensor:
        """A layer reading ``inputs``, bound to ONNX tensor ``output`` (the node's first by default) with the
        shape the model gives it, seen through ``perm``."""
        output = output or node.output[0]
        shape = self.static_shape(output, node)
        perm = perm or tuple(range(len(shape)))
        if sorted(perm) != list(range(len(shape))):
            raise Unmappable(f"{node.op_type} (changes the rank of a transposed tensor)")
        canonical = [0] * len(shape)
        for axis, source in enumerate(perm):
            canonical[source] = shape[axis]
        if hint(node).get("inplace"):
            options["inplace"] = True
        tensor = self.add_entry(Entry(raw or node.name or node.op_type, node.op_type, kind, options,
                                      tuple(t.ref for t in inputs), tuple(canonical[1:])), perm)
        self.values[output] = tensor
        return tensor

    def bind(self, name: str, tensor: Tensor) -> None:
        self.values[name] = tensor

    def absorb(self, node: Any) -> None:
        self.absorbed.add(id(node))

    # ---------------------------------------------------------------- the walk

    def run(self, ops: Mapping[str, Op]) -> None:
        """Map every node with ``ops`` (op type -> mapping); then the outputs, and what could not be mapped."""
        initializers = set(self.consts)
        for value in self.graph.input:
            if value.name in initializers:
                continue  # IR < 4 lists initializers as inputs too
            shape = info_shape(value)
            fake = _FakeNode(value.name, "input")
            if shape is None:
                raise SpecError(f"input '{value.name}' has no shape in the model", self.where)
            static = self.static_shape(value.name, fake)
            if isinstance(shape[0], int) and shape[0] > 1:
                self.notes.append(f"the model's batch is {shape[0]}; analyse with --batch {shape[0]}")
            self.inputs.append((value.name, static[1:]))
            self.values[value.name] = Tensor(Ref(-len(self.inputs)), static[1:], tuple(range(len(static))))
        if not self.inputs:
            raise SpecError("the model has no input tensor", self.where)
        for node in self.graph.node:
            if id(node) in self.absorbed:
                continue
            if any(name in self.poisoned for name in node.input if name):
                self.poisoned.update(node.output)
                continue
            if fold(self, node):
                continue
            handler = ops.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            try:
                if handler is None:
                    raise Unmappable(node.op_type)
                handler(self, node)
            except Unmappable as problem:
                self.opaque(node, problem.label)
            except Poisoned:
                self.poisoned.update(node.output)
        for output in self.graph.output:
            if output.name in self.poisoned and self.unknown and not self.allow_unknown:
                continue  # made by an unmappable op: listed below
            if output.name not in self.values:
                raise SpecError(f"output '{output.name}' is not made by a layer (a constant or an input)",
                                self.where)
            value = self.values[output.name]
            if not value.canonical:
                value = self.channels_first(value, _FakeNode(output.name, "output"))
            if value.ref.entry < 0:
                raise SpecError(f"output '{output.name}' is a network input; outputs are layers", self.where)
            if value.ref not in self.outputs:
                self.outputs.append(value.ref)
        if self.unknown and not self.allow_unknown:
            listing = ", ".join(f"{label} x{count} (first: '{first}')"
                                for label, (count, first) in self.unknown.items())
            kinds = len(self.unknown)
            raise SpecError(f"{kinds} ONNX op{'s' if kinds > 1 else ''} convcost cannot map: {listing}; "
                            "--allow-unknown keeps them as zero-cost opaque layers (convcost import MODEL.onnx "
                            "--allow-unknown -o spec.yaml)", self.where)

    def opaque(self, node: Any, label: str) -> None:
        """An unmappable node: noted, and (so the walk goes on with the right shapes) an opaque layer per output."""
        self.note_unknown(label, node.name or node.op_type)
        try:
            inputs = tuple(self.tensor(name, node, layout=True) for name in node.input
                           if name and name not in self.consts and name not in self.unfoldable)
        except (Unmappable, Poisoned):
            self.poisoned.update(node.output)
            return
        if not inputs:  # made from constants only: it reads the first input, so it sits in the graph
            inputs = (self.values[self.inputs[0][0]],)
        op = node.op_type
        for k, output in enumerate(name for name in node.output if name):
            shape = self.onnx_shape(output)
            if shape is None or len(shape) < 2 or any(not isinstance(s, int) for s in shape[1:]):
                if self.allow_unknown and self.consumers.get(output):
                    raise SpecError(f"node '{node.name}' ({node.op_type}) cannot be kept as an opaque layer: the "
                                    f"shape of its output '{output}' is {list(shape) if shape else 'unknown'}",
                                    self.where)
                self.poisoned.add(output)
                continue
            raw = node.name or node.op_type
            self.emit(node, "opaque", {"op": op, "shape": tuple(shape[1:])}, inputs, output,
                      raw=raw if k == 0 else f"{raw}_{k}")


#: What the op table maps an ONNX op type to: a function that emits the node's layers (or raises Unmappable).
Op = Callable[[Mapper, Any], None]
