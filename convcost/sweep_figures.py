"""Stage 4c: training memory and roofline time at the points of a sweep, by the scalar engine.

The closed forms of :mod:`convcost.sweep` cover MACs, params and memory at a
million points a second. Training memory (what autograd saves, shared storages
counted once) and the roofline bound (a max per layer) have no such closed
form, so each point's design is built again -- the conv with the point's kernel
on the point's input, or the whole network at the point's resolution, with the
point's bottlenecks inserted by :func:`convcost.bottleneck.insert_bottlenecks`
-- and measured as ``convcost analyze`` measures it. That costs about a
millisecond a point for a layer and a full analysis for a network, so these
columns are limited to :data:`MAX_FIGURE_POINTS` points.

Columns added: ``training_memory_bytes`` (exact integers) and
``roofline_seconds`` (floats: a bound, not a count), with their
``baseline_`` counterparts (the design without a bottleneck). The Pareto mark
is then computed again over the asked metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from fractions import Fraction
from types import MappingProxyType

import numpy as np

from .bottleneck import BottleneckRule, insert_bottlenecks, with_input_shape
from .costs import analyze
from .errors import Location
from .figures import Settings
from .layers import Conv, Shape
from .network import INPUT, Input, Network, Node
from .roofline import roofline
from .sweep import Progress, SweepResult, grouped_pareto_mask
from .training_memory import training_memory

__all__ = ["FIGURE_METRICS", "MAX_FIGURE_POINTS", "add_figure_columns", "layer_design", "network_design"]

#: The sweep metrics measured by the scalar engine, and what each needs.
FIGURE_METRICS = {"training_memory_bytes": "a float dtype", "roofline_seconds": "--hardware"}
#: Most points whose figures are measured (a grid of a million points takes the closed forms a second; this
#: takes about that long for a thousand layer designs or a few hundred network analyses).
MAX_FIGURE_POINTS = 20_000

#: A design: (width or fraction, kernel index, resolution or 0) -> the network, or the network without bottleneck.
Design = Callable[[int | Fraction | None, int, int], Network]


def layer_design(layer: Conv, input_shape: Shape, kernels: Sequence[tuple[int, ...]], *, expand: bool,
                 min_kernel: int, name: str = "layer") -> Design:
    """The designs of :func:`convcost.sweep.sweep_layer`: the conv with kernel ``kernels[k]`` on the input at
    resolution ``r`` (0: as given), a bottleneck of width ``w`` inserted as the rewrite does (none for None)."""
    def design(width: int | Fraction | None, kernel: int, resolution: int) -> Network:
        shape = input_shape if not resolution else (input_shape[0], *(resolution,) * layer.dims)
        conv = replace(layer, kernel=kernels[kernel])
        node = Node(0, name, conv, (INPUT,), (shape,), conv.output_shape(shape), Location("<sweep>"))
        network = Network(name, "<sweep>", (Input("input", shape),), (node,))
        if width is None:
            return network
        assert isinstance(width, int)
        return insert_bottlenecks(network, BottleneckRule(width=width, expand=expand, min_kernel=min_kernel,
                                                          include_first=True))
    return design


def network_design(network: Network, *, expand: bool, min_kernel: int, min_in_channels: int,
                   include_first: bool) -> Design:
    """The designs of :func:`convcost.sweep.sweep_network`: the network at resolution ``r`` with a bottleneck
    of width (or fraction) ``w`` before every eligible conv."""
    def design(width: int | Fraction | None, kernel: int, resolution: int) -> Network:
        net = network if not resolution else with_input_shape(
            network, (network.input_shape[0], *(resolution,) * (len(network.input_shape) - 1)))
        if width is None:
            return net
        rule = BottleneckRule(width=width if isinstance(width, int) else None,
                              fraction=width if isinstance(width, Fraction) else None, expand=expand,
                              min_kernel=min_kernel, min_in_channels=min_in_channels, include_first=include_first)
        return insert_bottlenecks(net, rule)
    return design


def _measure(network: Network, metrics: Sequence[str], batch: int, dtype: str,
             settings: Settings) -> dict[str, int | float]:
    values: dict[str, int | float] = {}
    if "training_memory_bytes" in metrics:
        values["training_memory_bytes"] = training_memory(
            network, batch=batch, dtype=dtype, optimizer=settings.optimizer,
            mixed_precision=settings.mixed_precision).total_bytes
    if "roofline_seconds" in metrics:
        assert settings.hardware is not None
        report = analyze(network, batch=batch, dtype=dtype)
        values["roofline_seconds"] = float(roofline(network, report, settings.hardware,
                                                    precision=settings.precision).seconds)
    return values


def add_figure_columns(result: SweepResult, design: Design, metrics: Sequence[str], settings: Settings,
                       pareto_metrics: Sequence[str], progress: Progress | None = None) -> SweepResult:
    """``result`` with the ``metrics`` (of :data:`FIGURE_METRICS`) measured at every point, and the Pareto
    mark over ``pareto_metrics``. Raises ``ValueError`` for a grid too large or a figure the settings lack."""
    metrics = [metric for metric in FIGURE_METRICS if metric in metrics]
    if not metrics:
        return result
    if len(result) > MAX_FIGURE_POINTS:
        raise ValueError(f"training memory and roofline time are measured design by design: at most "
                         f"{MAX_FIGURE_POINTS:,} points, and this grid has {len(result):,}")
    if "roofline_seconds" in metrics and settings.hardware is None:
        raise ValueError("roofline time needs a hardware profile: give --hardware NAME")
    if "training_memory_bytes" in metrics and result.dtype == "int8":
        raise ValueError("training memory needs a float dtype (float32, float16, bfloat16), not int8")
    columns = result.columns
    fraction = result.width_kind == "fraction"
    measured: dict[str, list[int | float]] = {name: [] for prefix in ("", "baseline_") for name in
                                              (prefix + metric for metric in metrics)}
    baselines: dict[tuple[int, int], dict[str, int | float]] = {}
    for index in range(len(result)):
        kernel, resolution = int(columns["kernel"][index]), int(columns["resolution"][index])
        if (kernel, resolution) not in baselines:
            baselines[kernel, resolution] = _measure(design(None, kernel, resolution), metrics, result.batch,
                                                     result.dtype, settings)
        base = baselines[kernel, resolution]
        if bool(columns["applied"][index]):
            width = columns["width"][index]
            point = Fraction(str(width)) if fraction else int(width)
            values = _measure(design(point, kernel, resolution), metrics, result.batch, result.dtype, settings)
        else:  # nothing inserted here: the design is the baseline
            values = base
        for metric in metrics:
            measured[metric].append(values[metric])
            measured["baseline_" + metric].append(base[metric])
        if progress is not None and index % 64 == 63:
            progress(index + 1, len(result))
    new = dict(columns)
    for name, column in measured.items():
        seconds = name.endswith("seconds")
        new[name] = np.array(column, dtype=np.float64 if seconds else object)
        if not seconds and max(int(value) for value in column) < 2**62:  # int64 when it fits, as sweep does
            new[name] = new[name].astype(np.int64)
    new["pareto"] = grouped_pareto_mask(new, pareto_metrics)
    return replace(result, columns=MappingProxyType(new), pareto_metrics=tuple(pareto_metrics))
