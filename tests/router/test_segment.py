"""The Segment HTTP Tracking API endpoints over HTTP: auth, batches, answers, what ends up in the queue."""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from router.app import create_app
from router.config import Config
from tests.conftest import BACKEND_SECRET, WEB_KEY


def basic(user: str, password: str = "") -> dict[str, str]:
    """`Authorization: Basic` with the write key as user, as Segment's server SDKs send it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


SERVER = basic(BACKEND_SECRET)
BROWSER = {"Content-Type": "text/plain", "X-Forwarded-For": "198.51.100.23", "User-Agent": "Mozilla/5.0 (t)"}
"""analytics.js: text/plain, no Authorization (the write key is in the body)."""


def now_iso(offset_s: float = 0) -> str:
    """An ISO timestamp relative to the real clock (the router checks event age against it)."""
    return datetime.fromtimestamp(time.time() + offset_s, UTC).isoformat(timespec="milliseconds")


def order(message_id: str = "msg-order-1", **fields: Any) -> dict[str, Any]:
    """An Order Completed track call as a server SDK sends it."""
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": "user-7",
        "timestamp": now_iso(-5),
        "properties": {
            "order_id": "1001",
            "revenue": 42.5,
            "currency": "eur",
            "products": [{"product_id": "sku-1", "quantity": 2, "price": 21.25, "name": "Tee"}],
        },
        "context": {
            "ip": "203.0.113.5",
            "userAgent": "Shop/1.0",
            "traits": {"email": "Jane.Doe@Example.com"},
        },
        **fields,
    }


def stored(tmp_path: Path) -> list[dict[str, Any]]:
    """The canonical payloads in the SQLite queue, in insertion order."""
    with sqlite3.connect(tmp_path / "queue.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT payload FROM events ORDER BY rowid")]


def test_server_track_with_basic_auth_is_stored_as_a_canonical_purchase(
    client: TestClient, tmp_path: Path
) -> None:
    """Basic auth with the backend secret: 200 {"success": true}; the purchase is on disk, email hashed."""
    response = client.post("/v1/track", headers=SERVER, json=order())
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "results": [{"index": 0, "status": "accepted", "event_id": "msg-order-1"}],
    }
    [event] = stored(tmp_path)
    assert event["event_name"] == "purchase"
    assert event["event_id"] == "msg-order-1"
    assert event["source"] == "backend"
    assert event["properties"] == {
        "value": 42.5,
        "currency": "EUR",
        "order_id": "1001",
        "contents": [{"id": "sku-1", "quantity": 2, "price": 21.25, "name": "Tee"}],
        "content_type": "product",
    }
    assert event["user"] == {"ip": "203.0.113.5", "user_agent": "Shop/1.0"}
    assert abs(event["timestamp_ms"] - (event["received_ms"] - 5000)) < 2000
    assert "Jane" not in json.dumps(event) and "user-7" not in json.dumps(event)
    assert event["hashed"], "the email and user id are stored hashed"


def test_wrong_or_missing_write_key_is_401(client: TestClient, tmp_path: Path) -> None:
    """An unknown Basic user -> 401 with a Basic challenge; no credential at all -> 401 without one."""
    wrong = client.post("/v1/track", headers=basic("sk_nope"), json=order())
    assert wrong.status_code == 401
    assert wrong.json()["success"] is False and wrong.json()["code"] == "unauthorized"
    assert wrong.headers["www-authenticate"] == 'Basic realm="router"'
    missing = client.post("/v1/track", json=order())
    assert missing.status_code == 401 and "www-authenticate" not in missing.headers
    garbled = client.post("/v1/track", headers={"Authorization": "Basic %%%"}, json=order())
    assert garbled.status_code == 401
    assert stored(tmp_path) == []


def test_a_browser_write_key_in_the_body_is_accepted_as_analytics_js_sends_it(
    client: TestClient, tmp_path: Path
) -> None:
    """analytics.js's /v1/t with writeKey in a text/plain body: the browser source, the request's IP."""
    body = {
        "type": "track",
        "event": "Product Added",
        "writeKey": WEB_KEY,
        "messageId": "ajs-next-abc",
        "properties": {"product_id": "sku-9", "price": 9.5, "quantity": 1},
        "context": {"ip": "192.0.2.99", "page": {"url": "https://shop.example.com/p/9"}},
    }
    response = client.post("/v1/t", headers=BROWSER, content=json.dumps(body))
    assert response.status_code == 200 and response.json()["success"] is True
    [event] = stored(tmp_path)
    assert (event["source"], event["event_name"], event["event_id"]) == ("web", "add_to_cart", "ajs-next-abc")
    assert event["user"]["ip"] == "198.51.100.23", "a browser's context.ip is not trusted"
    assert event["user"]["user_agent"] == "Mozilla/5.0 (t)"


def test_a_server_secret_in_the_body_is_not_accepted(client: TestClient) -> None:
    """Only browser keys may travel in the body; a server secret there is 401 (send it as Basic)."""
    response = client.post("/v1/track", json={**order(), "writeKey": BACKEND_SECRET})
    assert response.status_code == 401


def test_a_mixed_batch_answers_one_result_per_message(client: TestClient, tmp_path: Path) -> None:
    """track, identify, page, a nameless track and a non-object: each gets its own result, in order."""
    batch = [
        order("m-1"),
        {"type": "identify", "userId": "user-7", "traits": {"email": "jane@example.com"}},
        {
            "type": "page",
            "messageId": "m-3",
            "properties": {"url": "https://shop.example.com/", "title": "Home"},
        },
        {"type": "track", "messageId": "m-4"},
        "not a message",
    ]
    response = client.post("/v1/batch", headers=SERVER, json={"batch": batch, "sentAt": now_iso()})
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"index": 0, "status": "accepted", "event_id": "m-1"},
        {"index": 1, "status": "skipped", "reason": "identify calls store no event"},
        {"index": 2, "status": "accepted", "event_id": "m-3"},
        {
            "index": 3,
            "status": "rejected",
            "errors": [{"path": "/event", "message": "a track call needs an event name"}],
        },
        {
            "index": 4,
            "status": "rejected",
            "errors": [{"path": "", "message": "each message must be a JSON object"}],
        },
    ]
    assert [e["event_name"] for e in stored(tmp_path)] == ["purchase", "page_view"]


def test_identify_alone_stores_nothing_and_succeeds(client: TestClient, tmp_path: Path) -> None:
    """identify answers success (Segment clients would retry otherwise) and stores no event."""
    response = client.post(
        "/v1/identify", headers=SERVER, json={"userId": "u", "traits": {"email": "a@b.co"}}
    )
    assert response.status_code == 200 and response.json()["success"] is True
    assert stored(tmp_path) == []


def test_page_call_becomes_a_page_view_with_url_title_and_referrer(
    client: TestClient, tmp_path: Path
) -> None:
    """/v1/page -> page_view; page url, title and referrer from its properties."""
    page = {
        "messageId": "pg-1",
        "properties": {
            "url": "https://shop.example.com/a?gclid=G-1",
            "title": "A",
            "referrer": "https://x.example/",
        },
    }
    assert client.post("/v1/page", headers=SERVER, json=page).status_code == 200
    [event] = stored(tmp_path)
    assert event["event_name"] == "page_view" and event["event_id"] == "pg-1"
    assert event["page"] == {
        "url": "https://shop.example.com/a?gclid=G-1",
        "title": "A",
        "referrer": "https://x.example/",
    }
    assert event["ids"] == {"gclid": "G-1"}
    assert event["action_source"] == "website"


def test_a_resent_message_is_a_duplicate_by_its_message_id(client: TestClient, tmp_path: Path) -> None:
    """An SDK retry resends the same messageId: answered duplicate, queued once."""
    first = client.post("/v1/batch", headers=SERVER, json={"batch": [order("retry-1")]})
    again = client.post("/v1/batch", headers=SERVER, json={"batch": [order("retry-1")]})
    assert first.json()["results"][0]["status"] == "accepted"
    assert again.status_code == 200
    assert again.json()["results"] == [{"index": 0, "status": "duplicate", "event_id": "retry-1"}]
    assert len(stored(tmp_path)) == 1


def test_properties_event_id_wins_over_the_message_id(client: TestClient, tmp_path: Path) -> None:
    """The id the browser pixel used (properties.event_id) is the event id, so platforms dedup the pair."""
    message = order("m-9")
    message["properties"]["event_id"] = "pixel-evt-9"
    assert (
        client.post("/v1/track", headers=SERVER, json=message).json()["results"][0]["event_id"]
        == "pixel-evt-9"
    )
    assert stored(tmp_path)[0]["event_id"] == "pixel-evt-9"


def test_short_analytics_js_paths_take_their_call_types(client: TestClient, tmp_path: Path) -> None:
    """/v1/p, /v1/i and /v1/b (analytics.js batching) work like /v1/page, /v1/identify and /v1/batch."""
    key = {"writeKey": WEB_KEY}
    page = {**key, "messageId": "p-1", "properties": {"url": "https://shop.example.com/"}}
    assert (
        client.post("/v1/p", headers=BROWSER, content=json.dumps(page)).json()["results"][0]["status"]
        == "accepted"
    )
    identify = client.post("/v1/i", headers=BROWSER, content=json.dumps({**key, "userId": "u"}))
    assert identify.json()["results"][0]["status"] == "skipped"
    batch = {
        **key,
        "batch": [{"type": "track", "event": "Signed Up", "messageId": "s-1"}],
        "sentAt": now_iso(),
    }
    assert (
        client.post("/v1/b", headers=BROWSER, content=json.dumps(batch)).json()["results"][0]["event_id"]
        == "s-1"
    )
    assert [e["event_name"] for e in stored(tmp_path)] == ["page_view", "sign_up"]


def test_browser_answers_set_first_party_cookies_and_refresh_fbc(client: TestClient, tmp_path: Path) -> None:
    """A browser call mints _fbp and _rt_vid, and sets _fbc from the landing page's fbclid."""
    body = {
        "type": "track",
        "event": "Product Viewed",
        "writeKey": WEB_KEY,
        "properties": {"product_id": "p-1"},
        "context": {"page": {"url": "https://shop.example.com/p/1?fbclid=IwAR-xyz"}},
    }
    response = client.post("/v1/t", headers=BROWSER, content=json.dumps(body))
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    assert set(cookies) == {"_fbp", "_rt_vid", "_fbc"}
    assert cookies["_fbc"].split(";")[0].endswith(".IwAR-xyz")
    [event] = stored(tmp_path)
    assert event["ids"]["fbc"] == cookies["_fbc"].split(";")[0].split("=", 1)[1]
    assert event["ids"]["fbp"] == cookies["_fbp"].split(";")[0].split("=", 1)[1]


def test_server_answers_set_no_cookies(client: TestClient) -> None:
    """Server sources never get Set-Cookie."""
    response = client.post("/v1/track", headers=SERVER, json=order())
    assert "set-cookie" not in response.headers


def test_malformed_bodies_are_400_in_segments_error_shape(client: TestClient) -> None:
    """Bad JSON, a non-object and an empty batch -> 400 {"success": false, "code", "message"}."""
    bad_json = client.post("/v1/track", headers=SERVER, content=b'{"event": ')
    assert bad_json.status_code == 400
    assert bad_json.json()["success"] is False
    assert bad_json.json()["message"].startswith("the body is not valid JSON")
    for body in (b"[1, 2]", b'{"batch": []}', b'{"batch": "x"}', b"", b'{"a": NaN}'):
        response = client.post("/v1/batch", headers=SERVER, content=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "bad_request"


def test_gzip_bodies_are_read_and_other_encodings_refused(client: TestClient, tmp_path: Path) -> None:
    """Content-Encoding: gzip (the Python SDK's gzip=True) works; broken gzip is 400; br is 415."""
    body = gzip.compress(json.dumps({"batch": [order("gz-1")]}).encode())
    response = client.post("/v1/batch", headers={**SERVER, "Content-Encoding": "gzip"}, content=body)
    assert response.json()["results"][0]["event_id"] == "gz-1"
    broken = client.post("/v1/batch", headers={**SERVER, "Content-Encoding": "gzip"}, content=b"not gzip")
    assert broken.status_code == 400
    truncated = client.post("/v1/batch", headers={**SERVER, "Content-Encoding": "gzip"}, content=body[:-12])
    assert truncated.status_code == 400
    assert (
        client.post("/v1/batch", headers={**SERVER, "Content-Encoding": "br"}, content=b"x").status_code
        == 415
    )


def test_a_gzip_bomb_is_413_not_inflated(client: TestClient) -> None:
    """A small gzip body that inflates past max_body_bytes is refused as too large."""
    bomb = gzip.compress(b" " * 5_000_000)
    response = client.post("/v1/batch", headers={**SERVER, "Content-Encoding": "gzip"}, content=bomb)
    assert response.status_code == 413


def test_oversize_bodies_and_batches_are_413(client: TestClient) -> None:
    """Over max_body_bytes -> 413; more messages than max_batch_events (Segment allows 2,500) -> 413."""
    big = client.post("/v1/batch", headers=SERVER, content=b" " * 200_001)
    assert big.status_code == 413 and big.json()["code"] == "body_too_large"
    many = [{"type": "identify", "userId": "u"}] * 501
    response = client.post("/v1/batch", headers=SERVER, json={"batch": many})
    assert response.status_code == 413
    assert "500" in response.json()["message"]


def test_a_full_queue_answers_503_with_retry_after(make_config: Callable[..., Config]) -> None:
    """When the queue cannot take the events: 503 + Retry-After, which Segment SDKs retry."""
    config = make_config()
    config = replace(config, queue=replace(config.queue, max_depth=1))
    with TestClient(create_app(config)) as client:
        assert client.post("/v1/track", headers=SERVER, json=order("q-1")).status_code == 200
        full = client.post("/v1/track", headers=SERVER, json=order("q-2"))
        assert full.status_code == 503
        assert full.headers["retry-after"] == "5"
        assert full.json() == {"success": False, "code": "queue_full", "message": full.json()["message"]}


def test_a_rejected_event_still_answers_200_with_its_problems(client: TestClient, tmp_path: Path) -> None:
    """A call the ingest refuses (a 4-letter currency) is 200 with a rejected result; nothing stored."""
    message = order("bad-1")
    message["properties"]["currency"] = "EURO"
    response = client.post("/v1/track", headers=SERVER, json=message)
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["status"] == "rejected"
    assert [e["path"] for e in result["errors"]] == ["/properties/currency"]
    assert stored(tmp_path) == []


def test_dropped_trait_values_come_back_as_warnings(client: TestClient, tmp_path: Path) -> None:
    """A malformed trait is dropped, reported as a warning, and the conversion is still stored."""
    message = order("w-1")
    message["context"]["traits"] = {"email": "not-an-email"}
    [result] = client.post("/v1/track", headers=SERVER, json=message).json()["results"]
    assert result["status"] == "accepted"
    assert [w["path"] for w in result["warnings"]] == ["/user/email"]
    assert len(stored(tmp_path)) == 1


def test_settings_point_analytics_js_back_at_the_router(client: TestClient) -> None:
    """GET /v1/projects/<key>/settings (analytics.js's cdnURL) names this host as Segment.io's apiHost."""
    response = client.get(f"/v1/projects/{WEB_KEY}/settings", headers={"Host": "t.shop.example.com"})
    assert response.status_code == 200
    segmentio = response.json()["integrations"]["Segment.io"]
    assert segmentio == {
        "apiKey": WEB_KEY,
        "apiHost": "t.shop.example.com/v1",
        "protocol": "http",
        "addBundledMetadata": False,
    }
    assert response.json()["metrics"] == {"sampleRate": 0}
    forwarded = client.get(f"/v1/projects/{WEB_KEY}/settings", headers={"X-Forwarded-Proto": "https"})
    assert forwarded.json()["integrations"]["Segment.io"]["protocol"] == "https"


@pytest.mark.parametrize("key", [BACKEND_SECRET, "pk_unknown"])
def test_settings_are_served_only_for_browser_keys(client: TestClient, key: str) -> None:
    """A server secret or an unknown key gets 404: the endpoint never confirms a secret."""
    assert client.get(f"/v1/projects/{key}/settings").status_code == 404


def test_a_browser_key_is_refused_from_origins_its_source_does_not_list(
    make_config: Callable[..., Config],
) -> None:
    """With allowed_origins set, a page on another origin gets 403; the listed origin and no Origin pass."""
    config = make_config()
    web = replace(config.sources[0], allowed_origins=("https://shop.example.com",), allow_missing_origin=True)
    config = replace(config, sources=(web, *config.sources[1:]))
    body = json.dumps({"writeKey": WEB_KEY, "event": "Product Viewed", "properties": {"product_id": "p"}})
    with TestClient(create_app(config)) as client:
        other = client.post("/v1/t", headers={**BROWSER, "Origin": "https://evil.example"}, content=body)
        assert other.status_code == 403 and other.json()["code"] == "forbidden_origin"
        listed = client.post("/v1/t", headers={**BROWSER, "Origin": "https://shop.example.com"}, content=body)
        assert listed.status_code == 200
        assert client.post("/v1/t", headers=BROWSER, content=body).status_code == 200
        settings = client.get(f"/v1/projects/{WEB_KEY}/settings", headers={"Origin": "https://evil.example"})
        assert settings.status_code == 403
