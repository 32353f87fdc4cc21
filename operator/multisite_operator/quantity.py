"""Kubernetes resource quantities ("500m", "1Gi", "1e3") as exact Decimals, to compare what we asked for with what
the API server hands back in canonical form ("0.5" comes back as "500m").

Our own few lines rather than the official client's `kubernetes.utils.quantity` (kube.py explains why the
operator does not load that package); tests/unit/test_quantity.py checks both agree on every suffix.
"""

from __future__ import annotations

import re
from decimal import Decimal

DECIMAL_SUFFIXES = {"n": -3, "u": -2, "m": -1, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}  # powers of 1000
BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}  # powers of 1024
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_quantity(quantity: str | int | float | Decimal) -> Decimal:
    """ValueError for anything that is not a quantity."""
    if isinstance(quantity, (int, float, Decimal)):
        return Decimal(quantity)
    text = str(quantity)
    if text[-2:] in BINARY_SUFFIXES:
        number, scale = text[:-2], Decimal(1024) ** BINARY_SUFFIXES[text[-2:]]
    elif text[-1:] in DECIMAL_SUFFIXES:
        number, scale = text[:-1], Decimal(1000) ** DECIMAL_SUFFIXES[text[-1:]]
    else:
        number, scale = text, Decimal(1)
    if not NUMBER.fullmatch(number):
        raise ValueError(f"not a quantity: {quantity!r}")
    return Decimal(number) * scale
