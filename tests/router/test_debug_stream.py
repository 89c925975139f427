"""GET /admin/events/stream and /debug: admin-only, and the stream carries ingest and delivery records."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from destinations.meta.adapter import API_VERSION
from router.app import create_app
from router.config import Config
from router.debugbus import DebugBus, Record
from tests.conftest import BACKEND_SECRET, META_TOKEN
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer, serve

ADMIN_TOKEN = "adm-debug-test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BACKEND = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}
EMAIL = "jane.debug@example.com"
STREAM = "/admin/events/stream"


def purchase(event_id: str) -> dict[str, Any]:
    """A valid CRM purchase with a raw email (the router hashes it before storing)."""
    return {
        "event_name": "Purchase",
        "event_id": event_id,
        "action_source": "crm",
        "user": {"email": EMAIL},
        "properties": {"value": 10.5, "currency": "usd"},
    }


def records(text: str) -> list[Record]:
    """The JSON records in a text/event-stream body."""
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll until `probe` returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def meta() -> Iterator[tuple[MetaFake, FakeServer]]:
    """A loopback fake Meta."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id="1234567890", version=API_VERSION)
    with serve(fake.app) as server:
        yield fake, server


@pytest.fixture
def rig(
    make_config: Callable[..., Config], meta: tuple[MetaFake, FakeServer]
) -> Iterator[tuple[TestClient, DebugBus]]:
    """The full app (dispatcher running) with an admin token, sending to the fake Meta."""
    config = make_config(meta_url=meta[1].url, extra=f"admin:\n  token: {ADMIN_TOKEN}\n")
    bus = DebugBus()
    with TestClient(create_app(config, debug=bus), base_url="http://router.test") as client:
        yield client, bus


def test_the_stream_needs_the_admin_token(rig: tuple[TestClient, DebugBus]) -> None:
    """No or a wrong bearer token: 401 with WWW-Authenticate; the page itself loads without a token."""
    client, _ = rig
    assert client.get(STREAM).status_code == 401
    wrong = client.get(STREAM, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    page = client.get("/debug")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/debug/debug.js").status_code == 200


def test_everything_is_off_without_an_admin_token(make_config: Callable[..., Config]) -> None:
    """No admin.token in the config: the stream and the page answer 404, even with a bearer token."""
    with TestClient(create_app(make_config())) as client:
        assert client.get(STREAM, headers=ADMIN).status_code == 404
        assert client.get("/debug").status_code == 404


def test_the_stream_shows_the_event_and_its_delivery_without_secrets(
    rig: tuple[TestClient, DebugBus], meta: tuple[MetaFake, FakeServer]
) -> None:
    """An ingested event, its Meta shipment (status 200, hashed payload) and its settled outcome come
    through the stream; neither the Meta token, the admin token nor the raw email appear in it."""
    client, bus = rig
    fake, _ = meta
    assert client.post("/v1/events", headers=BACKEND, json=purchase("dbg-1")).status_code == 202
    wait_for(lambda: fake.received, "Meta to receive the event")
    wait_for(lambda: any(r["kind"] == "settled" for r in bus.history()), "the settled record")
    response = client.get(f"{STREAM}?follow=0", headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert META_TOKEN not in text
    assert ADMIN_TOKEN not in text
    assert EMAIL not in text
    got = records(text)
    event = next(r for r in got if r["kind"] == "event")
    assert event["event_id"] == "dbg-1"
    assert event["destinations"] == ["meta_main"]
    shipment = next(r for r in got if r["kind"] == "shipment")
    assert shipment["destination"] == "meta_main"
    assert shipment["status"] == 200
    assert shipment["items"][0]["event_id"] == "dbg-1"
    assert shipment["items"][0]["decision"] == "delivered"
    assert len(shipment["items"][0]["payload"]["user_data"]["em"][0]) == 64
    settled = next(r for r in got if r["kind"] == "settled")
    assert settled["outcomes"][0] == {**settled["outcomes"][0], "event_id": "dbg-1", "outcome": "delivered"}


def test_a_live_subscriber_receives_new_events(rig: tuple[TestClient, DebugBus]) -> None:
    """A stream opened before the event arrives gets its record live."""
    client, _ = rig
    poster = threading.Timer(
        0.3, lambda: client.post("/v1/events", headers=BACKEND, json=purchase("dbg-live"))
    )
    with client.stream("GET", f"{STREAM}?limit=1", headers=ADMIN) as response:
        assert response.status_code == 200
        poster.start()
        text = "".join(response.iter_text())
    poster.join()
    (event,) = records(text)
    assert event["kind"] == "event"
    assert event["event_id"] == "dbg-live"
