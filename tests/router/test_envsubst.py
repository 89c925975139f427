"""Environment interpolation: ${X}, ${X:-default}, booleans, empty values, escapes and missing variables."""

from __future__ import annotations

from typing import Any

import pytest

from router.envsubst import interpolate
from router.errors import Problem


def expanded(document: Any, env: dict[str, str]) -> Any:
    """The interpolated document, asserting nothing was missing."""
    result, problems = interpolate(document, env)
    assert problems == []
    return result


def test_reference_is_replaced() -> None:
    """${X} takes the variable's value."""
    assert expanded({"a": "${X}"}, {"X": "value"}) == {"a": "value"}


def test_default_used_only_when_unset() -> None:
    """${X:-default} falls back to the default only when X is not set."""
    assert expanded({"a": "${X:-fallback}"}, {}) == {"a": "fallback"}
    assert expanded({"a": "${X:-fallback}"}, {"X": "set"}) == {"a": "set"}


def test_reference_inside_text() -> None:
    """References inside a longer string are replaced in place, and several per string work."""
    env = {"HOST": "db.internal", "PORT": "5432"}
    assert expanded({"url": "postgresql://${HOST}:${PORT}/router"}, env) == {
        "url": "postgresql://db.internal:5432/router"
    }


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("false", False), ("TRUE", True), (" False ", False)]
)
def test_whole_value_booleans(value: str, expected: bool) -> None:
    """A whole value that expands to true/false becomes a YAML boolean."""
    assert expanded({"enabled": "${FLAG}"}, {"FLAG": value}) == {"enabled": expected}
    assert expanded({"enabled": f"${{UNSET:-{value}}}"}, {}) == {"enabled": expected}


def test_booleans_inside_text_stay_text() -> None:
    """Only a whole value becomes a boolean."""
    assert expanded({"a": "x-${FLAG}"}, {"FLAG": "true"}) == {"a": "x-true"}


@pytest.mark.parametrize("number", ["0123456789", "42", "1.5", "1e3"])
def test_numbers_stay_strings(number: str) -> None:
    """Numbers are not converted: a pixel id with a leading zero must keep it."""
    assert expanded({"pixel_id": "${PIXEL}"}, {"PIXEL": number}) == {"pixel_id": number}


def test_empty_whole_value_removes_the_key() -> None:
    """${X:-} (or X set to '') as a whole value leaves the key out, as if it were not written."""
    assert expanded({"a": "${X:-}", "b": "kept"}, {}) == {"b": "kept"}
    assert expanded({"a": "${X}", "b": "kept"}, {"X": ""}) == {"b": "kept"}
    assert expanded({"outer": {"inner": "${X:-}"}}, {}) == {"outer": {}}


def test_empty_reference_inside_text_keeps_the_key() -> None:
    """An empty expansion inside a longer string leaves the rest of the string."""
    assert expanded({"a": "pre-${X:-}-post"}, {}) == {"a": "pre--post"}


def test_escaped_reference_is_literal() -> None:
    """$${LIT} is the literal text ${LIT}, not a reference."""
    assert expanded({"a": "$${LIT}", "b": "x $${LIT} ${Y}"}, {"Y": "y"}) == {"a": "${LIT}", "b": "x ${LIT} y"}


def test_missing_variable_is_one_problem_with_its_path() -> None:
    """An unset variable without default is reported once, at its YAML path, and expands to ''."""
    result, problems = interpolate(
        {"destinations": [{"id": "meta_main", "access_token": "${META_TOKEN}"}]}, {}
    )
    assert problems == [Problem("destinations[0].access_token", "environment variable META_TOKEN is not set")]
    assert result == {"destinations": [{"id": "meta_main", "access_token": ""}]}


def test_every_missing_variable_is_reported() -> None:
    """Two missing variables in two places are two problems."""
    _, problems = interpolate({"a": "${A}", "b": ["${B}"], "c": "${C:-ok}"}, {})
    assert problems == [
        Problem("a", "environment variable A is not set"),
        Problem("b[0]", "environment variable B is not set"),
    ]


def test_non_strings_and_plain_strings_untouched() -> None:
    """Numbers, booleans, None and strings without ${ pass through unchanged."""
    document = {"n": 1, "f": 1.5, "b": True, "z": None, "s": "$HOME and $ {X}", "l": [1, "two"]}
    assert expanded(document, {"HOME": "/root", "X": "x"}) == document


def test_empty_whole_value_in_a_list_is_left_out() -> None:
    """A list item whose whole value expands to nothing is left out, like a mapping key."""
    assert expanded({"allowed_origins": ["${ORIGIN:-}", "https://shop.example.com"]}, {}) == {
        "allowed_origins": ["https://shop.example.com"]
    }
