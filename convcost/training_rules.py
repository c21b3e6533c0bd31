"""What each layer type keeps for backward under PyTorch 2.x autograd: one rule per type, one table.

``SAVED_TENSOR_RULES`` maps every type of :data:`convcost.layers.Layer` to a :class:`TrainingRule`:
the tensors a layer's forward saves for its backward (:class:`SavedTensor`), the precision of
its output under autocast, and how many parameter tensors it owns. Every rule was read off
PyTorch 2.13 with ``saved_tensors_hooks`` (``tools/torch_measure.py``, layer by layer on the
zoo specs of ``tests/data``) and is written out, with the measurements that check it, in
docs/conventions.md ("Training memory"). :mod:`convcost.training_memory` does the accounting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .layers import (
    Activation, AdaptivePool, BatchNorm, ChannelShuffle, ChannelSlice, Concat, Conv, ConvTranspose, Crop, Dropout,
    Elementwise, Flatten, Identity, LayerError, LayerScale, Linear, Normalization, Opaque, PixelShuffle, Pool, PReLU,
    Softmax, Upsample, numel,
)
from .network import Node

__all__ = ["AUTOCAST_OUTPUTS", "SAVED_DTYPES", "SAVED_TENSOR_RULES", "SOURCES", "SavedTensor", "TrainingRule",
           "autocast_output"]

#: Where a saved tensor lives.
SOURCES = ("input", "output", "new", "weight")
#: Its element type: ``same`` as the tensor it refers to (for ``new``: inputs 0 to ``index``
#: promoted); ``compute``: the precision the layer computes in under autocast (half for
#: convolution, linear and PReLU, float32 for CUDA autocast's float32 ops), a stored tensor of
#: the other precision being saved as the copy autocast casts it to; ``param``: the parameters'
#: dtype (float32 under mixed precision); or fixed.
SAVED_DTYPES = ("same", "compute", "param", "int64", "bool")
#: A layer's output precision under autocast: ``half`` (convolution, linear, PReLU: CUDA and CPU
#: autocast's lower-precision list), ``float32`` (CUDA autocast's float32 policy: softmax,
#: upsampling, layer norm, group norm, softplus; and a layer scale, whose float32 parameter
#: promotes the product) or ``promote`` (float32 if any input is).
AUTOCAST_OUTPUTS = ("half", "float32", "promote")


@dataclass(frozen=True, slots=True)
class SavedTensor:
    """One tensor kept for backward.

    ``source``: ``input`` (the storage of input ``index``), ``output`` (this node's output
    storage), ``new`` (a tensor the forward makes only to save it: ``elements`` of them, per
    sample when ``batched``) or ``weight`` (the layer's weight, ``elements`` in all: a
    parameter, or a half-precision copy under mixed precision). ``what`` names it.
    ``needs``: saved only when one of these inputs requires a gradient (autograd saves what the
    gradients it must compute need: linear's weight serves only its input's gradient, each
    factor of a product the other's); empty: always.
    """

    source: str
    dtype: str = "same"
    index: int = 0
    elements: int = 0
    batched: bool = True
    what: str = ""
    needs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.dtype not in SAVED_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(SAVED_DTYPES)}, got {self.dtype!r}")


SaveFunction = Callable[[Any, Node], tuple[SavedTensor, ...]]


@dataclass(frozen=True, slots=True)
class TrainingRule:
    """What a layer type keeps for backward, its output precision under autocast (one of
    ``AUTOCAST_OUTPUTS``, or a function of the layer giving one), its parameter tensors."""

    saves: SaveFunction
    autocast_output: str | Callable[[Any], str]
    parameter_tensors: Callable[[Any], int]

    def __post_init__(self) -> None:
        if isinstance(self.autocast_output, str) and self.autocast_output not in AUTOCAST_OUTPUTS:
            raise ValueError(f"autocast_output must be one of {', '.join(AUTOCAST_OUTPUTS)}")


def autocast_output(rule: TrainingRule, layer: Any) -> str:
    """The rule's output precision under autocast for this layer."""
    return rule.autocast_output if isinstance(rule.autocast_output, str) else rule.autocast_output(layer)


# --------------------------------------------------------------------------- rules

_INPUT = SavedTensor("input")
_OUTPUT = SavedTensor("output")
_COMPUTE_INPUT = SavedTensor("input", "compute")

#: Activations whose backward reads the output (``threshold_backward(grad, result)``, the
#: sigmoid and tanh derivatives); the others read the input.
_SAVES_OUTPUT = frozenset({"relu", "sigmoid", "tanh"})
#: In-place activations whose in-place derivative is written with the result (relu_,
#: leaky_relu_, sigmoid_, tanh_, elu_). For the others (relu6_ = hardtanh_, gelu_, silu_,
#: hardswish_, hardsigmoid_, mish_) autograd saves a copy of the input made before it is
#: overwritten. PyTorch has no softplus_.
_INPLACE_SAVES_RESULT = frozenset({"relu", "leaky_relu", "sigmoid", "tanh", "elu"})
#: Activations in CUDA autocast's float32 list (``AT_FORALL_FP32``, ATen/autocast_mode.h).
_FLOAT32_ACTIVATIONS = frozenset({"softplus"})


def _weight(elements: int, needs: tuple[int, ...] = ()) -> SavedTensor:
    return SavedTensor("weight", "compute", elements=elements, batched=False, what="weight", needs=needs)


def _conv_saves(layer: Conv | ConvTranspose, node: Node) -> tuple[SavedTensor, ...]:
    # ConvolutionBackward0: input and weight (the bias only by its size).
    return (_COMPUTE_INPUT, _weight(layer.weight_count))


def _linear_saves(layer: Linear, node: Node) -> tuple[SavedTensor, ...]:
    # addmm / mm on a view of the input (channels-last for ``axis: channels``, as torchvision's
    # ConvNeXt permutes it); the transposed weight only for the input's gradient.
    return (_COMPUTE_INPUT, _weight(layer.in_features * layer.out_features, needs=(0,)))


def _statistics(elements: int, batched: bool, *names: str) -> tuple[SavedTensor, ...]:
    return tuple(SavedTensor("new", "param", elements=elements, batched=batched, what=name) for name in names)


def _batch_norm_saves(layer: BatchNorm, node: Node) -> tuple[SavedTensor, ...]:
    # Training mode: the input, per-channel mean and inverse standard deviation (in the
    # parameters' dtype: float32 under mixed precision), not per sample; weight and running
    # statistics are module state, not activations.
    return (_INPUT, *_statistics(layer.num_features, False, "mean", "invstd"))


def _normalization_saves(layer: Normalization, node: Node) -> tuple[SavedTensor, ...]:
    statistics = layer.statistics(node.input_shapes[0])  # per sample
    if layer.kind != "instance_norm":
        # native_layer_norm / native_group_norm: the input (a float32 copy under CUDA autocast),
        # a mean and a reciprocal std per normalised group of every sample.
        return (_COMPUTE_INPUT, *_statistics(statistics, True, "mean", "rstd"))
    # F.instance_norm is batch_norm over a 1 x (N*C) view: the input, and per sample and channel
    # the weight repeated N times (when affine), the mean and the inverse std.
    weight = _statistics(statistics, True, "repeated weight") if layer.affine else ()
    return (_INPUT, *weight, *_statistics(statistics, True, "mean", "invstd"))


def _layer_scale_saves(layer: LayerScale, node: Node) -> tuple[SavedTensor, ...]:
    # ``gamma * x``: x for gamma's gradient (always: gamma is a parameter); gamma, a parameter.
    return (_INPUT,)


def _prelu_saves(layer: PReLU, node: Node) -> tuple[SavedTensor, ...]:
    # _prelu_kernel: the input and the weight (half-precision copies under autocast).
    return (_COMPUTE_INPUT, _weight(layer.num_parameters))


def _activation_saves(layer: Activation, node: Node) -> tuple[SavedTensor, ...]:
    if layer.function in _FLOAT32_ACTIVATIONS:
        if layer.inplace:
            raise LayerError(f"PyTorch has no in-place {layer.function}")
        return (_COMPUTE_INPUT,)
    if not layer.inplace:
        return (_OUTPUT,) if layer.function in _SAVES_OUTPUT else (_INPUT,)
    if layer.function in _INPLACE_SAVES_RESULT:
        return (_OUTPUT,)  # the result: the input's own storage, overwritten
    return (SavedTensor("new", elements=numel(node.input_shapes[0]), what="input copy"),)


def _activation_autocast(layer: Activation) -> str:
    return "float32" if layer.function in _FLOAT32_ACTIVATIONS else "promote"


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
    # saves a mask in the input's dtype instead; see docs/conventions.md ("Training memory")).
    return (SavedTensor("new", "bool", elements=numel(node.input_shapes[0]), what="mask"),)


def _softmax_saves(layer: Softmax, node: Node) -> tuple[SavedTensor, ...]:
    return (_OUTPUT,)


def _elementwise_saves(layer: Elementwise, node: Node) -> tuple[SavedTensor, ...]:
    """A join of k inputs runs as ``op(x0, x1)``, then each further input into that result
    (in place, as ``out.mul_(x)`` / ``out.clamp_min_(x)``; ``inplace`` starts in x0 itself).

    add and sub need only sizes. Each mul or max step keeps its two operands: the running
    result of the first j inputs as a copy (a new tensor, ``numel`` of their broadcast shape;
    x0's own storage in the first out-of-place step) and input j. A mul keeps each operand only
    for the other's gradient (``needs``); torch.maximum and clamp_min_ keep both always.
    """
    if layer.op in ("add", "sub"):
        return ()
    gated = layer.op == "mul"
    shapes = node.input_shapes
    saves: list[SavedTensor] = []
    for j in range(1, len(shapes)):
        earlier = tuple(range(j))
        if j == 1 and not layer.inplace:
            saves.append(SavedTensor("input", needs=(1,) if gated else ()))
        else:
            partial = numel(tuple(max(sizes) for sizes in zip(*shapes[:j])))
            saves.append(SavedTensor("new", index=j - 1, elements=partial, what="running result copy",
                                     needs=(j,) if gated else ()))
        saves.append(SavedTensor("input", index=j, needs=earlier if gated else ()))
    return tuple(saves)


def _nothing(layer: Any, node: Node) -> tuple[SavedTensor, ...]:
    """Backward needs only sizes: upsampling (every mode), concat, flatten, identity, crops,
    splits and shuffles."""
    return ()


def _normalization_autocast(layer: Normalization) -> str:
    # layer_norm and group_norm are in CUDA autocast's float32 list; instance_norm (batch_norm
    # underneath) is in no list and runs in its input's precision.
    return "promote" if layer.kind == "instance_norm" else "float32"


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
        Normalization: TrainingRule(_normalization_saves, _normalization_autocast, _affine),
        LayerScale: TrainingRule(_layer_scale_saves, "float32", _one),
        PReLU: TrainingRule(_prelu_saves, "half", _one),
        Activation: TrainingRule(_activation_saves, _activation_autocast, _no_parameters),
        Pool: TrainingRule(_pool_saves, "promote", _no_parameters),
        AdaptivePool: TrainingRule(_adaptive_pool_saves, "promote", _no_parameters),
        Dropout: TrainingRule(_dropout_saves, "promote", _no_parameters),
        Softmax: TrainingRule(_softmax_saves, "float32", _no_parameters),
        Upsample: TrainingRule(_nothing, "float32", _no_parameters),
        Elementwise: TrainingRule(_elementwise_saves, "promote", _no_parameters),
        Concat: TrainingRule(_nothing, "promote", _no_parameters),
        Flatten: TrainingRule(_nothing, "promote", _no_parameters),
        Identity: TrainingRule(_nothing, "promote", _no_parameters),
        Crop: TrainingRule(_nothing, "promote", _no_parameters),
        ChannelSlice: TrainingRule(_nothing, "promote", _no_parameters),
        ChannelShuffle: TrainingRule(_nothing, "promote", _no_parameters),
        PixelShuffle: TrainingRule(_nothing, "promote", _no_parameters),
        Opaque: TrainingRule(_nothing, "promote", _no_parameters),  # an imported op convcost cannot map: zero cost
    }
)
