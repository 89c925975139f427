"""Server-source signatures: HMAC over `timestamp.body`, the skew window, replays, and /v1/events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from router import signature
from router.app import create_app
from router.config import Config, parse
from router.errors import ConfigError
from tests.conftest import BACKEND_SECRET, WEB_KEY

NOW = 1_800_000_000.0
BODY = json.dumps(
    {"event_name": "purchase", "event_id": "o-1", "properties": {"value": 5, "currency": "EUR"}}
)


def signed_headers(body: str, secret: str = BACKEND_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a request signed with `secret` at `timestamp` (default: now)."""
    at = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "X-Router-Timestamp": str(at),
        "X-Router-Signature": signature.sign(secret, at, body.encode()),
    }


@pytest.fixture
def app_client(make_config: Callable[..., Config]) -> Iterator[TestClient]:
    """The full app on the shared test config (a browser and a server source)."""
    with TestClient(create_app(make_config())) as client:
        yield client


def test_verify_finds_the_server_source_that_signed(make_config: Callable[..., Config]) -> None:
    """A signature made with the backend secret names the backend source."""
    sources = make_config().sources
    header = signature.sign(BACKEND_SECRET, int(NOW), BODY.encode())
    found = signature.verify(sources, str(int(NOW)), header, BODY.encode(), now=NOW)
    assert found.id == "backend"


@pytest.mark.parametrize(
    ("timestamp", "header", "body", "code"),
    [
        (
            str(int(NOW)),
            signature.sign("sk_wrong_secret_0123456789", int(NOW), BODY.encode()),
            BODY,
            "unauthorized",
        ),
        (str(int(NOW)), signature.sign(WEB_KEY, int(NOW), BODY.encode()), BODY, "unauthorized"),
        (str(int(NOW)), signature.sign(BACKEND_SECRET, int(NOW), BODY.encode()), BODY + " ", "unauthorized"),
        (
            str(int(NOW) - 301),
            signature.sign(BACKEND_SECRET, int(NOW) - 301, BODY.encode()),
            BODY,
            "expired_signature",
        ),
        (
            str(int(NOW) + 301),
            signature.sign(BACKEND_SECRET, int(NOW) + 301, BODY.encode()),
            BODY,
            "expired_signature",
        ),
        (None, signature.sign(BACKEND_SECRET, int(NOW), BODY.encode()), BODY, "bad_timestamp"),
        ("soon", signature.sign(BACKEND_SECRET, int(NOW), BODY.encode()), BODY, "bad_timestamp"),
        (str(int(NOW)), None, BODY, "bad_signature"),
        (str(int(NOW)), "md5=abc", BODY, "bad_signature"),
    ],
    ids=[
        "wrong-key",
        "browser-key",
        "tampered-body",
        "expired",
        "future",
        "no-ts",
        "bad-ts",
        "no-sig",
        "bad-sig",
    ],
)
def test_verify_refuses_with_a_code_saying_why(
    make_config: Callable[..., Config], timestamp: str | None, header: str | None, body: str, code: str
) -> None:
    """Wrong secret, a browser key, a changed body, a time outside the window, malformed headers."""
    with pytest.raises(signature.Refused) as raised:
        signature.verify(make_config().sources, timestamp, header, body.encode(), now=NOW)
    assert raised.value.code == code


def test_verify_accepts_the_edge_of_the_window(make_config: Callable[..., Config]) -> None:
    """Exactly 300 seconds of skew is still inside the window."""
    at = int(NOW) - 300
    header = signature.sign(BACKEND_SECRET, at, BODY.encode())
    assert signature.verify(make_config().sources, str(at), header, BODY.encode(), now=NOW).id == "backend"


def test_replay_cache_refuses_a_second_use_until_the_window_passes() -> None:
    """A signature is remembered until its timestamp leaves the window, then forgotten."""
    cache = signature.ReplayCache(window=300)
    assert not cache.seen("sha256=aa", int(NOW), NOW)
    assert cache.seen("sha256=aa", int(NOW), NOW + 10)
    assert not cache.seen("sha256=bb", int(NOW), NOW + 10)
    assert not cache.seen("sha256=cc", int(NOW) + 400, NOW + 400)
    assert len(cache) == 1


def test_replay_cache_is_bounded() -> None:
    """Past its limit the cache forgets the entries that expire first."""
    cache = signature.ReplayCache(window=300, limit=2)
    for index in range(5):
        cache.seen(f"sha256={index}", int(NOW) + index, NOW)
    assert len(cache) == 2


def test_signed_request_is_accepted(app_client: TestClient) -> None:
    """A body signed with the server secret is stored, without any Authorization header."""
    response = app_client.post("/v1/events", headers=signed_headers(BODY), content=BODY)
    assert response.status_code == 202
    assert response.json()["results"][0]["status"] == "accepted"


def test_replayed_signed_request_is_refused(app_client: TestClient) -> None:
    """The same signed request sent twice: the second is 401 replayed_signature."""
    headers = signed_headers(BODY)
    assert app_client.post("/v1/events", headers=headers, content=BODY).status_code == 202
    again = app_client.post("/v1/events", headers=headers, content=BODY)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_signature"


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        (lambda: signed_headers(BODY, secret="sk_wrong_secret_0123456789"), BODY, "unauthorized"),
        (lambda: signed_headers(BODY, timestamp=int(time.time()) - 3600), BODY, "expired_signature"),
        (lambda: signed_headers(BODY), BODY.replace("5", "5000"), "unauthorized"),
        (
            lambda: {"Content-Type": "application/json", "X-Router-Signature": "sha256=00"},
            BODY,
            "bad_timestamp",
        ),
    ],
    ids=["wrong-key", "expired", "tampered-body", "no-timestamp"],
)
def test_bad_signatures_are_401_with_the_reason(
    app_client: TestClient, headers: Callable[[], dict[str, str]], body: str, code: str
) -> None:
    """Every refused signature is a 401 naming what to fix; nothing is stored. The headers are made
    when the test runs: made at collection, a long suite would see them expire."""
    response = app_client.post("/v1/events", headers=headers(), content=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


def test_signature_headers_win_over_a_bearer(app_client: TestClient) -> None:
    """A request with signature headers is judged by its signature alone, even with a valid bearer."""
    headers = {
        **signed_headers(BODY, secret="sk_wrong_secret_0123456789"),
        "Authorization": f"Bearer {BACKEND_SECRET}",
    }
    assert app_client.post("/v1/events", headers=headers, content=BODY).status_code == 401


@pytest.fixture
def strict_client(make_config: Callable[..., Config]) -> Iterator[TestClient]:
    """The app with the server source set to `require_signature: true`."""
    config = make_config()
    sources = tuple(replace(s, require_signature=s.kind == "server") for s in config.sources)
    with TestClient(create_app(replace(config, sources=sources))) as client:
        yield client


def test_a_signature_only_source_refuses_its_secret_as_a_bearer(strict_client: TestClient) -> None:
    """require_signature: the secret as a bearer is 401 signature_required, as a Segment write key 401;
    a signed request is accepted; the browser key still works."""
    bearer = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}
    refused = strict_client.post("/v1/events", headers=bearer, content=BODY)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "signature_required"
    track = {"userId": "u-1", "event": "Order Completed", "properties": {"revenue": 5, "currency": "EUR"}}
    segment = strict_client.post("/v1/track", json=track, auth=(BACKEND_SECRET, ""))
    assert segment.status_code == 401
    signed = strict_client.post("/v1/events", headers=signed_headers(BODY), content=BODY)
    assert signed.status_code == 202, signed.text
    web = {"Authorization": f"Bearer {WEB_KEY}", "Content-Type": "application/json"}
    lead = json.dumps({"event_name": "lead", "event_id": "l-1"})
    assert strict_client.post("/v1/events", headers=web, content=lead).status_code == 202


def test_a_browser_source_cannot_require_a_signature(tmp_path: Path) -> None:
    """A browser cannot sign: the config refuses require_signature on a browser source."""
    text = f"""
queue: {{url: "sqlite:///{tmp_path}/q.db"}}
sources: [{{id: web, kind: browser, key: {WEB_KEY}, require_signature: true}}]
destinations: []
"""
    with pytest.raises(ConfigError) as caught:
        parse(text, {})
    assert "sources[0].require_signature" in str(caught.value)
