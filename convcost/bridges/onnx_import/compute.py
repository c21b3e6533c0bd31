"""Mappings of the ONNX ops that compute: convolutions, pooling, linear layers, norms, activations, dropout and
softmax, with the patterns exporters write for one layer (MatMul + Add of a bias, x * Sigmoid(x), the GELU of
opset < 20). ``COMPUTE_OPS`` is their part of the op table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ...layers import Shape
from .model import Unmappable, hint
from .walk import Entry, Mapper, Op, Tensor, axes_value

__all__ = ["COMPUTE_OPS"]


def _pads(m: Mapper, node: Any, a: dict[str, Any], lengths: Shape, kernel: tuple[int, ...],
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
        return axes_value(begin)
    same = all(s == 1 and b + e == d * (k - 1) and b == (b + e) // 2
               for b, e, k, s, d in zip(begin, end, kernel, stride, dilation))
    if allow_same and same:
        return "same"
    raise Unmappable(f"{node.op_type} (asymmetric padding)")


def _set(options: dict[str, Any], key: str, value: Any, default: Any) -> None:
    if value != default:
        options[key] = value


def _conv_node(m: Mapper, node: Any) -> tuple[Tensor, Any, bool, dict[str, Any]]:
    """A Conv's or ConvTranspose's input, its weight (a parameter), whether it has a bias (a parameter too), and
    its attributes."""
    x = m.tensor(node.input[0], node)
    weight = m.weight(node.input[1], node, "the weight")
    bias = len(node.input) > 2 and bool(node.input[2])
    if bias:
        m.weight(node.input[2], node, "the bias")
    return x, weight, bias, m.attrs(node)


def _conv_window(m: Mapper, node: Any, a: dict[str, Any], x: Tensor, weight: Any) -> tuple[
        tuple[int, ...], tuple[int, ...], tuple[int, ...], int, tuple[int, ...], tuple[int, ...]]:
    """A Conv's or ConvTranspose's kernel, strides, dilations, groups and the pads at the start and end."""
    dims = len(x.shape) - 1
    kernel = tuple(a.get("kernel_shape", weight.shape[2:]))
    stride = tuple(a.get("strides", [1] * dims))
    dilation = tuple(a.get("dilations", [1] * dims))
    groups = int(a.get("group", 1))
    begin, end = _pads(m, node, a, x.shape[1:], kernel, stride, dilation)
    return kernel, stride, dilation, groups, begin, end


def _conv(m: Mapper, node: Any) -> None:
    x, weight, bias, a = _conv_node(m, node)
    kernel, stride, dilation, groups, begin, end = _conv_window(m, node, a, x, weight)
    padding = _padding(node, begin, end, kernel, stride, dilation, allow_same=True)
    out, channels = int(weight.shape[0]), x.shape[0]
    hinted = hint(node).get("kind", "")
    options: dict[str, Any] = {}
    if hinted == "pointwise" and set(kernel) == {1} and padding == 0 and set(dilation) == {1}:
        kind = "pointwise"
        options["out"] = out
        _set(options, "stride", axes_value(stride), 1)
        _set(options, "groups", groups, 1)
    elif groups > 1 and groups == channels and out % channels == 0 and hinted in ("", "depthwise"):
        kind = "depthwise"
        _set(options, "multiplier", out // channels, 1)
        options["kernel"] = axes_value(kernel)
        _set(options, "stride", axes_value(stride), 1)
        _set(options, "padding", padding, 0)
        _set(options, "dilation", axes_value(dilation), 1)
    else:
        kind = "conv"
        options["out"] = out
        options["kernel"] = axes_value(kernel)
        _set(options, "stride", axes_value(stride), 1)
        _set(options, "padding", padding, 0)
        _set(options, "dilation", axes_value(dilation), 1)
        _set(options, "groups", groups, 1)
    _set(options, "bias", bias, True)
    m.emit(node, kind, options, (x,))


def _conv_transpose(m: Mapper, node: Any) -> None:
    x, weight, bias, a = _conv_node(m, node)
    dims = len(x.shape) - 1
    if "output_shape" in a or (a.get("auto_pad", "NOTSET") or "NOTSET") not in ("NOTSET", "VALID"):
        raise Unmappable("ConvTranspose (output_shape or auto_pad SAME)")
    kernel, stride, dilation, groups, begin, end = _conv_window(m, node, a, x, weight)
    options: dict[str, Any] = {"out": int(weight.shape[1]) * groups, "kernel": axes_value(kernel)}
    _set(options, "stride", axes_value(stride), 1)
    _set(options, "padding", _padding(node, begin, end, kernel, stride, dilation, allow_same=False), 0)
    _set(options, "output_padding", axes_value(a.get("output_padding", [0] * dims)), 0)
    _set(options, "dilation", axes_value(dilation), 1)
    _set(options, "groups", groups, 1)
    _set(options, "bias", bias, True)
    m.emit(node, "conv_transpose", options, (x,))


def _pool(m: Mapper, node: Any) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise Unmappable(f"{node.op_type} (with indices)")
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    dims = len(x.shape) - 1
    kernel = tuple(a["kernel_shape"])
    stride = tuple(a.get("strides", [1] * dims))
    dilation = tuple(a.get("dilations", [1] * dims))
    op = "max" if node.op_type == "MaxPool" else "avg"
    if op == "avg" and set(dilation) != {1}:
        raise Unmappable("AveragePool (dilated)")
    begin, end = _pads(m, node, a, x.shape[1:], kernel, stride, dilation)
    padding = _padding(node, begin, end, kernel, stride, dilation, allow_same=False)
    ceil = bool(a.get("ceil_mode", 0))
    hinted = hint(node).get("kind", "")
    if hinted.startswith("adaptive_") and stride == kernel and padding == 0 and not ceil \
            and all(length % k == 0 for length, k in zip(x.shape[1:], kernel)):
        m.emit(node, f"adaptive_{op}_pool",
               {"output_size": axes_value([length // k for length, k in zip(x.shape[1:], kernel)])}, (x,))
        return
    options: dict[str, Any] = {"kernel": axes_value(kernel)}
    _set(options, "stride", axes_value(stride), options["kernel"])
    _set(options, "padding", padding, 0)
    if op == "max":
        _set(options, "dilation", axes_value(dilation), 1)
    _set(options, "ceil_mode", ceil, False)
    m.emit(node, f"{op}_pool", options, (x,))


def _global_pool(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    op = "avg" if node.op_type == "GlobalAveragePool" else "max"
    if hint(node).get("kind", "").startswith("adaptive_"):
        m.emit(node, f"adaptive_{op}_pool", {"output_size": 1}, (x,))
    else:
        m.emit(node, f"global_{op}_pool", {}, (x,))


def _reduce(m: Mapper, node: Any) -> None:
    """ReduceMean/ReduceMax over every spatial axis: global pooling (with keepdims=0, then a flatten)."""
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    rank = len(x.shape) + 1
    axes = a.get("axes") if m.opset < 18 else m.const_input(node, 1)
    if axes is None or sorted(int(axis) % rank for axis in axes) != list(range(2, rank)) or rank < 3:
        raise Unmappable(f"{node.op_type} (not over every spatial axis)")
    op = "avg" if node.op_type == "ReduceMean" else "max"
    if a.get("keepdims", 1):
        m.emit(node, f"global_{op}_pool", {}, (x,))
        return
    shape = (x.shape[0], *(1,) * (rank - 2))
    pooled = m.add_entry(Entry(node.name or node.op_type, node.op_type, f"global_{op}_pool", {}, (x.ref,), shape))
    m.emit(node, "flatten", {}, (pooled,), raw=f"{node.name or node.op_type}_flatten")


def _bias_after(m: Mapper, output: str, features: int) -> Any:
    """The Add of a bias (a parameter of ``features`` values on the last axis) that alone reads ``output``."""
    add = m.sole_consumer(output, "Add")
    if add is None:
        return None
    other = add.input[1] if add.input[0] == output else add.input[0]
    if other in m.weights and m.consts[other].size == features and m.consts[other].shape[-1:] == (features,):
        return add
    return None


def _matmul(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    if node.input[1] not in m.consts:
        raise Unmappable("MatMul (of two tensors)")
    weight = m.weight(node.input[1], node, "the weight")
    rank = len(x.perm)
    if weight.ndim != 2 or rank < 2:
        raise Unmappable("MatMul (a weight that is not a matrix)")
    axis = x.perm[-1]  # the channels-first axis the product runs over
    if axis == 0:
        raise Unmappable("MatMul (over the batch axis)")
    options: dict[str, Any] = {"out": int(weight.shape[1])}
    if rank > 2 and axis == 1:
        options["axis"] = "channels"
    elif rank > 2 and axis == rank - 1:
        options["axis"] = "last"
    elif rank > 2:
        raise Unmappable("MatMul (over a middle axis)")
    add = _bias_after(m, node.output[0], int(weight.shape[1]))
    if add is None:
        options["bias"] = False
    else:
        m.absorb(add)
    m.emit(node, "linear", options, (x,), output=add.output[0] if add is not None else None, perm=x.perm)


def _gemm(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    if len(x.shape) != 1 or a.get("transA", 0):
        raise Unmappable("Gemm (not features x weight)")
    if node.input[1] not in m.consts:
        raise Unmappable("Gemm (of two tensors)")
    weight = m.weight(node.input[1], node, "the weight")
    out = int(weight.shape[0] if a.get("transB", 0) else weight.shape[1])
    options: dict[str, Any] = {"out": out}
    if len(node.input) > 2 and node.input[2]:
        m.weight(node.input[2], node, "the bias")
    else:
        options["bias"] = False
    m.emit(node, "linear", options, (x,))


def _affine(m: Mapper, node: Any, names: tuple[str | None, ...]) -> bool:
    """Are these inputs (scale, bias, ...) parameters (initializers) or fixed constants? Both or neither."""
    learned = [name is not None and name in m.weights for name in names]
    if all(learned):
        return True
    if not any(learned) and all(name is None or name in m.consts for name in names):
        return False
    raise Unmappable(f"{node.op_type} (some of its weights learned, some fixed)")


def _batch_norm(m: Mapper, node: Any) -> None:
    if any(node.output[1:]) or m.attrs(node).get("training_mode", 0):
        raise Unmappable("BatchNormalization (training mode)")
    x = m.tensor(node.input[0], node)
    options: dict[str, Any] = {}
    _set(options, "affine", _affine(m, node, (node.input[1], node.input[2])), True)
    _set(options, "track_running_stats", _affine(m, node, (node.input[3], node.input[4])), True)
    m.emit(node, "batch_norm", options, (x,))


def _instance_norm(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    options: dict[str, Any] = {}
    _set(options, "affine", _affine(m, node, (node.input[1], node.input[2])), False)
    m.emit(node, "instance_norm", options, (x,))


def _group_norm(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    groups = int(m.attrs(node)["num_groups"])
    scale = m.consts.get(node.input[1])
    if scale is not None and scale.size != x.shape[0]:
        raise Unmappable("GroupNormalization (a scale per group, opset < 21)")
    options: dict[str, Any] = {"groups": groups}
    _set(options, "affine", _affine(m, node, (node.input[1], node.input[2])), True)
    m.emit(node, "group_norm", options, (x,))


def _layer_norm(m: Mapper, node: Any) -> None:
    if any(node.output[1:]):
        raise Unmappable("LayerNormalization (its statistics are read)")
    x = m.tensor(node.input[0], node, layout=True)
    rank = len(x.perm)
    if int(m.attrs(node).get("axis", -1)) % rank != rank - 1:
        raise Unmappable("LayerNormalization (over several axes)")
    axis = x.perm[-1]
    options: dict[str, Any] = {}
    if rank > 2 and axis != 1:
        if axis != rank - 1:
            raise Unmappable("LayerNormalization (over a middle axis)")
        options["over"] = "last"
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if node.input[1] in m.weights and bias is None:
        raise Unmappable("LayerNormalization (a scale without a bias)")
    _set(options, "affine", _affine(m, node, (node.input[1], bias)), True)
    m.emit(node, "layer_norm", options, (x,), perm=x.perm)


_UNARY = MappingProxyType({
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid",
    "Mish": "mish", "Elu": "elu", "Softplus": "softplus", "LeakyRelu": "leaky_relu", "Gelu": "gelu",
})


def _activation(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    function = _UNARY[node.op_type]
    if node.op_type in ("Sigmoid", "HardSigmoid"):  # x * sigmoid(x) is SiLU, x * hardsigmoid(x) HardSwish
        gate = m.sole_consumer(node.output[0], "Mul")
        if gate is not None and node.input[0] in gate.input and node.output[0] in gate.input \
                and (node.op_type == "Sigmoid" or _is_hardsigmoid_of_hardswish(m, node)):
            m.absorb(gate)
            options: dict[str, Any] = {"inplace": True} if hint(gate).get("inplace") else {}
            m.emit(gate, "silu" if node.op_type == "Sigmoid" else "hardswish", options, (x,), perm=x.perm)
            return
    options = {}
    a = m.attrs(node)
    if function == "leaky_relu":
        _set(options, "negative_slope", round(float(a.get("alpha", 0.01)), 7), 0.01)
    elif function == "elu":
        _set(options, "alpha", round(float(a.get("alpha", 1.0)), 7), 1.0)
    m.emit(node, function, options, (x,), perm=x.perm)


def _is_hardsigmoid_of_hardswish(m: Mapper, node: Any) -> bool:
    a = m.attrs(node)  # HardSwish is x * HardSigmoid(x) with alpha 1/6, beta 1/2
    return abs(a.get("alpha", 0.2) - 1 / 6) < 1e-6 and abs(a.get("beta", 0.5) - 0.5) < 1e-6


def _prelu(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    slope = m.weight(node.input[1], node, "the slope")
    if slope.size == 1:
        m.emit(node, "prelu", {}, (x,))
    elif slope.size == x.shape[0]:
        m.emit(node, "prelu", {"parameters": "channels"}, (x,))
    else:
        raise Unmappable("PRelu (a slope that is neither one nor per channel)")


def _clip(m: Mapper, node: Any) -> None:
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
        raise Unmappable("Clip (other than 0 to 6)")


def _div(m: Mapper, node: Any) -> None:
    """Div is only GELU's first step, as exporters before opset 20 write it: x/sqrt2, Erf, +1, *x, *0.5."""
    erf = m.sole_consumer(node.output[0], "Erf")
    add = erf and m.sole_consumer(erf.output[0], "Add")
    mul = add and m.sole_consumer(add.output[0], "Mul")
    half = mul and m.sole_consumer(mul.output[0], "Mul")
    if not (erf and add and mul and half) or node.input[1] not in m.consts or node.input[0] not in mul.input:
        raise Unmappable("Div")
    if abs(float(m.consts[node.input[1]].reshape(-1)[0]) - math.sqrt(2)) > 1e-3:
        raise Unmappable("Div")
    x = m.tensor(node.input[0], node, layout=True)
    for step in (erf, add, mul, half):
        m.absorb(step)
    m.emit(half, "gelu", {}, (x,), perm=x.perm)


def _dropout(m: Mapper, node: Any) -> None:
    if len(node.output) > 1 and node.output[1] and m.consumers.get(node.output[1]):
        raise Unmappable("Dropout (its mask is read)")
    x = m.tensor(node.input[0], node, layout=True)
    ratio = m.attrs(node).get("ratio", 0.5) if m.opset < 12 else m.const_input(node, 1)
    p = 0.5 if ratio is None else round(float(ratio), 7)
    m.emit(node, "dropout", {"p": p} if p != 0.5 else {}, (x,), perm=x.perm)


def _softmax(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    rank = len(x.perm)
    axis = int(m.attrs(node).get("axis", -1 if m.opset >= 13 else 1)) % rank
    if m.opset < 13 and axis != rank - 1:
        raise Unmappable("Softmax (opset < 13: over several axes)")
    dim = x.perm[axis]
    if dim == 0:
        raise Unmappable("Softmax (over the batch)")
    m.emit(node, "softmax", {"dim": dim} if dim != 1 else {}, (x,), perm=x.perm)


#: ONNX op type -> mapping, for the ops that compute (``OPS`` in the package joins both parts).
COMPUTE_OPS: Mapping[str, Op] = MappingProxyType({
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
    "Div": _div,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "Dropout": _dropout,
    "Softmax": _softmax,
})
