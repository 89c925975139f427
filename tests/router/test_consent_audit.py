"""The built-in consent default end to end: a dispatcher over the loopback fake Meta records each decision
with the delivery (its log line, the kept queue row, the hourly tallies) and sends no EEA identifier."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from destinations.meta.adapter import API_VERSION
from router.config import parse
from router.dispatch import Dispatcher
from router.queue.base import NewEvent
from router.queue.sqlite import SqliteQueue
from tests.conftest import META_TOKEN
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer

GRANTED = {"ad_storage": "granted", "ad_user_data": "granted"}
EMAIL_HASH = "b" * 64


def purchase(event_id: str, consent: dict[str, str], country: str | None) -> NewEvent:
    """A stored purchase with an email hash, an IP and a user agent, as the ingest would queue it."""
    now_ms = int(time.time() * 1000)
    user: dict[str, Any] = {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 AuditUA"}
    if country:
        user["country"] = country
    payload = {
        "event_name": "purchase",
        "event_id": event_id,
        "timestamp_ms": now_ms,
        "received_ms": now_ms,
        "source": "backend",
        "action_source": "website",
        "page": {"url": "https://shop.example.eu/thanks"},
        "user": user,
        "ids": {},
        "consent": consent,
        "properties": {"value": 10, "currency": "EUR"},
        "hashed": {"email": EMAIL_HASH},
    }
    return NewEvent("backend", event_id, "purchase", now_ms / 1000, payload, ("meta_main",))


def config_text(tmp_path: Path, meta_url: str) -> str:
    """A router.yaml without any consent block: the built-in default applies."""
    return f"""
queue: {{url: "sqlite:///{tmp_path}/q.db"}}
sources: [{{id: backend, kind: server, secret: sk_backend_secret_0123456789abcdef}}]
destinations:
  - {{id: meta_main, type: meta, pixel_id: "1234567890", access_token: {META_TOKEN}, base_url: "{meta_url}"}}
"""


async def test_the_default_strips_eea_events_without_consent_and_records_every_decision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Unknown consent from Germany or an unknown country: stripped, so Meta gets nothing it can match
    and the delivery is skipped with `stripped:unknown` kept; a granted German and an unknown-consent US
    event are delivered with `full:granted` / `full:unknown`; a denied one is refused everywhere."""
    caplog.set_level(logging.DEBUG, logger="router.dispatch")  # per-event delivery_ok lines too
    fake = MetaFake(access_token=META_TOKEN, pixel_id="1234567890", version=API_VERSION)
    async with FakeServer(fake.app) as server:
        config = parse(config_text(tmp_path, server.url), {})
        queue = SqliteQueue(str(tmp_path / "q.db"))
        await queue.open()
        events = [
            purchase("de-unknown", {}, "de"),
            purchase("nowhere-unknown", {}, None),
            purchase("de-granted", GRANTED, "de"),
            purchase("us-unknown", {}, "us"),
            purchase("us-denied", {"ad_storage": "denied"}, "us"),
        ]
        await queue.enqueue(events)
        async with httpx.AsyncClient() as client:
            dispatcher = Dispatcher(
                config.destinations,
                queue,
                config.dispatch,
                client,
                consent_policies=config.consent_policies,
            )
            with capture_logs() as logs:
                await dispatcher.run_once(config.destinations[0])
        rows = queue_rows(tmp_path / "q.db")
        overview = await queue.overview(since=0.0)
        await queue.close()

    assert sorted(fake.event_ids()) == ["de-granted", "us-unknown"]
    sent = json.dumps([r.body for r in fake.requests])
    assert sent.count(EMAIL_HASH) == 2  # only the two delivered events carry the email hash
    assert rows == {
        "de-unknown": ("skipped", "stripped:unknown"),
        "nowhere-unknown": ("skipped", "stripped:unknown"),
        "us-denied": ("skipped", "refused:denied"),
    }
    decisions = {
        e["event_id"]: (e["event"], e.get("consent")) for e in logs if e["event"].startswith("delivery_")
    }
    assert decisions["de-granted"] == ("delivery_ok", "full:granted")
    assert decisions["us-unknown"] == ("delivery_ok", "full:unknown")
    assert decisions["de-unknown"] == ("delivery_skipped", "stripped:unknown")
    assert decisions["us-denied"] == ("delivery_skipped", "refused:denied")
    [batch] = [e for e in logs if e["event"] == "deliveries_settled"]
    assert (batch["delivered"], batch["skipped"], batch["dead"], batch["retrying"]) == (2, 3, 0, 0)
    assert batch["consent"] == {
        "full:granted": 1,
        "full:unknown": 1,
        "refused:denied": 1,
        "stripped:unknown": 2,
    }
    assert overview["meta_main"]["consent"] == {
        "full:granted": 1,
        "full:unknown": 1,
        "stripped:unknown": 2,
        "refused:denied": 1,
    }


def queue_rows(path: Path) -> dict[str, tuple[str, str]]:
    """The kept delivery rows: event id -> (state, recorded consent decision)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT e.event_id, d.state, d.consent FROM deliveries d JOIN events e ON e.pk = d.event_pk"
        ).fetchall()
    return {event_id: (state, consent) for event_id, state, consent in rows}
