"""Amounts as platforms take them: numbers that are not booleans, written as plain decimal strings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeGuard


def is_number(value: Any) -> TypeGuard[int | float]:
    """An int or a float, not a bool (JSON `true` is no amount)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def decimal(value: Any) -> str | None:
    """A number as a plain decimal string (`12.5`, `42`, `0.0000001`, never an exponent), else None."""
    if not is_number(value):
        return None
    if isinstance(value, int):
        return str(value)
    return format(Decimal(repr(value)), "f")
