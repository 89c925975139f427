"""Shape limits on client JSON: nesting depth, string length and keys per object, without recursion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from router import jsoncodec

MAX_DEPTH: Final = 32
"""Deepest nesting of objects and arrays a client document may have."""
MAX_STRING: Final = 8192
"""Longest string (key or value, in characters) anywhere in a client document."""
MAX_KEYS: Final = 1000
"""Most keys in any one object of a client document."""


class TooComplex(ValueError):
    """The document is valid JSON but over a shape limit; the message says which and what to fix."""


def loads(body: bytes | str, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """json.loads (through router/jsoncodec.py: orjson, same result), then check() unless the body is
    too small to break a limit; a document too deep for the parser is TooComplex, not RecursionError."""
    raw = body.encode() if isinstance(body, str) else body
    try:
        document = jsoncodec.loads(raw, parse_constant=parse_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    if not within_by_size(raw):
        check(document)
    return document


def within_by_size(raw: bytes) -> bool:
    """True when the text alone shows every limit holds, so the walk can be skipped (single events):
    - a string of more than MAX_STRING characters takes more bytes than that (a character is >= 1 byte);
    - an object with more than MAX_KEYS keys takes more than 5 bytes per distinct key (`"k":0,`);
    - nesting deeper than MAX_DEPTH takes more than MAX_DEPTH `{` or `[`, counted even inside strings.
    """
    small = len(raw) <= min(MAX_STRING, 5 * MAX_KEYS)
    return small and raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH


def check(document: Any) -> None:
    """TooComplex when the parsed document breaks a limit; walks with an explicit stack."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _string(node)
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            stack.extend((child, depth + 1) for child in _children(node))


def _children(node: dict[str, Any] | list[Any]) -> list[Any]:
    if isinstance(node, list):
        return node
    if len(node) > MAX_KEYS:
        raise TooComplex(f"an object in the body has {len(node)} keys; at most {MAX_KEYS} are allowed")
    for key in node:
        _string(key)
    return list(node.values())


def _string(value: str) -> None:
    if len(value) > MAX_STRING:
        raise TooComplex(
            f"a string in the body is {len(value)} characters long; at most {MAX_STRING} are allowed"
        )


def _too_deep() -> TooComplex:
    return TooComplex(f"the body is nested deeper than {MAX_DEPTH} levels of objects and arrays")
