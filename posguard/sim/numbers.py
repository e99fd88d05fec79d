"""Decimal helpers: the simulator computes in Decimal and answers in OKX's string numbers."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)


def dec(value: object, field: str = "value") -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{field}: {value!r} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return result


def okx_str(value: Decimal | None, places: int = 12) -> str:
    """OKX's style: plain decimal strings, "" for not applicable, no exponent."""
    if value is None:
        return ""
    quantum = Decimal(1).scaleb(-places)
    text = format(value.quantize(quantum, rounding=ROUND_DOWN).normalize(), "f")
    return "0" if text in ("-0", "") else text


def round_to(value: Decimal, step: Decimal) -> Decimal:
    """Round to a multiple of `step` (a tick or lot size)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value() * step
