"""Budgets: upper limits on a report's totals, from options or a spec's ``budget:`` section.

A budget is a tuple of :class:`Limit`, each naming one key of
:data:`BUDGET_KEYS`. Values are exact integers read by
:func:`convcost.units.parse_quantity` (``1.5G``, ``7M``, ``8MiB``), or exact
times read by :func:`convcost.units.parse_seconds` (``5ms``). Command-line
limits override the spec's, key by key. Most keys are ceilings;
``min_receptive_field`` is a floor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import Location, SpecError, UsageError, did_you_mean
from .located import LocatedDict
from .spec import Spec
from .units import format_seconds, humanize, parse_quantity, parse_seconds

if TYPE_CHECKING:
    from .costs import NetworkCost

__all__ = ["BUDGET_KEYS", "BudgetKey", "Limit", "budget_from_options", "budget_from_spec", "merge_budgets"]


@dataclass(frozen=True, slots=True)
class BudgetKey:
    """One kind of limit: the total it bounds, how its value reads, how it is shown."""

    metric: str  # a field of costs.Totals, or with `figure` an attribute of figures.Figures
    kind: str  # "count" or "bytes" (for parse_quantity), or "seconds" (parse_seconds)
    label: str
    help: str
    figure: bool = False  # a figure beyond MACs (report.figures)
    minimum: bool = False  # a floor: the total must be at least the limit
    needs: str = ""  # what the figure needs besides the spec, for the message when it is missing

    @property
    def unit(self) -> str:
        return "B" if self.kind == "bytes" else self.label

    def parse(self, text: Any) -> int | Fraction:
        """A limit's value from its text; raises ``ValueError``."""
        return parse_seconds(text) if self.kind == "seconds" else parse_quantity(text, self.kind)

    def measure(self, report: NetworkCost) -> int | Fraction | None:
        """The report's value of this total; None for a figure the report does not have."""
        if not self.figure:
            return int(getattr(report.totals, self.metric))
        figures = report.figures
        return None if figures is None else getattr(figures, self.metric)

    def within(self, actual: int | Fraction, limit: int | Fraction) -> bool:
        return actual >= limit if self.minimum else actual <= limit

    def exact(self, value: int | Fraction) -> str:
        """The value written out exactly: ``4,089,184,256``, or a time to nine digits: ``3.70569058 us``."""
        return format_seconds(value, digits=9) if self.kind == "seconds" else f"{value:,}"

    def short(self, value: int | Fraction) -> str:
        """The value in its unit: ``4.1 G``, ``8.0 MiB`` or ``1.23 ms``."""
        if self.kind == "seconds":
            return format_seconds(value)
        assert isinstance(value, int)
        return humanize(value, "B" if self.kind == "bytes" else "").strip()


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
        "max_macs_nonpadding": BudgetKey("macs_nonpadding", "count", "MACs on real input",
                                         "Most MACs whose kernel tap reads real input, not zero padding.",
                                         figure=True),
        "max_training_macs": BudgetKey("training_macs", "count", "training MACs",
                                       "Most MACs of one training step (forward, weight and input gradients).",
                                       figure=True),
        "max_train_memory": BudgetKey("training_memory_bytes", "bytes", "training memory bytes",
                                      "Most bytes of one training step: saved activations, parameters, gradients "
                                      "and optimizer state (--optimizer, --mixed-precision).", figure=True,
                                      needs="a float dtype (float32, float16, bfloat16)"),
        "max_latency": BudgetKey("roofline_seconds", "seconds", "roofline time",
                                 "Most roofline time, a lower bound on latency, on --hardware: 5ms, 250us.",
                                 figure=True, needs="a hardware profile (--hardware NAME)"),
        "min_receptive_field": BudgetKey("min_receptive_field", "count", "receptive field",
                                         "Fewest input pixels every output must see along every spatial axis.",
                                         figure=True, minimum=True, needs="a spatial input"),
    }
)


@dataclass(frozen=True, slots=True)
class Limit:
    """``key`` may be at most ``value``; ``origin`` says where the limit was set."""

    key: str
    value: int | Fraction
    origin: str  # "--max-macs 1.5G" or "draft.yaml:4:3"
    where: Location | None = None  # in a spec's budget: section

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
            value = BUDGET_KEYS[key].parse(text)
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
                raise SpecError(f"budget '{key}' must be a number like 1.5G or 8MiB (a time like 5ms), got {raw!r}",
                                where)
            try:
                value = BUDGET_KEYS[key].parse(raw)
            except ValueError as exc:
                raise SpecError(f"budget '{key}': {exc}", where) from None
        except SpecError as error:
            if errors is None:
                raise
            errors.append(error)
            continue
        limits.append(Limit(key, value, str(where), where))
    return tuple(limits)


def merge_budgets(spec_limits: tuple[Limit, ...], option_limits: tuple[Limit, ...]) -> tuple[Limit, ...]:
    """Options override the spec key by key; the result follows BUDGET_KEYS' order."""
    chosen = {limit.key: limit for limit in spec_limits}
    chosen.update({limit.key: limit for limit in option_limits})
    return tuple(chosen[key] for key in BUDGET_KEYS if key in chosen)
