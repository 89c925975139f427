"""The dispatcher against the loopback fake Meta: batching, retries, Retry-After, splits, dead letters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from destinations.meta.adapter import API_VERSION
from router.config import Config
from router.dispatch import Dispatcher
from router.queue.base import DeadFilter, NewEvent
from router.queue.factory import open_queue
from router.queue.sqlite import SqliteQueue
from tests.conftest import META_TOKEN
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer


def lead(i: int, **extra: Any) -> NewEvent:
    """A stored lead event, as the ingest would have queued it."""
    now_ms = int(time.time() * 1000)
    payload = {
        "event_name": "lead",
        "event_id": f"lead-{i}",
        "timestamp_ms": now_ms,
        "received_ms": now_ms,
        "source": "backend",
        "action_source": "crm",
        "page": {},
        "user": {"ip": "203.0.113.7"},
        "ids": {},
        "consent": {},
        "properties": {},
        "hashed": {"email": "a" * 64},
        **extra,
    }
    return NewEvent("backend", f"lead-{i}", "lead", now_ms / 1000, payload, ("meta_main",))


class Rig:
    """A fake Meta, a queue and a dispatcher wired to them."""

    def __init__(self, fake: MetaFake, queue: SqliteQueue, dispatcher: Dispatcher) -> None:
        self.fake, self.queue, self.dispatcher = fake, queue, dispatcher
        self.meta = dispatcher.destinations["meta_main"]

    async def drain(self, timeout: float = 10.0) -> None:
        """Run dispatch rounds until nothing is pending or in flight."""
        deadline = time.monotonic() + timeout
        while await self.queue.depth():
            assert time.monotonic() < deadline, "queue did not drain"
            if not await self.dispatcher.run_once(self.meta):
                await asyncio.sleep(0.02)


@pytest.fixture
async def rig(make_config: Callable[..., Config], tmp_path: Any) -> AsyncIterator[Rig]:
    """Everything needed to dispatch to the fake Meta over real loopback HTTP."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id="1234567890", version=API_VERSION)
    async with FakeServer(fake.app) as server:
        config = make_config(meta_url=server.url)
        settings = replace(config.dispatch, backoff_base=0.05, backoff_cap=0.1)
        queue = open_queue(str(config.queue.url))
        assert isinstance(queue, SqliteQueue)
        await queue.open()
        async with httpx.AsyncClient() as client:
            yield Rig(
                fake,
                queue,
                Dispatcher(
                    config.destinations, queue, settings, client, consent_policies=config.consent_policies
                ),
            )
        await queue.close()


async def test_a_batch_goes_out_as_one_request(rig: Rig) -> None:
    """30 queued events reach Meta in one request with their own event ids."""
    await rig.queue.enqueue([lead(i) for i in range(30)])
    await rig.drain()
    assert sorted(rig.fake.event_ids()) == sorted(f"lead-{i}" for i in range(30))
    assert [r.n_events for r in rig.fake.requests] == [30]


async def test_retry_after_is_honoured(rig: Rig) -> None:
    """A 429 with Retry-After: 1 delays the resend; the fake records no early request."""
    rig.fake.set_mode("429", count=1, retry_after=1)
    await rig.queue.enqueue([lead(1)])
    started = time.monotonic()
    await rig.drain()
    assert rig.fake.event_ids() == ["lead-1"]
    assert time.monotonic() - started >= 1.0
    assert rig.fake.violations == []


async def test_a_refused_batch_is_split_to_save_the_valid_events(rig: Rig) -> None:
    """Meta refuses a whole batch (code 100): the halves are resent and every event is delivered."""
    rig.fake.set_mode("permanent", count=1)
    await rig.queue.enqueue([lead(i) for i in range(8)])
    await rig.drain()
    assert sorted(rig.fake.event_ids()) == sorted(f"lead-{i}" for i in range(8))
    assert [r.n_events for r in rig.fake.requests] == [8, 4, 4]


async def test_split_isolates_the_event_meta_refuses(rig: Rig) -> None:
    """Two refusals in a row: the bisection narrows down until only the refused events are dead."""
    rig.fake.set_mode("permanent", count=3)
    await rig.queue.enqueue([lead(i) for i in range(4)])
    await rig.drain()
    # 4 refused -> [2 refused -> [1 refused, 1 ok]], [2 ok]
    assert [r.n_events for r in rig.fake.requests] == [4, 2, 1, 1, 2]
    assert len(rig.fake.received) == 3
    dead = await rig.queue.dead_letters(DeadFilter(destination="meta_main"))
    assert len(dead) == 1 and "Meta 100" in dead[0]["reason"]


async def test_transport_failures_are_retried_with_the_same_event_id(rig: Rig) -> None:
    """A reset connection and a 503 are retried; the event is delivered under its original id."""
    rig.fake.set_mode("reset", count=1)
    await rig.queue.enqueue([lead(7)])
    await rig.drain()
    rig.fake.set_mode("503", count=2)
    await rig.queue.enqueue([lead(8)])
    await rig.drain()
    assert rig.fake.event_ids() == ["lead-7", "lead-8"]


async def test_a_bad_token_is_a_dead_letter_after_one_attempt(rig: Rig) -> None:
    """Code 190 is permanent: no retry, a dead letter saying the token is invalid."""
    rig.fake.set_mode("bad_token")
    await rig.queue.enqueue([lead(1), lead(2)])
    await rig.drain()
    assert len(rig.fake.requests) == 1
    dead = await rig.queue.dead_letters(DeadFilter(destination="meta_main"))
    assert {d["event_id"] for d in dead} == {"lead-1", "lead-2"}
    assert all("access token invalid" in d["reason"] for d in dead)


async def test_events_past_metas_age_limit_are_dead_lettered_unsent(rig: Rig) -> None:
    """An event that aged past 7 days while queued is never sent; its neighbour is."""
    old_ms = int((time.time() - 7 * 86_400 - 60) * 1000)
    await rig.queue.enqueue([lead(1, timestamp_ms=old_ms), lead(2)])
    await rig.drain()
    assert rig.fake.event_ids() == ["lead-2"]
    (dead,) = await rig.queue.dead_letters(DeadFilter(destination="meta_main"))
    assert dead["event_id"] == "lead-1" and "expired" in dead["reason"]


async def test_a_round_claims_at_most_max_claim_deliveries(rig: Rig) -> None:
    """dispatch.max_claim 10 (Meta takes 1,000 per request): 30 events go out as three requests of 10,
    so a draining backlog never holds more than max_claim decoded events per destination."""
    rig.dispatcher.settings = replace(rig.dispatcher.settings, max_claim=10)
    await rig.queue.enqueue([lead(i) for i in range(30)])
    await rig.drain()
    assert [r.n_events for r in rig.fake.requests] == [10, 10, 10]
    assert sorted(rig.fake.event_ids()) == sorted(f"lead-{i}" for i in range(30))
