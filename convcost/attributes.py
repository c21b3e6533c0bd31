"""Stage 2a': what a layer was built with, as a report row shows it (kernel, stride, padding, ...).

One read-only table from layer type to the options a report carries for it, so
a row can be checked against the spec without opening the YAML. Values are
JSON-ready: per-axis options are tuples of ints (one per spatial axis), ``same``
padding is the string ``"same"``, flags are bools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .layers import AdaptivePool, Conv, ConvTranspose, Linear, Pool

__all__ = ["LAYER_OPTIONS", "OPTION_KEYS", "layer_options"]

#: Every key :func:`layer_options` may return, in display order.
OPTION_KEYS = ("kernel", "stride", "padding", "output_padding", "dilation", "groups", "bias", "ceil_mode",
               "output_size")

Options = tuple[tuple[str, Any], ...]


def _conv(layer: Conv) -> Options:
    return (("kernel", layer.kernel), ("stride", layer.stride), ("padding", "same" if layer.same else layer.padding),
            ("dilation", layer.dilation), ("groups", layer.groups), ("bias", layer.bias))


def _conv_transpose(layer: ConvTranspose) -> Options:
    return (("kernel", layer.kernel), ("stride", layer.stride), ("padding", layer.padding),
            ("output_padding", layer.output_padding), ("dilation", layer.dilation), ("groups", layer.groups),
            ("bias", layer.bias))


def _pool(layer: Pool) -> Options:
    return (("kernel", layer.kernel), ("stride", layer.stride), ("padding", layer.padding),
            ("dilation", layer.dilation), ("ceil_mode", layer.ceil_mode))


#: Layer type -> its options as a report shows them; a type not here has none worth showing.
LAYER_OPTIONS: Mapping[type, Callable[[Any], Options]] = MappingProxyType({
    Conv: _conv,
    ConvTranspose: _conv_transpose,
    Pool: _pool,
    AdaptivePool: lambda layer: (("output_size", layer.output_size),),
    Linear: lambda layer: (("bias", layer.bias),),
})


def layer_options(layer: Any) -> Options:
    """``(("kernel", (3, 3)), ("stride", (1, 1)), ...)`` for a conv; ``()`` for a layer without such options."""
    describe = LAYER_OPTIONS.get(type(layer))
    return () if describe is None else describe(layer)
