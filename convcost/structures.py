"""Stage 2c: structures, the entries that expand into several nodes: ``sequence``, ``concat`` (Inception
branches), ``residual``, ``dense``, ``split`` and ``squeeze_excite``.

``STRUCTURES`` is the one read-only table from structure kind to its keys and
its expansion; the builder checks the keys, convcost.schema reads them. An
expansion takes the builder (what it needs of it is :class:`Expansion`), the
entry's options, its input tensor and its name, and returns its output tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Protocol

from .errors import Location
from .layers import ACTIVATIONS, Activation, AdaptivePool, ChannelSlice, Concat, Conv, Elementwise, Layer, Shape
from .located import LocatedList
from .options import Options
from .spec import NAME

__all__ = ["STRUCTURES", "Expansion", "Structure"]


class Expansion(Protocol):
    """What a structure's expansion uses of the builder."""

    def add(self, name: str, make: Callable[[tuple[Shape, ...]], Layer], inputs: tuple[int, ...],
            where: Location) -> int: ...

    def sequence(self, items: Any, x: int, prefix: str, where: Location | None = None) -> int: ...

    def shape(self, ref: int) -> Shape: ...


Expand = Callable[[Expansion, Options, int], int]


@dataclass(frozen=True, slots=True)
class Structure:
    """A structure kind: its option keys (besides the common ones), the required ones, its expansion."""

    expand: Expand
    keys: tuple[str, ...]
    required: tuple[str, ...] = ()


def _sequence(b: Expansion, o: Options, x: int) -> int:
    return b.sequence(o.raw.get("layers"), x, o.name, o.where)


def _branches(b: Expansion, o: Options, x: int) -> int:
    branches = o.raw.get("branches")
    if not isinstance(branches, LocatedList) or not branches:
        raise o.error("concat needs 'branches', a list of layer lists", "branches")
    outputs = tuple(b.sequence(branch, x, f"{o.name}.branch{index + 1}", branches.at(index))
                    for index, branch in enumerate(branches))
    return b.add(f"{o.name}.concat", lambda _: Concat(inputs=len(outputs)), outputs, o.where)


def _residual(b: Expansion, o: Options, x: int) -> int:
    body = b.sequence(o.raw["body"], x, f"{o.name}.body", o.raw.at("body"))
    shortcut_items = o.raw.get("shortcut") or LocatedList(o.where)
    shortcut = b.sequence(shortcut_items, x, f"{o.name}.shortcut", o.raw.at("shortcut"))
    inplace = o.flag("inplace", False)  # PyTorch's ``out += identity``: written into the body's output
    return b.add(f"{o.name}.add", lambda _: Elementwise(op="add", inputs=2, inplace=inplace), (body, shortcut),
                 o.where)


def _dense(b: Expansion, o: Options, x: int) -> int:
    body = b.sequence(o.raw["body"], x, f"{o.name}.body", o.raw.at("body"))
    return b.add(f"{o.name}.concat", lambda _: Concat(inputs=2), (x, body), o.where)


def _split(b: Expansion, o: Options, x: int) -> int:
    """Parts of the channels, each a node ``<name>.<part>`` (``torch.split``: views)."""
    channels = b.shape(x)[0]
    if ("parts" in o.raw) == ("sizes" in o.raw):
        raise o.error("split needs 'parts' (equal parts) or 'sizes' (the channels of each part), one of them")
    if "parts" in o.raw:
        parts = o.integer("parts")
        if channels % parts:
            raise o.error(f"split into {parts} parts does not divide the {channels} input channels", "parts")
        sizes = [channels // parts] * parts
    else:
        value = o.value("sizes")
        sizes = [o.resolve(item, "sizes") for item in value] if isinstance(value, list) else [value]
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise o.error(f"'sizes' must be a list of channel counts >= 1, got {value!r}", "sizes")
        if sum(sizes) != channels:
            raise o.error(f"split sizes {sizes} add up to {sum(sizes)}, not the {channels} input channels", "sizes")
    names = o.value("names", [str(index) for index in range(len(sizes))])
    if not isinstance(names, list) or len(names) != len(sizes) or len(set(map(str, names))) != len(names) \
            or not all(isinstance(part, str) and NAME.fullmatch(part) for part in names):
        raise o.error(f"'names' must be {len(sizes)} different names (letters, digits, '_' or '-'), got {names!r}",
                      "names")
    start, last = 0, x
    for part, size in zip(names, sizes):
        last = b.add(f"{o.name}.{part}", _slice(start, start + size), (x,), o.where)
        start += size
    return last


def _slice(start: int, stop: int) -> Callable[[tuple[Shape, ...]], Layer]:
    return lambda _: ChannelSlice(start, stop)


def _squeeze_excite(b: Expansion, o: Options, x: int) -> int:
    """Global average pool, 1x1 conv down to the squeeze width, activation, 1x1 conv back up, gate, and
    the gate multiplied into the input (torchvision's SqueezeExcitation: both convs have a bias)."""
    shape = b.shape(x)
    channels, dims = shape[0], len(shape) - 1
    if dims < 1:
        raise o.error(f"squeeze_excite needs a CxL, CxHxW or CxDxHxW input, got {shape}")
    if ("reduce" in o.raw) == ("ratio" in o.raw):
        raise o.error("squeeze_excite needs 'reduce' (the squeeze width in channels) or 'ratio' (a fraction of the "
                      "input channels), one of them")
    if "reduce" in o.raw:
        squeeze = o.integer("reduce")
    else:
        ratio = o.number("ratio")
        if not 0 < ratio <= 1:
            raise o.error(f"'ratio' must be a fraction in (0, 1], got {ratio}", "ratio")
        squeeze = max(1, math.floor(Fraction(str(ratio)) * channels))
    activation = o.choice("activation", tuple(ACTIVATIONS), "relu")
    gate = o.choice("gate", ("sigmoid", "hardsigmoid"), "sigmoid")
    inplace = o.flag("inplace", False)  # the activation in place (EfficientNet: partial(nn.SiLU, inplace=True))
    if inplace and activation == "softplus":
        raise o.error("softplus has no in-place form in PyTorch; leave 'inplace' out", "inplace")
    ones, kind = (1,) * dims, f"conv{dims}d"

    def conv(c_in: int, c_out: int) -> Conv:
        return Conv(dims=dims, in_channels=c_in, out_channels=c_out, kernel=ones, stride=ones, padding=(0,) * dims,
                    dilation=ones, kind=kind)

    name, where = o.name, o.where
    pool = b.add(f"{name}.pool", lambda _: AdaptivePool("avg", dims, ones, kind="global_avg_pool"), (x,), where)
    down = b.add(f"{name}.reduce", lambda _: conv(channels, squeeze), (pool,), where)
    act = b.add(f"{name}.{activation}", lambda _: Activation(activation, inplace, kind=activation), (down,), where)
    up = b.add(f"{name}.expand", lambda _: conv(squeeze, channels), (act,), where)
    scale = b.add(f"{name}.{gate}", lambda _: Activation(gate, kind=gate), (up,), where)
    return b.add(f"{name}.scale", lambda _: Elementwise(op="mul", inputs=2, kind="mul"), (x, scale), where)


#: Structure kind -> keys and expansion. Read-only; every structure a spec may name is here.
STRUCTURES: Mapping[str, Structure] = MappingProxyType({
    "sequence": Structure(_sequence, ("layers",), ("layers",)),
    "concat": Structure(_branches, ("branches",), ("branches",)),
    "residual": Structure(_residual, ("body", "shortcut", "inplace"), ("body",)),
    "dense": Structure(_dense, ("body",), ("body",)),
    "split": Structure(_split, ("parts", "sizes", "names")),
    "squeeze_excite": Structure(_squeeze_excite, ("reduce", "ratio", "activation", "gate", "inplace")),
})
