"""R8 scaled: three `router serve` processes on one PostgreSQL queue, one SIGKILLed every ~2 s.

The test needs a PostgreSQL server (ROUTER_TEST_PG_ADMIN, default postgresql://postgres@127.0.0.1:5432/postgres)
and fails, never skips, when it cannot reach it. Each run gets its own database, dropped afterwards.

What "no concurrent double delivery" means here: a delivery is leased to one router for
`dispatch.lease` seconds (2 s in this test). A second delivery of the same event id is allowed only
when the router holding it was killed before it recorded the outcome; the lease then runs out and
another router sends it again. So every duplicate must (a) follow a kill that happened between its
first delivery's request and the redelivery, (b) arrive at least about one lease after the first
delivery, and (c) the duplicates are at most (largest request seen) x (kills).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from destinations.meta.adapter import API_VERSION
from tests.conftest import META_TOKEN
from tests.e2e.load import MetaTarget, oracle, round_robin, router_yaml, send_load
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake
from tests.fakes.server import serve

ADMIN_URL = os.environ.get("ROUTER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PIXEL = "3333333333"
LEASE = 2.0
ROUTERS = 3
KILLS = 4
RATE = 60.0


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database for this test (its URL); dropped at the end."""
    name = f"router_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed for the multi-instance test and is unreachable: {exc}")
    try:
        yield urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sample(arrivals: dict[str, list[float]]) -> dict[str, list[float]]:
    """Three entries, for a readable failure message."""
    return dict(list(arrivals.items())[:3])


async def test_three_routers_on_one_postgres_queue_survive_kills_without_concurrent_duplicates(
    tmp_path: Path,
) -> None:
    """R8 scaled: 3 routers at 60 ev/s, one SIGKILLed every 2 s: 0 lost, duplicates only after a kill."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id=PIXEL, version=API_VERSION)
    with fresh_database() as queue_url, serve(fake.app) as server:
        config = tmp_path / "router.yaml"
        config.write_text(router_yaml(queue_url, [MetaTarget("meta", PIXEL, server.url)], {"lease": LEASE}))
        routers = [RouterProcess(config, tmp_path / f"router-{i}.log") for i in range(ROUTERS)]
        kills: list[float] = []
        restarts: list[asyncio.Task[RouterProcess]] = []
        try:
            await asyncio.gather(*(asyncio.to_thread(r.start) for r in routers))
            urls = round_robin([r.url for r in routers])
            load = asyncio.create_task(send_load(urls, rate=RATE, seconds=2.0 * KILLS + 2, prefix="r8"))
            for n in range(KILLS):
                await asyncio.sleep(2.0)
                victim = routers[n % ROUTERS]
                kills.append(time.time())
                victim.kill()
                restarts.append(asyncio.create_task(asyncio.to_thread(victim.start)))
            report = await load
            await asyncio.gather(*restarts)
            load_end = time.time()
            while not set(report.acked) <= set(fake.event_ids()) and time.time() < load_end + 20:
                await asyncio.sleep(0.05)
            drain = time.time() - load_end
        finally:
            for router in routers:
                router.kill()
    figures = oracle(report, fake.received)
    arrivals: dict[str, list[float]] = defaultdict(list)
    for r in fake.received:
        arrivals[str(r.event_id)].append(r.received_at)
    repeats = {i: times for i, times in arrivals.items() if len(times) > 1}
    early = {i: t for i, t in repeats.items() if t[1] - t[0] < LEASE - 0.5}
    unexplained = {i: t for i, t in repeats.items() if not any(t[0] - 1.0 <= k <= t[-1] for k in kills)}
    largest_request = max(r.n_events for r in fake.requests)
    gaps = sorted(round(t[1] - t[0], 2) for t in repeats.values())[:10]
    print(
        f"\nR8 3 routers, {len(kills)} kills: {figures.line()}, drain {drain:.2f} s; "
        f"largest request {largest_request} events; "
        f"shortest redelivery gaps {gaps} s; {len(early)} inside the lease, {len(unexplained)} without a kill"
    )
    assert len(kills) == KILLS
    assert figures.acked > 150, "too few events acknowledged to judge"
    assert figures.lost == []
    assert figures.foreign_ids == [] and figures.foreign_duplicates == []
    assert early == {}, f"{len(early)} ids delivered twice within the lease, e.g. {sample(early)}"
    assert unexplained == {}, (
        f"{len(unexplained)} ids delivered twice with no kill between: {sample(unexplained)}"
    )
    assert figures.redeliveries <= largest_request * len(kills)
    assert fake.violations == []
