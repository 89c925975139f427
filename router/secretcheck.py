"""Secret check: warn when router.yaml writes a secret inline instead of as a ${ENV} reference."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from router.envsubst import REFERENCE
from router.yamlpath import format_path

SECRET_KEYS: Final = frozenset({"access_token", "client_secret", "refresh_token", "secret", "app_secret"})
"""Keys of a destination or source block whose value is a credential."""


def warnings(raw: Any, lines: Mapping[str, int], name: str) -> list[str]:
    """One `warning: file:line: path is written inline; use ${ENV}` per literal secret in the raw YAML."""
    return [
        f"warning: {_where(name, lines, path)}: {path} is written inline; use ${{{env}}}"
        for path, env in _inline(raw)
    ]


def _where(name: str, lines: Mapping[str, int], path: str) -> str:
    line = lines.get(path)
    return f"{name}:{line}" if line else name


def _inline(raw: Any) -> Iterator[tuple[str, str]]:
    """(YAML path, suggested variable) for each secret given as a literal in the pre-interpolation doc."""
    if not isinstance(raw, dict):
        return
    for section in ("destinations", "sources"):
        blocks = raw.get(section)
        for index, block in enumerate(blocks if isinstance(blocks, list) else []):
            if not isinstance(block, dict):
                continue
            prefix = _env_name(block.get("type") if section == "destinations" else block.get("id"))
            for key, value in block.items():
                if key in SECRET_KEYS and _literal(value):
                    path = format_path([section, index, str(key)])
                    yield path, "_".join(p for p in (prefix, str(key).upper()) if p)
    admin = raw.get("admin")
    if isinstance(admin, dict) and _literal(admin.get("token")):
        yield "admin.token", "ADMIN_TOKEN"


def _literal(value: Any) -> bool:
    """A non-empty value with no ${ENV} reference in it."""
    if value is None or value == "":
        return False
    return not (isinstance(value, str) and REFERENCE.search(value))


def _env_name(label: Any) -> str:
    """`meta` -> `META`, `web-shop` -> `WEB_SHOP`; empty when there is no usable label."""
    return re.sub(r"[^A-Za-z0-9]+", "_", str(label)).strip("_").upper() if label else ""
