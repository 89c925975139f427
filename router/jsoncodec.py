"""JSON codec for the hot paths (queue payloads, platform request bodies): orjson, with a fallback.

orjson encodes and decodes several times faster than the standard library, but differs from it in
three corners, each handled here so the result is what `json` would give:
- integers beyond 64 bits: orjson refuses to encode them (we then encode with `json`) and decodes
  them as floats, losing digits (a text with a run of 20 digits is decoded with `json`);
- lone surrogates (`"\\ud800"`), which orjson refuses: encoded with `json`;
- NaN and infinities, which orjson writes as `null`: an output holding `null` is encoded again by
  `json` with `allow_nan=False`, which raises ValueError for them (documents rarely hold a null).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import orjson

DIGITS_AS_ZERO: Final = bytes(
    0x30 if 0x30 <= byte <= 0x39 else byte if byte == 0x2D else 0x20 for byte in range(256)
)
"""A `bytes.translate` table: every digit becomes `0`, `-` stays, everything else a space."""
LONG_NUMBER: Final = b"0" * 20
"""A run of 20 digits may not fit 64 bits (orjson would decode it as a float). Found by translating
then searching, both in C: a regular expression scanning every digit run cost more than the parse."""
LONG_NEGATIVE: Final = b"-" + b"0" * 19
"""A negative number of 19 digits may be below -2**63 (-9223372036854775809 would become a float)."""


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON; ValueError for NaN or an infinity, as `json.dumps(allow_nan=False)`."""
    try:
        encoded = orjson.dumps(document)
        if b"null" not in encoded:
            return encoded
    except TypeError:
        pass
    # ASCII escapes: a lone surrogate cannot be written as UTF-8, but `\ud800` can
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def dumps_text(document: Any) -> str:
    """`dumps` as text, for a TEXT column."""
    return dumps(document).decode()


def loads(text: str | bytes, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """Parse JSON, exactly as `json.loads(text, parse_constant=...)` would. orjson refuses NaN and
    the infinities, so a document holding one is parsed by `json`, which calls `parse_constant`."""
    raw = text.encode() if isinstance(text, str) else text
    shape = raw.translate(DIGITS_AS_ZERO)
    if LONG_NUMBER in shape or LONG_NEGATIVE in shape:
        return json.loads(raw, parse_constant=parse_constant)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw, parse_constant=parse_constant)
