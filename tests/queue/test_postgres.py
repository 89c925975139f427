"""Behaviour only the PostgreSQL queue has: several routers on one queue, the pool, timeouts, kill -9.

The behaviour both backends share runs from test_contract.py and test_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from router.queue import depth, postgres
from router.queue.base import Delivered, NewEvent, Queue, QueueFull
from router.queue.factory import QueueUrlError, open_queue
from router.queue.postgres import SCHEMA_VERSION, PostgresQueue
from router.queue.sqlite import SqliteQueue
from tests.queue import pg
from tests.queue.test_sqlite_crash import EXAMPLES, MAX_DEPTH, QueueModel, Row, read_acks

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[2]
KILL_CYCLES = 4
CHILD_TIMEOUT = 30.0


def event(n: int, destinations: tuple[str, ...] = ("a",), received_at: float = 100.0) -> NewEvent:
    """A small event whose payload carries `n`."""
    return NewEvent("web", f"ev-{n}", "purchase", received_at, {"n": n}, destinations)


@pytest.fixture
def url() -> Iterator[str]:
    """A URL on a fresh, empty schema."""
    with pg.fresh_schema() as schema_url:
        yield schema_url


@pytest.fixture
async def queue(url: str) -> AsyncIterator[PostgresQueue]:
    """An open queue on a fresh schema."""
    async with PostgresQueue(url) as opened:
        yield opened


def backends(queue: PostgresQueue, where: str = "true") -> list[int]:
    """Server process ids of the queue's pooled connections (matching an extra condition)."""
    sql = f"SELECT pid FROM pg_stat_activity WHERE application_name = %s AND {where}"
    return [pid for (pid,) in pg.query(pg.database_url(), sql, (f"router-queue-{queue.instance_id}",))]


def terminate(pids: list[int]) -> None:
    """Kill server processes, as a failover or an idle-connection reaper would."""
    for pid in pids:
        pg.query(pg.database_url(), "SELECT pg_terminate_backend(%s)", (pid,))


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `check()` holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def locked(url: str, table: str) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection holding an exclusive lock on `table` until it rolls back."""
    conn = pg.connect(url)
    conn.execute("BEGIN")
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


# The factory.


def test_factory_builds_a_postgres_queue_with_its_options() -> None:
    """Driver suffixes are dropped, options reach the queue, the password never shows."""
    queue = open_queue("postgresql+psycopg://router:s3cret@db:5433/events", max_depth=9, pool_max=3)
    assert isinstance(queue, PostgresQueue)
    assert queue.url == "postgresql://router:s3cret@db:5433/events"
    assert (queue.max_depth, queue.pool_min, queue.pool_max) == (9, 1, 3)
    assert "s3cret" not in repr(queue) and repr(queue).startswith(
        "PostgresQueue('postgresql://router@db:5433"
    )
    assert isinstance(open_queue("postgres://db/events"), PostgresQueue)


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("postgresql://db/router", {"max_dept": 3}, "unknown postgresql queue options: max_dept"),
        ("postgresql://db/router?bogus=1", {}, "malformed postgresql URL: invalid URI query parameter"),
        ("postgresql:db/router", {}, "malformed postgresql URL"),
    ],
)
def test_factory_refuses_bad_urls_and_options(url: str, options: dict[str, Any], message: str) -> None:
    """Misspelt options and URLs libpq cannot read are refused before connecting."""
    with pytest.raises(QueueUrlError, match=message):
        open_queue(url, **options)


def test_factory_errors_never_quote_a_password() -> None:
    """A malformed URL with a password is refused without repeating it."""
    with pytest.raises(QueueUrlError) as error:
        open_queue("postgresql://router:s3cret@db/router?bogus=s3cret")
    assert "s3cret" not in str(error.value)


# The schema.


async def test_routers_starting_together_migrate_once(url: str) -> None:
    """Five routers opening a fresh schema at once: one migrates, all work."""
    queues = [PostgresQueue(url) for _ in range(5)]
    await asyncio.gather(*(q.open() for q in queues))
    try:
        keys = await asyncio.gather(*(q.enqueue([event(n)]) for n, q in enumerate(queues)))
        assert len({key for [key] in keys}) == 5
        versions = pg.query(url, "SELECT version FROM schema_version ORDER BY version")
        assert versions == [(n,) for n in range(1, SCHEMA_VERSION + 1)]  # each applied once
    finally:
        await asyncio.gather(*(q.close() for q in queues))


async def test_newer_schema_is_refused_and_no_connection_stays(url: str) -> None:
    """A schema written by a newer router is not touched, and the failed open closes its pool."""
    async with PostgresQueue(url):
        pass
    pg.query(url, "INSERT INTO schema_version VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    queue = PostgresQueue(url)
    with pytest.raises(RuntimeError, match="newer"):
        await queue.open()
    await eventually(lambda: not backends(queue))


async def test_tables_have_the_sqlite_columns(queue: PostgresQueue, tmp_path: Path) -> None:
    """Same tables, same columns in the same order; PostgreSQL adds only `lease_owner`."""
    async with SqliteQueue(str(tmp_path / "q.db")):
        pass
    conn = sqlite3.connect(tmp_path / "q.db")
    sql = (
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position"
    )
    try:
        for table in ("events", "deliveries", "seen"):
            lite = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            ours = [name for (name,) in pg.query(queue.url, sql, (table,)) if name != "lease_owner"]
            assert ours == lite, table
    finally:
        conn.close()


# Leases shared by several routers.


async def test_recover_never_takes_another_routers_live_lease(url: str) -> None:
    """Only the claimer's own recover hands rows back; a restarted router finds none of its own."""
    async with PostgresQueue(url) as first, PostgresQueue(url) as second:
        await first.enqueue([event(1), event(2)])
        assert len(await first.claim("a", 10, now=100.0, lease=60.0)) == 2
        assert await second.recover() == 0
        assert await second.claim("a", 10, now=159.0, lease=60.0) == []
        assert await first.recover() == 2
        assert len(await second.claim("a", 10, now=100.0, lease=60.0)) == 2
    async with PostgresQueue(url) as restarted:
        assert await restarted.recover() == 0
        assert await restarted.claim("a", 10, now=159.0, lease=60.0) == []
        assert len(await restarted.claim("a", 10, now=160.0, lease=60.0)) == 2


async def test_claim_skips_rows_another_transaction_holds(queue: PostgresQueue, url: str) -> None:
    """A row locked elsewhere is passed over at once, not waited for, and claimed once free."""
    first, second, third = await queue.enqueue([event(1), event(2), event(3)])
    with pg.connect(url) as other:
        other.execute("BEGIN")
        other.execute("SELECT 1 FROM deliveries WHERE event_pk = %s FOR UPDATE", (first,))
        started = time.monotonic()
        jobs = await queue.claim("a", 10, now=100.0, lease=60.0)
        assert time.monotonic() - started < 1.0
        assert [job.event_pk for job in jobs] == [second, third]
        other.execute("ROLLBACK")
    assert [job.event_pk for job in await queue.claim("a", 10, now=100.0, lease=60.0)] == [first]


async def claim_all(queue: Queue, destination: str, deliver: bool) -> list[tuple[int, str]]:
    """Claim batches (and deliver them) until none is left; every (key, destination) claimed."""
    got: list[tuple[int, str]] = []
    while jobs := await queue.claim(destination, 7, now=100.0, lease=600.0):
        got += [(job.event_pk, destination) for job in jobs]
        if deliver:
            await queue.settle(destination, [Delivered(job.event_pk) for job in jobs], now=101.0)
    return got


async def test_many_routers_claiming_at_once_never_share_a_row(url: str) -> None:
    """Four routers with three claimers each split 600 rows: none twice, none lost."""
    queues = [PostgresQueue(url) for _ in range(4)]
    await asyncio.gather(*(q.open() for q in queues))
    try:
        keys = await queues[0].enqueue([event(n) for n in range(600)])
        results = await asyncio.gather(*(claim_all(q, "a", deliver=False) for q in queues * 3))
    finally:
        await asyncio.gather(*(q.close() for q in queues))
    claimed = [pk for result in results for pk, _ in result]
    assert sorted(claimed) == sorted(pk for pk in keys if pk is not None) and len(keys) == 600


async def test_routers_delivering_both_destinations_at_once_leave_nothing_behind(url: str) -> None:
    """Three routers deliver `a` and `b` concurrently: each row once, then no event row is left."""
    queues = [PostgresQueue(url) for _ in range(3)]
    await asyncio.gather(*(q.open() for q in queues))
    try:
        keys = await queues[0].enqueue([event(n, ("a", "b")) for n in range(300)])
        workers = [claim_all(q, dest, deliver=True) for q in queues for dest in ("a", "b", "a", "b")]
        results = await asyncio.gather(*workers)
    finally:
        await asyncio.gather(*(q.close() for q in queues))
    claimed = sorted(row for result in results for row in result)
    assert claimed == sorted((pk, dest) for pk in keys if pk is not None for dest in ("a", "b"))
    left = "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM deliveries)"
    assert pg.query(url, left) == [(0, 0)]


async def test_routers_enqueueing_the_same_events_at_once_store_each_once(url: str) -> None:
    """The same 100 events sent through four routers at once are stored once each."""
    queues = [PostgresQueue(url) for _ in range(4)]
    await asyncio.gather(*(q.open() for q in queues))
    batches = [[event(n) for n in range(i, i + 10)] for i in range(0, 100, 10)]
    try:
        results = await asyncio.gather(*(q.enqueue(batch) for q in queues for batch in batches))
        assert await queues[0].depth() == 100
    finally:
        await asyncio.gather(*(q.close() for q in queues))
    assert sum(key is not None for keys in results for key in keys) == 100


# max_depth without a count per enqueue.


async def test_enqueues_under_max_depth_count_only_when_the_bound_may_not_fit(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first enqueue counts; later ones add to the bound until it would pass the cap."""
    counts: list[int] = []
    real_depth = postgres._depth

    async def counting(cur: Any) -> int:
        counts.append(await real_depth(cur))
        return counts[-1]

    monkeypatch.setattr(postgres, "_depth", counting)
    monkeypatch.setattr(depth, "DEPTH_TRUST", 60.0)  # a slow machine must not expire the bound
    async with PostgresQueue(url, max_depth=12) as queue:
        for n in range(10):
            await queue.enqueue([event(n)])
        assert counts == [0]
        await queue.enqueue([event(10), event(11)])
        with pytest.raises(QueueFull):
            await queue.enqueue([event(12)])
        assert counts == [0, 12]


# The pool and its timeouts.


async def test_pool_never_opens_more_than_pool_max_connections(url: str) -> None:
    """Six calls blocked at once hold two connections; the rest wait for one, then all finish."""
    async with PostgresQueue(url, pool_max=2) as queue:
        blocker = locked(url, "deliveries")
        calls = asyncio.gather(*(queue.depth() for _ in range(6)))
        try:
            await eventually(lambda: len(backends(queue, "wait_event_type = 'Lock'")) == 2)
            await asyncio.sleep(0.2)
            assert len(backends(queue)) == 2
        finally:
            blocker.rollback()
            blocker.close()
        assert await calls == [0] * 6


async def test_close_leaves_no_connection_behind(url: str) -> None:
    """After close the server holds no connection of the queue."""
    queue = PostgresQueue(url)
    await queue.open()
    assert len(backends(queue)) == 1
    await queue.close()
    await eventually(lambda: not backends(queue))


async def test_dropped_idle_connections_are_replaced(
    queue: PostgresQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections the server dropped while idle are noticed at checkout; calls still succeed."""
    await queue.enqueue([event(1)])
    terminate(backends(queue))
    monkeypatch.setattr(postgres, "IDLE_CHECK", 0.0)  # as if the connection had idled for long
    assert await queue.depth() == 1
    assert len(await queue.claim("a", 10, now=100.0, lease=30.0)) == 1


async def test_connection_lost_mid_call_raises_then_the_pool_recovers(queue: PostgresQueue, url: str) -> None:
    """A call whose connection dies raises at once; the next call gets a fresh connection."""
    blocker = locked(url, "deliveries")
    try:
        call = asyncio.ensure_future(queue.depth())
        await eventually(lambda: bool(backends(queue, "wait_event_type = 'Lock'")))
        terminate(backends(queue, "wait_event_type = 'Lock'"))
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(call, 5.0)
    finally:
        blocker.rollback()
        blocker.close()
    assert await queue.depth() == 0


async def test_statement_timeout_turns_a_blocked_call_into_an_error(url: str) -> None:
    """A call stuck behind a lock fails after `statement_timeout` instead of hanging."""
    async with PostgresQueue(url, statement_timeout=0.3) as queue:
        blocker = locked(url, "seen")
        try:
            started = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                await queue.enqueue([event(1)])
            assert time.monotonic() - started < 2.0
        finally:
            blocker.rollback()
            blocker.close()
        assert await queue.enqueue([event(1)]) != [None]


async def test_unreachable_server_fails_open_within_the_connect_timeout() -> None:
    """Nothing listens on port 1: open raises after about `connect_timeout`, never hangs."""
    queue = PostgresQueue("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(psycopg.Error):
        await queue.open()
    assert time.monotonic() - started < 3.0
    with pytest.raises(RuntimeError, match="not open"):
        await queue.depth()


# kill -9 while enqueueing and delivering, then check that every acknowledged event is stored.


def run_until_killed(url: str, acks_wanted: int) -> list[int]:
    """Start the child, read `acks_wanted` acknowledged keys, SIGKILL it; every key it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    watchdog = threading.Timer(CHILD_TIMEOUT, proc.kill)
    watchdog.start()
    try:
        acked = read_acks(proc, acks_wanted)
        proc.kill()
        rest, errors = proc.communicate()
    finally:
        watchdog.cancel()
        proc.kill()
    assert len(acked) == acks_wanted, f"child stopped early: {errors}"
    return acked + [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]


def stored_kept_keys(url: str) -> set[int]:
    """Keys whose event row and never-claimed `kept` delivery are stored; checks for orphans too."""
    orphans = "SELECT COUNT(*) FROM deliveries WHERE event_pk NOT IN (SELECT pk FROM events)"
    assert pg.query(url, orphans) == [(0,)]
    rows = pg.query(
        url,
        "SELECT e.pk FROM events AS e JOIN deliveries AS d ON d.event_pk = e.pk"
        " WHERE d.destination = 'kept' AND d.state = 'pending'",
    )
    return {pk for (pk,) in rows}


async def test_acknowledged_events_survive_kill_9(url: str) -> None:
    """After each SIGKILL every acknowledged key is stored, and the dead child's leases come back."""
    rng = random.Random(5)
    all_acked: list[int] = []
    for _ in range(KILL_CYCLES):
        acked = run_until_killed(url, rng.randint(60, 200))
        assert acked == sorted(acked) and (not all_acked or acked[0] > all_acked[-1]), "keys reused"
        all_acked += acked
        missing = set(all_acked) - stored_kept_keys(url)
        assert not missing, f"{len(missing)} acknowledged events lost"
    async with PostgresQueue(url) as queue:
        assert await queue.recover() == 0
        sent = await queue.claim("sent", 100_000, now=1e12 + 30.0, lease=30.0)
    undelivered = pg.query(url, "SELECT COUNT(*) FROM deliveries WHERE destination = 'sent'")
    assert undelivered == [(len(sent),)]


# The stateful model of test_sqlite_crash.py, run against PostgreSQL; a crash is a router that
# vanishes (its connections killed, nothing released) and a new one that takes over the schema.


class PostgresQueueModel(QueueModel):
    """QueueModel with its queue on a fresh PostgreSQL schema instead of a SQLite file."""

    def __init__(self) -> None:
        RuleBasedStateMachine.__init__(self)  # QueueModel's own __init__ makes a SQLite file
        self.loop = asyncio.new_event_loop()
        # The server itself never crashes here, so waiting for its fsync on commit only costs time.
        self.schema = pg.fresh_schema("-csynchronous_commit=off")
        self.url = self.schema.__enter__()
        self.reader = pg.connect(self.url)
        self.crashes = 0
        self.queue = PostgresQueue(self.url, max_depth=MAX_DEPTH)  # type: ignore[assignment]
        self.run(self.queue.open())
        self.now = 1000.0
        self.rows = {}
        self.last_key = 0
        self.serial = 0
        self.payloads = {}

    def teardown(self) -> None:
        """Close the queue, the loop, the reader and drop the schema."""
        self.run(self.queue.close())
        self.loop.close()
        self.reader.close()
        self.schema.__exit__(None, None, None)

    @rule()
    def crash(self) -> None:
        """Kill the router's connections without releasing anything and start a new router."""
        self.crashes += 1
        old = self.queue
        assert isinstance(old, PostgresQueue)
        terminate(backends(old))
        self.run(old.close())
        self.queue = PostgresQueue(self.url, max_depth=MAX_DEPTH)
        self.run(self.queue.open())

    @invariant()
    def rows_agree(self) -> None:
        """Every stored delivery row and event row is the model's, field by field."""
        stored = self.reader.execute(
            "SELECT event_pk, destination, state, attempts, next_attempt_at, first_attempt_at,"
            " lease_until, last_error FROM deliveries"
        ).fetchall()
        events = {pk for (pk,) in self.reader.execute("SELECT pk FROM events")}
        assert {(pk, dest): Row(*rest) for pk, dest, *rest in stored} == self.rows
        assert events == {pk for pk, _ in self.rows}


PostgresQueueModel.TestCase.settings = settings(
    max_examples=max(5, EXAMPLES // 3),  # QUEUE_MODEL_EXAMPLES=600 for a long run
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPostgresQueueModel = PostgresQueueModel.TestCase


# Group commit (router/queue/groupcommit.py), as on SQLite.


async def test_concurrent_enqueues_share_transactions_and_each_gets_its_own_keys(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 concurrent single-event enqueues: fewer transactions than calls, every call answered with
    its own key, every event stored once; the same event sent twice at once is stored once."""
    groups: list[int] = []
    real = PostgresQueue._enqueue_group

    async def counting(self: PostgresQueue, calls: list[Any]) -> Any:
        groups.append(len(calls))
        return await real(self, calls)

    monkeypatch.setattr(PostgresQueue, "_enqueue_group", counting)
    async with PostgresQueue(url) as queue:
        answers = await asyncio.gather(
            *(queue.enqueue([event(n)]) for n in range(60)), queue.enqueue([event(5)])
        )
        keys = [a[0] for a in answers[:60]]
        assert None not in keys and len(set(keys)) == 60
        assert answers[60] == [None]
        assert await queue.depth() == 60
        accepted = await queue.overview(since=0.0)
    assert sum(groups) == 61 and len(groups) < 61
    assert accepted["a"]["accepted"] == 60
