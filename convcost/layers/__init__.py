"""Stage 2a: immutable layer objects and their shape rules.

Each layer is a frozen dataclass whose ``__post_init__`` checks the rules that
need no input shape, with a pure ``output_shape(*input_shapes)`` that checks
the rest; convcost.kinds builds them from a spec's options. Shapes are
channels-first tuples without the batch: ``(C,)``, ``(C, L)``, ``(C, H, W)``
or ``(C, D, H, W)``. ``compute`` holds the layers that do arithmetic,
``tensors`` the joins and the layers that move data.
"""

from __future__ import annotations

from typing import Any

from .base import (
    LayerError, Shape, conv_output_length, conv_transpose_output_length, numel, pool_output_length, rule_for,
)
from .compute import (
    ACTIVATIONS, Activation, AdaptivePool, BatchNorm, Conv, ConvTranspose, Dropout, LayerScale, Linear,
    Normalization, Pool, PReLU, Softmax, Upsample,
)
from .tensors import (
    AXES, ELEMENTWISE_OPS, ChannelShuffle, ChannelSlice, Concat, Crop, Elementwise, Flatten, Identity, Opaque,
    PixelShuffle,
)

__all__ = [
    "ACTIVATIONS", "AXES", "ELEMENTWISE_OPS", "Activation", "AdaptivePool", "BatchNorm", "ChannelShuffle",
    "ChannelSlice", "Concat", "Conv", "ConvTranspose", "Crop", "Dropout", "Elementwise", "Flatten", "Identity",
    "Layer", "LayerError", "LayerScale", "Linear", "Normalization", "Opaque", "PReLU", "PixelShuffle", "Pool", "Shape",
    "Softmax", "Upsample", "aliases_input", "conv_output_length", "conv_transpose_output_length", "numel",
    "pool_output_length", "rule_for",
]

Layer = (
    Conv | ConvTranspose | Pool | AdaptivePool | Linear | BatchNorm | Normalization | LayerScale | Activation
    | PReLU | Dropout | Softmax | Upsample | Flatten | Identity | Elementwise | Concat | Crop | ChannelSlice
    | ChannelShuffle | PixelShuffle | Opaque
)

#: Layers whose output is a view of their input at inference (no new memory).
_VIEWS = (Flatten, Dropout, Identity, Crop, ChannelSlice)


def aliases_input(layer: Any) -> bool:
    """Does the layer's output share its input's storage at inference (a view or an in-place op)?"""
    if isinstance(layer, _VIEWS):
        return True
    return isinstance(layer, (Activation, Elementwise)) and layer.inplace
