"""JSON Schema validation that reports every problem with its path and a message free of input values.

The hot path (one event per call, thousands per second) first runs a validator compiled to Python code
by fastjsonschema, about 25 times faster than jsonschema's interpreter; only an instance it refuses is
validated again by jsonschema, which lists every problem. The schemas use no keyword whose meaning
differs between draft 7 (fastjsonschema) and 2020-12 (jsonschema); tests/router/test_validation.py
checks the two agree on valid and invalid events."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, cast

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from router.errors import Problem
from router.ipv4 import is_dotted_quad

Formatter = Callable[[Iterable[str | int]], str]

PROPERTY_NAMES = "has a key that is not a valid name (letters, digits and _, at most 100 characters)"
FORMATS = FormatChecker(["ipv4", "ipv6"])


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return "T" in value.upper() and parsed.tzinfo is not None


def _ipv4(value: Any) -> bool:
    """The `ipv4` format for the compiled check: a canonical dotted quad at once, else jsonschema's."""
    return (isinstance(value, str) and is_dotted_quad(value)) or FORMATS.conforms(value, "ipv4")


@cache
def validator_for(path: Path) -> Draft202012Validator:
    """A validator for the schema file, checked once and reused."""
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


@cache
def fast_check_for(path: Path) -> Callable[[Any], bool]:
    """A compiled yes/no check for the schema file: True when the instance is valid."""
    schema = json.loads(path.read_text()) | {"$schema": "http://json-schema.org/draft-07/schema#"}
    formats: dict[str, Callable[[Any], bool]] = {
        name: functools.partial(FORMATS.conforms, format=name) for name in FORMATS.checkers
    }
    formats["ipv4"] = _ipv4
    compiled = fastjsonschema.compile(schema, formats=formats, use_default=False)

    def check(instance: Any) -> bool:
        try:
            compiled(instance)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check


def json_pointer(parts: Iterable[str | int]) -> str:
    """`["user", "email"]` -> `/user/email`; the document itself is ``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def problems(validator: Draft202012Validator, instance: Any, fmt: Formatter = json_pointer) -> list[Problem]:
    """Every validation problem, deepest first, one per place and cause, sorted by path."""
    found: list[Problem] = []
    for error in validator.iter_errors(instance):
        found.extend(_describe(error, fmt))
    return sorted(dict.fromkeys(found), key=lambda p: p.path)


def event_problems(path: Path, instance: Any, fmt: Formatter = json_pointer) -> list[Problem]:
    """Every problem of a hot-path instance: none when the compiled check passes, else jsonschema's list."""
    if fast_check_for(path)(instance):
        return []
    return problems(validator_for(path), instance, fmt)


def _schema(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _describe(error: ValidationError, fmt: Formatter) -> list[Problem]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _schema(error).get("properties", {})
        return [
            Problem(fmt([*path, key]), f"unknown field; expected one of: {', '.join(sorted(allowed))}")
            for key in error.instance
            if key not in allowed
        ]
    if error.validator == "required":
        required: list[str] = list(cast(list[str], error.validator_value))
        missing = [k for k in required if isinstance(error.instance, dict) and k not in error.instance]
        return [Problem(fmt([*path, key]), "is required") for key in missing]
    if "propertyNames" in error.relative_schema_path:
        return [Problem(fmt(path), PROPERTY_NAMES)]
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _describe_alternatives(error, fmt)
    return [Problem(fmt(path), _message(error))]


def _describe_alternatives(error: ValidationError, fmt: Formatter) -> list[Problem]:
    deepest = max(error.context or [], key=lambda e: len(e.absolute_path))
    if len(deepest.absolute_path) > len(error.absolute_path):
        return _describe(deepest, fmt)
    options = "; or ".join(dict.fromkeys(_message(e) for e in error.context or []))
    return [Problem(fmt(list(error.absolute_path)), options)]


def _message(error: ValidationError) -> str:
    kind, expected = error.validator, cast(Any, error.validator_value)
    hint = _schema(error).get("x-hint")
    messages: dict[str, Callable[[], str]] = {
        "type": lambda: f"must be of type {_alternatives(expected)}",
        "enum": lambda: f"must be one of: {', '.join(map(str, expected))}",
        "const": lambda: f"must be {json.dumps(expected)}",
        "pattern": lambda: "has an invalid format" + (f"; expected {hint}" if hint else ""),
        "format": lambda: f"must be a valid {expected}",
        "minLength": lambda: f"must be at least {expected} characters long",
        "maxLength": lambda: f"must be at most {expected} characters long",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "minItems": lambda: f"must have at least {expected} items",
        "maxItems": lambda: f"must have at most {expected} items",
        "maxProperties": lambda: f"must have at most {expected} keys",
        "propertyNames": lambda: PROPERTY_NAMES,
        "not": lambda: "has a combination of fields that is not allowed",
    }
    make = messages.get(str(kind))
    return make() if make else f"is not valid ({kind})"


def _alternatives(expected: Any) -> str:
    return " or ".join(expected) if isinstance(expected, list) else str(expected)
