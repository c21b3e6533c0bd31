"""Training memory: what PyTorch 2.x autograd keeps for backward, plus weights, gradients and optimizer state.

``SAVED_TENSOR_RULES`` (:mod:`convcost.training_rules`) is the one read-only table from layer
type to a :class:`TrainingRule`: the tensors a layer's forward saves for its backward
(:class:`SavedTensor`), the precision of its output under autocast, and how many parameter
tensors it owns. The rules were read off
PyTorch 2.13 with ``saved_tensors_hooks`` (``tools/torch_measure.py``) and are written out,
with the measurements that check them, in docs/conventions.md ("Training memory").

A saved tensor is identified by the storage it lives in, so sharing is found exactly as
:func:`convcost.costs.peak_activation_elements` finds it for inference: a node's output owns a
new storage unless the node is a view (flatten, identity, crop, a split's part, an in-place
activation or join, dropout with ``p = 0``), which shares its input's. A storage saved by
several nodes counts once, to the first saver in execution order. Parameters are never
activations: a layer that saves its weight keeps a reference to the parameter, except under
mixed precision, where autocast's half-precision copy of a convolution, linear or PReLU weight
is what is saved (``weight_copy_bytes``).

Counts are exact integers; an unknown layer type is an error, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .costs import layer_cost
from .layers import Dropout, aliases_input, numel, rule_for
from .network import Network, Node
from .training_rules import (
    AUTOCAST_OUTPUTS, SAVED_DTYPES, SAVED_TENSOR_RULES, SOURCES, SavedTensor, TrainingRule, autocast_output,
)
from .units import dtype_bytes

__all__ = [
    "AUTOCAST_OUTPUTS",
    "HALF_BYTES",
    "OPTIMIZERS",
    "OPTIMIZER_STATE_COPIES",
    "SAVED_DTYPES",
    "SAVED_TENSOR_RULES",
    "SOURCES",
    "TRAINING_DTYPES",
    "NodeSaved",
    "SavedTensor",
    "TrainingMemory",
    "TrainingRule",
    "saved_activation_bytes",
    "saved_bytes_per_node",
    "saved_tensors",
    "training_memory",
]

#: Bytes per element of the half-precision type autocast computes in (float16 or bfloat16).
HALF_BYTES = 2

#: Dtypes a network can be trained in (``int8`` is an inference format).
TRAINING_DTYPES = ("float32", "float16", "bfloat16")

#: Optimizer -> parameter-sized state tensors it keeps (SGD none, momentum one buffer, Adam and
#: AdamW ``exp_avg`` and ``exp_avg_sq``). Adam's scalar ``step`` tensors are not counted: one
#: 0-dim float32 tensor per parameter tensor, kept on the host unless ``capturable`` or ``fused``.
OPTIMIZER_STATE_COPIES: Mapping[str, int] = MappingProxyType({"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2})
OPTIMIZERS = tuple(OPTIMIZER_STATE_COPIES)

def saved_tensors(node: Node, table: Mapping[type, TrainingRule] = SAVED_TENSOR_RULES) -> tuple[SavedTensor, ...]:
    """The tensors a node's forward saves for backward; an unknown layer type is an error."""
    return rule_for(table, node.layer, "training rule").saves(node.layer, node)


def _shares_input(layer: Any) -> bool:
    """Whether a node's output is its input's storage in training mode.

    As at inference (``aliases_input``), except dropout, which in training makes a new tensor
    unless ``p = 0`` (it then returns its input).
    """
    if isinstance(layer, Dropout):
        return layer.p == 0
    return aliases_input(layer)


# --------------------------------------------------------------------------- per node


@dataclass(frozen=True, slots=True)
class NodeSaved:
    """Bytes a node's forward keeps for backward that no earlier node already keeps."""

    name: str
    activation_bytes: int
    weight_copy_bytes: int = 0


def _check(batch: int, dtype: str, mixed_precision: bool) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if dtype not in TRAINING_DTYPES:
        raise ValueError(f"training dtype must be one of {', '.join(TRAINING_DTYPES)}, got {dtype!r}")
    if mixed_precision and dtype != "float32":
        raise ValueError(f"mixed precision keeps float32 master weights; dtype must be float32, got {dtype!r}")
    return dtype_bytes(dtype)


def saved_bytes_per_node(network: Network, *, batch: int = 1, dtype: str = "float32", mixed_precision: bool = False,
                         table: Mapping[type, TrainingRule] = SAVED_TENSOR_RULES) -> tuple[NodeSaved, ...]:
    """Saved-for-backward bytes per node, in execution order; a storage counts to its first saver.

    Storage precision: without mixed precision every activation has ``dtype``. With it the
    network inputs are float32; each node's output precision follows its rule's
    ``autocast_output``: ``half``, ``float32``, or (``promote``) float32 if any of its inputs is,
    else half. A layer that computes in the other precision than a tensor it saves (``compute``)
    saves the copy autocast casts it to, one per reader.

    Autograd records a node only if one of its inputs requires a gradient or it has
    parameters; the network inputs do not. A node not recorded saves nothing (layers
    before the first parameterised layer), and its output requires no gradient.
    """
    size = _check(batch, dtype, mixed_precision)
    full = dtype_bytes("float32") if mixed_precision else size
    half = HALF_BYTES if mixed_precision else size
    inputs = [-1 - k for k in range(len(network.inputs))]  # the network inputs' refs
    owner: dict[int, int] = {ref: ref for ref in inputs}  # tensor -> the tensor whose storage it is
    elements: dict[int, int] = {ref: math.prod(network.shape_of(ref)) for ref in inputs}  # per sample, by owner
    is_full: dict[int, bool] = dict.fromkeys(inputs, True)  # by owner: float32 under mixed precision
    grad: dict[int, bool] = dict.fromkeys(inputs, False)  # by tensor: it requires a gradient
    seen: set[tuple[Any, ...]] = set()
    result: list[NodeSaved] = []
    for node in network.nodes:
        rule = rule_for(table, node.layer, "training rule")
        index, refs = node.index, node.inputs
        precision = autocast_output(rule, node.layer)
        if _shares_input(node.layer):
            owner[index] = owner[refs[0]]
        else:
            owner[index] = index
            elements[index] = numel(node.output_shape)
            is_full[index] = precision == "float32" or (precision == "promote"
                                                        and any(is_full[owner[ref]] for ref in refs))
        grad[index] = recorded = rule.parameter_tensors(node.layer) > 0 or any(grad[ref] for ref in refs)
        activation = copies = 0
        for position, saved in enumerate(rule.saves(node.layer, node) if recorded else ()):
            if saved.needs and not any(grad[refs[k]] for k in saved.needs):
                continue
            if saved.source == "weight":
                if mixed_precision:  # autocast's half-precision copy; otherwise the parameter itself
                    copies += saved.elements * HALF_BYTES
                continue
            if saved.source == "new":
                key: tuple[Any, ...] = ("new", index, position)
                count = saved.elements * (batch if saved.batched else 1)
                width = {"same": full if any(is_full[owner[ref]] for ref in refs[:saved.index + 1]) else half,
                         "param": size, "compute": full if precision == "float32" else half,
                         "int64": 8, "bool": 1}[saved.dtype]
            else:
                storage = owner[refs[saved.index]] if saved.source == "input" else owner[index]
                count = elements[storage] * batch
                if saved.dtype not in ("same", "compute"):
                    raise ValueError(f"a saved {saved.source} has the dtype of its tensor, not {saved.dtype!r}")
                if saved.dtype == "compute" and mixed_precision and precision != "promote" \
                        and is_full[storage] != (precision == "float32"):
                    # autocast's copy in the compute precision, one per reader
                    key, width = ("cast", index, saved.index), full if precision == "float32" else half
                else:
                    key, width = ("storage", storage), full if is_full[storage] else half
            if key not in seen:
                seen.add(key)
                activation += count * width
        result.append(NodeSaved(node.name, activation, copies))
    return tuple(result)


def saved_activation_bytes(network: Network, *, batch: int = 1, dtype: str = "float32",
                           mixed_precision: bool = False) -> int:
    """Total bytes autograd keeps for backward after the forward (weight copies not included)."""
    return sum(row.activation_bytes for row in
               saved_bytes_per_node(network, batch=batch, dtype=dtype, mixed_precision=mixed_precision))


# --------------------------------------------------------------------------- breakdown


@dataclass(frozen=True, slots=True)
class TrainingMemory:
    """Memory of one training step at its fullest (after the forward, before the backward frees
    saved tensors), with gradients and optimizer state allocated, in bytes.

    ``total_bytes = saved_activation_bytes + weight_copy_bytes + param_bytes + gradient_bytes
    + optimizer_state_bytes``. Not included: batch-norm running statistics (``buffer_bytes`` of
    :func:`convcost.costs.analyze`), Adam's ``step`` scalars (``parameter_tensors`` 0-dim
    float32 tensors on the host), temporaries inside kernels and the allocator's rounding.
    """

    batch: int
    dtype: str
    optimizer: str
    mixed_precision: bool
    params: int
    parameter_tensors: int
    saved_activation_bytes: int
    weight_copy_bytes: int
    param_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int

    @property
    def total_bytes(self) -> int:
        return (self.saved_activation_bytes + self.weight_copy_bytes + self.param_bytes + self.gradient_bytes
                + self.optimizer_state_bytes)


def training_memory(network: Network, *, batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
                    mixed_precision: bool = False, rows: Sequence[NodeSaved] | None = None) -> TrainingMemory:
    """The training-memory breakdown of a network (see :class:`TrainingMemory`).

    Parameters, gradients and optimizer state are in ``dtype`` (float32 master copies under
    mixed precision): ``param_bytes = gradient_bytes = params * D`` and
    ``optimizer_state_bytes = OPTIMIZER_STATE_COPIES[optimizer] * params * D``. ``rows``: the
    network's :func:`saved_bytes_per_node` at the same settings, when the caller has them already.
    """
    if optimizer not in OPTIMIZER_STATE_COPIES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    size = _check(batch, dtype, mixed_precision)
    if rows is None:
        rows = saved_bytes_per_node(network, batch=batch, dtype=dtype, mixed_precision=mixed_precision)
    params = tensors = 0
    for node in network.nodes:
        params += layer_cost(node.layer, node.input_shapes, node.output_shape).params
        tensors += rule_for(SAVED_TENSOR_RULES, node.layer, "training rule").parameter_tensors(node.layer)
    return TrainingMemory(
        batch=batch,
        dtype=dtype,
        optimizer=optimizer,
        mixed_precision=mixed_precision,
        params=params,
        parameter_tensors=tensors,
        saved_activation_bytes=sum(row.activation_bytes for row in rows),
        weight_copy_bytes=sum(row.weight_copy_bytes for row in rows),
        param_bytes=params * size,
        gradient_bytes=params * size,
        optimizer_state_bytes=OPTIMIZER_STATE_COPIES[optimizer] * params * size,
    )
