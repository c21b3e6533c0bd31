"""Budgets: upper limits on a report's totals, from options or a spec's ``budget:`` section.

A budget is a tuple of :class:`Limit`, each naming one key of
:data:`BUDGET_KEYS`. Values are exact integers read by
:func:`convcost.units.parse_quantity` (``1.5G``, ``7M``, ``8MiB``).
Command-line limits override the spec's, key by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import SpecError, UsageError, did_you_mean
from .located import LocatedDict
from .spec import Spec
from .units import parse_quantity

__all__ = ["BUDGET_KEYS", "BudgetKey", "Limit", "budget_from_options", "budget_from_spec", "merge_budgets"]


@dataclass(frozen=True, slots=True)
class BudgetKey:
    """One kind of limit: the ``Totals`` field it bounds, how its value reads, how it is shown."""

    metric: str  # field of costs.Totals
    kind: str  # "count" or "bytes", for parse_quantity
    label: str
    help: str

    @property
    def unit(self) -> str:
        return "B" if self.kind == "bytes" else self.label


#: Budget key (spec ``budget:`` key; the option is ``--max-...``) -> what it limits.
BUDGET_KEYS: Mapping[str, BudgetKey] = MappingProxyType(
    {
        "max_macs": BudgetKey("macs", "count", "MACs", "Most multiply-accumulates (conv and linear, bias excluded)."),
        "max_flops": BudgetKey("flops", "count", "FLOPs", "Most FLOPs (2 per MAC plus bias and elementwise work)."),
        "max_params": BudgetKey("params", "count", "params", "Most trainable parameters."),
        "max_weight_bytes": BudgetKey("weight_bytes", "bytes", "weight bytes",
                                      "Most bytes of trainable parameters at --dtype."),
        "max_peak_memory": BudgetKey("peak_activation_bytes", "bytes", "peak activation bytes",
                                     "Most activation bytes alive at once (inference schedule, input included)."),
    }
)


@dataclass(frozen=True, slots=True)
class Limit:
    """``key`` may be at most ``value``; ``origin`` says where the limit was set."""

    key: str
    value: int
    origin: str  # "--max-macs 1.5G" or "draft.yaml:4:3"

    @property
    def spec(self) -> BudgetKey:
        return BUDGET_KEYS[self.key]


def option_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def budget_from_options(values: Mapping[str, Any]) -> tuple[Limit, ...]:
    """``{"max_macs": "1.5G", "max_params": None, ...}`` -> limits; raises :class:`UsageError`."""
    limits = []
    for key, text in values.items():
        if key not in BUDGET_KEYS:
            raise UsageError(f"unknown budget '{key}'{did_you_mean(key, BUDGET_KEYS)}")
        if text is None:
            continue
        try:
            value = parse_quantity(text, BUDGET_KEYS[key].kind)
        except ValueError as exc:
            raise UsageError(f"{option_name(key)}: {exc}") from None
        limits.append(Limit(key, value, f"{option_name(key)} {text}"))
    return tuple(limits)


def budget_from_spec(spec: Spec, errors: list[SpecError] | None = None) -> tuple[Limit, ...]:
    """The spec's ``budget:`` section -> limits. Raises the first problem, or
    appends every problem to ``errors`` when given (and skips those keys)."""
    section = spec.budget
    if section is None:
        return ()
    limits = []
    for key, raw in section.items():
        where = section.at(key)
        try:
            if key not in BUDGET_KEYS:
                raise SpecError(f"unknown budget key '{key}'{did_you_mean(str(key), BUDGET_KEYS)}; "
                                f"allowed: {', '.join(BUDGET_KEYS)}", where)
            if isinstance(raw, (LocatedDict, list)) or raw is None:
                raise SpecError(f"budget '{key}' must be a number like 1.5G or 8MiB, got {raw!r}", where)
            try:
                value = parse_quantity(raw, BUDGET_KEYS[key].kind)
            except ValueError as exc:
                raise SpecError(f"budget '{key}': {exc}", where) from None
        except SpecError as error:
            if errors is None:
                raise
            errors.append(error)
            continue
        limits.append(Limit(key, value, str(where)))
    return tuple(limits)


def merge_budgets(spec_limits: tuple[Limit, ...], option_limits: tuple[Limit, ...]) -> tuple[Limit, ...]:
    """Options override the spec key by key; the result follows BUDGET_KEYS' order."""
    chosen = {limit.key: limit for limit in spec_limits}
    chosen.update({limit.key: limit for limit in option_limits})
    return tuple(chosen[key] for key in BUDGET_KEYS if key in chosen)
