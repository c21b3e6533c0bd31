"""Stage 4b: bottleneck designs evaluated over a whole grid at once with numpy.

Two sweeps, both equal point for point to the scalar engine
(:func:`convcost.bottleneck.insert_bottlenecks` then :func:`convcost.costs.analyze`):

* :func:`sweep_layer`: one convolution (from flags or a spec's ``--layer``),
  evaluated as a network of its own, over bottleneck widths x kernel sizes x
  input resolutions, from closed-form counts;
* :func:`sweep_network`: a whole network over bottleneck widths (or fractions)
  x input resolutions; only the eligible convs change, so totals are the
  as-written totals plus per-conv closed-form differences, and peak memory
  runs the inference schedule once per distinct set of rewritten convs with
  tensor sizes held as arrays.

At a point where a conv is not eligible (width not narrower than its input
channels, or, with ``expand``, its output channels), it stays as written, as
in the scalar rewrite; ``applied`` says whether anything was inserted.

Counts are int64 when a bound computed with Python ints first shows that no
width, resolution, count or intermediate size can overflow, else numpy object
arrays of Python ints (exact, slower); ``SweepResult.python_ints`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import numpy as np

from .bottleneck import first_conv, insert_bottlenecks_at, with_input_shape
from .costs import analyze, peak_activation_elements
from .layers import Conv, Shape, conv_output_length, numel
from .network import Network
from .units import FLOPS_PER_MAC, dtype_bytes

__all__ = ["METRICS", "SweepResult", "grouped_pareto_mask", "pareto_mask", "sweep_layer", "sweep_network"]

#: Quantities computed per point (lower is better); the Pareto front trades them against width.
METRICS = ("macs", "flops", "params", "activation_bytes", "peak_activation_bytes")
_INT64_SAFE = 2**62

Progress = Callable[[int, int], None]  # (points done, points in all)
#: An integer count, or an array of them (one per grid point); the closed forms broadcast over both.
Counts = Any


@dataclass(frozen=True, slots=True)
class SweepResult:
    """Columns of equal length, one entry per grid point.

    ``width`` (int, or the fraction as a float for fraction sweeps), ``kernel``
    (index into ``kernel_labels`` and ``kernels``), ``resolution`` (0 = as
    written), ``applied`` (bool), the METRICS, ``baseline_<metric>`` (the
    design without any bottleneck at that kernel and resolution) and
    ``pareto`` (bool: no point of the same kernel and resolution keeps at least
    the width for no more of every Pareto metric, one strictly less).
    """

    target: str
    input_shape: Shape
    batch: int
    dtype: str
    width_kind: str  # "width" or "fraction"
    kernel_labels: tuple[str, ...]  # "5", "1x7"; "-" for a whole network
    columns: Mapping[str, np.ndarray]
    swept: tuple[str, ...]  # which of width/kernel/resolution vary
    pareto_metrics: tuple[str, ...] = ("macs",)
    kernels: tuple[tuple[int, ...], ...] = ()  # the kernel of each label (none for a whole network)
    python_ints: bool = False  # values beyond int64: columns are object arrays of exact Python ints

    def __len__(self) -> int:
        return len(self.columns["macs"])

    @property
    def written_resolution(self) -> int | None:
        """The input's spatial side as written, when every side is equal (else None)."""
        spatial = self.input_shape[1:]
        return spatial[0] if spatial and len(set(spatial)) == 1 else None

    def kernel_value(self, index: int) -> int | list[int] | None:
        """A kernel as data: 5 for 5x5, [1, 7] per axis, None for a whole-network sweep."""
        if index >= len(self.kernels):
            return None
        kernel = self.kernels[index]
        return kernel[0] if len(set(kernel)) == 1 else list(kernel)

    def point(self, index: int) -> dict[str, Any]:
        """One point with exact Python values; ``kernel`` as :meth:`kernel_value`, ``resolution`` the input's
        side (as written when not swept; None for a non-square input)."""
        row: dict[str, Any] = {}
        for name, column in self.columns.items():
            value = column[index]
            if name == "kernel":
                row[name] = self.kernel_value(int(value))
            elif name == "resolution":
                row[name] = int(value) or self.written_resolution
            elif column.dtype == bool:
                row[name] = bool(value)
            elif column.dtype.kind == "f":  # a fraction's width, a roofline time
                row[name] = float(value)
            else:
                row[name] = int(value)
        return row


def _dtype_for(bound: int) -> Any:
    """int64 when every value is below ``bound`` < 2^62 (a sum of two still fits), else Python ints."""
    return np.int64 if bound < _INT64_SAFE else object


def _maximum(int_type: Any) -> Callable[[Any, Any], Any]:
    """Elementwise max over counts of ``int_type``; with Python ints, scalars too stay Python ints."""
    if int_type is object:
        return lambda a, b: np.maximum(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    return np.maximum


def _ints(values: Sequence[int], dtype: Any) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=dtype)


# --------------------------------------------------------------------------- one layer

def _layer_core(c_in: int, c_out: int, bias: int, expand: bool, s_in: Counts, s_out: Counts, kvol: Counts,
                w: Counts) -> dict[str, dict[str, Counts]]:
    """Closed-form per-sample counts (activations in elements) of the conv and of its bottlenecked form.
    All arrays broadcast; nothing here loops over points."""
    base = {
        "macs": s_out * (c_out * c_in) * kvol,
        "params": (c_out * c_in) * kvol + bias * c_out,
        "activation_bytes": s_out * c_out,
        "peak_activation_bytes": s_in * c_in + s_out * c_out,
    }
    base["flops"] = FLOPS_PER_MAC * base["macs"] + bias * s_out * c_out
    if expand:
        new = {
            "macs": s_in * c_in * w + s_out * w * w * kvol + s_out * w * c_out,
            "params": c_in * w + w * w * kvol + w * c_out + bias * (2 * w + c_out),
            "activation_bytes": s_in * w + s_out * w + s_out * c_out,
            "peak_activation_bytes": np.maximum(np.maximum(s_in * c_in + s_in * w, s_in * w + s_out * w),
                                                s_out * w + s_out * c_out),
        }
        new["flops"] = FLOPS_PER_MAC * new["macs"] + bias * (s_in * w + s_out * w + s_out * c_out)
    else:
        new = {
            "macs": s_in * c_in * w + s_out * c_out * w * kvol,
            "params": c_in * w + w * kvol * c_out + bias * (w + c_out),
            "activation_bytes": s_in * w + s_out * c_out,
            "peak_activation_bytes": np.maximum(s_in * c_in + s_in * w, s_in * w + s_out * c_out),
        }
        new["flops"] = FLOPS_PER_MAC * new["macs"] + bias * (s_in * w + s_out * c_out)
    return {"base": base, "new": new}


def _kernel_label(kernel: tuple[int, ...]) -> str:
    return str(kernel[0]) if len(set(kernel)) == 1 else "x".join(map(str, kernel))


def sweep_layer(layer: Conv, input_shape: Shape, widths: Sequence[int], *, kernels: Sequence[int] | None = None,
                resolutions: Sequence[int] | None = None, expand: bool = False, min_kernel: int = 2,
                batch: int = 1, dtype: str = "float32", name: str = "layer",
                pareto_metrics: Sequence[str] = ("macs",)) -> SweepResult:
    """Every (width, kernel, resolution) design of one conv, as a one-layer network.

    ``kernels`` replace the kernel by k on every axis (padding kept; ``same`` stays
    ``same``); ``resolutions`` set every spatial length of the input to r.
    Combinations whose output would be empty are left out.
    """
    if layer.groups != 1:
        raise ValueError(f"a bottleneck sweep needs a conv with groups 1, '{name}' has groups={layer.groups}")
    if not widths or any(isinstance(w, bool) or int(w) < 1 for w in widths):
        raise ValueError("widths must be integers >= 1")
    size = dtype_bytes(dtype)
    dims = layer.dims
    kernel_options = [layer.kernel] if kernels is None else [(int(k),) * dims for k in kernels]
    length_options = [input_shape[1:]] if resolutions is None else [(int(r),) * dims for r in resolutions]
    # Per (kernel, resolution) combination: a handful of Python ints (few combinations, many widths).
    combos: list[tuple[int, int, int, int, int, int]] = []  # kernel idx, resolution, s_in, s_out, kvol, kernel ok
    for k_index, kernel in enumerate(kernel_options):
        for lengths in length_options:
            if layer.same:
                out = tuple(lengths)
            else:
                out = tuple(conv_output_length(n, k, s, p, d) for n, k, s, p, d in
                            zip(lengths, kernel, layer.stride, layer.padding, layer.dilation))
            if min(out) <= 0 or min(lengths) <= 0:
                continue
            resolution = 0 if resolutions is None else lengths[0]
            combos.append((k_index, resolution, math.prod(lengths), math.prod(out), math.prod(kernel),
                           int(max(kernel) >= min_kernel)))
    if not combos:
        raise ValueError("no kernel size and resolution in the grid gives a non-empty output")
    c_in, c_out, bias = layer.in_channels, layer.out_channels, int(layer.bias)
    w_max = max(int(w) for w in widths)
    s_max = max(max(c[2], c[3]) for c in combos)
    k_max = max(c[4] for c in combos)
    bound = max(4 * s_max * max(c_in, c_out, w_max) ** 2 * k_max * batch * max(size, FLOPS_PER_MAC),
                max(c[1] for c in combos))
    int_type = _dtype_for(bound)
    kernel_index = np.array([c[0] for c in combos], dtype=np.int64)[:, None]
    resolution_of = _ints([c[1] for c in combos], int_type)[:, None]
    s_in = _ints([c[2] for c in combos], int_type)[:, None]
    s_out = _ints([c[3] for c in combos], int_type)[:, None]
    kvol = _ints([c[4] for c in combos], int_type)[:, None]
    kernel_ok = np.array([bool(c[5]) for c in combos])[:, None]
    w = _ints(widths, int_type)[None, :]
    parts = _layer_core(c_in, c_out, bias, expand, s_in, s_out, kvol, w)
    applied = kernel_ok & (w < c_in)
    if expand:
        applied = applied & (w < c_out)
    shape = (len(combos), len(widths))
    scale = {"macs": batch, "flops": batch, "params": 1, "activation_bytes": batch * size,
             "peak_activation_bytes": batch * size}
    columns: dict[str, np.ndarray] = {
        "width": np.broadcast_to(w, shape).ravel(),
        "kernel": np.broadcast_to(kernel_index, shape).ravel(),
        "resolution": np.broadcast_to(resolution_of, shape).ravel(),
        "applied": applied.ravel(),
    }
    for metric in METRICS:
        base = np.broadcast_to(parts["base"][metric] * scale[metric], shape)
        columns[metric] = np.where(applied, parts["new"][metric] * scale[metric], base).ravel()
        columns[f"baseline_{metric}"] = base.ravel()
    swept = tuple(axis for axis, options in (("width", widths), ("kernel", kernels), ("resolution", resolutions))
                  if options is not None and len(options) > 1)
    columns["pareto"] = grouped_pareto_mask(columns, pareto_metrics)
    return SweepResult(target=name, input_shape=tuple(input_shape), batch=batch, dtype=dtype, width_kind="width",
                       kernel_labels=tuple(_kernel_label(k) for k in kernel_options),
                       columns=MappingProxyType(columns), swept=swept or ("width",),
                       pareto_metrics=tuple(pareto_metrics), kernels=tuple(tuple(k) for k in kernel_options),
                       python_ints=int_type is object)


# --------------------------------------------------------------------------- Pareto front

def grouped_pareto_mask(columns: Mapping[str, np.ndarray], metrics: Sequence[str]) -> np.ndarray:
    """:func:`pareto_mask` within each (kernel, resolution) group: a larger kernel or input always costs
    more at the same width, so comparing across them would mark every such point dominated."""
    kernel, resolution = columns["kernel"], columns["resolution"]
    order = np.lexsort((resolution, kernel))  # groups become contiguous runs
    k, r = kernel[order], resolution[order]
    starts = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (r[1:] != r[:-1])])
    if len(starts) <= 1:
        return pareto_mask(columns["width"], [columns[m] for m in metrics])
    mask = np.zeros(len(order), dtype=bool)
    for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
        members = order[start:stop]
        mask[members] = pareto_mask(columns["width"][members], [columns[m][members] for m in metrics])
    return mask


def pareto_mask(width: np.ndarray, costs: Sequence[np.ndarray]) -> np.ndarray:
    """True where no other point has at least the width and at most every cost, one strictly better.

    Width is the capacity kept (more is better); costs are minimised. One cost
    takes a sort and a running minimum; several take a pass per distinct width
    against the front found so far.
    """
    n = len(width)
    if n == 0:
        return np.zeros(0, dtype=bool)
    width = np.asarray(width)
    width_key = width if width.dtype == object else np.asarray(width, dtype=float)  # Python ints stay exact
    if len(costs) == 1:
        cost = np.asarray(costs[0])
        order = np.argsort(width_key, kind="stable")  # ascending width
        w_sorted, c_sorted = width_key[order], cost[order]
        new_group = np.r_[True, w_sorted[1:] != w_sorted[:-1]]
        starts = np.flatnonzero(new_group)
        group_of = np.cumsum(new_group) - 1
        group_min = np.minimum.reduceat(c_sorted, starts)
        # cheapest cost among strictly wider points: a suffix minimum over the later groups
        if cost.dtype == object:
            wider = np.empty(len(starts), dtype=object)
            wider[-1] = math.inf  # Python compares ints with inf exactly
        else:
            wider = np.empty(len(starts), dtype=cost.dtype)
            wider[-1] = np.iinfo(cost.dtype).max if cost.dtype.kind in "iu" else np.inf
        if len(starts) > 1:
            wider[:-1] = np.minimum.accumulate(group_min[::-1])[::-1][1:]
        keep = (c_sorted == group_min[group_of]) & (c_sorted < wider[group_of])
        mask = np.zeros(n, dtype=bool)
        mask[order] = keep.astype(bool)
        return mask
    matrix: Any = np.stack([np.asarray(c, dtype=object if any(np.asarray(c).dtype == object for c in costs) else None)
                       for c in costs], axis=1)
    mask = np.zeros(n, dtype=bool)
    front = matrix[:0]
    for value in np.unique(width_key)[::-1]:
        members = np.flatnonzero(width_key == value)
        group = matrix[members]
        if len(front):
            by_front = np.zeros(len(members), dtype=bool)
            for start in range(0, len(front), 512):
                block = front[start:start + 512]
                by_front |= (block[None, :, :] <= group[:, None, :]).all(axis=2).any(axis=1)
        else:
            by_front = np.zeros(len(members), dtype=bool)
        le = (group[None, :, :] <= group[:, None, :]).all(axis=2)
        lt = (group[None, :, :] < group[:, None, :]).any(axis=2)
        within = (le & lt).any(axis=1)
        keep = ~by_front & ~within
        mask[members[keep]] = True
        front = np.concatenate([front, group[keep]]) if len(front) else group[keep]
    return mask


# --------------------------------------------------------------------------- whole network

def sweep_network(network: Network, *, widths: Sequence[int] | None = None,
                  fractions: Sequence[Fraction] | None = None, resolutions: Sequence[int] | None = None,
                  expand: bool = False, min_kernel: int = 2, min_in_channels: int = 1, batch: int = 1,
                  dtype: str = "float32", pareto_metrics: Sequence[str] = ("macs",),
                  progress: Progress | None = None, include_first: bool = False) -> SweepResult:
    """The whole network with a bottleneck of each width (or fraction) before every eligible conv
    (as :class:`convcost.bottleneck.BottleneckRule` decides, the first conv left alone unless ``include_first``)."""
    if (widths is None) == (fractions is None):
        raise ValueError("give widths or fractions")
    values: list[Any] = list(widths if widths is not None else fractions)  # type: ignore[arg-type]
    if not values:
        raise ValueError("the grid is empty")
    shapes = [network.input_shape] if resolutions is None else [
        (network.input_shape[0], *(int(r),) * (len(network.input_shape) - 1)) for r in resolutions]
    total_points = len(values) * len(shapes)
    done = 0
    chunks: list[dict[str, np.ndarray]] = []
    for shape in shapes:
        net = network if resolutions is None else with_input_shape(network, shape)
        chunks.append(_network_points(net, values, fractions is not None, expand, min_kernel, min_in_channels,
                                      batch, dtype, 0 if resolutions is None else shape[1], include_first))
        done += len(values)
        if progress is not None:
            progress(done, total_points)
    columns = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    python_ints = any(column.dtype == object for column in columns.values())
    columns["pareto"] = grouped_pareto_mask(columns, pareto_metrics)
    swept = tuple(axis for axis, options in (("width", values), ("resolution", resolutions))
                  if options is not None and len(options) > 1)
    return SweepResult(target=network.name, input_shape=network.input_shape, batch=batch, dtype=dtype,
                       width_kind="fraction" if fractions is not None else "width", kernel_labels=("-",),
                       columns=MappingProxyType(columns), swept=swept or ("width",),
                       pareto_metrics=tuple(pareto_metrics), python_ints=python_ints)


def _network_points(net: Network, values: list[Any], is_fraction: bool, expand: bool, min_kernel: int,
                    min_in_channels: int, batch: int, dtype: str, resolution: int,
                    include_first: bool) -> dict[str, np.ndarray]:
    size = dtype_bytes(dtype)
    report = analyze(net, batch=batch, dtype=dtype)
    totals = report.totals
    first = None if include_first else first_conv(net)
    candidates = [(node, node.layer) for node in net.nodes
                  if isinstance(node.layer, Conv) and node.layer.groups == 1 and not node.layer.reduction
                  and max(node.layer.kernel) >= min_kernel and node.layer.in_channels >= min_in_channels
                  and node.name != first]
    count = len(values)
    c_max = max([conv.in_channels for _, conv in candidates] + [conv.out_channels for _, conv in candidates] + [1])
    s_max = max([numel(n.input_shape[1:]) for n, _ in candidates] + [numel(n.output_shape[1:]) for n, _ in candidates]
                + [1])
    k_max = max([math.prod(conv.kernel) for _, conv in candidates] + [1])
    w_max = max([int(v) for v in values] if not is_fraction else [1]) if values else 1
    bound = (4 * s_max * max(c_max, w_max)**2 * k_max * batch * max(size, FLOPS_PER_MAC) * max(len(candidates), 1)
             + totals.flops + totals.activation_bytes + totals.peak_activation_bytes + resolution)
    int_type = _dtype_for(bound)
    scale = {"macs": batch, "flops": batch, "params": 1, "activation_bytes": batch * size,
             "peak_activation_bytes": batch * size}
    result = {metric: np.full(count, getattr(totals, metric), dtype=int_type) for metric in METRICS}
    rows = {row.name: row for row in report.layers}
    widths = np.zeros((len(candidates), count), dtype=int_type)
    applied = np.zeros((len(candidates), count), dtype=bool)
    for index, (node, layer) in enumerate(candidates):
        c_in = layer.in_channels
        if is_fraction:
            w = _ints([max(1, math.floor(Fraction(v) * c_in)) for v in values], int_type)
        else:
            w = _ints(values, int_type)
        ok = (w < c_in) & ((w < layer.out_channels) if expand else True)
        widths[index], applied[index] = w, ok
        parts = _layer_core(c_in, layer.out_channels, int(layer.bias), expand, numel(node.input_shape[1:]),
                            numel(node.output_shape[1:]), math.prod(layer.kernel), w.astype(int_type))
        row = rows[node.name]
        original = {"macs": row.macs, "flops": row.flops, "params": row.params,
                    "activation_bytes": row.activation_bytes}
        for metric in ("macs", "flops", "params", "activation_bytes"):
            change = parts["new"][metric] * scale[metric] - original[metric]
            result[metric] = result[metric] + np.where(ok, change, 0).astype(int_type)
    # Peak memory: one schedule per distinct set of rewritten convs, sizes as arrays over its points.
    if candidates:
        patterns, inverse = np.unique(applied.T, axis=0, return_inverse=True)
        inverse = inverse.ravel()
    else:
        patterns, inverse = np.zeros((1, 0), dtype=bool), np.zeros(count, dtype=np.int64)
    peak = np.zeros(count, dtype=int_type)
    for pattern_index, pattern in enumerate(patterns):
        points = np.flatnonzero(inverse == pattern_index)
        chosen = [(node, widths[i, points]) for i, (node, _) in enumerate(candidates) if pattern[i]]
        if not chosen:
            peak[points] = totals.peak_activation_bytes
            continue
        rewritten = insert_bottlenecks_at(net, {node.name: int(w[0]) for node, w in chosen}, expand)
        index_of = {node.name: node.index for node in rewritten.nodes}
        sizes: dict[int, Any] = {}
        for node, w in chosen:
            w = w.astype(int_type)
            sizes[index_of[node.name] - 1] = w * numel(node.input_shape[1:])  # the reduce runs just before
            if expand:
                sizes[index_of[node.name]] = w * numel(node.output_shape[1:])
        peak[points] = peak_activation_elements(rewritten, sizes, _maximum(int_type)) * (batch * size)
    result["peak_activation_bytes"] = peak
    columns: dict[str, np.ndarray] = {
        "width": np.array([float(v) for v in values]) if is_fraction else _ints(values, int_type),
        "kernel": np.zeros(count, dtype=np.int64),
        "resolution": np.full(count, resolution, dtype=int_type),
        "applied": np.asarray(applied.any(axis=0)) if len(candidates) else np.zeros(count, dtype=bool),
    }
    for metric in METRICS:
        columns[metric] = result[metric]
        columns[f"baseline_{metric}"] = np.full(count, getattr(totals, metric), dtype=int_type)
    return columns

