"""Reliability end to end (R1, R2, R3, R4, R6, R7 of the reliability doc, scaled down to seconds).

Each test runs `router serve` as a real process on a SQLite queue, drives it with the fixed-rate
load generator of tests/e2e/load.py and judges the outcome from the fake Meta's ledger: every
acknowledged event id must arrive, nothing but the sent ids may arrive, and the fake's protocol
checks (no request before Retry-After, no stale event) must stay clean. Each test prints its
figures (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from destinations.meta.adapter import API_VERSION, MAX_EVENT_AGE
from router.delivery import AGE_MARGIN
from router.queue.base import DeadFilter
from router.queue.factory import open_queue
from tests.conftest import BACKEND_SECRET, META_TOKEN
from tests.e2e.load import (
    LoadReport,
    MetaTarget,
    first_arrivals,
    lead,
    max_gap,
    oracle,
    p99,
    round_robin,
    router_yaml,
    send_load,
)
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake, ReceivedEvent, RequestRecord
from tests.fakes.server import FakeServer, serve

PIXEL_A, PIXEL_B = "1111111111", "2222222222"
RATE = 50.0


@contextmanager
def meta_fake(pixel_id: str) -> Iterator[tuple[MetaFake, FakeServer]]:
    """A fake Meta for one pixel on a loopback port."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id=pixel_id, version=API_VERSION)
    with serve(fake.app) as server:
        yield fake, server


async def started(tmp_path: Path, *targets: MetaTarget) -> RouterProcess:
    """A running router on a SQLite queue in tmp_path, with one Meta block per target."""
    config = tmp_path / "router.yaml"
    config.write_text(router_yaml(f"sqlite:///{tmp_path / 'queue.db'}", targets))
    return await asyncio.to_thread(RouterProcess(config, tmp_path / "router.log").start)


def steady(
    router: RouterProcess, seconds: float, prefix: str, stop: asyncio.Event | None = None
) -> asyncio.Task[LoadReport]:
    """RATE events per second to the router, in the background."""
    urls = round_robin([router.url])
    return asyncio.create_task(send_load(urls, rate=RATE, seconds=seconds, prefix=prefix, stop=stop))


async def eventually(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until the predicate holds; returns the wall-clock time it first held."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.time()


def has_all(fake: MetaFake, report: LoadReport) -> Callable[[], bool]:
    """Whether the fake has received every acknowledged id."""
    return lambda: set(report.acked) <= set(fake.event_ids())


def same_payload_per_id(received: Sequence[ReceivedEvent]) -> list[str]:
    """Ids whose redeliveries carried a different payload than the first delivery."""
    first: dict[str | None, str] = {}
    changed = [r.event_id for r in received if first.setdefault(r.event_id, r.payload_hash) != r.payload_hash]
    return sorted({str(i) for i in changed})


def requests_carrying(fake: MetaFake, event_id: str) -> list[RequestRecord]:
    """The fake's request records whose body holds the event id."""
    return [
        r
        for r in fake.requests
        if isinstance(r.body, dict) and any(e.get("event_id") == event_id for e in r.body.get("data") or [])
    ]


async def dead_letters(tmp_path: Path, event_id: str) -> list[dict[str, Any]]:
    """The dead letters of one event id, read from the router's queue file by a second connection."""
    queue = open_queue(f"sqlite:///{tmp_path / 'queue.db'}")
    await queue.open()
    try:
        return await queue.dead_letters(DeadFilter(event_id=event_id))
    finally:
        await queue.close()


def post_one(router: RouterProcess, event: dict[str, Any]) -> str:
    """POST one event as the backend source; returns its result status."""
    headers = {"Authorization": f"Bearer {BACKEND_SECRET}"}
    answer = httpx.post(f"{router.url}/v1/events", json=event, headers=headers, timeout=5)
    assert answer.status_code == 202, answer.text
    status: str = answer.json()["results"][0]["status"]
    return status


async def test_outage_of_one_destination_loses_nothing_and_leaves_the_other_on_time(tmp_path: Path) -> None:
    """R1 scaled: 50 ev/s for 8 s, meta_a 503 for 3 s: 0 lost at either, drain < 3 s, meta_b max gap < 1 s."""
    with meta_fake(PIXEL_A) as (down, down_srv), meta_fake(PIXEL_B) as (healthy, healthy_srv):
        router = await started(
            tmp_path,
            MetaTarget("meta_a", PIXEL_A, down_srv.url),
            MetaTarget("meta_b", PIXEL_B, healthy_srv.url),
        )
        try:
            load = steady(router, 8, "r1")
            await asyncio.sleep(1.5)
            down.set_mode("503")
            outage = time.time()
            await asyncio.sleep(3.0)
            down.set_mode("ok")
            recovered = time.time()
            report = await load
            await eventually(has_all(down, report), 15, "meta_a to receive every acked id")
            await eventually(has_all(healthy, report), 5, "meta_b to receive every acked id")
        finally:
            router.kill()
    a, b = oracle(report, down.received), oracle(report, healthy.received)
    arrived_a, arrived_b = first_arrivals(down.received), first_arrivals(healthy.received)
    drain = max(arrived_a[i] for i in report.acked_between(0, recovered)) - recovered
    gap_b = max_gap(list(arrived_b.values()), outage, recovered)
    latency = {i: arrived_b[i] - at for i, at in report.acked.items()}
    during = [latency[i] for i in report.acked_between(outage, recovered)]
    outside = [v for i, v in latency.items() if i not in report.acked_between(outage, recovered)]
    print(f"\nR1 outage-3s meta_a: {a.line()}, drain {drain:.2f} s")
    print(f"R1 outage-3s meta_b: {b.line()}, max gap during outage {gap_b:.2f} s")
    print(f"R1 iso p99 x{p99(during) / p99(outside):.2f} ({p99(during):.3f} s vs {p99(outside):.3f} s)")
    assert sum(r.status == 503 for r in down.requests) > 0, "the outage never happened"
    assert len(report.acked) > 0.95 * RATE * 8
    for figures in (a, b):
        assert figures.lost == []
        assert figures.foreign_ids == [] and figures.foreign_duplicates == []
    assert down.violations == [] and healthy.violations == []
    assert drain < 3.0
    assert gap_b < 1.0


async def test_429_with_retry_after_is_honoured_under_load(tmp_path: Path) -> None:
    """R2 scaled: 429 + Retry-After: 1 for 3 s under 50 ev/s: 0 requests before it expires, 0 lost."""
    with meta_fake(PIXEL_A) as (limited, limited_srv), meta_fake(PIXEL_B) as (healthy, healthy_srv):
        router = await started(
            tmp_path,
            MetaTarget("meta_a", PIXEL_A, limited_srv.url),
            MetaTarget("meta_b", PIXEL_B, healthy_srv.url),
        )
        try:
            load = steady(router, 6, "r2")
            await asyncio.sleep(1.0)
            limited.set_mode("429", retry_after=1)
            await asyncio.sleep(3.0)
            limited.set_mode("ok")
            report = await load
            await eventually(has_all(limited, report), 15, "meta_a to receive every acked id")
            await eventually(has_all(healthy, report), 5, "meta_b to receive every acked id")
        finally:
            router.kill()
    a = oracle(report, limited.received)
    answered_429 = sum(r.status == 429 for r in limited.requests)
    early = len(limited.violations)
    print(f"\nR2 429-3s meta_a: {a.line()}, {answered_429} answered 429, {early} before Retry-After")
    assert answered_429 > 0
    assert a.lost == [] and oracle(report, healthy.received).lost == []
    # Retry-After speaks for the platform, not for the events of one request: the fake notes any
    # request to the pixel before it expires, whichever events it carries (section 2.2, rule 2).
    assert early == 0, (
        f"{early} requests came before a Retry-After expired, e.g. {limited.violations[0].detail}"
    )


async def test_kill_9_under_load_loses_nothing_and_resends_only_the_same_ids(tmp_path: Path) -> None:
    """R3 scaled: 5 SIGKILLs 0.5-2 s apart at 50 ev/s, Meta ok/503 in turn: 0 acked lost, 0 foreign ids."""
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    with meta_fake(PIXEL_A) as (fake, server):
        router = await started(tmp_path, MetaTarget("meta", PIXEL_A, server.url))
        stop = asyncio.Event()
        load = steady(router, 120, "r3", stop)
        kills = 0
        try:
            for cycle in range(5):
                fake.set_mode("503" if cycle % 2 else "ok")
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                router.kill()
                kills += 1
                await asyncio.to_thread(router.start)
            await asyncio.sleep(1.0)
            stop.set()
            report = await load
            fake.set_mode("ok")
            load_end = time.time()
            drain = await eventually(has_all(fake, report), 20, "every acked id after the last restart")
            drain -= load_end
        finally:
            stop.set()
            router.kill()
    figures = oracle(report, fake.received)
    integrity = sqlite3.connect(tmp_path / "queue.db").execute("PRAGMA integrity_check").fetchone()[0]
    print(f"\nR3 kill-9 x{kills} (seed {seed}): {figures.line()}, drain {drain:.2f} s, integrity {integrity}")
    assert kills == 5
    assert figures.acked > 100
    assert figures.lost == []
    assert figures.foreign_ids == [] and figures.foreign_duplicates == []
    assert same_payload_per_id(fake.received) == []
    assert integrity == "ok"


@pytest.mark.parametrize("answer_seconds", [1.0, 8.0], ids=["meta-slow", "meta-hangs"])
async def test_sigterm_under_load_exits_in_time_and_loses_nothing(
    tmp_path: Path, answer_seconds: float
) -> None:
    """R4 scaled: SIGTERM at 50 ev/s, Meta slow or hanging: exit < 9 s, no 500, 0 lost after a restart."""
    with meta_fake(PIXEL_A) as (fake, server):
        fake.set_mode("timeout", delay=answer_seconds)
        router = await started(tmp_path, MetaTarget("meta", PIXEL_A, server.url))
        try:
            load = steady(router, 5, "r4")
            await asyncio.sleep(2.5)
            signalled = time.monotonic()
            code = await asyncio.to_thread(router.terminate, 10)
            exit_seconds = time.monotonic() - signalled
            report = await load
            in_flight_at_exit = len(set(report.acked) - set(fake.event_ids()))
            fake.set_mode("ok")
            restarted = time.time()
            await asyncio.to_thread(router.start)
            done = await eventually(has_all(fake, report), 15, "every acked id after the restart")
        finally:
            router.kill()
    figures = oracle(report, fake.received)
    print(
        f"\nR4 sigterm, Meta answering in {answer_seconds:g} s: exit {exit_seconds:.2f} s (code {code}), "
        f"{in_flight_at_exit} acked ids undelivered at exit, all delivered {done - restarted:.2f} s "
        f"after the restart began; {figures.line()}"
    )
    assert exit_seconds < 9.0
    assert code in (0, -15)
    assert not [a for a in report.answers if a.startswith("5") and a != "503"]
    assert figures.lost == [] and figures.foreign_ids == []


async def test_stale_events_are_dead_lettered_and_never_sent(tmp_path: Path) -> None:
    """R6: an 8-day-old event, and one turning 7 days old while Meta is down, die; 0 stale sends."""
    with meta_fake(PIXEL_A) as (fake, server):
        router = await started(tmp_path, MetaTarget("meta", PIXEL_A, server.url))
        try:
            now = time.time()
            old = lead("stale-8d") | {"event_time": now - 8 * 86_400}
            assert post_one(router, old) == "accepted"
            assert post_one(router, lead("fresh")) == "accepted"
            await eventually(lambda: "fresh" in fake.event_ids(), 5, "the fresh event")
            fake.set_mode("503")
            # fresh for two more seconds: the router stops sending one AGE_MARGIN before the limit
            ageing = lead("ageing") | {"event_time": now - MAX_EVENT_AGE + AGE_MARGIN + 2.0}
            assert post_one(router, ageing) == "accepted"
            limit = now + 2.0
            await asyncio.sleep(max(0.0, limit + 1.0 - time.time()))
            fake.set_mode("ok")
            await asyncio.sleep(0.5)
            stale_dead = await dead_letters(tmp_path, "stale-8d")
            ageing_dead = await dead_letters(tmp_path, "ageing")
        finally:
            router.kill()
    ageing_sends = requests_carrying(fake, "ageing")
    print(
        f"\nR6 age gate: stale-8d -> {[d['reason'] for d in stale_dead]}; ageing -> "
        f"{[d['reason'] for d in ageing_dead]} after {len(ageing_sends)} attempts while fresh"
    )
    assert requests_carrying(fake, "stale-8d") == []
    assert [d["reason"].split(":")[0] for d in stale_dead] == ["expired"]
    assert len(ageing_dead) == 1 and ageing_dead[0]["reason"].startswith("expired")
    assert ageing_sends and all(r.status == 503 for r in ageing_sends)
    # planned before the limit; received within a second of transit on a loaded machine (the real
    # platform's limit is a whole AGE_MARGIN later still)
    assert all(r.received_at <= limit + 1.0 for r in ageing_sends)
    assert "ageing" not in fake.event_ids()


async def test_permanent_error_is_attempted_exactly_once(tmp_path: Path) -> None:
    """R7: Meta refuses a one-event request with code 100: 1 attempt, a dead letter; the next one lands."""
    with meta_fake(PIXEL_A) as (fake, server):
        router = await started(tmp_path, MetaTarget("meta", PIXEL_A, server.url))
        try:
            fake.set_mode("permanent", count=1)
            assert post_one(router, lead("refused")) == "accepted"
            await eventually(lambda: len(fake.requests) >= 1, 5, "the refused request")
            assert post_one(router, lead("after")) == "accepted"
            await eventually(lambda: "after" in fake.event_ids(), 5, "the next event")
            await asyncio.sleep(1.0)  # five backoff caps: a retry would have happened by now
            dead = await dead_letters(tmp_path, "refused")
        finally:
            router.kill()
    attempts = requests_carrying(fake, "refused")
    print(f"\nR7 permanent: {len(attempts)} attempt(s), dead letter {[d['reason'] for d in dead]}")
    assert len(attempts) == 1 and attempts[0].status == 400
    assert len(dead) == 1 and dead[0]["attempts"] == 1
    assert "refused" not in fake.event_ids()
