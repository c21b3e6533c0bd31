"""Memory traffic per layer and a roofline LOWER BOUND on latency on a hardware profile.

For each layer of an analysed network (``costs.analyze`` rows with the network's
nodes), at the report's dtype of ``D`` bytes per element and batch ``N``:

- ``bytes_read = N * (elements of every input tensor) * D + (params + buffers) * D``
- ``bytes_written = N * numel(output) * D``
- ``compute_seconds = flops / peak`` and ``memory_seconds = (bytes_read + bytes_written) / bandwidth``
- ``seconds = max(compute_seconds, memory_seconds)``; ``bound`` is "memory" when the memory time is
  the larger, "compute" otherwise (a tie at the ridge point counts as compute), and "none" for a
  layer that moves and computes nothing.

``flops`` is the report's (``2 * macs`` plus bias and elementwise work, batch included). Every
layer is assumed to run alone, reading its inputs from memory and writing its output back (no
fusion between layers), each tensor once (perfect reuse inside a layer), at the peak rate;
weights are read once per batch. Views move nothing: ``TRAFFIC_RULES`` is the one read-only
table from layer type to the activation elements a layer reads and writes. Times are exact
``Fraction`` seconds. This is a lower bound on latency for comparing drafts, not a prediction:
kernel launches, caches, tiling and fusion are not modelled (docs/conventions.md, "Memory traffic and the roofline bound").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from .costs import NetworkCost
from .errors import UsageError
from .hardware import HardwareProfile
from .layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, numel, PixelShuffle, Pool, PReLU, Shape,
    Softmax, Upsample,
    rule_for,
)
from .network import Network
from .units import dtype_bytes

__all__ = [
    "BOUNDS",
    "TRAFFIC_RULES",
    "LayerRoofline",
    "Roofline",
    "moves_nothing",
    "moves_tensors",
    "peak_precision",
    "roofline",
    "tensor_traffic",
]

#: What limits a layer: its memory traffic, its arithmetic, or nothing (a view).
BOUNDS = ("compute", "memory", "none")

#: (layer, input shapes, output shape) -> (activation elements read, elements written), per sample.
TrafficRule = Callable[[Any, tuple[Shape, ...], Shape], tuple[int, int]]


def moves_tensors(layer: Any, inputs: tuple[Shape, ...], output: Shape) -> tuple[int, int]:
    """Reads every input tensor once and writes its output once. An in-place activation too:
    it reads its tensor and writes it back, it only allocates nothing. Concat copies its inputs."""
    return sum(numel(shape) for shape in inputs), numel(output)


def moves_nothing(layer: Any, inputs: tuple[Shape, ...], output: Shape) -> tuple[int, int]:
    """Views and inference no-ops (flatten, identity, dropout, crop, a split's parts): no kernel, no traffic."""
    return 0, 0


#: Layer type -> traffic rule. Read-only; a test checks every layer type is here.
TRAFFIC_RULES: Mapping[type, TrafficRule] = MappingProxyType({
    **dict.fromkeys((Conv, ConvTranspose, Linear, BatchNorm, Normalization, LayerScale, Activation, PReLU, Pool,
                     AdaptivePool, Softmax, Upsample, Elementwise, Concat, ChannelShuffle, PixelShuffle, Opaque),
                    moves_tensors),
    **dict.fromkeys((Flatten, Dropout, Identity, Crop, ChannelSlice), moves_nothing),
})


def tensor_traffic(layer: Any, inputs: tuple[Shape, ...], output: Shape,
                   table: Mapping[type, TrafficRule] = TRAFFIC_RULES) -> tuple[int, int]:
    """Activation elements (read, written) per sample; an unknown layer type is an error, never zero."""
    return rule_for(table, layer, "traffic rule")(layer, inputs, output)


@dataclass(frozen=True, slots=True)
class LayerRoofline:
    """One layer on the roofline. Counts include the batch; seconds are exact."""

    name: str
    kind: str
    flops: int
    bytes_read: int
    bytes_written: int
    compute_seconds: Fraction
    memory_seconds: Fraction
    line: int = 0

    @property
    def bytes_moved(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def seconds(self) -> Fraction:
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def intensity(self) -> Fraction | None:
        """Arithmetic intensity, FLOPs per byte moved; None for a layer that moves nothing."""
        return Fraction(self.flops, self.bytes_moved) if self.bytes_moved else None

    @property
    def bound(self) -> str:
        if not self.seconds:
            return "none"
        return "memory" if self.memory_seconds > self.compute_seconds else "compute"


@dataclass(frozen=True, slots=True)
class Roofline:
    """A network on one hardware profile: per-layer bounds and their totals."""

    network: str
    profile: HardwareProfile
    dtype: str
    precision: str
    batch: int
    peak_ops_per_second: int
    memory_bytes_per_second: int
    layers: tuple[LayerRoofline, ...]
    flops: int
    bytes_read: int
    bytes_written: int
    seconds: Fraction

    @property
    def bytes_moved(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> Fraction | None:
        """The whole network's FLOPs per byte moved."""
        return Fraction(self.flops, self.bytes_moved) if self.bytes_moved else None

    @property
    def ridge_intensity(self) -> Fraction:
        """The intensity above which a layer is compute bound: peak / bandwidth, FLOPs per byte."""
        return Fraction(self.peak_ops_per_second, self.memory_bytes_per_second)

    @property
    def seconds_per_image(self) -> Fraction:
        return self.seconds / self.batch

    @property
    def images_per_second(self) -> Fraction | None:
        """The throughput ceiling, batch / seconds; None when nothing takes time."""
        return Fraction(self.batch) / self.seconds if self.seconds else None


def peak_precision(dtype: str, precision: str | None = None) -> str:
    """Which peak a report of ``dtype`` runs at: its own dtype, or ``tf32`` for float32 when asked."""
    dtype_bytes(dtype)  # refuses an unknown dtype
    if precision is None or precision == dtype:
        return dtype
    if precision == "tf32" and dtype == "float32":
        return precision
    if precision == "tf32":
        raise UsageError(f"precision 'tf32' runs float32 tensors on tensor cores; this report is {dtype}")
    raise UsageError(f"precision {precision!r} does not match the report's dtype {dtype}; "
                     "give the dtype itself, or tf32 for a float32 report")


def roofline(network: Network, report: NetworkCost, profile: HardwareProfile, *,
             precision: str | None = None, table: Mapping[type, TrafficRule] = TRAFFIC_RULES) -> Roofline:
    """The roofline bound of ``report`` (``analyze(network, ...)``) on ``profile``.

    Tensors use the report's dtype and batch; the peak is the profile's for that dtype
    (float32 uses the ``float32`` peak; pass ``precision="tf32"`` for TF32 tensor cores).
    A precision the profile does not publish is refused with a UsageError.
    """
    if len(network.nodes) != len(report.layers):
        raise ValueError(f"the report has {len(report.layers)} rows but the network {len(network.nodes)} layers")
    used = peak_precision(report.dtype, precision)
    peak = profile.peak(used).value
    bandwidth = profile.memory_bytes_per_second.value
    size = dtype_bytes(report.dtype)
    batch = report.batch
    rows: list[LayerRoofline] = []
    for node, row in zip(network.nodes, report.layers):
        if node.name != row.name or node.input_shapes != row.input_shapes:
            raise ValueError(f"report row '{row.name}' does not match network layer '{node.name}'")
        read, written = tensor_traffic(node.layer, node.input_shapes, node.output_shape, table)
        bytes_read = (batch * read + row.params + row.buffers) * size if read or written else 0
        bytes_written = batch * written * size
        rows.append(LayerRoofline(
            name=row.name,
            kind=row.kind,
            flops=row.flops,
            bytes_read=bytes_read,
            bytes_written=bytes_written,
            compute_seconds=Fraction(row.flops, peak),
            memory_seconds=Fraction(bytes_read + bytes_written, bandwidth),
            line=row.line,
        ))
    return Roofline(
        network=report.name,
        profile=profile,
        dtype=report.dtype,
        precision=used,
        batch=batch,
        peak_ops_per_second=peak,
        memory_bytes_per_second=bandwidth,
        layers=tuple(rows),
        flops=sum(layer.flops for layer in rows),
        bytes_read=sum(layer.bytes_read for layer in rows),
        bytes_written=sum(layer.bytes_written for layer in rows),
        seconds=sum((layer.seconds for layer in rows), Fraction(0)),
    )
