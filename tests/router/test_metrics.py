"""Metrics: GET /metrics in Prometheus text format, counted where ingest and delivery happen."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from destinations.meta.adapter import API_VERSION
from router.app import create_app
from router.config import Config
from router.dispatch import Dispatcher
from router.metrics import Metrics
from router.queue.factory import open_queue
from router.queue.sqlite import SqliteQueue
from tests.conftest import META_TOKEN, WEB_KEY
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer
from tests.router.test_dispatch import lead

WEB = {"Authorization": f"Bearer {WEB_KEY}", "Content-Type": "application/json"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (sample name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


def event(event_id: str) -> dict[str, Any]:
    """A valid lead event that Meta would take (so it waits in the queue while Meta is unreachable)."""
    return {"event_name": "lead", "event_id": event_id, "action_source": "crm", "user": {"email": "a@b.co"}}


def test_ingested_events_are_counted_by_source_and_status(client: TestClient) -> None:
    """Two accepted, one duplicate and one rejected event from `web` appear with exact counts."""
    client.post("/v1/events", headers=WEB, json={"events": [event("e-1"), event("e-2")]})
    client.post("/v1/events", headers=WEB, json={"events": [event("e-1"), {"event_name": 7}]})
    got = scrape(client)
    assert got[("router_events_ingested_total", (("source", "web"), ("status", "accepted")))] == 2
    assert got[("router_events_ingested_total", (("source", "web"), ("status", "duplicate")))] == 1
    assert got[("router_events_ingested_total", (("source", "web"), ("status", "rejected")))] == 1


def test_refused_requests_are_counted_by_error_code(client: TestClient) -> None:
    """401, 415, 400 and 413 answers each count once under their error code; nothing else is counted."""
    client.post("/v1/events", json=event("x"))
    client.post("/v1/events", headers={**WEB, "Content-Type": "text/plain"}, content=b"{}")
    client.post("/v1/events", headers=WEB, content=b"not json")
    client.post("/v1/events", headers=WEB, content=b'{"events": []}')
    client.post("/v1/events", headers=WEB, json={"events": [event(f"m-{i}") for i in range(501)]})
    got = scrape(client)
    refused = {
        dict(labels)["reason"]: value
        for (name, labels), value in got.items()
        if name == "router_requests_rejected_total"
    }
    assert refused == {"unauthorized": 1, "unsupported_media_type": 1, "bad_request": 2, "too_many_events": 1}
    assert not [key for key in got if key[0] == "router_events_ingested_total"]


def test_a_full_queue_is_counted_as_queue_full(make_config: Callable[..., Config]) -> None:
    """A 503 for backpressure counts one queue_full refusal; the events stored before it count accepted."""
    config = make_config()
    config = replace(config, queue=replace(config.queue, max_depth=1))
    with TestClient(create_app(config), base_url="http://router.test") as client:
        assert client.post("/v1/events", headers=WEB, json=event("q-1")).status_code == 202
        assert client.post("/v1/events", headers=WEB, json=event("q-2")).status_code == 503
        got = scrape(client)
    assert got[("router_requests_rejected_total", (("reason", "queue_full"),))] == 1
    assert got[("router_events_ingested_total", (("source", "web"), ("status", "accepted")))] == 1


def test_queue_gauges_are_read_at_scrape_time(make_config: Callable[..., Config]) -> None:
    """Depth, per-state counts and the oldest pending age come from the queue when /metrics is read."""
    metrics = Metrics(clock=lambda: time.time() + 100.0)
    with TestClient(create_app(make_config(), metrics), base_url="http://router.test") as client:
        first = scrape(client)
        client.post("/v1/events", headers=WEB, json={"events": [event("g-1"), event("g-2")]})
        second = scrape(client)
    assert first[("router_queue_depth", ())] == 0
    assert first[("router_queue_oldest_pending_age_seconds", ())] == 0
    assert first[("router_queue_up", ())] == 1
    assert second[("router_queue_depth", ())] == 2
    waiting = sum(second[("router_queue_deliveries", (("state", s),))] for s in ("pending", "inflight"))
    assert waiting == 2
    assert 100.0 <= second[("router_queue_oldest_pending_age_seconds", ())] < 130.0


def test_each_app_has_its_own_registry(make_config: Callable[..., Config]) -> None:
    """Two apps in one process count separately (no global default registry)."""
    first, second = Metrics(), Metrics()
    create_app(make_config(), first)
    create_app(make_config(), second)
    first.ingested("web", ["accepted"])
    assert (
        first.registry.get_sample_value(
            "router_events_ingested_total", {"source": "web", "status": "accepted"}
        )
        == 1
    )
    assert (
        second.registry.get_sample_value(
            "router_events_ingested_total", {"source": "web", "status": "accepted"}
        )
        is None
    )


@pytest.fixture
async def meta(make_config: Callable[..., Config]) -> AsyncIterator[tuple[MetaFake, SqliteQueue, Dispatcher]]:
    """A dispatcher with its own Metrics, delivering to the loopback fake Meta from a SQLite queue."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id="1234567890", version=API_VERSION)
    async with FakeServer(fake.app) as server:
        config = make_config(meta_url=server.url)
        settings = replace(config.dispatch, backoff_base=0.05, backoff_cap=0.1)
        queue = open_queue(str(config.queue.url))
        assert isinstance(queue, SqliteQueue)
        await queue.open()
        async with httpx.AsyncClient() as client:
            yield (
                fake,
                queue,
                Dispatcher(
                    config.destinations,
                    queue,
                    settings,
                    client,
                    metrics=Metrics(),
                    consent_policies=config.consent_policies,
                ),
            )
        await queue.close()


async def test_deliveries_are_counted_by_outcome_with_latency(
    meta: tuple[MetaFake, SqliteQueue, Dispatcher],
) -> None:
    """One 503 then success: retry 2, delivered 2, retries 2, two timed requests, no dead letters."""
    fake, queue, dispatcher = meta
    destination = dispatcher.destinations["meta_main"]
    fake.set_mode("503", count=1)
    await queue.enqueue([lead(1), lead(2)])
    assert await dispatcher.run_once(destination) == 2
    dispatcher.clock = lambda: time.time() + 60  # the retries are due
    assert await dispatcher.run_once(destination) == 2
    assert sorted(fake.event_ids()) == ["lead-1", "lead-2"]
    got = samples(_text(dispatcher.metrics))
    meta_main = ("destination", "meta_main")
    assert got[("router_deliveries_total", (meta_main, ("outcome", "retry")))] == 2
    assert got[("router_deliveries_total", (meta_main, ("outcome", "delivered")))] == 2
    assert got[("router_delivery_retries_total", (meta_main,))] == 2
    assert ("router_dead_letters_total", (meta_main,)) not in got
    assert got[("router_delivery_request_seconds_count", (meta_main,))] == 2
    assert got[("router_delivery_request_seconds_sum", (meta_main,))] > 0


async def test_dead_letters_are_counted(meta: tuple[MetaFake, SqliteQueue, Dispatcher]) -> None:
    """A refused token (Meta 190) kills both events: dead 2 and dead letters 2."""
    fake, queue, dispatcher = meta
    fake.set_mode("bad_token")
    await queue.enqueue([lead(1), lead(2)])
    await dispatcher.run_once(dispatcher.destinations["meta_main"])
    got = samples(_text(dispatcher.metrics))
    meta_main = ("destination", "meta_main")
    assert got[("router_deliveries_total", (meta_main, ("outcome", "dead")))] == 2
    assert got[("router_dead_letters_total", (meta_main,))] == 2


def _text(metrics: Metrics) -> str:
    """The exposition of one Metrics object."""
    return generate_latest(metrics.registry).decode()
