"""Stage 3b: the figures beyond MACs, per layer and in total, for one analysed network.

- ``macs_nonpadding``: the MACs whose kernel tap reads real input, not zero padding (convcost.taps);
- training compute per step: forward, weight-gradient and input-gradient MACs (convcost.backward);
- training memory: bytes saved for backward, parameters, gradients and optimizer state, as PyTorch
  autograd keeps them (convcost.training_memory);
- receptive fields: size, jump and offset per spatial axis, at every layer and output
  (convcost.receptive);
- with a hardware profile, memory traffic and a roofline lower bound on latency (convcost.roofline).

Each figure's convention is in docs/conventions.md. :func:`figures` is pure; the
CLI attaches the result to the report (``NetworkCost.figures``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from .backward import training_macs
from .costs import NetworkCost
from .hardware import HardwareProfile
from .network import Network
from .receptive import AxisField, ReceptiveFieldError, receptive_fields
from .roofline import LayerRoofline, Roofline, roofline
from .taps import macs_nonpadding
from .training_memory import OPTIMIZERS, TRAINING_DTYPES, TrainingMemory, saved_bytes_per_node, training_memory

__all__ = ["FieldAxis", "Figures", "LayerFigures", "Settings", "figures", "with_figures"]


@dataclass(frozen=True, slots=True)
class Settings:
    """What the figures beyond MACs depend on besides the network, the batch and the dtype."""

    optimizer: str = "adam"
    mixed_precision: bool = False
    hardware: HardwareProfile | None = None
    precision: str | None = None  # "tf32": a float32 report on tensor cores

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")


@dataclass(frozen=True, slots=True)
class FieldAxis:
    """A receptive field along one spatial axis of the (first) input: ``size`` input pixels, ``jump``
    input pixels between adjacent positions and the centre ``offset`` of position 0 (None where the
    field mixes jumps); ``whole``: every position sees the whole axis."""

    size: int
    jump: Fraction | None
    offset: Fraction | None
    whole: bool

    @classmethod
    def of(cls, axis: AxisField) -> FieldAxis:
        return cls(axis.size, axis.jump, axis.offset, axis.whole)


@dataclass(frozen=True, slots=True)
class LayerFigures:
    """One layer's figures beyond MACs (batch included). ``None``: not defined for this report (training
    figures of an int8 report, a receptive field beyond the limits, a roofline without hardware)."""

    macs_nonpadding: int
    weight_grad_macs: int
    input_grad_macs: int
    training_macs: int
    saved_activation_bytes: int | None
    weight_copy_bytes: int | None
    receptive_field: tuple[FieldAxis, ...] | None
    roofline: LayerRoofline | None


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of a whole report: one :class:`LayerFigures` per row, and the totals."""

    settings: Settings
    layers: tuple[LayerFigures, ...]
    macs_nonpadding: int
    forward_macs: int
    weight_grad_macs: int
    input_grad_macs: int
    training_macs: int
    memory: TrainingMemory | None
    receptive_outputs: tuple[tuple[str, tuple[FieldAxis, ...]], ...] | None  # at every output
    roofline: Roofline | None
    notes: tuple[str, ...] = ()  # why a figure is missing

    @property
    def training_memory_bytes(self) -> int | None:
        return None if self.memory is None else self.memory.total_bytes

    @property
    def roofline_seconds(self) -> Fraction | None:
        return None if self.roofline is None else self.roofline.seconds

    @property
    def saved_activation_bytes(self) -> int | None:
        return None if self.memory is None else self.memory.saved_activation_bytes

    @property
    def min_receptive_field(self) -> int | None:
        """The smallest receptive-field size along any spatial axis at any output (None without fields)."""
        sizes = [axis.size for _, axes in self.receptive_outputs or () for axis in axes]
        return min(sizes) if sizes else None


def figures(network: Network, report: NetworkCost, settings: Settings = Settings()) -> Figures:
    """Every figure beyond MACs for ``report = analyze(network, batch=..., dtype=...)``."""
    batch, dtype = report.batch, report.dtype
    notes: list[str] = []
    nonpadding = macs_nonpadding(network, batch=batch)
    training = training_macs(network, batch=batch)
    memory = None
    saved: list[tuple[int | None, int | None]] = [(None, None)] * len(network.nodes)
    if dtype in TRAINING_DTYPES and not (settings.mixed_precision and dtype != "float32"):
        rows = saved_bytes_per_node(network, batch=batch, dtype=dtype, mixed_precision=settings.mixed_precision)
        memory = training_memory(network, batch=batch, dtype=dtype, optimizer=settings.optimizer,
                                 mixed_precision=settings.mixed_precision, rows=rows)
        saved = [(row.activation_bytes, row.weight_copy_bytes) for row in rows]
    elif settings.mixed_precision:
        notes.append(f"mixed precision keeps float32 master weights: no training memory for a {dtype} report")
    else:
        notes.append(f"training memory needs a floating-point dtype ({', '.join(TRAINING_DTYPES)}), not {dtype}")
    fields: tuple[tuple[FieldAxis, ...], ...] | None = None
    outputs: tuple[tuple[str, tuple[FieldAxis, ...]], ...] | None = None
    if len(network.input_shape) > 1:
        try:
            computed = receptive_fields(network)
        except ReceptiveFieldError as error:
            notes.append(f"receptive fields not computed: {error}")
        else:
            fields = tuple(tuple(FieldAxis.of(axis) for axis in field.axes) for field in computed)
            outputs = tuple((network.name_of(ref), fields[ref]) for ref in network.output_refs if ref >= 0)
    bound = None if settings.hardware is None else roofline(network, report, settings.hardware,
                                                               precision=settings.precision)
    layers = tuple(
        LayerFigures(
            macs_nonpadding=nonpadding.per_node[index],
            weight_grad_macs=row.weight_grad_macs,
            input_grad_macs=row.input_grad_macs,
            training_macs=row.training_macs,
            saved_activation_bytes=saved[index][0],
            weight_copy_bytes=saved[index][1],
            receptive_field=None if fields is None else fields[index],
            roofline=None if bound is None else bound.layers[index],
        )
        for index, row in enumerate(training.nodes)
    )
    return Figures(settings=settings, layers=layers, macs_nonpadding=nonpadding.total,
                   forward_macs=training.forward_macs, weight_grad_macs=training.weight_grad_macs,
                   input_grad_macs=training.input_grad_macs, training_macs=training.training_macs, memory=memory,
                   receptive_outputs=outputs, roofline=bound, notes=tuple(notes))


def with_figures(network: Network, report: NetworkCost, settings: Settings = Settings()) -> NetworkCost:
    """``report`` with its figures attached (``report.figures``)."""
    return replace(report, figures=figures(network, report, settings))
