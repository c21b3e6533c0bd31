"""The ``blocks:`` section: reusable layer lists with parameters, read once before the network is built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import Location, SpecError, did_you_mean
from .kinds import LAYER_KINDS
from .located import LocatedDict, LocatedList
from .options import REQUIRED
from .spec import Spec
from .structures import STRUCTURES

__all__ = ["RESERVED", "Template", "read_templates"]

#: Template parameter names that are not free: the entry keys every block use may carry, and the input's
#: size, bound to what the block reads (in_length for 1-D inputs; in_depth, in_height, in_width as they apply).
RESERVED = ("name", "repeat", "from", "if", "in_channels", "in_length", "in_depth", "in_height", "in_width")


@dataclass(frozen=True, slots=True)
class Template:
    params: Mapping[str, Any]  # name -> default, or REQUIRED
    layers: LocatedList
    where: Location


def read_templates(spec: Spec, errors: list[SpecError] | None, broken: set[Any]) -> dict[str, Template]:
    """The ``blocks:`` section; collecting (``errors`` given), a bad block is noted in ``broken``."""
    templates: dict[str, Template] = {}
    for name, body in spec.blocks.items():
        try:
            templates[name] = _template(spec, name, body)
        except SpecError as error:
            if errors is None:
                raise
            errors.append(error)
            broken.add(name)
    return templates


def _template(spec: Spec, name: Any, body: Any) -> Template:
    where = spec.blocks.at(name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w\-]*", name):
        raise SpecError(f"block name must be an identifier, got {name!r}", where)
    if name in LAYER_KINDS or name in STRUCTURES:
        raise SpecError(f"block name '{name}' is already a layer kind", where)
    if not isinstance(body, LocatedDict):
        raise SpecError(f"block '{name}' must be a mapping with 'params' and 'layers'", where)
    for key in body:
        if key not in ("params", "layers"):
            raise SpecError(f"unknown key '{key}' in block '{name}'{did_you_mean(key, ('params', 'layers'))}",
                            body.at(key))
    raw_params = body.get("params") or LocatedList(body.where)
    params: dict[str, Any] = {}
    if isinstance(raw_params, LocatedList):
        for param in raw_params:
            if isinstance(param, (dict, list)):
                raise SpecError(f"block '{name}': parameter names must be identifiers, got {param!r}",
                                body.at("params"))
            params[param] = REQUIRED
    elif isinstance(raw_params, LocatedDict):
        # A parameter written without a default (``width:`` or ``width: null``) is required.
        params.update({key: REQUIRED if value is None else value for key, value in raw_params.items()})
    else:
        raise SpecError(f"'params' of block '{name}' must be a list of names or a mapping of defaults",
                        body.at("params"))
    for param in params:
        if not isinstance(param, str) or not re.fullmatch(r"[A-Za-z_]\w*", param) or param in RESERVED:
            raise SpecError(f"block '{name}': parameter name {param!r} must be an identifier other than "
                            f"{', '.join(RESERVED)}", body.at("params"))
    layers = body.get("layers")
    if not isinstance(layers, LocatedList) or not layers:
        raise SpecError(f"block '{name}' needs 'layers', a non-empty list", body.at("layers"))
    return Template(MappingProxyType(params), layers, body.at("layers"))
