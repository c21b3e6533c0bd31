"""Reading an ONNX model: the file, ONNX shape inference, the initializers (weights and small constants), the
nodes that read each tensor, node attributes, and the hints convcost's own export leaves in a ``doc_string``."""

from __future__ import annotations

import math
from typing import Any

from ...errors import Location, SpecError
from .. import require_onnx

__all__ = ["Model", "Unmappable", "hint", "info_shape", "load"]

#: Ops whose output has their first input's shape (used where shape inference says nothing).
_SAME_SHAPE = frozenset({"GroupNormalization", "LayerNormalization", "InstanceNormalization", "BatchNormalization",
                         "Relu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Mish", "Elu", "Softplus", "LeakyRelu",
                         "Gelu", "PRelu", "Clip", "Dropout", "Identity", "Softmax"})
_SMALL = 4096  # initializers up to this many values are read (shapes, scales); larger ones are weights


class Unmappable(Exception):
    """This node cannot be mapped; ``label`` names the op (and why) in the error listing."""

    def __init__(self, label: str):
        super().__init__(label)
        self.label = label


def load(path: str) -> Any:
    onnx = require_onnx()
    try:
        return onnx.load(path, load_external_data=False)
    except OSError as exc:
        raise SpecError(f"cannot read model: {exc.strerror or exc}", Location(path)) from None
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX model
        raise SpecError(f"not an ONNX model ({type(exc).__name__}: {str(exc)[:200] or 'cannot parse'})",
                        Location(path)) from None


class Model:
    """The model as read: the shape of every tensor the model or shape inference gives, the constants
    (initializers, and what folding computes), which of them are parameters, and each tensor's readers."""

    def __init__(self, model: Any, source: str):
        self.onnx = require_onnx()
        import numpy

        self.np = numpy
        self.source = source
        self.where = Location(source)
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        try:
            inferred = self.onnx.shape_inference.infer_shapes(_without_weight_data(self.onnx, model), data_prop=True)
        except Exception as exc:
            raise SpecError(f"ONNX shape inference failed: {str(exc).splitlines()[0][:300]}", self.where) from None
        self.shapes: dict[str, tuple[Any, ...]] = {}
        for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            shape = info_shape(info)
            if shape is not None:
                self.shapes[info.name] = shape
        self.consts: dict[str, Any] = {}
        self.weights: set[str] = set()
        for tensor in self.graph.initializer:
            self.consts[tensor.name] = self._array(tensor)
            self.weights.add(tensor.name)
        self.unfoldable: dict[str, str] = {}  # a constant the import could not compute -> its op
        self.consumers: dict[str, list[Any]] = {}
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        for output in self.graph.output:
            self.consumers.setdefault(output.name, []).append(None)  # a graph output is read at the end

    def _array(self, tensor: Any) -> Any:
        """An initializer's values; for a weight (large, or kept outside the file) only its shape counts, so
        it is a zero-copy stand-in of that shape."""
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL or math.prod(tensor.dims) > _SMALL:
            dtype = self.onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
            return self.np.broadcast_to(self.np.zeros((), dtype), tuple(tensor.dims))
        return self.onnx.numpy_helper.to_array(tensor)

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
            raise Unmappable(f"{self.unfoldable[name]} (computing a constant)")
        if name not in self.consts:
            raise Unmappable("(a constant computed from tensors)")
        return self.consts[name]

    def weight(self, name: str, node: Any, what: str) -> Any:
        """A weight the layer's options are read from: a graph initializer (directly or through Identity)."""
        if name not in self.weights:
            if name in self.consts:
                raise Unmappable(f"{node.op_type} ({what} is a constant, not a parameter)")
            raise Unmappable(f"{node.op_type} ({what} computed in the graph)")
        return self.consts[name]

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

    def const_input(self, node: Any, index: int) -> Any:
        """Optional constant input ``index`` of ``node`` (None when left out)."""
        if len(node.input) <= index or not node.input[index]:
            return None
        return self.const(node.input[index])


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


def info_shape(info: Any) -> tuple[Any, ...] | None:
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


def hint(node: Any) -> dict[str, Any]:
    """What convcost's own export recorded in a node's doc_string: ``convcost: kind=depthwise inplace``."""
    text = getattr(node, "doc_string", "") or ""
    if not text.startswith("convcost:"):
        return {}
    recorded: dict[str, Any] = {}
    for word in text[len("convcost:"):].split():
        key, _, value = word.partition("=")
        recorded[key] = value or True
    return recorded
