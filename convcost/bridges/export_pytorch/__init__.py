"""A spec -> readable PyTorch source (``convcost export SPEC --to pytorch``): starting code for a draft.

The design follows the spec tree, not only the built network, because a network has lost what a person
writes: its templates. Each ``blocks:`` template becomes an ``nn.Module`` class whose ``__init__`` takes
``in_channels`` and the template's parameters (``$p`` and ``${...}`` become Python expressions over them,
``if:`` becomes ``if``, ``repeat:`` a loop), and the network is a class whose layers are attributes named
after the spec's names, so module paths follow convcost's layer names. Channel counts are tracked as
expressions; where a value depends on a spatial size (a ``linear`` over the last axis or after a flatten,
a ``layer_norm`` over the last axis) it is read from the built network, which is possible outside
templates only. Joins, crops and splits are written in ``forward``, which follows the graph: a tensor read
by name later gets a variable of that name.

The code imports only torch. A few small modules that torch lacks are written out when used
(``LayerNormOverChannels``, ``LinearOverChannels``, ``LayerScale``, ``SqueezeExcitation``,
``ChannelShuffle``, ``center_crop``), each exporting to the ONNX ops ``convcost import`` maps back.

The modules: ``names`` (identifiers and spec values as Python), ``text`` (the helpers' source and the file),
``scan`` (what the layer lists say), ``leaves`` (the table of leaf layers' modules), ``structures`` (what is
written inline in ``forward``) and ``exporter`` (the classes, entry by entry).
"""

from __future__ import annotations

from ...network import Network
from ...spec import Spec
from .exporter import Exporter
from .text import source_file

__all__ = ["export_pytorch"]


def export_pytorch(spec: Spec, network: Network) -> str:
    """Readable PyTorch source for a spec (and the network built from it); raises :class:`SpecError` for
    what has no PyTorch form here (an opaque layer, a block reading a tensor from outside)."""
    exporter = Exporter(spec, network)
    network_cls = exporter.network_class()
    return source_file(spec, network_cls, exporter.order, exporter.helpers)
