"""Shared fixtures: a config file in a temporary folder, and the router app built on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from router.app import create_app
from router.config import Config, parse

WEB_KEY = "pk_web_test_key"
BACKEND_SECRET = "sk_backend_test_secret_0123456789"
META_TOKEN = "EAAB-canary-meta-token-0123456789"


def config_text(queue_path: Path, meta_url: str = "http://127.0.0.1:9", extra: str = "") -> str:
    """A router.yaml with a browser source, a server source and one Meta destination."""
    return f"""
server:
  trusted_proxy_hops: 1
  max_body_bytes: 200000
queue:
  url: sqlite:///{queue_path}
identity:
  default_phone_region: US
# A US shop whose backends send no consent signal: events without one go out in full. The built-in
# EEA-safe default (strip them) is tested in tests/router/test_consent.py.
consent: {{when_unknown: send}}
dispatch:
  poll_interval: 0.05
  linger: 0
  backoff_base: 0.05
  backoff_cap: 0.2
sources:
  - id: web
    kind: browser
    key: {WEB_KEY}
    allow_money_events: true
  - id: backend
    kind: server
    secret: {BACKEND_SECRET}
destinations:
  - id: meta_main
    type: meta
    pixel_id: "1234567890"
    access_token: {META_TOKEN}
    base_url: {meta_url}
{extra}"""


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build a Config whose SQLite queue lives in the test's temporary folder."""

    def make(**kwargs: str) -> Config:
        return parse(config_text(tmp_path / "queue.db", **kwargs), {})

    return make


@pytest.fixture
def client(make_config: Callable[..., Config]) -> Iterator[TestClient]:
    """A test client on the full app (lifespan included: queue open, dispatcher running)."""
    with TestClient(create_app(make_config()), base_url="http://router.test") as test_client:
        yield test_client
