"""Constant folding: the shape arithmetic exporters write (Shape, Gather, Concat, Reshape, ...) computed on the
model's constants, so that the layers after it read numbers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .model import Model

__all__ = ["fold"]

_FOLDED = ("Constant", "Identity", "Cast", "CastLike", "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat",
           "Reshape", "Slice", "Expand", "ConstantOfShape", "Range", "Transpose", "Add", "Sub", "Mul", "Div", "Neg",
           "Equal", "Where", "Floor", "Ceil", "Sqrt", "Max", "Min", "ReduceProd")


def fold(m: Model, node: Any) -> bool:
    """Compute a node on constants (shape arithmetic); True when it was one."""
    names = [name for name in node.input if name]
    if node.op_type not in _FOLDED or node.domain not in ("", "ai.onnx"):
        if names and all(name in m.consts or name in m.unfoldable for name in names):
            for output in node.output:
                m.unfoldable[output] = node.op_type
            return True
        return False
    if node.op_type in ("Shape", "Size"):
        shape = m.onnx_shape(names[0])
        if shape is None or any(not isinstance(s, int) for s in shape[1:]):
            return False
        shape = (1 if not isinstance(shape[0], int) else shape[0], *shape[1:])
        if node.op_type == "Size":
            value = m.np.array(math.prod(shape), m.np.int64)
        else:
            attrs = m.attrs(node)
            value = m.np.array(shape[attrs.get("start", 0):attrs.get("end", len(shape))], m.np.int64)
        m.consts[node.output[0]] = value
        return True
    if not all(name in m.consts for name in names):
        if any(name in m.unfoldable for name in names) and all(
                name in m.consts or name in m.unfoldable for name in names):
            for output in node.output:
                m.unfoldable[output] = m.unfoldable[next(n for n in names if n in m.unfoldable)]
            return True
        return False
    try:
        values = _fold(m, node, [m.consts[name] if name else None for name in node.input])
    except Exception:  # an op or attribute this small folder does not cover
        for output in node.output:
            m.unfoldable[output] = node.op_type
        return True
    for output, value in zip(node.output, values):
        m.consts[output] = value
    if node.op_type in ("Identity", "Cast") and node.input[0] in m.weights:
        m.weights.add(node.output[0])  # a deduplicated or cast initializer is still a parameter
    return True


def _fold(m: Model, node: Any, inputs: list[Any]) -> list[Any]:
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
