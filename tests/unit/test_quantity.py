"""Our quantity parser agrees with the official client's (kubernetes.utils.quantity, installed with the tests) on
every suffix the API server uses, and refuses what is no quantity."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kubernetes.utils.quantity import parse_quantity as official

from multisite_operator.quantity import parse_quantity

VALID = ["0", "1", "0.5", "500m", "100n", "3u", "1k", "2M", "1G", "1T", "1P", "1E", "128Ki", "256Mi", "1Gi", "2Ti",
         "1Pi", "1Ei", "1e3", "1E3", "1.5Gi", "12.25", "-1", "+2k", ".5", 3, 0.25, Decimal("7")]


@pytest.mark.parametrize("value", VALID, ids=str)
def test_agrees_with_the_official_client(value: object) -> None:
    assert parse_quantity(value) == official(value)


def test_equal_quantities_in_other_spellings_are_equal() -> None:
    assert parse_quantity("0.5") == parse_quantity("500m")
    assert parse_quantity("1024Mi") == parse_quantity("1Gi")
    assert parse_quantity("1k") != parse_quantity("1Ki")


@pytest.mark.parametrize("value", ["", "abc", "1ki", "1mi", "1.2.3", "Mi", "NaN", "Infinity", "1 Gi"])
def test_refuses_what_is_no_quantity(value: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(value)
