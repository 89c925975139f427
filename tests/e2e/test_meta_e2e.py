"""Meta end to end: `router serve` as a process, events over HTTP, found at the loopback fake Meta."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from destinations.meta.adapter import API_VERSION
from tests.conftest import BACKEND_SECRET, META_TOKEN, WEB_KEY, config_text
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer, serve

PIXEL = "1234567890"


@pytest.fixture
def meta() -> Iterator[tuple[MetaFake, FakeServer]]:
    """A fake Meta Graph API on a loopback port, enforcing the CAPI contract."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id=PIXEL, version=API_VERSION)
    with serve(fake.app) as server:
        yield fake, server


@pytest.fixture
def router(tmp_path: Path, meta: tuple[MetaFake, FakeServer]) -> Iterator[RouterProcess]:
    """The router as a real process, configured to send Meta events to the fake."""
    config = tmp_path / "router.yaml"
    config.write_text(config_text(tmp_path / "queue.db", meta_url=meta[1].url))
    with RouterProcess(config, tmp_path / "router.log") as process:
        yield process


def post(router: RouterProcess, body: Any, credential: str = WEB_KEY, **headers: str) -> httpx.Response:
    """POST /v1/events as the given source."""
    auth = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json", **headers}
    return httpx.post(f"{router.url}/v1/events", content=json.dumps(body), headers=auth, timeout=10)


def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    """Poll until the predicate holds, failing the test on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_browser_purchase_reaches_meta_with_hashed_identity(
    router: RouterProcess, meta: tuple[MetaFake, FakeServer]
) -> None:
    """A browser purchase arrives at Meta once, hashed the Meta way, with IP, UA and fbc from the request."""
    fake, _ = meta
    now = time.time()
    event = {
        "event_name": "Purchase",
        "event_id": "order-42",
        "event_time": int(now * 1000),
        "page": {"url": "https://shop.example.com/thanks?fbclid=IwAR-x_Y9"},
        "user": {"email": " Jane.Doe@Example.com ", "phone": "+44 (0)20 7946 0958", "zip": "SW1A 1AA"},
        "properties": {
            "value": 42.5,
            "currency": "gbp",
            "order_id": "42",
            "contents": [{"id": "sku-1", "quantity": 2}],
        },
    }
    answer = post(router, event, **{"X-Forwarded-For": "198.51.100.23", "User-Agent": "Mozilla/5.0 (e2e)"})
    assert answer.status_code == 202
    assert answer.json()["results"] == [{"index": 0, "status": "accepted", "event_id": "order-42"}]
    wait_until(lambda: len(fake.received) == 1)
    sent = fake.received[0].event
    assert sent["event_name"] == "Purchase"
    assert sent["event_id"] == "order-42"
    assert sent["event_time"] == int(now)
    user = sent["user_data"]
    assert user["em"] == [hashlib.sha256(b"jane.doe@example.com").hexdigest()]
    assert user["ph"] == [hashlib.sha256(b"442079460958").hexdigest()]
    assert user["zp"] == [hashlib.sha256(b"sw1a1aa").hexdigest()]
    assert user["client_ip_address"] == "198.51.100.23"
    assert user["client_user_agent"] == "Mozilla/5.0 (e2e)"
    assert user["fbc"].startswith("fb.1.") and user["fbc"].endswith(".IwAR-x_Y9")
    assert sent["custom_data"]["value"] == 42.5 and sent["custom_data"]["currency"] == "GBP"


def test_server_batch_retries_through_an_outage(
    router: RouterProcess, meta: tuple[MetaFake, FakeServer]
) -> None:
    """Meta answers 503 twice: the router retries with the same event ids and every event lands once."""
    fake, _ = meta
    fake.set_mode("503", count=2)
    events = [
        {
            "event_name": "lead",
            "event_id": f"lead-{i}",
            "action_source": "crm",
            "user": {"email": f"person{i}@example.com", "ip": "203.0.113.5"},
        }
        for i in range(25)
    ]
    answer = post(router, {"events": events}, credential=BACKEND_SECRET)
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"] * 25
    wait_until(lambda: len(fake.received) == 25)
    assert sorted(fake.event_ids()) == sorted(f"lead-{i}" for i in range(25))
    statuses = [r.status for r in fake.requests]
    assert statuses.count(503) == 2
    assert fake.violations == []


def test_stale_event_never_reaches_meta_and_does_not_block_its_batch(
    router: RouterProcess, meta: tuple[MetaFake, FakeServer]
) -> None:
    """An 8-day-old event is dead-lettered by the router; the fresh events in the same post are delivered."""
    fake, _ = meta
    old = time.time() - 8 * 86_400
    events = [
        {
            "event_name": "lead",
            "event_id": "old",
            "event_time": old,
            "action_source": "crm",
            "user": {"email": "old@example.com"},
        },
        {
            "event_name": "lead",
            "event_id": "new-1",
            "action_source": "crm",
            "user": {"email": "a@example.com"},
        },
        {
            "event_name": "lead",
            "event_id": "new-2",
            "action_source": "crm",
            "user": {"email": "b@example.com"},
        },
    ]
    assert post(router, {"events": events}, credential=BACKEND_SECRET).status_code == 202
    wait_until(lambda: len(fake.received) == 2)
    time.sleep(0.3)
    assert sorted(fake.event_ids()) == ["new-1", "new-2"]
    assert all(r.status == 200 for r in fake.requests)
    log = router.log_path.read_text()
    assert '"delivery_dropped"' in log and "expired" in log


def test_sigterm_exits_cleanly_and_pending_work_survives_a_restart(
    tmp_path: Path, meta: tuple[MetaFake, FakeServer]
) -> None:
    """While Meta is down the router acknowledges, exits on SIGTERM in time, and delivers after restart."""
    fake, server = meta
    fake.set_mode("503")
    config = tmp_path / "router.yaml"
    config.write_text(config_text(tmp_path / "queue.db", meta_url=server.url))
    first = RouterProcess(config, tmp_path / "router.log").start()
    event = {
        "event_name": "lead",
        "event_id": "survivor",
        "action_source": "crm",
        "user": {"email": "s@example.com"},
    }
    assert post(first, event, credential=BACKEND_SECRET).status_code == 202
    wait_until(lambda: len(fake.requests) >= 1)
    started = time.monotonic()
    code = first.terminate(timeout=10)
    assert time.monotonic() - started < 9
    assert code in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert '"router_stopped"' in (tmp_path / "router.log").read_text()
    fake.set_mode("ok")
    with RouterProcess(config, tmp_path / "router.log"):
        wait_until(lambda: fake.event_ids() == ["survivor"])


def test_kill_9_loses_nothing_that_was_acknowledged(
    tmp_path: Path, meta: tuple[MetaFake, FakeServer]
) -> None:
    """Events acknowledged before a SIGKILL are all delivered by the next process."""
    fake, server = meta
    fake.set_mode("503")
    config = tmp_path / "router.yaml"
    config.write_text(config_text(tmp_path / "queue.db", meta_url=server.url))
    first = RouterProcess(config, tmp_path / "router.log").start()
    acknowledged = []
    for i in range(40):
        event = {
            "event_name": "lead",
            "event_id": f"k-{i}",
            "action_source": "crm",
            "user": {"email": "k@x.io"},
        }
        if post(first, event, credential=BACKEND_SECRET).status_code == 202:
            acknowledged.append(f"k-{i}")
    first.kill()
    assert len(acknowledged) == 40
    fake.set_mode("ok")
    with RouterProcess(config, tmp_path / "router.log"):
        wait_until(lambda: set(fake.event_ids()) >= set(acknowledged), timeout=30)
