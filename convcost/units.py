"""Units, dtypes and the one number formatter.

FLOPs derive from MACs here and nowhere else: one multiply-accumulate is one
multiply plus one add.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from types import MappingProxyType

__all__ = ["DTYPE_BYTES", "FLOPS_PER_MAC", "QUANTITY_KINDS", "dtype_bytes", "format_seconds", "format_shape",
           "humanize", "parse_quantity", "parse_seconds"]

FLOPS_PER_MAC = 2

DTYPE_BYTES = MappingProxyType({"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1})

_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
_BINARY = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a dtype name (see DTYPE_BYTES)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}") from None


def format_shape(shape: tuple[int, ...]) -> str:
    """``(192, 28, 28)`` -> ``192x28x28``."""
    return "x".join(str(dim) for dim in shape)


def humanize(value: int, unit: str, *, exact: bool = False) -> str:
    """Format a count with its unit: ``humanize(120422400, "MACs") == "120.4 M MACs"``.

    Byte counts (unit ``"B"``) use binary prefixes (``1.2 MiB``); everything
    else uses SI prefixes (K = 10^3, M = 10^6, G = 10^9, T = 10^12).
    ``exact=True`` prints the exact integer with thousands separators.
    """
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if exact:
        return f"{sign}{magnitude:,} {unit}"
    if unit == "B":
        for scale, prefix in _BINARY:
            if magnitude >= scale:
                return f"{sign}{_short(magnitude, scale)} {prefix}"
        return f"{sign}{magnitude} B"
    for scale, prefix in _SI:
        if magnitude >= scale:
            return f"{sign}{_short(magnitude, scale)} {prefix} {unit}".rstrip()
    return f"{sign}{magnitude} {unit}".rstrip()


def _short(magnitude: int, scale: int) -> str:
    # One decimal, rounded half-up on exact integers (no float rounding surprises).
    tenths = (magnitude * 10 * 2 + scale) // (2 * scale)
    whole, frac = divmod(tenths, 10)
    return f"{whole}.{frac}"


#: What ``parse_quantity`` reads: plain counts (MACs, FLOPs, parameters) or byte sizes.
QUANTITY_KINDS = ("count", "bytes")

_QUANTITY_SCALES = {
    "": 1,
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15,
    "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40, "pi": 1 << 50,
}
_QUANTITY_RE = re.compile(
    r"^\s*(?P<number>[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE](?P<exp>[+-]?[0-9]{1,3}))?"
    r"\s*(?P<prefix>[kKmMgGtTpP][iI]?)?(?P<unit>[bB])?\s*$"
)


def parse_quantity(text: str | int | float, kind: str = "count") -> int:
    """An exact non-negative integer from ``1.5G``, ``7M``, ``8MiB``, ``250_000`` or ``1e9``.

    SI prefixes K, M, G, T, P are powers of 10^3 and binary prefixes Ki, Mi,
    Gi, Ti, Pi powers of 2^10 (case-insensitive); a byte size may end in
    ``B``. The number is read as a decimal, never a binary float, so ``1.5G``
    is exactly 1,500,000,000; a result that is not a whole number (``1.5``,
    ``0.1K`` is fine, ``1.0001K`` is not) is refused. A float is read from the
    digits it was written with when it keeps them (a YAML float does:
    :class:`convcost.reader.WrittenFloat`); any other float must be a whole
    number below 2^53, where every integer is exact. Only ASCII digits count.
    Raises ``ValueError`` with a message naming the text.
    """
    if kind not in QUANTITY_KINDS:
        raise ValueError(f"unknown quantity kind {kind!r}; choose one of {', '.join(QUANTITY_KINDS)}")
    if isinstance(text, bool):
        raise ValueError(f"expected a number like 1.5G, got {text!r}")
    if isinstance(text, float) and not isinstance(getattr(text, "written", None), str):
        if not math.isfinite(text) or not text.is_integer() or abs(text) >= 2**53:
            raise ValueError(f"{text!r} is a float that is not an exact integer; write it as an integer or a "
                             "string, like 1.5G")
        text = int(text)
    if isinstance(text, int):
        number = Fraction(text)
        scale = 1
    elif isinstance(text, (float, str)):
        written = getattr(text, "written") if isinstance(text, float) else text
        match = _QUANTITY_RE.match(written) if len(written) <= 64 else None
        if match is None and written.strip().startswith("-"):
            raise ValueError(f"must not be negative, got {written!r}")
        if match is None or (match.group("unit") and kind != "bytes"):
            example = "8MiB, 512KiB, 1.5GB or 4096" if kind == "bytes" else "1.5G, 7M, 300K or 250000"
            raise ValueError(f"expected a non-negative number with an optional suffix, like {example}; "
                             f"got {written!r}")
        try:
            number = Fraction(Decimal(match.group("number").replace("_", "")))
        except (InvalidOperation, ValueError):
            raise ValueError(f"cannot read the number in {written!r}") from None
        if match.group("exp"):
            number *= Fraction(10) ** int(match.group("exp"))
        scale = _QUANTITY_SCALES[(match.group("prefix") or "").lower()]
    else:
        raise ValueError(f"expected a number like 1.5G, got {text!r}")
    value = number * scale
    if value < 0:
        raise ValueError(f"must not be negative, got {text!r}")
    if value.denominator != 1:
        if isinstance(text, float):
            raise ValueError(f"{getattr(text, 'written')} is not a whole number; write it as an integer or a "
                             "string, like 1.5G")
        raise ValueError(f"{text!r} is not a whole number ({float(value):g})")
    return int(value)


#: Time units read and written, largest first (ASCII ``us`` for microseconds; ``µs`` is read too).
_TIME_UNITS = (("s", Fraction(1)), ("ms", Fraction(1, 10**3)), ("us", Fraction(1, 10**6)), ("ns", Fraction(1, 10**9)))
_SECONDS_RE = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>s|ms|us|µs|ns)\s*$")


def parse_seconds(text: str | int | float) -> Fraction:
    """An exact non-negative time in seconds from ``5ms``, ``250us``, ``1.5s`` or ``80ns`` (the unit is required:
    a bare number could mean any of them). Read as a decimal, never a binary float. Raises ``ValueError``."""
    written = getattr(text, "written", text)
    match = _SECONDS_RE.match(written) if isinstance(written, str) and len(written) <= 64 else None
    if match is None:
        raise ValueError(f"expected a time with its unit, like 5ms, 250us, 1.5s or 80ns; got {written!r}")
    scale = dict(_TIME_UNITS)[match.group("unit").replace("µ", "u")]
    return Fraction(Decimal(match.group("number"))) * scale


def format_seconds(value: Fraction | int | float, digits: int = 3) -> str:
    """A time for people, ``digits`` significant digits (rounded half up) in the largest unit under it:
    ``1.23 ms``, ``456 us``, ``80.0 ns`` (``0 s`` for zero); with more than three digits, trailing zeros go
    (``3.70569 us``). Exact values are in the JSON report."""
    exact = Fraction(value)
    if exact <= 0:
        return "0 s"
    with localcontext() as context:
        context.prec, context.rounding = digits, ROUND_HALF_UP
        rounded = Fraction(+(Decimal(exact.numerator) / Decimal(exact.denominator)))
    for unit, scale in _TIME_UNITS:
        if rounded >= scale or unit == "ns":
            number = rounded / scale
            if number >= 1000:  # seconds only
                return f"{float(exact):,.0f} {unit}"
            if number < 1:  # under a nanosecond
                return f"{float(number):.{digits}g} {unit}"
            text = f"{float(number):.{max(0, digits - len(str(int(number))))}f}"
            if digits > 3 and "." in text:
                text = text.rstrip("0").rstrip(".")
            return f"{text} {unit}"
    raise AssertionError("unreachable")  # the loop ends at ns
