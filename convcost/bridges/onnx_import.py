"""An ONNX model -> a readable graph spec (``convcost import``), and so -> a network any command can cost.

Shapes come from the model and ``onnx.shape_inference``. Each ONNX node maps to one layer (``OPS``, the one
read-only table from op type to mapping, listed with its convention in docs/onnx.md), except the patterns
exporters write for one layer: MatMul + Add of a bias is a ``linear``, x * Sigmoid(x) is ``silu``, x *
HardSigmoid(x) is ``hardswish``, the Div-Erf-Add-Mul-Mul of an opset < 20 GELU is ``gelu``, and Reshape,
Transpose, Reshape is a ``channel_shuffle``. Transposes are followed rather than mapped: a tensor remembers
its layout, so PyTorch's permute-LayerNorm-Linear-permute (ConvNeXt) is a ``layer_norm`` and a ``linear``
over the channels. Shape arithmetic on constants (Shape, Gather, Concat, ...) is folded.

Weights are never numbers in the spec: a weight that is a graph initializer sets the layer's options (out
channels, kernel, bias or not, affine or not). A weight made by a Constant node is not a parameter (PyTorch
writes a norm without affine that way). An op that cannot be mapped is an error listing each op type, its
count and its first node; with ``allow_unknown`` it becomes a zero-cost ``opaque`` layer keeping its shape.

Layer names come from the ONNX node names, made valid: PyTorch's scoped names (``/layer1/layer1.0/conv1/
Conv``) become nested ``sequence`` blocks named after the modules (``layer1.0.conv1``), and dotted names
(convcost's own export) are kept as they are. Every imported spec is built and its shapes checked against
the model's before it is returned.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from ..builder import build_network
from ..errors import Location, SpecError
from ..layers import AXES
from ..network import Network
from ..spec import NAME, Spec, loads_spec
from ..units import format_shape
from . import require_onnx

__all__ = ["OPS", "Imported", "import_onnx", "onnx_network", "onnx_spec"]

Shape = tuple[int, ...]
_FOLDED = ("Constant", "Identity", "Cast", "CastLike", "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat",
           "Reshape", "Slice", "Expand", "ConstantOfShape", "Range", "Transpose", "Add", "Sub", "Mul", "Div", "Neg",
           "Equal", "Where", "Floor", "Ceil", "Sqrt", "Max", "Min", "ReduceProd")
#: Ops whose output has their first input's shape (used where shape inference says nothing).
_SAME_SHAPE = frozenset({"GroupNormalization", "LayerNormalization", "InstanceNormalization", "BatchNormalization",
                         "Relu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Mish", "Elu", "Softplus", "LeakyRelu",
                         "Gelu", "PRelu", "Clip", "Dropout", "Identity", "Softmax"})
_SMALL = 4096  # initializers up to this many values are read (shapes, scales); larger ones are weights
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", ""}


class _Unmappable(Exception):
    """This node cannot be mapped; ``label`` names the op (and why) in the error listing."""

    def __init__(self, label: str):
        super().__init__(label)
        self.label = label


@dataclass(frozen=True, slots=True)
class _Ref:
    """A convcost tensor: entry ``entry``'s output (its part ``part`` for a split), or network input -1-k."""

    entry: int
    part: str | None = None


@dataclass(frozen=True, slots=True)
class _Tensor:
    """What an ONNX tensor stands for: a convcost tensor (channels first, batch excluded), seen through a
    layout: ONNX axis i (batch included) holds the channels-first axis ``perm[i]`` (0 is the batch)."""

    ref: _Ref
    shape: Shape
    perm: tuple[int, ...]
    via: str = ""  # the Transpose node that made the layout, for messages

    @property
    def canonical(self) -> bool:
        return self.perm == tuple(range(len(self.perm)))


@dataclass
class _Entry:
    """One layer of the spec being written."""

    raw: str  # the ONNX node name it is named after
    op: str
    kind: str
    options: dict[str, Any]
    inputs: tuple[_Ref, ...]
    shape: Shape | None  # the output shape the model says (None: a split, see parts)
    parts: tuple[tuple[str, Shape], ...] = ()
    deleted: bool = False  # absorbed into a later layer (a crop into a concat's crop: center)
    crop: tuple[_Tensor, tuple[int, ...]] | None = None  # a crop: its source and offsets, to merge crops
    levels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Imported:
    """An imported model: the spec text, the network it builds, and what the import could not map."""

    text: str
    source: str
    network: Network
    onnx_nodes: int
    layers: int
    opaque: tuple[tuple[str, int, str], ...] = ()  # (op, count, first node) kept as opaque layers
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- reading the model


def _load(path: str) -> Any:
    onnx = require_onnx()
    try:
        return onnx.load(path, load_external_data=False)
    except OSError as exc:
        raise SpecError(f"cannot read model: {exc.strerror or exc}", Location(path)) from None
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX model
        raise SpecError(f"not an ONNX model ({type(exc).__name__}: {str(exc)[:200] or 'cannot parse'})",
                        Location(path)) from None


def onnx_network(path: str, *, allow_unknown: bool = False) -> Network:
    """An ONNX model file, imported and built (every command's path for a .onnx argument)."""
    return import_onnx(_load(path), source=path, allow_unknown=allow_unknown).network


def onnx_spec(path: str, *, allow_unknown: bool = False) -> Spec:
    """An ONNX model file as a :class:`Spec` (``convcost check`` reads specs)."""
    imported = import_onnx(_load(path), source=path, allow_unknown=allow_unknown)
    return loads_spec(imported.text, path)


def import_onnx(model: Any, *, source: str = "<model>", allow_unknown: bool = False) -> Imported:
    """An ``onnx.ModelProto`` (or the path of one) -> :class:`Imported`; raises :class:`SpecError`."""
    if isinstance(model, str):
        source = model if source == "<model>" else source
        model = _load(model)
    mapper = _Mapper(model, source, allow_unknown)
    mapper.run()
    text = _write_spec(mapper)
    network = _verified(mapper, text)
    live = [entry for entry in mapper.entries if not entry.deleted]
    opaque = tuple((label, count, first) for label, (count, first) in mapper.unknown.items())
    return Imported(text=text, source=source, network=network, onnx_nodes=len(model.graph.node), layers=len(live),
                    opaque=opaque, notes=tuple(mapper.notes))


# --------------------------------------------------------------------------- the mapper


class _Mapper:
    def __init__(self, model: Any, source: str, allow_unknown: bool):
        self.onnx = require_onnx()
        import numpy

        self.np = numpy
        self.source = source
        self.where = Location(source)
        self.allow_unknown = allow_unknown
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        try:
            inferred = self.onnx.shape_inference.infer_shapes(_without_weight_data(self.onnx, model), data_prop=True)
        except Exception as exc:
            raise SpecError(f"ONNX shape inference failed: {str(exc).splitlines()[0][:300]}", self.where) from None
        self.shapes: dict[str, tuple[Any, ...]] = {}
        for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            shape = _onnx_shape(info)
            if shape is not None:
                self.shapes[info.name] = shape
        self.consts: dict[str, Any] = {}
        self.weights: set[str] = set()
        for tensor in self.graph.initializer:
            self.consts[tensor.name] = self._array(tensor)
            self.weights.add(tensor.name)
        self.values: dict[str, _Tensor] = {}
        self.entries: list[_Entry] = []
        self.inputs: list[tuple[str, Shape]] = []
        self.unknown: dict[str, list[Any]] = {}  # label -> [count, first node name]
        self.unfoldable: dict[str, str] = {}  # a constant the import could not compute -> its op
        self.poisoned: set[str] = set()
        self.absorbed: set[int] = set()
        self.notes: list[str] = []
        self.consumers: dict[str, list[Any]] = {}
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        for output in self.graph.output:
            self.consumers.setdefault(output.name, []).append(None)  # a graph output is read at the end
        self.outputs: list[_Ref] = []
        self.input_names: list[tuple[str, Shape]] = []

    def _array(self, tensor: Any) -> Any:
        """An initializer's values; for a weight (large, or kept outside the file) only its shape counts, so
        it is a zero-copy stand-in of that shape."""
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL or math.prod(tensor.dims) > _SMALL:
            dtype = self.onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
            return self.np.broadcast_to(self.np.zeros((), dtype), tuple(tensor.dims))
        return self.onnx.numpy_helper.to_array(tensor)

    # ---------------------------------------------------------------- values

    def onnx_shape(self, name: str) -> tuple[Any, ...] | None:
        if name in self.consts:
            return tuple(self.consts[name].shape)
        return self.shapes.get(name)

    def static_shape(self, name: str, node: Any) -> tuple[int, ...]:
        """The model's shape of ``name`` (batch first), every axis but the batch a number."""
        shape = self.onnx_shape(name)
        if shape is None and node.op_type in _SAME_SHAPE and node.input:
            shape = self.onnx_shape(node.input[0])  # shape inference skips some function ops (GroupNormalization)
        if shape is None:
            raise SpecError(f"the model does not give the shape of '{name}' (output of node '{node.name}', "
                            f"{node.op_type}) and ONNX shape inference cannot infer it", self.where)
        if len(shape) < 2:
            raise SpecError(f"'{name}' (output of node '{node.name}', {node.op_type}) has shape "
                            f"{list(shape)}: convcost needs a batch axis and at least a channel axis", self.where)
        if any(not isinstance(size, int) for size in shape[1:]):
            raise SpecError(f"'{name}' (output of node '{node.name}', {node.op_type}) has a symbolic size: "
                            f"{list(shape)}; export the model with a fixed input size", self.where)
        return (1 if not isinstance(shape[0], int) else shape[0], *shape[1:])

    def const(self, name: str) -> Any:
        if name in self.unfoldable:
            raise _Unmappable(f"{self.unfoldable[name]} (computing a constant)")
        if name not in self.consts:
            raise _Unmappable("(a constant computed from tensors)")
        return self.consts[name]

    def weight(self, name: str, node: Any, what: str) -> Any:
        """A weight the layer's options are read from: a graph initializer (directly or through Identity)."""
        if name not in self.weights:
            if name in self.consts:
                raise _Unmappable(f"{node.op_type} ({what} is a constant, not a parameter)")
            raise _Unmappable(f"{node.op_type} ({what} computed in the graph)")
        return self.consts[name]

    def tensor(self, name: str, node: Any, layout: bool = False) -> _Tensor:
        """The convcost tensor an ONNX input stands for; unless ``layout``, in channels-first order."""
        if name in self.poisoned:
            raise _Poisoned()
        if name not in self.values:
            if name in self.consts or name in self.unfoldable:
                raise _Unmappable(f"{node.op_type} (of constants)")
            raise SpecError(f"node '{node.name}' ({node.op_type}) reads '{name}', which no node makes", self.where)
        value = self.values[name]
        return value if layout or value.canonical else self.channels_first(value, node)

    def channels_first(self, value: _Tensor, node: Any) -> _Tensor:
        """A tensor left in a layout convcost does not follow: the Transpose that made it is unmappable."""
        label = "Transpose (into a layout convcost does not follow)"
        self.note_unknown(label, value.via or node.name)
        full = (1, *value.shape)
        onnx_shape = tuple(full[axis] for axis in value.perm)
        return self.add_entry(_Entry(value.via or node.name, "Transpose", "opaque",
                                     {"op": "Transpose", "shape": onnx_shape[1:]}, (value.ref,), onnx_shape[1:]))

    def note_unknown(self, label: str, node_name: str) -> None:
        record = self.unknown.setdefault(label, [0, node_name])
        record[0] += 1

    def add_entry(self, entry: _Entry, perm: tuple[int, ...] | None = None) -> _Tensor:
        self.entries.append(entry)
        assert entry.shape is not None
        return _Tensor(_Ref(len(self.entries) - 1), entry.shape, perm or tuple(range(len(entry.shape) + 1)))

    def emit(self, node: Any, kind: str, options: dict[str, Any], inputs: tuple[_Tensor, ...],
             output: str | None = None, perm: tuple[int, ...] | None = None, raw: str | None = None) -> _Tensor:
        """A layer reading ``inputs``, bound to ONNX tensor ``output`` (the node's first by default) with the
        shape the model gives it, seen through ``perm``."""
        output = output or node.output[0]
        shape = self.static_shape(output, node)
        perm = perm or tuple(range(len(shape)))
        if sorted(perm) != list(range(len(shape))):
            raise _Unmappable(f"{node.op_type} (changes the rank of a transposed tensor)")
        canonical = [0] * len(shape)
        for axis, source in enumerate(perm):
            canonical[source] = shape[axis]
        hint = _hint(node)
        if hint.get("inplace"):
            options["inplace"] = True
        tensor = self.add_entry(_Entry(raw or node.name or node.op_type, node.op_type, kind, options,
                                       tuple(t.ref for t in inputs), tuple(canonical[1:])), perm)
        self.values[output] = tensor
        return tensor

    def bind(self, name: str, tensor: _Tensor) -> None:
        self.values[name] = tensor

    def attrs(self, node: Any) -> dict[str, Any]:
        values = {}
        for attribute in node.attribute:
            value = self.onnx.helper.get_attribute_value(attribute)
            values[attribute.name] = value.decode() if isinstance(value, bytes) else value
        return values

    def sole_consumer(self, name: str, op: str | tuple[str, ...]) -> Any:
        """The one node reading ``name``, if it is one of ``op``; else None."""
        readers = self.consumers.get(name, [])
        if len(readers) == 1 and readers[0] is not None and readers[0].op_type in (op if isinstance(op, tuple)
                                                                                    else (op,)):
            return readers[0]
        return None

    def absorb(self, node: Any) -> None:
        self.absorbed.add(id(node))

    def const_input(self, node: Any, index: int) -> Any:
        """Optional constant input ``index`` of ``node`` (None when left out)."""
        if len(node.input) <= index or not node.input[index]:
            return None
        return self.const(node.input[index])

    # ---------------------------------------------------------------- the walk

    def run(self) -> None:
        initializers = set(self.consts)
        for value in self.graph.input:
            if value.name in initializers:
                continue  # IR < 4 lists initializers as inputs too
            shape = _onnx_shape(value)
            fake = _FakeNode(value.name, "input")
            if shape is None:
                raise SpecError(f"input '{value.name}' has no shape in the model", self.where)
            static = self.static_shape(value.name, fake)
            if isinstance(shape[0], int) and shape[0] > 1:
                self.notes.append(f"the model's batch is {shape[0]}; analyse with --batch {shape[0]}")
            self.inputs.append((value.name, static[1:]))
            self.values[value.name] = _Tensor(_Ref(-len(self.inputs)), static[1:], tuple(range(len(static))))
        if not self.inputs:
            raise SpecError("the model has no input tensor", self.where)
        for node in self.graph.node:
            if id(node) in self.absorbed:
                continue
            if any(name in self.poisoned for name in node.input if name):
                self.poisoned.update(node.output)
                continue
            if self.fold(node):
                continue
            handler = OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            try:
                if handler is None:
                    raise _Unmappable(node.op_type)
                handler(self, node)
            except _Unmappable as problem:
                self.opaque(node, problem.label)
            except _Poisoned:
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
        except (_Unmappable, _Poisoned):
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

    # ---------------------------------------------------------------- constants

    def fold(self, node: Any) -> bool:
        """Compute a node on constants (shape arithmetic); True when it was one."""
        names = [name for name in node.input if name]
        if node.op_type not in _FOLDED or node.domain not in ("", "ai.onnx"):
            if names and all(name in self.consts or name in self.unfoldable for name in names):
                for output in node.output:
                    self.unfoldable[output] = node.op_type
                return True
            return False
        if node.op_type in ("Shape", "Size"):
            shape = self.onnx_shape(names[0])
            if shape is None or any(not isinstance(s, int) for s in shape[1:]):
                return False
            shape = (1 if not isinstance(shape[0], int) else shape[0], *shape[1:])
            if node.op_type == "Size":
                value = self.np.array(math.prod(shape), self.np.int64)
            else:
                attrs = self.attrs(node)
                value = self.np.array(shape[attrs.get("start", 0):attrs.get("end", len(shape))], self.np.int64)
            self.consts[node.output[0]] = value
            return True
        if not all(name in self.consts for name in names):
            if any(name in self.unfoldable for name in names) and all(
                    name in self.consts or name in self.unfoldable for name in names):
                for output in node.output:
                    self.unfoldable[output] = self.unfoldable[next(n for n in names if n in self.unfoldable)]
                return True
            return False
        try:
            values = _fold(self, node, [self.consts[name] if name else None for name in node.input])
        except Exception:  # an op or attribute this small folder does not cover
            for output in node.output:
                self.unfoldable[output] = node.op_type
            return True
        for output, value in zip(node.output, values):
            self.consts[output] = value
        if node.op_type in ("Identity", "Cast") and node.input[0] in self.weights:
            self.weights.add(node.output[0])  # a deduplicated or cast initializer is still a parameter
        return True


def _without_weight_data(onnx: Any, model: Any) -> Any:
    """The model with its large initializers' values left out (their names, types and shapes kept): shape
    inference serializes the model, and copying a 100 MB of weights twice is most of an import's time."""
    graph = model.graph
    initializers = [tensor if math.prod(tensor.dims) <= _SMALL else
                    onnx.TensorProto(name=tensor.name, dims=tensor.dims, data_type=tensor.data_type)
                    for tensor in graph.initializer]
    light = onnx.GraphProto(name=graph.name, node=graph.node, input=graph.input, output=graph.output,
                            value_info=graph.value_info, initializer=initializers)
    for node in light.node:  # PyTorch writes Transpose perm=[0, -1, 1, 2], which shape inference refuses
        if node.op_type == "Transpose":
            for attribute in node.attribute:
                if attribute.name == "perm" and any(axis < 0 for axis in attribute.ints):
                    attribute.ints[:] = [axis % len(attribute.ints) for axis in attribute.ints]
    return onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import, graph=light,
                           functions=model.functions)


class _Poisoned(Exception):
    """The node reads a tensor that could not be kept (an unmappable op's output without a shape)."""


@dataclass(frozen=True)
class _FakeNode:
    name: str
    op_type: str
    input: tuple[str, ...] = ()
    output: tuple[str, ...] = ()
    doc_string: str = ""


def _onnx_shape(info: Any) -> tuple[Any, ...] | None:
    tensor_type = info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[Any] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or "?")
    return tuple(dims)


def _hint(node: Any) -> dict[str, Any]:
    """What convcost's own export recorded in a node's doc_string: ``convcost: kind=depthwise inplace``."""
    text = getattr(node, "doc_string", "") or ""
    if not text.startswith("convcost:"):
        return {}
    hint: dict[str, Any] = {}
    for word in text[len("convcost:"):].split():
        key, _, value = word.partition("=")
        hint[key] = value or True
    return hint


def _fold(m: _Mapper, node: Any, inputs: list[Any]) -> list[Any]:
    """One node over constant numpy arrays: the shape arithmetic exporters write."""
    np, op, a = m.np, node.op_type, m.attrs(node)
    x: Any = inputs[0] if inputs else None
    if op == "Constant":
        if "value" in a:
            return [m.onnx.numpy_helper.to_array(a["value"])]
        for key, dtype in (("value_float", np.float32), ("value_int", np.int64), ("value_floats", np.float32),
                           ("value_ints", np.int64)):
            if key in a:
                return [np.array(a[key], dtype)]
        raise ValueError("unsupported Constant")
    if op == "Identity":
        return [x]
    if op == "Cast":
        return [x.astype(m.onnx.helper.tensor_dtype_to_np_dtype(a["to"]))]
    if op == "CastLike":
        return [x.astype(inputs[1].dtype)]
    if op == "Gather":
        return [np.take(x, inputs[1], axis=a.get("axis", 0))]
    if op in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes") if m.opset < 13 else (None if len(inputs) < 2 or inputs[1] is None else inputs[1])
        if op == "Squeeze":
            return [np.squeeze(x, axis=None if axes is None else tuple(int(i) for i in np.atleast_1d(axes)))]
        result = x
        for axis in sorted(int(i) % (x.ndim + len(np.atleast_1d(axes))) for i in np.atleast_1d(axes)):
            result = np.expand_dims(result, axis)
        return [result]
    if op == "Concat":
        return [np.concatenate([np.atleast_1d(v) for v in inputs], axis=a.get("axis", 0))]
    if op == "Reshape":
        target = [int(v) for v in inputs[1]]
        target = [x.shape[i] if v == 0 and not a.get("allowzero") else v for i, v in enumerate(target)]
        return [x.reshape(target)]
    if op == "Slice":
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            index[int(axis)] = slice(int(start), int(end), int(step))
        return [x[tuple(index)]]
    if op == "Expand":
        return [x * np.ones(tuple(int(v) for v in inputs[1]), dtype=x.dtype)]
    if op == "ConstantOfShape":
        value = m.onnx.numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return [np.full(tuple(int(v) for v in x), value.reshape(-1)[0], dtype=value.dtype)]
    if op == "Range":
        return [np.arange(x, inputs[1], inputs[2])]
    if op == "Transpose":
        return [np.transpose(x, a.get("perm"))]
    arithmetic: Mapping[str, Callable[..., Any]] = {
        "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Equal": np.equal, "Max": np.maximum,
        "Min": np.minimum}
    if op in arithmetic:
        result = inputs[0]
        for other in inputs[1:]:
            result = arithmetic[op](result, other)
        return [result]
    if op == "Div":
        return [x // inputs[1] if np.issubdtype(x.dtype, np.integer) else x / inputs[1]]
    if op == "Neg":
        return [-x]
    if op == "Where":
        return [np.where(x, inputs[1], inputs[2])]
    if op in ("Floor", "Ceil", "Sqrt"):
        return [{"Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt}[op](x)]
    if op == "ReduceProd":
        return [np.prod(x, keepdims=bool(a.get("keepdims", 1)))]
    raise ValueError(f"cannot fold {op}")


# --------------------------------------------------------------------------- mapping helpers


def _axes_value(values: tuple[int, ...] | list[int]) -> Any:
    """One integer when every axis agrees, else the list (as a spec writes kernel: [1, 7])."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def _pads(m: _Mapper, node: Any, a: dict[str, Any], lengths: Shape, kernel: tuple[int, ...],
          stride: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    dims = len(kernel)
    auto = a.get("auto_pad", "NOTSET") or "NOTSET"
    if auto == "NOTSET":
        pads = list(a.get("pads", [0] * (2 * dims)))
        return tuple(pads[:dims]), tuple(pads[dims:])
    if auto == "VALID":
        return (0,) * dims, (0,) * dims
    begin, end = [], []
    for length, k, s, d in zip(lengths, kernel, stride, dilation):
        total = max(0, (-(-length // s) - 1) * s + (k - 1) * d + 1 - length)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return tuple(begin), tuple(end)


def _padding(node: Any, begin: tuple[int, ...], end: tuple[int, ...], kernel: tuple[int, ...],
             stride: tuple[int, ...], dilation: tuple[int, ...], allow_same: bool) -> Any:
    """The spec's padding: symmetric per axis, or PyTorch's 'same' (the odd pixel at the end, stride 1)."""
    if begin == end:
        return _axes_value(begin)
    same = all(s == 1 and b + e == d * (k - 1) and b == (b + e) // 2
               for b, e, k, s, d in zip(begin, end, kernel, stride, dilation))
    if allow_same and same:
        return "same"
    raise _Unmappable(f"{node.op_type} (asymmetric padding)")


def _set(options: dict[str, Any], key: str, value: Any, default: Any) -> None:
    if value != default:
        options[key] = value


def _conv(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    weight = m.weight(node.input[1], node, "the weight")
    bias = len(node.input) > 2 and bool(node.input[2])
    if bias:
        m.weight(node.input[2], node, "the bias")
    a = m.attrs(node)
    dims = len(x.shape) - 1
    kernel = tuple(a.get("kernel_shape", weight.shape[2:]))
    stride = tuple(a.get("strides", [1] * dims))
    dilation = tuple(a.get("dilations", [1] * dims))
    groups = int(a.get("group", 1))
    begin, end = _pads(m, node, a, x.shape[1:], kernel, stride, dilation)
    padding = _padding(node, begin, end, kernel, stride, dilation, allow_same=True)
    out, channels = int(weight.shape[0]), x.shape[0]
    hint = _hint(node).get("kind", "")
    options: dict[str, Any] = {}
    if hint == "pointwise" and set(kernel) == {1} and padding == 0 and set(dilation) == {1}:
        kind = "pointwise"
        options["out"] = out
        _set(options, "stride", _axes_value(stride), 1)
        _set(options, "groups", groups, 1)
    elif groups > 1 and groups == channels and out % channels == 0 and hint in ("", "depthwise"):
        kind = "depthwise"
        _set(options, "multiplier", out // channels, 1)
        options["kernel"] = _axes_value(kernel)
        _set(options, "stride", _axes_value(stride), 1)
        _set(options, "padding", padding, 0)
        _set(options, "dilation", _axes_value(dilation), 1)
    else:
        kind = "conv"
        options["out"] = out
        options["kernel"] = _axes_value(kernel)
        _set(options, "stride", _axes_value(stride), 1)
        _set(options, "padding", padding, 0)
        _set(options, "dilation", _axes_value(dilation), 1)
        _set(options, "groups", groups, 1)
    _set(options, "bias", bias, True)
    m.emit(node, kind, options, (x,))


def _conv_transpose(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    weight = m.weight(node.input[1], node, "the weight")
    bias = len(node.input) > 2 and bool(node.input[2])
    if bias:
        m.weight(node.input[2], node, "the bias")
    a = m.attrs(node)
    dims = len(x.shape) - 1
    if "output_shape" in a or (a.get("auto_pad", "NOTSET") or "NOTSET") not in ("NOTSET", "VALID"):
        raise _Unmappable("ConvTranspose (output_shape or auto_pad SAME)")
    kernel = tuple(a.get("kernel_shape", weight.shape[2:]))
    stride = tuple(a.get("strides", [1] * dims))
    dilation = tuple(a.get("dilations", [1] * dims))
    groups = int(a.get("group", 1))
    begin, end = _pads(m, node, a, x.shape[1:], kernel, stride, dilation)
    options: dict[str, Any] = {"out": int(weight.shape[1]) * groups, "kernel": _axes_value(kernel)}
    _set(options, "stride", _axes_value(stride), 1)
    _set(options, "padding", _padding(node, begin, end, kernel, stride, dilation, allow_same=False), 0)
    _set(options, "output_padding", _axes_value(a.get("output_padding", [0] * dims)), 0)
    _set(options, "dilation", _axes_value(dilation), 1)
    _set(options, "groups", groups, 1)
    _set(options, "bias", bias, True)
    m.emit(node, "conv_transpose", options, (x,))


def _pool(m: _Mapper, node: Any) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise _Unmappable(f"{node.op_type} (with indices)")
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    dims = len(x.shape) - 1
    kernel = tuple(a["kernel_shape"])
    stride = tuple(a.get("strides", [1] * dims))
    dilation = tuple(a.get("dilations", [1] * dims))
    op = "max" if node.op_type == "MaxPool" else "avg"
    if op == "avg" and set(dilation) != {1}:
        raise _Unmappable("AveragePool (dilated)")
    begin, end = _pads(m, node, a, x.shape[1:], kernel, stride, dilation)
    padding = _padding(node, begin, end, kernel, stride, dilation, allow_same=False)
    ceil = bool(a.get("ceil_mode", 0))
    hint = _hint(node).get("kind", "")
    if hint.startswith("adaptive_") and stride == kernel and padding == 0 and not ceil \
            and all(length % k == 0 for length, k in zip(x.shape[1:], kernel)):
        m.emit(node, f"adaptive_{op}_pool",
               {"output_size": _axes_value([length // k for length, k in zip(x.shape[1:], kernel)])}, (x,))
        return
    options: dict[str, Any] = {"kernel": _axes_value(kernel)}
    _set(options, "stride", _axes_value(stride), options["kernel"])
    _set(options, "padding", padding, 0)
    if op == "max":
        _set(options, "dilation", _axes_value(dilation), 1)
    _set(options, "ceil_mode", ceil, False)
    m.emit(node, f"{op}_pool", options, (x,))


def _global_pool(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    op = "avg" if node.op_type == "GlobalAveragePool" else "max"
    if _hint(node).get("kind", "").startswith("adaptive_"):
        m.emit(node, f"adaptive_{op}_pool", {"output_size": 1}, (x,))
    else:
        m.emit(node, f"global_{op}_pool", {}, (x,))


def _reduce(m: _Mapper, node: Any) -> None:
    """ReduceMean/ReduceMax over every spatial axis: global pooling (with keepdims=0, then a flatten)."""
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    rank = len(x.shape) + 1
    axes = a.get("axes") if m.opset < 18 else m.const_input(node, 1)
    if axes is None or sorted(int(axis) % rank for axis in axes) != list(range(2, rank)) or rank < 3:
        raise _Unmappable(f"{node.op_type} (not over every spatial axis)")
    op = "avg" if node.op_type == "ReduceMean" else "max"
    if a.get("keepdims", 1):
        m.emit(node, f"global_{op}_pool", {}, (x,))
        return
    shape = (x.shape[0], *(1,) * (rank - 2))
    pooled = m.add_entry(_Entry(node.name or node.op_type, node.op_type, f"global_{op}_pool", {}, (x.ref,), shape))
    m.emit(node, "flatten", {}, (pooled,), raw=f"{node.name or node.op_type}_flatten")


def _bias_after(m: _Mapper, output: str, features: int) -> Any:
    """The Add of a bias (a parameter of ``features`` values on the last axis) that alone reads ``output``."""
    add = m.sole_consumer(output, "Add")
    if add is None:
        return None
    other = add.input[1] if add.input[0] == output else add.input[0]
    if other in m.weights and m.consts[other].size == features and m.consts[other].shape[-1:] == (features,):
        return add
    return None


def _matmul(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    if node.input[1] not in m.consts:
        raise _Unmappable("MatMul (of two tensors)")
    weight = m.weight(node.input[1], node, "the weight")
    rank = len(x.perm)
    if weight.ndim != 2 or rank < 2:
        raise _Unmappable("MatMul (a weight that is not a matrix)")
    axis = x.perm[-1]  # the channels-first axis the product runs over
    if axis == 0:
        raise _Unmappable("MatMul (over the batch axis)")
    options: dict[str, Any] = {"out": int(weight.shape[1])}
    if rank > 2 and axis == 1:
        options["axis"] = "channels"
    elif rank > 2 and axis == rank - 1:
        options["axis"] = "last"
    elif rank > 2:
        raise _Unmappable("MatMul (over a middle axis)")
    add = _bias_after(m, node.output[0], int(weight.shape[1]))
    if add is None:
        options["bias"] = False
    else:
        m.absorb(add)
    m.emit(node, "linear", options, (x,), output=add.output[0] if add is not None else None, perm=x.perm)


def _gemm(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    if len(x.shape) != 1 or a.get("transA", 0):
        raise _Unmappable("Gemm (not features x weight)")
    if node.input[1] not in m.consts:
        raise _Unmappable("Gemm (of two tensors)")
    weight = m.weight(node.input[1], node, "the weight")
    out = int(weight.shape[0] if a.get("transB", 0) else weight.shape[1])
    options: dict[str, Any] = {"out": out}
    if len(node.input) > 2 and node.input[2]:
        m.weight(node.input[2], node, "the bias")
    else:
        options["bias"] = False
    m.emit(node, "linear", options, (x,))


def _affine(m: _Mapper, node: Any, names: tuple[str | None, ...]) -> bool:
    """Are these inputs (scale, bias, ...) parameters (initializers) or fixed constants? Both or neither."""
    learned = [name is not None and name in m.weights for name in names]
    if all(learned):
        return True
    if not any(learned) and all(name is None or name in m.consts for name in names):
        return False
    raise _Unmappable(f"{node.op_type} (some of its weights learned, some fixed)")


def _batch_norm(m: _Mapper, node: Any) -> None:
    if any(node.output[1:]) or m.attrs(node).get("training_mode", 0):
        raise _Unmappable("BatchNormalization (training mode)")
    x = m.tensor(node.input[0], node)
    options: dict[str, Any] = {}
    _set(options, "affine", _affine(m, node, (node.input[1], node.input[2])), True)
    _set(options, "track_running_stats", _affine(m, node, (node.input[3], node.input[4])), True)
    m.emit(node, "batch_norm", options, (x,))


def _instance_norm(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    options: dict[str, Any] = {}
    _set(options, "affine", _affine(m, node, (node.input[1], node.input[2])), False)
    m.emit(node, "instance_norm", options, (x,))


def _group_norm(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    groups = int(m.attrs(node)["num_groups"])
    scale = m.consts.get(node.input[1])
    if scale is not None and scale.size != x.shape[0]:
        raise _Unmappable("GroupNormalization (a scale per group, opset < 21)")
    options: dict[str, Any] = {"groups": groups}
    _set(options, "affine", _affine(m, node, (node.input[1], node.input[2])), True)
    m.emit(node, "group_norm", options, (x,))


def _layer_norm(m: _Mapper, node: Any) -> None:
    if any(node.output[1:]):
        raise _Unmappable("LayerNormalization (its statistics are read)")
    x = m.tensor(node.input[0], node, layout=True)
    rank = len(x.perm)
    if int(m.attrs(node).get("axis", -1)) % rank != rank - 1:
        raise _Unmappable("LayerNormalization (over several axes)")
    axis = x.perm[-1]
    options: dict[str, Any] = {}
    if rank > 2 and axis != 1:
        if axis != rank - 1:
            raise _Unmappable("LayerNormalization (over a middle axis)")
        options["over"] = "last"
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if node.input[1] in m.weights and bias is None:
        raise _Unmappable("LayerNormalization (a scale without a bias)")
    _set(options, "affine", _affine(m, node, (node.input[1], bias)), True)
    m.emit(node, "layer_norm", options, (x,), perm=x.perm)


_UNARY = MappingProxyType({
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid",
    "Mish": "mish", "Elu": "elu", "Softplus": "softplus", "LeakyRelu": "leaky_relu", "Gelu": "gelu",
})


def _activation(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    function = _UNARY[node.op_type]
    if node.op_type in ("Sigmoid", "HardSigmoid"):  # x * sigmoid(x) is SiLU, x * hardsigmoid(x) HardSwish
        gate = m.sole_consumer(node.output[0], "Mul")
        if gate is not None and node.input[0] in gate.input and node.output[0] in gate.input \
                and (node.op_type == "Sigmoid" or _is_hardsigmoid_of_hardswish(m, node)):
            m.absorb(gate)
            options: dict[str, Any] = {"inplace": True} if _hint(gate).get("inplace") else {}
            m.emit(gate, "silu" if node.op_type == "Sigmoid" else "hardswish", options, (x,), perm=x.perm)
            return
    options = {}
    a = m.attrs(node)
    if function == "leaky_relu":
        _set(options, "negative_slope", round(float(a.get("alpha", 0.01)), 7), 0.01)
    elif function == "elu":
        _set(options, "alpha", round(float(a.get("alpha", 1.0)), 7), 1.0)
    m.emit(node, function, options, (x,), perm=x.perm)


def _is_hardsigmoid_of_hardswish(m: _Mapper, node: Any) -> bool:
    a = m.attrs(node)  # HardSwish is x * HardSigmoid(x) with alpha 1/6, beta 1/2
    return abs(a.get("alpha", 0.2) - 1 / 6) < 1e-6 and abs(a.get("beta", 0.5) - 0.5) < 1e-6


def _prelu(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    slope = m.weight(node.input[1], node, "the slope")
    if slope.size == 1:
        m.emit(node, "prelu", {}, (x,))
    elif slope.size == x.shape[0]:
        m.emit(node, "prelu", {"parameters": "channels"}, (x,))
    else:
        raise _Unmappable("PRelu (a slope that is neither one nor per channel)")


def _clip(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    if m.opset < 11:
        a = m.attrs(node)
        low, high = a.get("min"), a.get("max")
    else:
        low, high = m.const_input(node, 1), m.const_input(node, 2)
    low = None if low is None else float(low)
    high = None if high is None or math.isinf(float(high)) else float(high)
    if low == 0 and high == 6:
        m.emit(node, "relu6", {}, (x,), perm=x.perm)
    elif low == 0 and high is None:
        m.emit(node, "relu", {}, (x,), perm=x.perm)
    else:
        raise _Unmappable("Clip (other than 0 to 6)")


def _binary(m: _Mapper, node: Any) -> None:
    names = [name for name in node.input if name]
    consts = [name for name in names if name in m.consts]
    tensors = [name for name in names if name not in m.consts]
    if consts:
        if node.op_type == "Mul" and len(tensors) == 1 and len(consts) == 1 and consts[0] in m.weights:
            _layer_scale(m, node, tensors[0], m.consts[consts[0]])
            return
        raise _Unmappable(f"{node.op_type} (with a constant)")
    values = [m.tensor(name, node, layout=True) for name in tensors]
    if len({value.perm for value in values}) > 1:
        values = [m.tensor(name, node) for name in tensors]
    if len({len(value.perm) for value in values}) > 1:
        raise _Unmappable(f"{node.op_type} (tensors of different ranks)")
    kind = {"Add": "add", "Sum": "add", "Sub": "sub", "Mul": "mul", "Max": "max"}[node.op_type]
    if len(values) == 1:  # Sum or Max of one tensor: a copy
        m.emit(node, "identity", {}, (values[0],), perm=values[0].perm)
        return
    m.emit(node, kind, {}, tuple(values), perm=values[0].perm)


def _layer_scale(m: _Mapper, node: Any, name: str, scale: Any) -> None:
    """A tensor times a learned per-channel scale (broadcast on every other axis): ``layer_scale``."""
    x = m.tensor(name, node, layout=True)
    rank = len(x.perm)
    if scale.ndim > rank:
        raise _Unmappable("Mul (by a parameter that is not one per channel)")
    shape = (1,) * (rank - scale.ndim) + tuple(scale.shape)
    per_channel = all(size == (x.shape[0] if source == 1 else 1) for size, source in zip(shape, x.perm))
    if not per_channel or x.shape[0] == 1:
        raise _Unmappable("Mul (by a parameter that is not one per channel)")
    m.emit(node, "layer_scale", {}, (x,), perm=x.perm)


def _div(m: _Mapper, node: Any) -> None:
    """Div is only GELU's first step, as exporters before opset 20 write it: x/sqrt2, Erf, +1, *x, *0.5."""
    erf = m.sole_consumer(node.output[0], "Erf")
    add = erf and m.sole_consumer(erf.output[0], "Add")
    mul = add and m.sole_consumer(add.output[0], "Mul")
    half = mul and m.sole_consumer(mul.output[0], "Mul")
    if not (erf and add and mul and half) or node.input[1] not in m.consts or node.input[0] not in mul.input:
        raise _Unmappable("Div")
    if abs(float(m.consts[node.input[1]].reshape(-1)[0]) - math.sqrt(2)) > 1e-3:
        raise _Unmappable("Div")
    x = m.tensor(node.input[0], node, layout=True)
    for step in (erf, add, mul, half):
        m.absorb(step)
    m.emit(half, "gelu", {}, (x,), perm=x.perm)


def _concat(m: _Mapper, node: Any) -> None:
    names = [name for name in node.input if name]
    values = [m.tensor(name, node, layout=True) for name in names]
    if len({value.perm for value in values}) > 1:
        values = [m.tensor(name, node) for name in names]
    rank = len(values[0].perm)
    axis = values[0].perm[int(m.attrs(node).get("axis", 1)) % rank]
    if axis == 0:
        raise _Unmappable("Concat (on the batch axis)")
    options: dict[str, Any] = {}
    if axis != 1:
        options["axis"] = AXES[rank - 1][axis - 1]
    cropped = _centre_crops(m, values, node, axis - 1)
    if cropped is not None:
        values = cropped
        options["crop"] = "center"
    if len(values) == 1:
        m.emit(node, "identity", {}, (values[0],), perm=values[0].perm)
        return
    m.emit(node, "concat", options, tuple(values), perm=values[0].perm)


def _centre_crops(m: _Mapper, values: list[_Tensor], node: Any, axis: int) -> list[_Tensor] | None:
    """U-Net's skip: inputs that are centred crops, read only by this concat, down to the smallest input.
    Returns the uncropped inputs (the crops then go: ``crop: center`` does them), or None."""
    if axis != 0 or not any(m.entries[v.ref.entry].crop is not None for v in values if v.ref.entry >= 0):
        return None
    sources = []
    for value in values:
        entry = m.entries[value.ref.entry] if value.ref.entry >= 0 else None
        if entry is not None and entry.crop is not None and value.canonical \
                and _reads_only(m, value, node):
            sources.append(entry.crop[0])
        else:
            sources.append(value)
    kept = tuple(min(source.shape[i] for source in sources) for i in range(1, len(values[0].shape)))
    if any(value.shape[1:] != kept for value in values) or any(not s.canonical for s in sources):
        return None
    for value, source in zip(values, sources):
        if source is not value:
            assert m.entries[value.ref.entry].crop is not None
            entry = m.entries[value.ref.entry]
            offsets = entry.crop[1] if entry.crop else ()
            if offsets != tuple((have - want) // 2 for have, want in zip(source.shape[1:], kept)):
                return None
    for value, source in zip(values, sources):
        if source is not value:
            m.entries[value.ref.entry].deleted = True
    return sources


def _reads_only(m: _Mapper, value: _Tensor, node: Any) -> bool:
    """Is ``node`` the only reader of the tensor ``value`` stands for?"""
    names = [name for name, bound in m.values.items() if bound.ref == value.ref]
    return all(reader is node for name in names for reader in m.consumers.get(name, []))


def _slice(m: _Mapper, node: Any) -> None:
    """A Slice of spatial axes is a crop (convcost's crops are centred); nothing cut is no layer."""
    x = m.tensor(node.input[0], node)
    full = (1, *x.shape)
    if m.opset < 10:
        a = m.attrs(node)
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = m.const(node.input[1]), m.const(node.input[2])
        axes, steps = m.const_input(node, 3), m.const_input(node, 4)
    axes = list(range(len(starts))) if axes is None else [int(axis) % len(full) for axis in axes]
    if steps is not None and any(int(step) != 1 for step in steps):
        raise _Unmappable("Slice (with steps)")
    begin = [0] * len(full)
    size = list(full)
    for start, end, axis in zip(starts, ends, axes):
        length = full[axis]
        start, end = int(start), int(end)
        start = max(0, min(length, start + length if start < 0 else start))
        end = max(0, min(length, end + length if end < 0 else end))
        begin[axis], size[axis] = start, max(0, end - start)
    if size[0] != full[0] or size[1] != full[1]:
        raise _Unmappable("Slice (of the batch or the channels)")
    if tuple(size) == full:
        m.bind(node.output[0], x)
        return
    source, offsets = x, tuple(begin[2:])
    entry = m.entries[x.ref.entry] if x.ref.entry >= 0 else None
    if entry is not None and entry.crop is not None and _reads_only(m, x, node):
        entry.deleted = True  # a crop of a crop: one crop of the first's source
        source, offsets = entry.crop[0], tuple(a + b for a, b in zip(entry.crop[1], offsets))
    if offsets != tuple((have - want) // 2 for have, want in zip(source.shape[1:], size[2:])):
        raise _Unmappable("Slice (not a centred crop)")
    tensor = m.emit(node, "crop", {"size": _axes_value(size[2:])}, (source,))
    m.entries[tensor.ref.entry].crop = (source, offsets)


def _split(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    if int(a.get("axis", 0)) % (len(x.shape) + 1) != 1:
        raise _Unmappable("Split (not of the channels)")
    outputs = list(node.output)
    channels = x.shape[0]
    sizes: list[int] | None = None
    if m.opset >= 13 and len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in m.const(node.input[1])]
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    else:
        count = int(a.get("num_outputs", len(outputs)))
        chunk = -(-channels // count)
        sizes = [min(chunk, channels - k * chunk) for k in range(count)]
    if sum(sizes) != channels or any(size < 1 for size in sizes):
        raise _Unmappable("Split (sizes that do not add up)")
    names = [re.sub(r"[^A-Za-z0-9_\-]+", "_", re.split(r"[./]", output)[-1]) for output in outputs]
    if len(set(names)) != len(names) or any(not NAME.fullmatch(name) or re.search(r"output_\d+$", name)
                                             for name in names):
        names = [str(k) for k in range(len(outputs))]
    options: dict[str, Any] = {"parts": len(sizes)} if len(set(sizes)) == 1 else {"sizes": sizes}
    if names != [str(k) for k in range(len(outputs))]:
        options["names"] = names
    parts = tuple((name, (size, *x.shape[1:])) for name, size in zip(names, sizes))
    m.entries.append(_Entry(node.name or node.op_type, node.op_type, "split", options, (x.ref,), None, parts))
    index = len(m.entries) - 1
    for output, (name, shape) in zip(outputs, parts):
        if output:
            m.bind(output, _Tensor(_Ref(index, name), shape, x.perm))


def _resize(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    mode = a.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise _Unmappable(f"{node.op_type} ({mode})")
    out = m.static_shape(node.output[0], node)
    full = (out[0], *x.shape)
    scales = None
    if node.op_type == "Upsample" and m.opset < 9:
        scales = a.get("scales")
    elif node.op_type == "Upsample" or m.opset < 11:
        scales = m.const_input(node, 1)
    else:
        scales = m.const_input(node, 2)
    if out[1] != full[1]:
        raise _Unmappable(f"{node.op_type} (of the channels)")
    values = []
    for k, (have, want) in enumerate(zip(full[2:], out[2:])):
        given = None if scales is None or len(scales) == 0 else float(scales[k + 2])
        values.append(_scale(have, want, given))
    dims = len(x.shape) - 1
    options: dict[str, Any] = {"scale": values[0] if len(set(values)) == 1 else values}
    if mode != "nearest":
        options["mode"] = {1: "linear", 2: "bilinear", 3: "trilinear"}[dims]
    m.emit(node, "upsample", options, (x,))


def _scale(have: int, want: int, given: float | None) -> Any:
    """A decimal scale that gives ``want`` from ``have`` under floor(L * s): the model's, else the shortest."""
    candidates = []
    if given is not None:
        candidates.append(Fraction(f"{given:.7g}"))
    exact = Fraction(want, have)
    candidates += [Fraction(math.ceil(exact * 10**digits), 10**digits) for digits in range(0, 16)]
    for value in candidates:
        if value > 0 and math.floor(have * value) == want:
            return int(value) if value.denominator == 1 else float(value)
    raise _Unmappable("Resize (a scale no decimal gives)")


def _pixel_shuffle(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    kind = "pixel_shuffle" if node.op_type == "DepthToSpace" else "pixel_unshuffle"
    m.emit(node, kind, {"factor": int(m.attrs(node)["blocksize"])}, (x,))


def _flatten(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)  # flattening reorders elements; counts do not care
    if int(m.attrs(node).get("axis", 1)) % (len(x.perm)) != 1:
        raise _Unmappable("Flatten (not from axis 1)")
    m.emit(node, "flatten", {}, (x,))


def _reshape(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    out = m.static_shape(node.output[0], node)
    full = tuple(m.onnx_shape(node.input[0]) or ())
    full = (out[0], *full[1:])
    if tuple(out) == full:
        m.bind(node.output[0], x)  # nothing changes: no layer
        return
    if len(out) == 2 and len(full) > 2 and out[1] == math.prod(full[1:]):
        m.emit(node, "flatten", {}, (x,))
        return
    if x.canonical and _channel_shuffle(m, node, x, full, out):
        return
    raise _Unmappable("Reshape")


def _channel_shuffle(m: _Mapper, node: Any, x: _Tensor, full: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """Reshape to (N, g, C/g, ...), Transpose of axes 1 and 2, Reshape back: ShuffleNet's channel shuffle."""
    if len(out) != len(full) + 1 or out[3:] != full[2:] or out[1] * out[2] != full[1]:
        return False
    transpose = m.sole_consumer(node.output[0], "Transpose")
    if transpose is None or list(m.attrs(transpose).get("perm", [])) != [0, 2, 1, *range(3, len(out))]:
        return False
    back = m.sole_consumer(transpose.output[0], "Reshape")
    if back is None or m.onnx_shape(back.output[0]) is None or \
            tuple(m.static_shape(back.output[0], back)[1:]) != full[1:]:
        return False
    m.absorb(transpose)
    m.absorb(back)
    m.emit(node, "channel_shuffle", {"groups": int(out[1])}, (x,), output=back.output[0])
    return True


def _squeeze(m: _Mapper, node: Any) -> None:
    """Squeezing the 1x1 spatial axes after a global pool, down to (N, C), is a flatten."""
    x = m.tensor(node.input[0], node, layout=True)
    out = m.static_shape(node.output[0], node)
    if len(out) == 2 and len(x.shape) > 1 and all(size == 1 for size in x.shape[1:]) and out[1] == x.shape[0]:
        m.emit(node, "flatten", {}, (x,))
        return
    raise _Unmappable("Squeeze")


def _transpose(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    perm = m.attrs(node).get("perm", list(reversed(range(len(x.perm)))))
    layout = tuple(x.perm[int(axis) % len(x.perm)] for axis in perm)
    if layout[0] != 0:
        raise _Unmappable("Transpose (of the batch axis)")
    m.bind(node.output[0], _Tensor(x.ref, x.shape, layout, x.via or node.name))


def _dropout(m: _Mapper, node: Any) -> None:
    if len(node.output) > 1 and node.output[1] and m.consumers.get(node.output[1]):
        raise _Unmappable("Dropout (its mask is read)")
    x = m.tensor(node.input[0], node, layout=True)
    ratio = m.attrs(node).get("ratio", 0.5) if m.opset < 12 else m.const_input(node, 1)
    p = 0.5 if ratio is None else round(float(ratio), 7)
    m.emit(node, "dropout", {"p": p} if p != 0.5 else {}, (x,), perm=x.perm)


def _identity(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    m.emit(node, "identity", {}, (x,), perm=x.perm)


def _softmax(m: _Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    rank = len(x.perm)
    axis = int(m.attrs(node).get("axis", -1 if m.opset >= 13 else 1)) % rank
    if m.opset < 13 and axis != rank - 1:
        raise _Unmappable("Softmax (opset < 13: over several axes)")
    dim = x.perm[axis]
    if dim == 0:
        raise _Unmappable("Softmax (over the batch)")
    m.emit(node, "softmax", {"dim": dim} if dim != 1 else {}, (x,), perm=x.perm)


#: ONNX op type -> mapping. Read-only; docs/onnx.md lists each with its convention (a test checks both agree).
OPS: Mapping[str, Callable[[_Mapper, Any], None]] = MappingProxyType({
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "BatchNormalization": _batch_norm,
    "InstanceNormalization": _instance_norm,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _group_norm,
    **{op: _activation for op in _UNARY},
    "PRelu": _prelu,
    "Clip": _clip,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Max": _binary,
    "Sum": _binary,
    "Div": _div,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Transpose": _transpose,
    "Resize": _resize,
    "Upsample": _resize,
    "DepthToSpace": _pixel_shuffle,
    "SpaceToDepth": _pixel_shuffle,
    "Dropout": _dropout,
    "Identity": _identity,
    "Softmax": _softmax,
})


# --------------------------------------------------------------------------- naming and writing


def _clean(level: str, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_\-]+", "_", level)
    return cleaned if cleaned.strip("_") else fallback


def _raw_levels(entries: list[_Entry]) -> list[tuple[str, ...]]:
    """Each entry's name as levels: PyTorch's '/a/a.b/Op' scopes become a.b (with the op when the module
    holds several layers); a dotted name keeps its dots; anything else is one level."""
    parsed: list[tuple[tuple[str, ...], str | None]] = []
    counts: dict[tuple[str, ...], int] = {}
    for entry in entries:
        fallback = entry.kind
        raw = entry.raw
        if "/" in raw:
            segments = [segment for segment in raw.split("/") if segment]
            op, scopes = (segments[-1] if segments else entry.op), segments[:-1]
            path: list[str] = []
            for before, segment in zip(["", *scopes], scopes):  # PyTorch: /layer1/layer1.0/conv1/Conv
                nested = before and segment.startswith(before + ".")
                path += (segment[len(before) + 1:] if nested else segment).split(".")
            scope = tuple(_clean(level, fallback) for level in path if level)
            parsed.append((scope, _clean(op, fallback)))
            for depth in range(1, len(scope) + 1):
                counts[scope[:depth]] = counts.get(scope[:depth], 0) + 1
        else:
            parsed.append((tuple(_clean(level, fallback) for level in raw.split(".") if level) or (fallback,), None))
    levels = []
    for module, last in parsed:
        if last is None:
            levels.append(module)
        elif module and counts.get(module) == 1:
            levels.append(module)  # a module with one layer: the layer is the module
        else:
            levels.append((*module, last))
    return levels


def _final_levels(m: _Mapper) -> None:
    """Unique names that nest into contiguous sequences: a name taken (as a layer, a block or an input), or a
    block that would reopen after it closed, gets a suffix _2, _3 ..."""
    live = [entry for entry in m.entries if not entry.deleted]
    used: set[tuple[str, ...]] = {(name,) for name, _ in m.input_names}
    stack: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (written path, final path) of open blocks

    def free(parent: tuple[str, ...], name: str) -> tuple[str, ...]:
        candidate, k = (*parent, name), 1
        while candidate in used:
            k += 1
            candidate = (*parent, f"{name}_{k}")
        used.add(candidate)
        return candidate

    for entry, levels in zip(live, _raw_levels(live)):
        group = levels[:-1]
        depth = 0
        while depth < len(stack) and depth < len(group) and stack[depth][0] == group[:depth + 1]:
            depth += 1
        del stack[depth:]
        for k in range(depth, len(group)):
            stack.append((group[:k + 1], free(stack[-1][1] if stack else (), group[k])))
        entry.levels = free(stack[-1][1] if stack else (), levels[-1])


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


def _write_spec(m: _Mapper) -> str:
    """The spec text. Names resolve in the enclosing block first: where a nearer tensor hides the one a layer
    reads (ConvNeXt's first block reads the stem's layer_norm_1 and holds a layer_norm_1 of its own), the
    hidden one is renamed with a suffix and the text written again."""
    m.input_names = _input_names(m)
    _final_levels(m)
    inputs = {name for name, _ in m.input_names}
    for _ in range(len(m.entries) + 1):
        try:
            return _spec_text(m)
        except _Shadowed as problem:
            _rename(m, problem.shadow if problem.target in inputs else problem.target)
    raise AssertionError("renaming did not end")  # each rename removes a clash: unreachable


def _rename(m: _Mapper, name: str) -> None:
    """Give the layer or block called ``name`` (a split part: its split) the next free suffix."""
    live = [entry for entry in m.entries if not entry.deleted]
    taken = {entry.levels[:k] for entry in live for k in range(1, len(entry.levels) + 1)}
    levels = tuple(name.split("."))
    while levels not in taken:
        levels = levels[:-1]
    k = 2
    while (*levels[:-1], f"{levels[-1]}_{k}") in taken:
        k += 1
    renamed = (*levels[:-1], f"{levels[-1]}_{k}")
    for entry in live:
        if entry.levels[:len(levels)] == levels:
            entry.levels = (*renamed, *entry.levels[len(levels):])


def _spec_text(m: _Mapper) -> str:
    live = [entry for entry in m.entries if not entry.deleted]
    names = {index: ".".join(entry.levels) for index, entry in enumerate(m.entries) if not entry.deleted}

    def full(ref: _Ref) -> str:
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
    x = full(_Ref(-1))
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


def _input_names(m: _Mapper) -> list[tuple[str, Shape]]:
    names: list[tuple[str, Shape]] = []
    for raw, shape in m.inputs:
        name, k = _clean(raw or "input", "input"), 1
        base = name
        while name in {taken for taken, _ in names}:
            k += 1
            name = f"{base}_{k}"
        names.append((name, shape))
    return names


def _header(m: _Mapper, live: list[_Entry]) -> list[str]:
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


def _verified(m: _Mapper, text: str) -> Network:
    """Build the imported spec and hold every layer's shape to the model's."""
    try:
        network = build_network(loads_spec(text, m.source))
    except SpecError as error:
        raise SpecError(f"the spec imported from this model does not build: {error.format()}", m.where) from None
    shapes = {node.name: node.output_shape for node in network.nodes}
    for entry in m.entries:
        if entry.deleted:
            continue
        name = ".".join(entry.levels)
        expected = [(f"{name}.{part}", shape) for part, shape in entry.parts] if entry.parts else [(name,
                                                                                                  entry.shape)]
        for layer, shape in expected:
            if shapes.get(layer) != shape:
                got = format_shape(shapes[layer]) if layer in shapes else "no layer"
                raise SpecError(f"layer '{layer}' (ONNX node '{entry.raw}', {entry.op}): convcost infers {got}, "
                                f"the model says {format_shape(shape or ())}; convcost cannot follow this model "
                                "here", m.where)
    return network
