"""`${VAR}` and `${VAR:-default}` interpolation in every string of a loaded YAML document."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from router.errors import Problem
from router.yamlpath import format_path

REFERENCE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ESCAPED: Final = "$${"
BOOLEANS: Final = {"true": True, "false": False}
UNSET: Final = object()
"""A whole value `${NAME:-}` that expands to nothing: the key is left out, as if it were not written."""


def interpolate(document: Any, env: Mapping[str, str]) -> tuple[Any, list[Problem]]:
    """The document with references replaced, and a problem for each variable that is not set.

    A key whose whole value expands to an empty string (`${NAME:-}`) is removed from its mapping.
    """
    problems: list[Problem] = []
    return _value(document, [], env, problems), problems


def _value(value: Any, path: list[str | int], env: Mapping[str, str], problems: list[Problem]) -> Any:
    if isinstance(value, dict):
        items = ((k, _value(v, [*path, str(k)], env, problems)) for k, v in value.items())
        return {k: v for k, v in items if v is not UNSET}
    if isinstance(value, list):
        values = (_value(v, [*path, i], env, problems) for i, v in enumerate(value))
        return [v for v in values if v is not UNSET]
    if isinstance(value, str) and "${" in value:
        return _string(value, path, env, problems)
    return value


def _string(text: str, path: list[str | int], env: Mapping[str, str], problems: list[Problem]) -> Any:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(Problem(format_path(path), f"environment variable {name} is not set"))
        return ""

    whole = REFERENCE.fullmatch(text)
    result = REFERENCE.sub(replace, text.replace(ESCAPED, "\0")).replace("\0", "${")
    if whole and not problems_added(problems, path):
        return _scalar(result) if result else UNSET
    return result


def problems_added(problems: list[Problem], path: list[str | int]) -> bool:
    """Whether this very value was reported missing (then it stays, as an empty string)."""
    return bool(problems) and problems[-1].path == format_path(path)


def _scalar(text: str) -> Any:
    """A whole-value reference to `true`/`false` becomes a boolean; anything else stays a string.

    Numbers stay strings on purpose: a pixel id such as `0123...` must not turn into an integer.
    """
    return BOOLEANS.get(text.strip().lower(), text)
