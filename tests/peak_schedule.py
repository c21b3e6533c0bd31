"""Helpers for the measured-memory tests: the last-use schedule written out independently of
convcost.costs, and an example as it was written before it carried torchvision's in-place marks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from convcost import loads
from convcost.layers import (
    AdaptivePool, Activation, ChannelSlice, Crop, Dropout, Elementwise, Flatten, Identity, Pool, numel,
)
from convcost.network import Network

F32 = 4


def unmarked(path: Path) -> Network:
    """The spec with every ``inplace: true`` removed (an activation ``- relu: {inplace: true}`` becomes
    ``- relu``; ``inplace: true`` inside a flow mapping or on a line of its own goes)."""
    text = path.read_text()
    text, bare = re.subn(r"^(\s*- \w+): \{inplace: true\}", r"\1", text, flags=re.MULTILINE)
    text, flows = re.subn(r", inplace: true", "", text)
    text, lines = re.subn(r"^\s*inplace: true.*\n", "", text, flags=re.MULTILINE)
    assert bare + flows + lines > 0, f"{path.name} has no in-place marks"
    assert "inplace" not in text
    return loads(text, source=f"{path.stem} (out of place)")


def _is_view(layer: Any) -> bool:
    if isinstance(layer, (Flatten, Identity, Dropout, Crop, ChannelSlice)):
        return True
    return isinstance(layer, (Activation, Elementwise)) and layer.inplace


def schedule_peak(network: Network, batch: int, *, pool_indices: bool = False) -> int:
    """Bytes (float32) of the last-use schedule: the inputs alive from the start, a storage freed
    after its last reader, the outputs kept, views and in-place ops sharing their first input's
    storage, a node's inputs and output alive while it runs; with ``pool_indices`` also the int64
    indices a max pool returns, alive while it runs."""
    refs = [-1 - k for k in range(len(network.inputs))]
    owner = {ref: ref for ref in refs}
    size = {ref: numel(network.shape_of(ref)) for ref in refs}
    last = dict.fromkeys(refs, -1)
    for node in network.nodes:
        owner[node.index] = owner[node.inputs[0]] if _is_view(node.layer) else node.index
        if owner[node.index] == node.index:
            size[node.index] = numel(node.output_shape)
        for ref in (*node.inputs, node.index):
            last[owner[ref]] = node.index
    kept = {owner[ref] for ref in network.output_refs}
    alive = peak = sum(size[ref] for ref in refs)
    alive -= sum(size[ref] for ref in refs if last[ref] == -1 and ref not in kept)
    for node in network.nodes:
        if owner[node.index] == node.index:
            alive += size[node.index]
        extra = 0
        if pool_indices and isinstance(node.layer, (Pool, AdaptivePool)) and node.layer.op == "max":
            extra = 2 * numel(node.output_shape)  # int64: two float32 slots an element
        peak = max(peak, alive + extra)
        alive -= sum(size[o] for o, step in last.items() if step == node.index and o not in kept)
    return peak * batch * F32
