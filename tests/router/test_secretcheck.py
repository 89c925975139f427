"""`router check` warns (without failing) about secrets written inline in router.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli import main
from router.config import parse
from router.secretcheck import warnings
from router.yamlpath import load_with_lines

INLINE = """\
admin:
  token: literal-admin-token-123
sources:
  - id: web
    kind: browser
    key: public-browser-key
  - id: backend
    kind: server
    secret: ${BACKEND_SECRET}
destinations:
  - id: meta_main
    type: meta
    pixel_id: "1234567890"
    access_token: EAAinlinetoken
"""


def _warnings(text: str) -> list[str]:
    """The warnings for a YAML text, named router.yaml."""
    raw, lines = load_with_lines(text)
    return warnings(raw, lines, "router.yaml")


def test_inline_access_token_names_file_line_path_and_variable() -> None:
    """A literal access_token is reported with its line and a ${TYPE_KEY} suggestion."""
    found = _warnings(INLINE)
    assert (
        "warning: router.yaml:14: destinations[0].access_token is written inline; use ${META_ACCESS_TOKEN}"
        in found
    )


def test_inline_admin_token_is_reported() -> None:
    """admin.token as a literal is a secret too."""
    assert "warning: router.yaml:2: admin.token is written inline; use ${ADMIN_TOKEN}" in _warnings(INLINE)


def test_references_and_public_keys_are_not_reported() -> None:
    """${ENV} references and a browser source's public key produce no warning."""
    found = _warnings(INLINE)
    assert not any("sources[" in w for w in found)
    assert len(found) == 2


def test_inline_source_secret_suggests_the_source_id() -> None:
    """A server source's literal secret suggests ${<ID>_SECRET}."""
    text = "sources:\n  - id: web-shop\n    kind: server\n    secret: s3cr3t-value-long\n"
    assert _warnings(text) == [
        "warning: router.yaml:4: sources[0].secret is written inline; use ${WEB_SHOP_SECRET}"
    ]


@pytest.mark.parametrize("key", ["client_secret", "refresh_token", "app_secret"])
def test_every_secret_key_is_checked(key: str) -> None:
    """Each credential key of a destination block is covered."""
    text = f"destinations:\n  - id: g\n    type: google_ads\n    {key}: literal\n"
    assert _warnings(text) == [
        f"warning: router.yaml:4: destinations[0].{key} is written inline; use ${{GOOGLE_ADS_{key.upper()}}}"
    ]


def test_no_secret_value_appears_in_the_warning() -> None:
    """The warning names where the secret is, never the secret itself."""
    assert not any("EAAinlinetoken" in w or "literal-admin-token" in w for w in _warnings(INLINE))


def test_parse_carries_the_warnings_and_env_references_are_clean() -> None:
    """parse() keeps the warnings on Config; a fully ${ENV} config has none."""
    env = {"BACKEND_SECRET": "b" * 24, "ADMIN": "a" * 24, "TOKEN": "t" * 24}
    clean = INLINE.replace("literal-admin-token-123", "${ADMIN}").replace("EAAinlinetoken", "${TOKEN}")
    assert parse(clean, env).warnings == ()
    assert len(parse(INLINE, env).warnings) == 2


def test_router_check_warns_but_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`router check` prints the warning and still exits 0."""
    config = tmp_path / "router.yaml"
    config.write_text(INLINE.replace("${BACKEND_SECRET}", "backend-secret-of-enough-length"))
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {config}:14: destinations[0].access_token is written inline" in out
    assert "sources[1].secret is written inline; use ${BACKEND_SECRET}" in out
    assert "is valid" in out
