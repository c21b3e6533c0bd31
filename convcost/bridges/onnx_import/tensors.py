"""Mappings of the ONNX ops that join, cut or rearrange tensors: elementwise joins (and a learned per-channel
scale), Concat (with U-Net's centred crops), Slice, Split, Resize, DepthToSpace, Flatten, Reshape (and
ShuffleNet's channel shuffle), Squeeze, Transpose (followed, not mapped) and Identity. ``TENSOR_OPS`` is their
part of the op table."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from ...layers import AXES
from ...spec import NAME
from .model import Unmappable
from .walk import Entry, Mapper, Op, Ref, Tensor, axes_value

__all__ = ["TENSOR_OPS"]


def _binary(m: Mapper, node: Any) -> None:
    names = [name for name in node.input if name]
    consts = [name for name in names if name in m.consts]
    tensors = [name for name in names if name not in m.consts]
    if consts:
        if node.op_type == "Mul" and len(tensors) == 1 and len(consts) == 1 and consts[0] in m.weights:
            _layer_scale(m, node, tensors[0], m.consts[consts[0]])
            return
        raise Unmappable(f"{node.op_type} (with a constant)")
    values = [m.tensor(name, node, layout=True) for name in tensors]
    if len({value.perm for value in values}) > 1:
        values = [m.tensor(name, node) for name in tensors]
    if len({len(value.perm) for value in values}) > 1:
        raise Unmappable(f"{node.op_type} (tensors of different ranks)")
    kind = {"Add": "add", "Sum": "add", "Sub": "sub", "Mul": "mul", "Max": "max"}[node.op_type]
    if len(values) == 1:  # Sum or Max of one tensor: a copy
        m.emit(node, "identity", {}, (values[0],), perm=values[0].perm)
        return
    m.emit(node, kind, {}, tuple(values), perm=values[0].perm)


def _layer_scale(m: Mapper, node: Any, name: str, scale: Any) -> None:
    """A tensor times a learned per-channel scale (broadcast on every other axis): ``layer_scale``."""
    x = m.tensor(name, node, layout=True)
    rank = len(x.perm)
    if scale.ndim > rank:
        raise Unmappable("Mul (by a parameter that is not one per channel)")
    shape = (1,) * (rank - scale.ndim) + tuple(scale.shape)
    per_channel = all(size == (x.shape[0] if source == 1 else 1) for size, source in zip(shape, x.perm))
    if not per_channel or x.shape[0] == 1:
        raise Unmappable("Mul (by a parameter that is not one per channel)")
    m.emit(node, "layer_scale", {}, (x,), perm=x.perm)


def _concat(m: Mapper, node: Any) -> None:
    names = [name for name in node.input if name]
    values = [m.tensor(name, node, layout=True) for name in names]
    if len({value.perm for value in values}) > 1:
        values = [m.tensor(name, node) for name in names]
    rank = len(values[0].perm)
    axis = values[0].perm[int(m.attrs(node).get("axis", 1)) % rank]
    if axis == 0:
        raise Unmappable("Concat (on the batch axis)")
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


def _centre_crops(m: Mapper, values: list[Tensor], node: Any, axis: int) -> list[Tensor] | None:
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


def _reads_only(m: Mapper, value: Tensor, node: Any) -> bool:
    """Is ``node`` the only reader of the tensor ``value`` stands for?"""
    names = [name for name, bound in m.values.items() if bound.ref == value.ref]
    return all(reader is node for name in names for reader in m.consumers.get(name, []))


def _slice(m: Mapper, node: Any) -> None:
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
        raise Unmappable("Slice (with steps)")
    begin = [0] * len(full)
    size = list(full)
    for start, end, axis in zip(starts, ends, axes):
        length = full[axis]
        start, end = int(start), int(end)
        start = max(0, min(length, start + length if start < 0 else start))
        end = max(0, min(length, end + length if end < 0 else end))
        begin[axis], size[axis] = start, max(0, end - start)
    if size[0] != full[0] or size[1] != full[1]:
        raise Unmappable("Slice (of the batch or the channels)")
    if tuple(size) == full:
        m.bind(node.output[0], x)
        return
    source, offsets = x, tuple(begin[2:])
    entry = m.entries[x.ref.entry] if x.ref.entry >= 0 else None
    if entry is not None and entry.crop is not None and _reads_only(m, x, node):
        entry.deleted = True  # a crop of a crop: one crop of the first's source
        source, offsets = entry.crop[0], tuple(a + b for a, b in zip(entry.crop[1], offsets))
    if offsets != tuple((have - want) // 2 for have, want in zip(source.shape[1:], size[2:])):
        raise Unmappable("Slice (not a centred crop)")
    tensor = m.emit(node, "crop", {"size": axes_value(size[2:])}, (source,))
    m.entries[tensor.ref.entry].crop = (source, offsets)


def _split(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    if int(a.get("axis", 0)) % (len(x.shape) + 1) != 1:
        raise Unmappable("Split (not of the channels)")
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
        raise Unmappable("Split (sizes that do not add up)")
    names = [re.sub(r"[^A-Za-z0-9_\-]+", "_", re.split(r"[./]", output)[-1]) for output in outputs]
    if len(set(names)) != len(names) or any(not NAME.fullmatch(name) or re.search(r"output_\d+$", name)
                                             for name in names):
        names = [str(k) for k in range(len(outputs))]
    options: dict[str, Any] = {"parts": len(sizes)} if len(set(sizes)) == 1 else {"sizes": sizes}
    if names != [str(k) for k in range(len(outputs))]:
        options["names"] = names
    parts = tuple((name, (size, *x.shape[1:])) for name, size in zip(names, sizes))
    m.entries.append(Entry(node.name or node.op_type, node.op_type, "split", options, (x.ref,), None, parts))
    index = len(m.entries) - 1
    for output, (name, shape) in zip(outputs, parts):
        if output:
            m.bind(output, Tensor(Ref(index, name), shape, x.perm))


def _resize(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    a = m.attrs(node)
    mode = a.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise Unmappable(f"{node.op_type} ({mode})")
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
        raise Unmappable(f"{node.op_type} (of the channels)")
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
    raise Unmappable("Resize (a scale no decimal gives)")


def _pixel_shuffle(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node)
    kind = "pixel_shuffle" if node.op_type == "DepthToSpace" else "pixel_unshuffle"
    m.emit(node, kind, {"factor": int(m.attrs(node)["blocksize"])}, (x,))


def _flatten(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)  # flattening reorders elements; counts do not care
    if int(m.attrs(node).get("axis", 1)) % (len(x.perm)) != 1:
        raise Unmappable("Flatten (not from axis 1)")
    m.emit(node, "flatten", {}, (x,))


def _reshape(m: Mapper, node: Any) -> None:
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
    raise Unmappable("Reshape")


def _channel_shuffle(m: Mapper, node: Any, x: Tensor, full: tuple[int, ...], out: tuple[int, ...]) -> bool:
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


def _squeeze(m: Mapper, node: Any) -> None:
    """Squeezing the 1x1 spatial axes after a global pool, down to (N, C), is a flatten."""
    x = m.tensor(node.input[0], node, layout=True)
    out = m.static_shape(node.output[0], node)
    if len(out) == 2 and len(x.shape) > 1 and all(size == 1 for size in x.shape[1:]) and out[1] == x.shape[0]:
        m.emit(node, "flatten", {}, (x,))
        return
    raise Unmappable("Squeeze")


def _transpose(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    perm = m.attrs(node).get("perm", list(reversed(range(len(x.perm)))))
    layout = tuple(x.perm[int(axis) % len(x.perm)] for axis in perm)
    if layout[0] != 0:
        raise Unmappable("Transpose (of the batch axis)")
    m.bind(node.output[0], Tensor(x.ref, x.shape, layout, x.via or node.name))


def _identity(m: Mapper, node: Any) -> None:
    x = m.tensor(node.input[0], node, layout=True)
    m.emit(node, "identity", {}, (x,), perm=x.perm)


#: ONNX op type -> mapping, for the ops that join, cut or rearrange (``OPS`` in the package joins both parts).
TENSOR_OPS: Mapping[str, Op] = MappingProxyType({
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Max": _binary,
    "Sum": _binary,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Transpose": _transpose,
    "Resize": _resize,
    "Upsample": _resize,
    "DepthToSpace": _pixel_shuffle,
    "SpaceToDepth": _pixel_shuffle,
    "Identity": _identity,
})
