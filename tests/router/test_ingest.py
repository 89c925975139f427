"""The ingest endpoint over HTTP: status codes, per-event results, persistence before the answer."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from router.app import create_app
from router.config import Config
from tests.conftest import BACKEND_SECRET, WEB_KEY

WEB = {"Authorization": f"Bearer {WEB_KEY}", "Content-Type": "application/json"}
BACKEND = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}


def purchase(**overrides: Any) -> dict[str, Any]:
    """A valid purchase event."""
    event: dict[str, Any] = {
        "event_name": "Purchase",
        "event_id": "order-1",
        "page": {"url": "https://shop.example.com/thanks"},
        "user": {"email": "jane@example.com"},
        "properties": {"value": 10.5, "currency": "usd"},
    }
    return {**event, **overrides}


def stored_payloads(tmp_path: Path) -> list[dict[str, Any]]:
    """The event payloads in the SQLite queue file."""
    with sqlite3.connect(tmp_path / "queue.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT payload FROM events")]


def test_single_event_is_accepted_and_stored_before_the_answer(client: TestClient, tmp_path: Path) -> None:
    """One event -> 202 with its event_id, and the row is already in the queue file."""
    response = client.post("/v1/events", headers=WEB, json=purchase())
    assert response.status_code == 202
    assert response.json() == {"results": [{"index": 0, "status": "accepted", "event_id": "order-1"}]}
    names = [p["event_name"] for p in stored_payloads(tmp_path)]
    assert names == ["purchase"]


def test_batch_accepts_valid_events_next_to_rejected_ones(client: TestClient) -> None:
    """A bad event in a batch is rejected with its paths; its neighbours are accepted."""
    bad = {"event_name": "lead", "user": {"email": "not-an-email", "country": "USA"}, "bogus": 1}
    response = client.post(
        "/v1/events", headers=WEB, json={"events": [purchase(), bad, purchase(event_id="o2")]}
    )
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["index"] == 1
    paths = [e["path"] for e in results[1]["errors"]]
    assert paths == ["/bogus", "/user/country", "/user/email"]
    assert results[2]["event_id"] == "o2"


def test_generated_event_id_is_returned(client: TestClient) -> None:
    """An event without event_id gets one, returned so the pixel can reuse it."""
    event = purchase()
    del event["event_id"]
    result = client.post("/v1/events", headers=WEB, json=event).json()["results"][0]
    assert result["status"] == "accepted"
    assert len(result["event_id"]) >= 32


def test_unusable_phone_is_a_warning_not_a_rejection(client: TestClient) -> None:
    """A phone that cannot be resolved to E.164 is dropped with a warning; the event is kept."""
    event = purchase(user={"email": "jane@example.com", "phone": "12345", "country": "GB"})
    result = client.post("/v1/events", headers=WEB, json=event).json()["results"][0]
    assert result["status"] == "accepted"
    assert [w["path"] for w in result["warnings"]] == ["/user/phone"]


def test_malformed_json_is_400_with_position(client: TestClient) -> None:
    """Broken JSON -> 400 naming where it broke."""
    response = client.post("/v1/events", headers=WEB, content=b'{"event_name": ')
    assert response.status_code == 400
    assert "line 1 column" in response.json()["error"]["message"]


def test_body_shapes_that_are_not_events_are_400(client: TestClient) -> None:
    """Arrays, scalars, empty bodies, empty batches, NaN and invalid UTF-8 -> 400, never 500."""
    for body in (
        b"[]",
        b"42",
        b"",
        b'{"events": []}',
        b'{"events": {}}',
        b'{"events": [], "x": 1}',
        b'{"event_name": NaN}',
        b"\xff\xfe{}",
        b"[" * 100_000,
    ):
        response = client.post("/v1/events", headers=WEB, content=body)
        assert response.status_code == 400, body[:20]
        assert response.json()["error"]["message"]


def test_missing_or_unknown_key_is_401(client: TestClient) -> None:
    """No credential, a wrong one, or a non-bearer scheme -> 401 with WWW-Authenticate."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {WEB_KEY}"}):
        response = client.post("/v1/events", headers={**headers, "Content-Type": "application/json"}, json={})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Authorization" in response.json()["error"]["message"]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    """A form post or text/plain -> 415 telling the client to send JSON."""
    response = client.post("/v1/events", headers={**WEB, "Content-Type": "text/plain"}, content=b"{}")
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


def test_content_type_with_charset_is_accepted(client: TestClient) -> None:
    """`application/json; charset=utf-8` is JSON."""
    headers = {**WEB, "Content-Type": "application/json; charset=utf-8"}
    assert client.post("/v1/events", headers=headers, json=purchase()).status_code == 202


def test_oversize_streamed_body_is_413(client: TestClient) -> None:
    """A chunked body that grows past max_body_bytes -> 413."""

    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 10_000

    response = client.post("/v1/events", headers=WEB, content=chunks())
    assert response.status_code == 413
    assert "200000 bytes" in response.json()["error"]["message"]


async def test_declared_oversize_body_is_refused_before_reading(make_config: Any) -> None:
    """Content-Length over the limit -> 413 without reading a single body chunk."""
    app = create_app(make_config())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {WEB_KEY}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"999999999"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("router.test", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        "app": app,
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413


def test_batch_over_500_is_413(client: TestClient) -> None:
    """More events than max_batch_events -> 413 naming the limit."""
    events = [{"event_name": "page_view"}] * 501
    response = client.post("/v1/events", headers=WEB, content=json.dumps({"events": events}).encode())
    assert response.status_code in (413,)
    assert "500" in response.json()["error"]["message"]


def test_browser_events_get_ip_ua_and_cookies(client: TestClient, tmp_path: Path) -> None:
    """Browser source: client IP from X-Forwarded-For (1 trusted hop), user agent and _fbp cookie stored."""
    headers = {
        **WEB,
        "X-Forwarded-For": "6.6.6.6, 203.0.113.9",
        "User-Agent": "Mozilla/5.0 test",
        "Cookie": "_fbp=fb.1.1700000000000.42; other=x",
    }
    client.post("/v1/events", headers=headers, json=purchase(page={"url": "https://s.example/?fbclid=Ab_-9"}))
    stored = stored_payloads(tmp_path)[0]
    assert stored["user"]["ip"] == "203.0.113.9"
    assert stored["user"]["user_agent"] == "Mozilla/5.0 test"
    assert stored["ids"]["fbp"] == "fb.1.1700000000000.42"
    assert stored["ids"]["fbc"].endswith(".Ab_-9") and stored["ids"]["fbc"].startswith("fb.1.")


def test_server_events_do_not_take_the_backend_ip(client: TestClient, tmp_path: Path) -> None:
    """Server source: the backend's own IP and UA are not the customer's, so they are not filled in."""
    headers = {**BACKEND, "X-Forwarded-For": "203.0.113.9", "User-Agent": "python-requests/2"}
    client.post("/v1/events", headers=headers, json=purchase())
    assert stored_payloads(tmp_path)[0]["user"] == {}


def test_events_are_routed_only_to_destinations_that_want_them(make_config: Any, tmp_path: Path) -> None:
    """An `events:` filter keeps other events out of that destination's queue."""
    config: Config = make_config(extra="    events: [purchase]\n")
    with TestClient(create_app(config)) as client:
        client.post("/v1/events", headers=WEB, json={"events": [purchase(), {"event_name": "page_view"}]})
    with sqlite3.connect(tmp_path / "queue.db") as db:
        rows = db.execute(
            "SELECT e.event_name, d.destination FROM events e JOIN deliveries d ON d.event_pk = e.pk"
        )
        assert sorted(rows) == [("purchase", "meta_main")]


def test_health_and_readiness(client: TestClient) -> None:
    """/healthz answers while alive, /readyz once the queue is open."""
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"


def test_browser_referer_becomes_the_page_url_without_emails(client: TestClient, tmp_path: Path) -> None:
    """A browser event without page.url takes the Referer; an email in its query string is removed."""
    event = purchase()
    del event["page"]
    referer = "https://shop.example.com/thanks?email=jane%40example.com&gclid=Cj0-x_1"
    client.post("/v1/events", headers={**WEB, "Referer": referer}, json=event)
    stored = stored_payloads(tmp_path)[0]
    assert stored["page"]["url"] == "https://shop.example.com/thanks?gclid=Cj0-x_1"
    assert stored["ids"]["gclid"] == "Cj0-x_1"
    assert "jane" not in json.dumps(stored)


def test_a_resent_event_is_answered_duplicate_and_queued_once(client: TestClient, tmp_path: Path) -> None:
    """A browser retry or webhook re-delivery of the same event id is `duplicate`, not queued twice."""
    first = client.post("/v1/events", headers=WEB, json=purchase()).json()["results"][0]
    again = client.post("/v1/events", headers=WEB, json={"events": [purchase(), purchase(event_id="o-9")]})
    assert first["status"] == "accepted"
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "accepted"]
    assert again.json()["results"][0]["event_id"] == "order-1"
    assert [p["event_id"] for p in stored_payloads(tmp_path)] == ["order-1", "o-9"]


def test_backend_and_browser_copies_of_one_order_are_not_duplicates(
    client: TestClient, tmp_path: Path
) -> None:
    """The key includes the source: the pixel-side and backend-side copies both go out (platforms dedup)."""
    client.post("/v1/events", headers=WEB, json=purchase())
    result = client.post("/v1/events", headers=BACKEND, json=purchase()).json()["results"][0]
    assert result["status"] == "accepted"
    assert len(stored_payloads(tmp_path)) == 2


def test_a_full_queue_answers_503_with_retry_after(make_config: Any) -> None:
    """Backpressure: past queue.max_depth the ingest refuses with 503 + Retry-After and stores nothing."""
    config = make_config()
    config = replace(config, queue=replace(config.queue, max_depth=2))
    lead = {"event_name": "lead", "action_source": "crm", "user": {"email": "a@b.co"}}
    with TestClient(create_app(config)) as client:
        ok = client.post("/v1/events", headers=BACKEND, json={"events": [lead, lead]})
        assert [r["status"] for r in ok.json()["results"]] == ["accepted", "accepted"]
        full = client.post("/v1/events", headers=BACKEND, json=lead)
        assert full.status_code == 503
        assert full.headers["retry-after"] == "5"
        assert full.json()["error"]["code"] == "queue_full"


def test_a_trusted_country_header_fills_browser_events_country(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """server.country_header: a browser event without user.country gets the proxy's country; an
    explicit country wins; Cloudflare's unknown (XX), Tor (T1) and junk are ignored; server sources
    and a router without the setting ignore the header."""
    config = make_config()
    config = replace(config, server=replace(config.server, country_header="CF-IPCountry"))
    sent = [
        (WEB, "DE", {}),
        (WEB, "fr", {"country": "US"}),
        (WEB, "XX", {}),
        (WEB, "T1", {}),
        (WEB, "Germany", {}),
        (BACKEND, "DE", {}),
    ]
    with TestClient(create_app(config), base_url="http://router.test") as test_client:
        for i, (headers, country, user) in enumerate(sent):
            body = {"event_name": "lead", "event_id": f"c-{i}", "user": {"email": "a@b.co", **user}}
            answer = test_client.post("/v1/events", json=body, headers={**headers, "CF-IPCountry": country})
            assert answer.status_code == 202, answer.text
    countries = {p["event_id"]: p["user"].get("country") for p in stored_payloads(tmp_path)}
    assert countries == {"c-0": "de", "c-1": "us", "c-2": None, "c-3": None, "c-4": None, "c-5": None}


def test_the_country_header_is_ignored_unless_configured(client: TestClient, tmp_path: Path) -> None:
    """Without server.country_header a client-set header is no evidence of anything."""
    body = {"event_name": "lead", "event_id": "c-x", "user": {"email": "a@b.co"}}
    assert client.post("/v1/events", json=body, headers={**WEB, "CF-IPCountry": "US"}).status_code == 202
    assert stored_payloads(tmp_path)[0]["user"].get("country") is None
