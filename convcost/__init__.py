"""convcost: exact MACs, FLOPs, parameters and memory of convolutional network drafts.

Pipeline: :func:`load_spec` (YAML -> located spec) -> :func:`build_network`
(layers with inferred shapes) -> :func:`analyze` (costs) -> renderers.
"""

from __future__ import annotations

from .builder import build_network
from .costs import COST_FUNCTIONS, Cost, LayerCost, NetworkCost, Totals, analyze
from .errors import ConvcostError, Location, SpecError, UsageError
from .network import Network, Node
from .spec import Spec, load_spec, loads_spec

__all__ = [
    "COST_FUNCTIONS",
    "ConvcostError",
    "Cost",
    "LayerCost",
    "Location",
    "Network",
    "NetworkCost",
    "Node",
    "Spec",
    "SpecError",
    "Totals",
    "UsageError",
    "analyze",
    "build_network",
    "load",
    "load_spec",
    "loads",
    "loads_spec",
]

__version__ = "0.1.0"


def load(path: str) -> Network:
    """Read and build a spec file in one step."""
    return build_network(load_spec(path))


def loads(text: str, source: str = "<string>") -> Network:
    """Parse and build spec text in one step."""
    return build_network(loads_spec(text, source))
