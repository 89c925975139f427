"""Amounts: numbers that are not booleans, as plain decimal strings."""

from __future__ import annotations

import pytest

from destinations.amounts import decimal, is_number


@pytest.mark.parametrize(("value", "text"), [(42, "42"), (12.5, "12.5"), (1e-07, "0.0000001"), (-3, "-3")])
def test_decimal_never_writes_an_exponent(value: float, text: str) -> None:
    """Whole numbers as they are, floats in plain notation."""
    assert decimal(value) == text


@pytest.mark.parametrize("value", [True, False, "12", None, [1]])
def test_booleans_and_non_numbers_are_no_amount(value: object) -> None:
    """JSON true is not 1, and a numeric string is not a number."""
    assert not is_number(value)
    assert decimal(value) is None
