"""From command-line arguments to a built network: a spec file, or one layer from flags."""

from __future__ import annotations

from typing import Any

from ..builder import build_network
from ..errors import Location, UsageError
from ..network import Network
from ..spec import Spec, load_spec, parse_shape
from .options import LayerFlags

__all__ = ["load_network", "network_from"]


def load_network(path: str) -> Network:
    """A spec file (``-`` for standard input), built."""
    return build_network(load_spec(path))


def network_from(spec: str | None, layer: LayerFlags) -> Network:
    """A spec file, or the one layer the flags describe; never both."""
    given = layer.given()
    if spec is not None:
        if layer.input_shape is not None or given:
            both = ", ".join(given or ["--input"])
            raise UsageError(f"give either SPEC or --input with layer flags, not both ({both})")
        return load_network(spec)
    if layer.input_shape is None:
        raise UsageError("give a SPEC file (or - for stdin), or --input CxHxW with layer flags")
    shape = parse_shape(layer.input_shape, Location("<command line>"), "--input")
    options = {key: _axis_value(value) if isinstance(value, str) else value
               for key, value in layer.layer_options().items()}
    return build_network(Spec.single_layer(shape, layer.kind, options))


def _axis_value(text: str) -> Any:
    """'5' -> 5, '1x7' stays a per-axis string, 'same'/'valid' pass through."""
    text = text.strip()
    # ASCII digits only ('٣' is not 3); longer than 30: left to the spec rules, which refuse it in one line
    if text.isascii() and text.isdigit() and len(text) <= 30:
        return int(text)
    return text
