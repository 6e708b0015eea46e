"""Numbers on the wire: DIN / ISO 15118-2 PhysicalValue (Multiplier, Unit, Value) and
ISO 15118-20 RationalNumber (Exponent, Value). Value is an xs:short in all of them, the
multiplier a power of ten from -3 to 3 (ISO 15118-2 unitMultiplierType; -20 allows a
byte, we never need more than that)."""

from __future__ import annotations

import math
from typing import Any

SHORT_MAX = 32767
MULTIPLIERS = (-3, -2, -1, 0, 1, 2, 3)



def scaled(x: float) -> tuple[int, int]:
    """(multiplier, value): the finest multiplier whose value still fits a short."""
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    for m in MULTIPLIERS:
        v = round(x / 10.0 ** m)
        if -SHORT_MAX - 1 <= v <= SHORT_MAX:
            return m, int(v)
    raise ValueError(f"{x!r} does not fit a PhysicalValue")


def physical(x: float, unit: str) -> dict[str, Any]:
    m, v = scaled(x)
    return {"Multiplier": m, "Unit": unit, "Value": v}


def rational(x: float) -> dict[str, Any]:
    m, v = scaled(x)
    return {"Exponent": m, "Value": v}


def number(pv: dict[str, Any]) -> float:
    """A PhysicalValue or RationalNumber as a float (the multiplier's key either way)."""
    exp = pv["Multiplier"] if "Multiplier" in pv else pv["Exponent"]
    return float(pv["Value"]) * 10.0 ** int(exp)
