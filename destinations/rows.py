"""Field mapping as readable rows: each row reads `platform key <- canonical dotted path`.

A platform's fields.py lists rows; its adapter hands them to `to_dict` (or `each`) and holds no field
names itself. `to_dict` looks every path up, asks the row whether the value may be sent, wraps it in a
1-element list when the row says so, and leaves out what is missing, empty or refused. `Row` vets values
with a regular expression; a platform whose checks differ brings its own row type (see `Field`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
"""A stored digest: 64 lower-case hex characters. A raw identifier under `hashed` never matches."""


def lookup(source: Any, path: str) -> Any:
    """The value at a dotted path (`user.email`), or None."""
    value: Any = source
    for part in _parts(path):
        if not isinstance(value, (dict, Mapping)):  # dict first: a cheap check, and events are JSON
            return None
        value = value.get(part)
    return value


@functools.cache
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


CONTAINERS: Final = (str, list, dict)
"""The types whose empty value counts as missing."""


def empty(value: Any) -> bool:
    """None, "", [] and {} are empty; 0 and False are values."""
    return value is None or (isinstance(value, CONTAINERS) and not value)


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keys whose value is not None or empty (0 and False are kept); `empty` written inline."""
    return {
        key: value
        for key, value in body.items()
        if value is not None and (value or not isinstance(value, CONTAINERS))
    }


def unmapped(source: Mapping[str, Any], mapped: Collection[str]) -> dict[str, Any]:
    """The entries whose key is not in `mapped`, empty values left out: free properties passed through."""
    return {
        key: value
        for key, value in source.items()
        if key not in mapped and value is not None and (value or not isinstance(value, CONTAINERS))
    }


class Field(Protocol):
    """What `to_dict` needs of a row: where the value goes, where it comes from, and whether it may go."""

    @property
    def key(self) -> str:
        """The platform's field name."""

    @property
    def path(self) -> str:
        """The canonical dotted path the value is read from."""

    @property
    def as_list(self) -> bool:
        """Send the value as a 1-element array."""

    def value(self, found: Any) -> Any:
        """The value to send for what was found at `path`, or None to leave the field out."""


@dataclass(frozen=True, slots=True)
class Row:
    """One platform field filled from one canonical path; a value not fully matching `pattern` is left out.

    A list row (`as_list`) carries hashed identifiers: its value is lower-cased before the check, so a
    digest given in upper-case hex still goes out, and a raw value fails the SHA-256 pattern. Platforms
    that refuse a whole batch for one malformed field (Meta, Snap, Pinterest, Reddit) thus lose only the
    malformed optional signal, never the batch.
    """

    key: str
    path: str
    as_list: bool = False
    pattern: re.Pattern[str] | None = None

    def value(self, found: Any) -> Any:
        """`found` as it is without a pattern; with one, its text when it matches, else None."""
        if empty(found) or self.pattern is None:
            return found
        text = str(found).lower() if self.as_list else str(found)
        return text if self.pattern.fullmatch(text) else None


def to_dict(source: Any, rows: Iterable[Field]) -> dict[str, Any]:
    """The platform fields the rows fill from `source`, in row order; empty or refused values left out.

    A compiled table (destinations/table.py) fills itself: same result, without the per-row calls."""
    fill = getattr(rows, "fill", None)
    if fill is not None:
        result: dict[str, Any] = fill(source)
        return result
    out: dict[str, Any] = {}
    for row in rows:
        value = row.value(lookup(source, row.path))
        if not empty(value):
            out[row.key] = [value] if row.as_list else value
    return out


def each(items: Any, rows: Iterable[Field]) -> list[dict[str, Any]]:
    """`to_dict` of every object in a list (`contents[]`); non-objects and items that fill nothing dropped."""
    if not isinstance(items, list):
        return []
    fill = getattr(rows, "fill", None) or functools.partial(to_dict, rows=tuple(rows))
    mapped = (fill(item) for item in items if isinstance(item, Mapping))
    return [item for item in mapped if item]
