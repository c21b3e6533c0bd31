"""Units, dtypes and the one number formatter.

FLOPs derive from MACs here and nowhere else: one multiply-accumulate is one
multiply plus one add.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["DTYPE_BYTES", "FLOPS_PER_MAC", "dtype_bytes", "humanize"]

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
