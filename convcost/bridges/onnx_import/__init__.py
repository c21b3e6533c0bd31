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

The stages, one module each: ``model`` reads the model (shape inference, initializers), ``fold`` computes
its shape arithmetic, ``walk`` walks the graph with the op table (``compute`` and ``tensors`` hold the
mappings), ``names`` names the layers and ``write`` writes the spec text; this module checks the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ...builder import build_network
from ...errors import SpecError
from ...network import Network
from ...spec import Spec, loads_spec
from ...units import format_shape
from .compute import COMPUTE_OPS
from .model import load
from .tensors import TENSOR_OPS
from .walk import Mapper, Op
from .write import write_spec

__all__ = ["OPS", "Imported", "import_onnx", "onnx_network", "onnx_spec"]

#: ONNX op type -> mapping. Read-only; docs/onnx.md lists each with its convention (a test checks both agree).
OPS: Mapping[str, Op] = MappingProxyType({**COMPUTE_OPS, **TENSOR_OPS})


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


def onnx_network(path: str, *, allow_unknown: bool = False) -> Network:
    """An ONNX model file, imported and built (every command's path for a .onnx argument)."""
    return import_onnx(load(path), source=path, allow_unknown=allow_unknown).network


def onnx_spec(path: str, *, allow_unknown: bool = False) -> Spec:
    """An ONNX model file as a :class:`Spec` (``convcost check`` reads specs)."""
    imported = import_onnx(load(path), source=path, allow_unknown=allow_unknown)
    return loads_spec(imported.text, path)


def import_onnx(model: Any, *, source: str = "<model>", allow_unknown: bool = False) -> Imported:
    """An ``onnx.ModelProto`` (or the path of one) -> :class:`Imported`; raises :class:`SpecError`."""
    if isinstance(model, str):
        source = model if source == "<model>" else source
        model = load(model)
    mapper = Mapper(model, source, allow_unknown)
    mapper.run(OPS)
    text = write_spec(mapper)
    network = _verified(mapper, text)
    live = [entry for entry in mapper.entries if not entry.deleted]
    opaque = tuple((label, count, first) for label, (count, first) in mapper.unknown.items())
    return Imported(text=text, source=source, network=network, onnx_nodes=len(model.graph.node), layers=len(live),
                    opaque=opaque, notes=tuple(mapper.notes))


def _verified(m: Mapper, text: str) -> Network:
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
