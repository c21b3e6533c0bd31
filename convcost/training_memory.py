"""Training memory: what PyTorch 2.x autograd keeps for backward, plus weights, gradients and optimizer state.

``SAVED_TENSOR_RULES`` is the one read-only table from layer type to a :class:`TrainingRule`:
the tensors a layer's forward saves for its backward (:class:`SavedTensor`), the precision of
its output under autocast, and how many parameter tensors it owns. The rules were read off
PyTorch 2.13 with ``saved_tensors_hooks`` (``tools/torch_measure.py``) and are written out,
with the measurements that check them, in docs/conventions_training.md.

A saved tensor is identified by the storage it lives in, so sharing is found exactly as
:func:`convcost.costs.peak_activation_elements` finds it for inference: a node's output owns a
new storage unless the node is a view (flatten, identity, an in-place activation, dropout with
``p = 0``), which shares its input's. A storage saved by several nodes counts once, to the
first saver in execution order. Parameters are never activations: a layer that saves its
weight keeps a reference to the parameter, except under mixed precision, where autocast's
half-precision copy of a convolution or linear weight is what is saved (``weight_copy_bytes``).

Counts are exact integers; an unknown layer type is an error, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .costs import layer_cost
from .layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU, Softmax, Upsample,
    aliases_input, numel,
)
from .network import Network, Node
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

#: Where a saved tensor lives.
SOURCES = ("input", "output", "new", "weight")
#: Its element type: ``same`` as the tensor it refers to (for ``new``: as input 0); ``compute``:
#: the precision convolution and linear compute in (half under mixed precision, where a
#: float32 input is saved as a half-precision copy); ``param``: the parameters' dtype; or fixed.
SAVED_DTYPES = ("same", "compute", "param", "int64", "bool")
#: A layer's output precision under autocast: ``half`` (convolution, linear), ``float32`` (CUDA
#: autocast's float32 policy: softmax, upsampling) or ``promote`` (float32 if any input is).
AUTOCAST_OUTPUTS = ("half", "float32", "promote")

_FIXED_BYTES = {"int64": 8, "bool": 1}


@dataclass(frozen=True, slots=True)
class SavedTensor:
    """One tensor kept for backward.

    ``source``: ``input`` (the storage of input ``index``), ``output`` (this node's output
    storage), ``new`` (a tensor the forward makes only to save it: ``elements`` of them, per
    sample when ``batched``) or ``weight`` (the layer's weight, ``elements`` in all: a
    parameter, or a half-precision copy under mixed precision). ``what`` names it.
    ``if_input_grad``: saved only when the layer's input requires a gradient (autograd saves
    what the gradients it must compute need; linear's weight serves only the input's).
    """

    source: str
    dtype: str = "same"
    index: int = 0
    elements: int = 0
    batched: bool = True
    what: str = ""
    if_input_grad: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.dtype not in SAVED_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(SAVED_DTYPES)}, got {self.dtype!r}")


SaveFunction = Callable[[Any, Node], tuple[SavedTensor, ...]]


@dataclass(frozen=True, slots=True)
class TrainingRule:
    """What a layer type keeps for backward, its output precision under autocast, its parameter tensors."""

    saves: SaveFunction
    autocast_output: str
    parameter_tensors: Callable[[Any], int]

    def __post_init__(self) -> None:
        if self.autocast_output not in AUTOCAST_OUTPUTS:
            raise ValueError(f"autocast_output must be one of {', '.join(AUTOCAST_OUTPUTS)}")


# --------------------------------------------------------------------------- rules

_INPUT = SavedTensor("input")
_OUTPUT = SavedTensor("output")

#: Activations whose backward reads the output (``threshold_backward(grad, result)``, the
#: sigmoid and tanh derivatives); the others read the input.
_SAVES_OUTPUT = frozenset({"relu", "sigmoid", "tanh"})
#: In-place activations whose in-place derivative is written with the result (relu_,
#: leaky_relu_, sigmoid_, tanh_). For the others (relu6_ = hardtanh_, gelu_, silu_,
#: hardswish_) autograd saves a copy of the input made before it is overwritten.
_INPLACE_SAVES_RESULT = frozenset({"relu", "leaky_relu", "sigmoid", "tanh"})


def _weight(elements: int, if_input_grad: bool = False) -> SavedTensor:
    return SavedTensor("weight", "compute", elements=elements, batched=False, what="weight",
                       if_input_grad=if_input_grad)


def _conv_saves(layer: Conv | ConvTranspose, node: Node) -> tuple[SavedTensor, ...]:
    # ConvolutionBackward0: input and weight (the bias only by its size).
    return (SavedTensor("input", "compute"), _weight(layer.weight_count))


def _linear_saves(layer: Linear, node: Node) -> tuple[SavedTensor, ...]:
    # addmm / mm (matmul on a view for inputs with more axes): the input and the transposed
    # weight, which is saved only for the input's gradient.
    return (SavedTensor("input", "compute"), _weight(layer.in_features * layer.out_features, if_input_grad=True))


def _batch_norm_saves(layer: BatchNorm, node: Node) -> tuple[SavedTensor, ...]:
    # Training mode: the input, per-channel mean and inverse standard deviation (in the
    # parameters' dtype: float32 under mixed precision); weight and running statistics are
    # module state, not activations.
    channels = layer.num_features
    return (_INPUT,
            SavedTensor("new", "param", elements=channels, batched=False, what="mean"),
            SavedTensor("new", "param", elements=channels, batched=False, what="invstd"))


def _activation_saves(layer: Activation, node: Node) -> tuple[SavedTensor, ...]:
    if not layer.inplace:
        return (_OUTPUT,) if layer.function in _SAVES_OUTPUT else (_INPUT,)
    if layer.function in _INPLACE_SAVES_RESULT:
        return (_OUTPUT,)  # the result: the input's own storage, overwritten
    return (SavedTensor("new", elements=numel(node.input_shapes[0]), what="input copy"),)


def _pool_saves(layer: Pool, node: Node) -> tuple[SavedTensor, ...]:
    if layer.op == "max":
        return (_INPUT, SavedTensor("new", "int64", elements=numel(node.output_shape), what="indices"))
    return (_INPUT,)


def _adaptive_pool_saves(layer: AdaptivePool, node: Node) -> tuple[SavedTensor, ...]:
    if layer.op == "max":
        return (_INPUT, SavedTensor("new", "int64", elements=numel(node.output_shape), what="indices"))
    if all(size == 1 for size in layer.output_size):
        return ()  # computed as a mean over the spatial axes, whose backward needs only sizes
    return (_INPUT,)


def _dropout_saves(layer: Dropout, node: Node) -> tuple[SavedTensor, ...]:
    if layer.p == 0:
        return ()  # returns its input
    if layer.p == 1:
        # input * zeros({}): the 0-dim zero is saved
        return (SavedTensor("new", elements=1, batched=False, what="zero scalar"),)
    # native_dropout, the kernel F.dropout runs on CUDA: a bool mask (on CPU, F.dropout
    # saves a mask in the input's dtype instead; see docs/conventions_training.md).
    return (SavedTensor("new", "bool", elements=numel(node.input_shapes[0]), what="mask"),)


def _softmax_saves(layer: Softmax, node: Node) -> tuple[SavedTensor, ...]:
    return (_OUTPUT,)


def _elementwise_saves(layer: Elementwise, node: Node) -> tuple[SavedTensor, ...]:
    # add and sub need only sizes; mul and max (torch.maximum) keep both operands.
    if layer.op in ("add", "sub"):
        return ()
    return tuple(SavedTensor("input", index=index) for index in range(len(node.inputs)))


def _normalization_saves(layer: Normalization, node: Node) -> tuple[SavedTensor, ...]:
    # native_layer_norm / native_group_norm: the input, a mean and an inverse std per group.
    groups = layer.statistics(node.input_shapes[0])
    return (_INPUT,
            SavedTensor("new", "param", elements=groups, what="mean"),
            SavedTensor("new", "param", elements=groups, what="rstd"))


def _input_saves(layer: Any, node: Node) -> tuple[SavedTensor, ...]:
    """A learned elementwise scale or slope (layer scale, PReLU): the input (and the parameter)."""
    return (_INPUT,)


def _nothing(layer: Any, node: Node) -> tuple[SavedTensor, ...]:
    """Backward needs only sizes: upsampling (every mode), add, concat, flatten, identity, crops,
    splits and shuffles."""
    return ()


def _no_parameters(layer: Any) -> int:
    return 0


def _weight_and_bias(layer: Conv | ConvTranspose | Linear) -> int:
    return 1 + int(layer.bias)


def _affine(layer: BatchNorm | Normalization) -> int:
    return 2 if layer.affine else 0


def _one(layer: Any) -> int:
    return 1


#: Layer type -> training rule. Read-only; a test checks every layer type is here.
SAVED_TENSOR_RULES: Mapping[type, TrainingRule] = MappingProxyType(
    {
        Conv: TrainingRule(_conv_saves, "half", _weight_and_bias),
        ConvTranspose: TrainingRule(_conv_saves, "half", _weight_and_bias),
        Linear: TrainingRule(_linear_saves, "half", _weight_and_bias),
        BatchNorm: TrainingRule(_batch_norm_saves, "promote", _affine),
        Activation: TrainingRule(_activation_saves, "promote", _no_parameters),
        Pool: TrainingRule(_pool_saves, "promote", _no_parameters),
        AdaptivePool: TrainingRule(_adaptive_pool_saves, "promote", _no_parameters),
        Dropout: TrainingRule(_dropout_saves, "promote", _no_parameters),
        Softmax: TrainingRule(_softmax_saves, "float32", _no_parameters),
        Upsample: TrainingRule(_nothing, "float32", _no_parameters),
        Elementwise: TrainingRule(_elementwise_saves, "promote", _no_parameters),
        Normalization: TrainingRule(_normalization_saves, "float32", _affine),
        LayerScale: TrainingRule(_input_saves, "promote", _one),
        PReLU: TrainingRule(_input_saves, "promote", _one),
        Concat: TrainingRule(_nothing, "promote", _no_parameters),
        Flatten: TrainingRule(_nothing, "promote", _no_parameters),
        Identity: TrainingRule(_nothing, "promote", _no_parameters),
        Crop: TrainingRule(_nothing, "promote", _no_parameters),
        ChannelSlice: TrainingRule(_nothing, "promote", _no_parameters),
        ChannelShuffle: TrainingRule(_nothing, "promote", _no_parameters),
        PixelShuffle: TrainingRule(_nothing, "promote", _no_parameters),
        # An op convcost cannot cost (ONNX import with --allow-unknown): assumed to keep nothing, a lower bound.
        Opaque: TrainingRule(_nothing, "promote", _no_parameters),
    }
)


def _rule(layer: Any, table: Mapping[type, TrainingRule]) -> TrainingRule:
    try:
        return table[type(layer)]
    except KeyError:
        raise TypeError(f"no training rule for layer type {type(layer).__name__}") from None


def saved_tensors(node: Node, table: Mapping[type, TrainingRule] = SAVED_TENSOR_RULES) -> tuple[SavedTensor, ...]:
    """The tensors a node's forward saves for backward; an unknown layer type is an error."""
    return _rule(node.layer, table).saves(node.layer, node)


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
    network input is float32; convolution and linear outputs are half precision; softmax
    and upsampling outputs float32 (CUDA autocast's policy); every other layer's output is
    float32 if any of its inputs is, else half.

    Autograd records a node only if one of its inputs requires a gradient or it has
    parameters; the network input does not. A node not recorded saves nothing (layers
    before the first parameterised layer), and its output requires no gradient.
    """
    size = _check(batch, dtype, mixed_precision)
    full = dtype_bytes("float32") if mixed_precision else size
    half = HALF_BYTES if mixed_precision else size
    nodes = network.nodes
    inputs = [-1 - k for k in range(len(network.inputs))]  # the network inputs' refs
    owner: dict[int, int] = {ref: ref for ref in inputs}  # tensor -> the tensor whose storage it is
    elements: dict[int, int] = {ref: math.prod(network.shape_of(ref)) for ref in inputs}  # per sample, by owner
    is_full: dict[int, bool] = dict.fromkeys(inputs, True)  # by owner: float32 under mixed precision
    grad: dict[int, bool] = dict.fromkeys(inputs, False)  # by tensor: it requires a gradient
    seen: set[tuple[Any, ...]] = set()
    result: list[NodeSaved] = []
    for node in nodes:
        rule = _rule(node.layer, table)
        index = node.index
        if _shares_input(node.layer):
            owner[index] = owner[node.inputs[0]]
        else:
            owner[index] = index
            elements[index] = numel(node.output_shape)
            if rule.autocast_output == "half":
                is_full[index] = False
            elif rule.autocast_output == "float32":
                is_full[index] = True
            else:
                is_full[index] = any(is_full[owner[ref]] for ref in node.inputs)
        grad[index] = recorded = rule.parameter_tensors(node.layer) > 0 or any(grad[ref] for ref in node.inputs)
        activation = copies = 0
        for position, saved in enumerate(rule.saves(node.layer, node) if recorded else ()):
            if saved.if_input_grad and not grad[node.inputs[0]]:
                continue
            if saved.source == "weight":
                if mixed_precision:  # autocast's half-precision copy; otherwise the parameter itself
                    copies += saved.elements * HALF_BYTES
                continue
            if saved.source == "new":
                key: tuple[Any, ...] = ("new", index, position)
                count = saved.elements * (batch if saved.batched else 1)
                if saved.dtype == "same":
                    width = full if is_full[owner[node.inputs[0]]] else half
                elif saved.dtype == "param":
                    width = size
                elif saved.dtype == "compute":
                    width = half
                else:
                    width = _FIXED_BYTES[saved.dtype]
            else:
                storage = owner[node.inputs[saved.index]] if saved.source == "input" else owner[index]
                count = elements[storage] * batch
                if saved.dtype == "compute" and mixed_precision and is_full[storage]:
                    key, width = ("cast", index, saved.index), half  # autocast's copy, one per reader
                elif saved.dtype in ("same", "compute"):
                    key, width = ("storage", storage), (full if is_full[storage] else half)
                else:
                    raise ValueError(f"a saved {saved.source} has the dtype of its tensor, not {saved.dtype!r}")
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
                    mixed_precision: bool = False) -> TrainingMemory:
    """The training-memory breakdown of a network (see :class:`TrainingMemory`).

    Parameters, gradients and optimizer state are in ``dtype`` (float32 master copies under
    mixed precision): ``param_bytes = gradient_bytes = params * D`` and
    ``optimizer_state_bytes = OPTIMIZER_STATE_COPIES[optimizer] * params * D``.
    """
    if optimizer not in OPTIMIZER_STATE_COPIES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    size = _check(batch, dtype, mixed_precision)
    rows = saved_bytes_per_node(network, batch=batch, dtype=dtype, mixed_precision=mixed_precision)
    params = tensors = 0
    for node in network.nodes:
        params += layer_cost(node.layer, node.input_shapes, node.output_shape).params
        tensors += _rule(node.layer, SAVED_TENSOR_RULES).parameter_tensors(node.layer)
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
