"""LinkedIn end to end: `router serve` as a process, events over HTTP, found at the loopback fake LinkedIn."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from destinations.linkedin.adapter import API_VERSION
from router.queue.base import DeadFilter
from router.queue.factory import open_queue
from tests.conftest import BACKEND_SECRET, WEB_KEY
from tests.e2e.process import RouterProcess
from tests.fakes.linkedin import LinkedInFake
from tests.fakes.server import FakeServer, serve

TOKEN = "AQV-canary-linkedin-token-0123456789"
PURCHASE_RULE, LEAD_RULE = "123456", "234567"


def router_yaml(queue_path: Path, linkedin_url: str, version: str = API_VERSION) -> str:
    """A router.yaml with a browser source, a server source and one LinkedIn destination."""
    return f"""
server:
  trusted_proxy_hops: 1
queue:
  url: sqlite:///{queue_path}
dispatch:
  poll_interval: 0.05
  linger: 0
  backoff_base: 0.05
  backoff_cap: 0.2
# US test traffic without consent signals: sent in full (the EEA-safe default: test_consent*.py)
consent: {{when_unknown: send}}
sources:
  - id: web
    kind: browser
    key: {WEB_KEY}
    allow_money_events: true
  - id: backend
    kind: server
    secret: {BACKEND_SECRET}
destinations:
  - id: linkedin_main
    type: linkedin
    access_token: {TOKEN}
    version: "{version}"
    base_url: {linkedin_url}
    conversions:
      purchase: {PURCHASE_RULE}
      lead: "{LEAD_RULE}"
"""


@pytest.fixture
def linkedin() -> Iterator[tuple[LinkedInFake, FakeServer]]:
    """A fake LinkedIn Conversions API on a loopback port, enforcing the contract."""
    fake = LinkedInFake(access_token=TOKEN)
    with serve(fake.app) as server:
        yield fake, server


def start_router(tmp_path: Path, server: FakeServer, version: str = API_VERSION) -> RouterProcess:
    """The router as a real process, sending LinkedIn events to the fake."""
    config = tmp_path / "router.yaml"
    config.write_text(router_yaml(tmp_path / "queue.db", server.url, version))
    return RouterProcess(config, tmp_path / "router.log").start()


@pytest.fixture
def router(tmp_path: Path, linkedin: tuple[LinkedInFake, FakeServer]) -> Iterator[RouterProcess]:
    """The router process on the default LinkedIn version."""
    process = start_router(tmp_path, linkedin[1])
    yield process
    process.kill()


def post(
    router: RouterProcess, body: Any, credential: str = BACKEND_SECRET, **headers: str
) -> httpx.Response:
    """POST /v1/events as the given source."""
    auth = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json", **headers}
    return httpx.post(f"{router.url}/v1/events", content=json.dumps(body), headers=auth, timeout=10)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until the predicate holds, failing the test on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def dead_letters(tmp_path: Path) -> dict[str, str]:
    """event_id -> reason of every dead letter, read from the router's queue file."""

    async def read() -> list[dict[str, Any]]:
        queue = open_queue(f"sqlite:///{tmp_path / 'queue.db'}")
        await queue.open()
        try:
            return await queue.dead_letters(DeadFilter())
        finally:
            await queue.close()

    return {letter["event_id"]: letter["reason"] for letter in asyncio.run(read())}


def lead(event_id: str, **extra: Any) -> dict[str, Any]:
    """A backend lead with an email."""
    return {
        "event_name": "lead",
        "event_id": event_id,
        "action_source": "crm",
        "user": {"email": f"{event_id}@example.com"},
        **extra,
    }


def purchase(event_id: str) -> dict[str, Any]:
    """A backend purchase with an email and a value."""
    return lead(event_id) | {"event_name": "purchase", "properties": {"value": 10, "currency": "EUR"}}


def statuses(answer: httpx.Response) -> list[str]:
    """The per-event ingest statuses."""
    return [result["status"] for result in answer.json()["results"]]


def delivered(fake: LinkedInFake) -> list[str]:
    """The sorted eventIds the fake accepted (duplicates kept)."""
    return sorted(str(event_id) for event_id in fake.event_ids())


def elements_per_request(fake: LinkedInFake) -> list[tuple[int | None, int]]:
    """(HTTP status, element count) of every request the fake saw."""
    return [(r.status, r.n_elements) for r in fake.requests]


def test_browser_purchase_reaches_linkedin(
    router: RouterProcess, linkedin: tuple[LinkedInFake, FakeServer]
) -> None:
    """A browser purchase arrives once: hashed email, li_fat_id from the URL, ms time, amount as a string."""
    fake, _ = linkedin
    now_ms = int(time.time() * 1000)
    event = {
        "event_name": "Purchase",
        "event_id": "order-42",
        "event_time": now_ms,
        "page": {"url": "https://shop.example.com/thanks?li_fat_id=df5gf5-gh6t7-ph4j7h"},
        "user": {"email": " Jane.Doe@Example.com ", "first_name": "Jane", "country": "GB"},
        "properties": {"value": 42.5, "currency": "gbp", "order_id": "42"},
    }
    answer = post(router, event, credential=WEB_KEY, **{"User-Agent": "Mozilla/5.0 (e2e)"})
    assert answer.status_code == 202 and statuses(answer) == ["accepted"]
    wait_until(lambda: len(fake.received) == 1)
    sent = fake.received[0]
    assert sent.version == API_VERSION
    assert sent.event == {
        "conversion": f"urn:lla:llaPartnerConversion:{PURCHASE_RULE}",
        "conversionHappenedAt": now_ms,
        "conversionValue": {"currencyCode": "GBP", "amount": "42.5"},
        "eventId": "order-42",
        "user": {
            "userIds": [
                {"idType": "SHA256_EMAIL", "idValue": hashlib.sha256(b"jane.doe@example.com").hexdigest()},
                {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": "df5gf5-gh6t7-ph4j7h"},
            ]
        },
    }
    assert fake.requests[0].restli_method == "BATCH_CREATE" and fake.violations == []


def test_one_bad_element_is_dead_lettered_and_its_neighbours_delivered(
    router: RouterProcess, linkedin: tuple[LinkedInFake, FakeServer], tmp_path: Path
) -> None:
    """LinkedIn refuses a batch for one element (422 Index: N): that one is dead-lettered with LinkedIn's
    message, the others are resent without it and delivered once."""
    fake, _ = linkedin
    fake.refuse(
        "lead-2", "/conversionHappenedAt", "conversion happened before the conversion rule was created"
    )
    answer = post(router, {"events": [lead(f"lead-{i}") for i in range(5)]})
    assert statuses(answer) == ["accepted"] * 5
    wait_until(lambda: len(fake.received) == 4)
    wait_until(lambda: "lead-2" in dead_letters(tmp_path))
    assert delivered(fake) == ["lead-0", "lead-1", "lead-3", "lead-4"]
    assert dead_letters(tmp_path)["lead-2"] == (
        "LinkedIn 422: ERROR :: /conversionHappenedAt :: "
        "conversion happened before the conversion rule was created"
    )
    refused = [r for r in fake.requests if r.status == 422]
    assert refused and all("lead-2" in json.dumps(r.body) for r in refused)
    assert all("lead-2" not in json.dumps(r.body) for r in fake.requests if r.status == 200)


def test_rule_with_another_method_is_dead_lettered_and_the_rest_delivered(
    tmp_path: Path, linkedin: tuple[LinkedInFake, FakeServer]
) -> None:
    """A lead rule not made for CONVERSIONS_API (400 indices): leads dead-lettered, purchases delivered."""
    fake, server = linkedin
    fake.rules = {PURCHASE_RULE: "CONVERSIONS_API", LEAD_RULE: "INSIGHT_TAG"}
    process = start_router(tmp_path, server)
    try:
        events = [purchase("p-1"), lead("l-1"), purchase("p-2")]
        assert statuses(post(process, {"events": events})) == ["accepted"] * 3
        wait_until(lambda: len(fake.received) == 2 and "l-1" in dead_letters(tmp_path))
    finally:
        process.kill()
    assert delivered(fake) == ["p-1", "p-2"]
    assert "Conversion's method should be CONVERSIONS_API" in dead_letters(tmp_path)["l-1"]


def test_sunset_version_is_dead_lettered_with_the_fix(
    tmp_path: Path, linkedin: tuple[LinkedInFake, FakeServer]
) -> None:
    """A sunset `version: "202511"` gets 426: the events are dead-lettered, saying to raise it."""
    fake, server = linkedin
    process = start_router(tmp_path, server, version="202511")
    try:
        assert statuses(post(process, {"events": [lead("v-1"), lead("v-2")]})) == ["accepted"] * 2
        wait_until(lambda: len(dead_letters(tmp_path)) == 2)
    finally:
        process.kill()
    reasons = dead_letters(tmp_path)
    assert reasons["v-1"].startswith("LinkedIn-Version 202511 is not active")
    assert "raise `version`" in reasons["v-2"]
    answered = elements_per_request(fake)
    assert fake.received == [] and {status for status, _ in answered} == {426}
    assert sum(count for _, count in answered) == 2  # each event sent once: 426 is never retried


def test_outage_is_retried_with_the_same_event_ids(
    router: RouterProcess, linkedin: tuple[LinkedInFake, FakeServer]
) -> None:
    """LinkedIn answers 503 twice: the router retries with the same ids and every event lands exactly once."""
    fake, _ = linkedin
    fake.set_mode("503", count=2)
    answer = post(router, {"events": [lead(f"o-{i}") for i in range(20)]})
    assert statuses(answer) == ["accepted"] * 20
    wait_until(lambda: len(fake.received) == 20)
    assert delivered(fake) == sorted(f"o-{i}" for i in range(20))
    assert [status for status, _ in elements_per_request(fake)].count(503) == 2
    assert fake.violations == []
