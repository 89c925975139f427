"""Validation: the date-time format, JSON pointers, and one problem per place and cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from router.errors import Problem
from router.validation import FORMATS, event_problems, fast_check_for, json_pointer, problems, validator_for
from router.yamlpath import format_path


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator with the router's format checker."""
    return Draft202012Validator(schema, format_checker=FORMATS)


OBJECT = validator(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$", "x-hint": "three capitals"},
            "inner": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"a": {"type": "integer"}},
            },
        },
    }
)


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01t00:00:00z",
        "2026-01-01T00:00:00+02:00",
        "2026-01-01T00:00:00-05:30",
        "2026-01-01T00:00:00.123456Z",
    ],
)
def test_date_time_valid(value: str) -> None:
    """RFC 3339 date-times with Z or an offset pass."""
    assert FORMATS.conforms(value, "date-time")


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:00",  # no zone: ambiguous
        "2026-01-01",  # no time
        "2026-01-01 00:00:00Z",  # no T
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T25:00:00Z",
        "yesterday",
        "",
    ],
)
def test_date_time_invalid(value: str) -> None:
    """Dates without zone or time, impossible dates and words fail."""
    assert not FORMATS.conforms(value, "date-time")


def test_date_time_ignores_non_strings() -> None:
    """The type keyword, not the format, rejects non-strings."""
    assert FORMATS.conforms(1767225600, "date-time")


@pytest.mark.parametrize(
    ("parts", "pointer"),
    [
        ([], ""),
        (["user", "email"], "/user/email"),
        (["properties", "contents", 0, "id"], "/properties/contents/0/id"),
        (["a/b"], "/a~1b"),
        (["a~b"], "/a~0b"),
        (["~1"], "/~01"),
    ],
)
def test_json_pointer_escaping(parts: list[str | int], pointer: str) -> None:
    """RFC 6901: ~ becomes ~0 and / becomes ~1, ~ first."""
    assert json_pointer(parts) == pointer


def test_additional_properties_one_problem_per_unknown_key() -> None:
    """Each unknown key is its own problem at its own path, listing the allowed keys."""
    found = problems(OBJECT, {"name": "x", "zz": 1, "aa": 2, "inner": {"b": 1, "a/c": 2}})
    assert [p.path for p in found] == ["/aa", "/inner/a~1c", "/inner/b", "/zz"]
    assert found[0].message == "unknown field; expected one of: code, inner, name, when"
    assert found[1].message == "unknown field; expected one of: a"


def test_required_names_the_missing_key() -> None:
    """A missing required key is reported at its own path."""
    assert problems(OBJECT, {}) == [Problem("/name", "is required")]


def test_several_problems_sorted_by_path_and_values_not_echoed() -> None:
    """Every problem at once, sorted by path; messages describe, never repeat, the value."""
    canary = "canary-secret-value"
    found = problems(OBJECT, {"name": 5, "when": canary, "code": canary, "inner": {"a": canary}})
    assert found == [
        Problem("/code", "has an invalid format; expected three capitals"),
        Problem("/inner/a", "must be of type integer"),
        Problem("/name", "must be of type string"),
        Problem("/when", "must be a valid date-time"),
    ]


def test_yaml_path_formatter() -> None:
    """The same problems can be named as YAML paths for config files."""
    found = problems(OBJECT, {"name": "x", "inner": {"a": "no"}}, format_path)
    assert found == [Problem("inner.a", "must be of type integer")]


def test_one_of_reports_the_deepest_branch_or_all_alternatives() -> None:
    """oneOf/anyOf report the inner problem when there is one, else the alternatives together."""
    v = validator(
        {"properties": {"t": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}}}
    )
    assert problems(v, {"t": True}) == [Problem("/t", "must be of type string; or must be of type number")]


def test_validator_for_caches_per_path(tmp_path: Path) -> None:
    """A schema file is checked once and the validator reused."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "object", "properties": {"when": {"format": "date-time"}}}))
    first = validator_for(path)
    assert validator_for(path) is first
    assert problems(first, {"when": "nope"}) == [Problem("/when", "must be a valid date-time")]


def test_bad_custom_property_name_message() -> None:
    """A custom property key that is not a valid name gets the key-name message."""
    v = validator(
        {"type": "object", "propertyNames": {"maxLength": 100, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}
    )
    [problem] = problems(v, {"bad key": 1})
    assert (
        problem.message
        == "has a key that is not a valid name (letters, digits and _, at most 100 characters)"
    )


# --- the compiled fast check agrees with jsonschema on the event schema ---------------------------

EVENT_SCHEMA = Path(__file__).resolve().parents[2] / "router" / "schema" / "event.schema.json"
ODD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 1.5, -0.5, 10**20, "", "x", "x" * 300, "x" * 5000, [], [1], {},
    {"a": 1}, "2026-01-01T10:00:00Z", "2026-01-01T10:00:00", "2026-13-01T10:00:00Z", "1767225600",
    "203.0.113.9", "2001:db8::1", "999.1.1.1", "granted", "denied", "EUR", "eur", "purchase",
    "fb.1.1700000000000.abc", "a" * 64, "1 OR 1=1", "ü" * 60, "bad key!",
]  # fmt: skip


def base_events() -> list[dict[str, Any]]:
    """Valid raw events that use every field of the schema, in its different accepted forms."""
    ids = {key: f"{key}-value.1" for key in ("fbp", "fbc", "fbclid", "gclid", "gbraid", "wbraid", "ttclid")}
    ids |= {
        key: f"{key}-value.2" for key in ("ttp", "sccid", "scid", "rdt_cid", "rdt_uuid", "epik", "li_fat_id")
    }
    full = {
        "event_name": "purchase",
        "event_id": "order-1001",
        "event_time": "2026-01-01T10:00:00Z",
        "action_source": "website",
        "page": {"url": "https://shop.example.com/thanks?x=1", "referrer": "https://a.ex/", "title": "T"},
        "user": {
            "email": " Jane.Doe@Example.com ", "phone": "+1 (650) 555-1212", "first_name": "Jane",
            "last_name": "Doe", "gender": "female", "date_of_birth": "1990-05-17", "city": "Menlo Park",
            "state": "CA", "zip": "94025", "country": "US", "external_id": "cust-1", "ip": "203.0.113.9",
            "user_agent": "Mozilla/5.0", "language": "en-US",
        },
        "ids": ids,
        "consent": {
            "ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "denied",
            "analytics_storage": "granted", "ldu": False,
        },
        "properties": {
            "value": 42.5, "currency": "EUR", "order_id": "1001", "content_type": "product",
            "search_string": "tea", "num_items": 2, "status": "paid", "custom_flag": True,
            "contents": [{"id": "sku-1", "quantity": 2, "price": 21.25, "name": "Tea", "category": "c",
                          "brand": "b"}],
        },
    }  # fmt: skip
    hashed = {
        "event_name": "lead",
        "event_id": "lead-7",
        "event_time": 1767225600,
        "action_source": "crm",
        "user": {key: "ab" * 32 for key in ("email", "phone", "country", "date_of_birth", "gender")},
        "properties": {"value": 0},
    }
    minimal = {"event_name": "page_view", "event_time": 1767225600123}
    return [full, hashed, minimal]


def mutations(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, replacement) of a leaf or container by an odd value, and an unknown key per object."""
    found: list[tuple[tuple[Any, ...], Any]] = [(path, value) for value in ODD_VALUES] if path else []
    if isinstance(document, dict):
        found.append(((*path, "zz_unknown"), 1))
        for key, value in document.items():
            found += mutations(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += mutations(value, (*path, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


def test_the_fast_check_agrees_with_jsonschema_on_every_mutation_of_real_events() -> None:
    """Tens of thousands of mutated events (wrong types, lengths, formats, patterns, unknown keys): the
    compiled check says valid exactly when jsonschema finds no problem, so the fast path can never let
    through what jsonschema refuses."""
    check, full = fast_check_for(EVENT_SCHEMA), validator_for(EVENT_SCHEMA)
    bases = base_events()
    assert all(not any(True for _ in full.iter_errors(base)) for base in bases)
    compared = 0
    for base in bases:
        assert check(base)
        for path, value in mutations(base):
            mutated = replaced(base, path, value)
            expected = not any(True for _ in full.iter_errors(mutated))
            assert check(mutated) == expected, (path, value)
            assert (event_problems(EVENT_SCHEMA, mutated) == []) == expected
            compared += 1
    assert compared > 2_000
