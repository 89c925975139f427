"""The shared queue: PostgreSQL, so several routers (Cloud Run with Cloud SQL) work one queue.

Tables, states and rules are those of `router.queue.sqlite`; read its docstring first. Events live
as long as they have a delivery row; settle and release only touch `inflight` rows; keys are never
reused; an event with no destinations is remembered for dedup and gets a key but no row; an
enqueue over `max_depth` raises QueueFull before writing anything. The same contract tests run on
both backends. Every method runs one transaction and returns after COMMIT. `enqueue` calls that
arrive while one is being stored share the next transaction (router/queue/groupcommit.py): one
COMMIT and one upsert of the hourly counts per group instead of per request, so concurrent requests
no longer queue on the count rows' locks.

Connections: a small psycopg pool (1 to 5 by default), autocommit off, one explicit transaction
per call. A connection that sat in the pool for more than IDLE_CHECK seconds is checked (one round
trip) before use, so one that the server or a proxy dropped while idle is replaced instead of
failing the call; connections in steady use skip that round trip. A connection lost during a call
surfaces as an exception from that call (ingest answers 503, the dispatcher retries), never as a
hang: libpq's `connect_timeout` and TCP keepalives, the server's `statement_timeout` and
`idle_in_transaction_session_timeout`, a wait for a free pooled connection bounded by
`connect_timeout`, and a deadline of `connect_timeout + 2 * statement_timeout` around every call.

Where PostgreSQL differs, and why:
- Claims: one statement selects due rows `FOR UPDATE SKIP LOCKED` (rows another transaction is
  claiming are passed over, not waited for) and leases them. A row leased and committed meanwhile
  is re-checked against the WHERE clause and dropped, so two routers never hold the same row while
  its lease is live. The scan walks an index on (destination, next_attempt_at, event_pk) over
  pending and in-flight rows, bounded by `next_attempt_at <= now`; an in-flight row always meets
  that bound, because only due rows are leased.
- Lease owners and `recover()`: every queue object gets a random `instance_id`, recorded in
  `deliveries.lease_owner` on claim. `recover()` hands back only the rows this instance holds, so
  it never steals a live lease of another router. A restarted router is a new instance, so its
  `recover()` returns 0: what a dead instance had claimed comes back when its lease runs out.
  `settle` and `release` do not check the owner (as with SQLite): a late outcome from a router
  whose lease ran out still applies, which at worst repeats a send the platform deduplicates.
- Keys come from the identity sequence `events_pk_seq`. Sequences never go back, even on rollback,
  so keys are never reused; they rise across one caller's successive calls, but concurrent
  transactions may commit out of key order.
- Dedup: `INSERT ... ON CONFLICT DO UPDATE ... WHERE older than DEDUP_WINDOW` on `seen`, one
  pipelined statement per event in the batch's transaction, so duplicates inside one batch are
  caught as on SQLite. Two routers enqueueing the same event at once serialize on the key: one
  stores it, the other gets None. Two batches holding the same keys in different orders can
  deadlock; PostgreSQL then aborts one of them, whose caller gets an error (503, sent again).
- Delivered: the event rows are locked (in key order) before their delivery rows are deleted, so
  two destinations of one event delivered at once by two routers cannot both leave the event row.
- Payloads are TEXT holding the same compact JSON as SQLite, not JSONB, which would turn 1e300
  into an integer, drop -0.0's sign and refuse "\\u0000".
- `max_depth`: counting waiting rows costs about 0.1 s per million on a small server, too much for
  every ingest request. Each queue object keeps an upper bound instead: the last exact count plus
  every row it enqueued or replayed since, trusted for DEPTH_TRUST seconds. A batch that fits under
  that bound skips the count; otherwise the enqueue transaction counts exactly, before writing. On
  one router this is exact (the bound only errs high), so QueueFull comes exactly when SQLite's
  would. With several routers (or a `router replay` process) the others' additions of the last
  DEPTH_TRUST seconds are not in the bound, and an exact count under READ COMMITTED does not see
  their uncommitted batches either: routers filling the queue together may overshoot `max_depth`
  by about what they enqueue in a second.
- Migrations: `schema_version` records each numbered migration applied; routers starting together
  take `pg_advisory_xact_lock` keyed on the schema name first, so one migrates and the others see
  the result. Tables go in the connection's current schema (`options=-csearch_path=...` in the URL
  picks another).
- A cancelled caller (or the call deadline) may cancel after COMMIT was sent: for `enqueue` that
  means stored but not acknowledged, which at-least-once allows, as with SQLite.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from psycopg import AsyncConnection, AsyncCursor
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from router import jsoncodec
from router.queue import counts
from router.queue.base import (
    DEAD_LETTER_KEYS,
    DEDUP_WINDOW,
    DeadFilter,
    Delivered,
    Job,
    NewEvent,
    Outcome,
    QueueFull,
    outcome_row,
)
from router.queue.decoded import Decoded
from router.queue.depth import DepthBound
from router.queue.groupcommit import GroupCommit

log = structlog.get_logger("router.queue.postgres")

STATES = ("pending", "inflight", "dead", "skipped")
POOL_MIN = 1
POOL_MAX = 5
CONNECT_TIMEOUT = 5.0
STATEMENT_TIMEOUT = 10.0
IDLE_CHECK = 5.0
# Connection parameters applied unless the URL sets them: name the router in pg_stat_activity and
# notice a vanished server within about 10 + 3 * 5 seconds even while a query waits for an answer.
CONNECTION_DEFAULTS = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}
MIGRATION_LOCK = 0x726F75  # the first key of the two-key advisory lock: "rou"

# Each entry moves the schema from version i to i + 1. Append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            pk BIGINT GENERATED BY DEFAULT AS IDENTITY (SEQUENCE NAME events_pk_seq) PRIMARY KEY,
            source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_name TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            payload TEXT NOT NULL
        )""",
        """CREATE TABLE deliveries (
            event_pk BIGINT NOT NULL,
            destination TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'inflight', 'dead', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            first_attempt_at DOUBLE PRECISION,
            lease_until DOUBLE PRECISION,
            lease_owner TEXT,
            last_error TEXT,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (event_pk, destination)
        )""",
        # Serves claim (a range scan in due order) and depth (an index-only count).
        """CREATE INDEX deliveries_claim ON deliveries (destination, next_attempt_at, event_pk)
            WHERE state IN ('pending', 'inflight')""",
        # Serves stats, dead-letter listings and purge.
        "CREATE INDEX deliveries_age ON deliveries (state, updated_at)",
        # Serves recover.
        "CREATE INDEX deliveries_leases ON deliveries (lease_owner) WHERE state = 'inflight'",
        # Router-side idempotency: (source, event_name, event_id) seen in the last 48 hours.
        """CREATE TABLE seen (
            source TEXT NOT NULL,
            event_name TEXT NOT NULL,
            event_id TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (source, event_name, event_id)
        )""",
        "CREATE INDEX seen_age ON seen (received_at)",
    ),
    (
        # Hourly outcome counts (delivered rows leave `deliveries`); reason '' for accepted/delivered.
        """CREATE TABLE delivery_counts (
            destination TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL,
            count BIGINT NOT NULL,
            PRIMARY KEY (destination, bucket, outcome, reason)
        )""",
        # Hourly match-quality tallies; identifier '*' is the number of events counted.
        """CREATE TABLE match_counts (
            destination TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            identifier TEXT NOT NULL,
            count BIGINT NOT NULL,
            PRIMARY KEY (destination, bucket, identifier)
        )""",
        "CREATE INDEX delivery_counts_age ON delivery_counts (bucket)",
        "CREATE INDEX match_counts_age ON match_counts (bucket)",
    ),
    (
        # The consent gate's decision (router/consent.py) on the rows kept: retrying, dead, skipped.
        "ALTER TABLE deliveries ADD COLUMN consent TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock(%s, hashtext(COALESCE(current_schema(), '')))"
CREATE_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
)
"""
CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_version"
RECORD_VERSION = "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)"
SESSION_SETTINGS = """
SELECT set_config('statement_timeout', %(timeout)s, false),
       set_config('idle_in_transaction_session_timeout', %(timeout)s, false)
"""

COUNT_DEPTH = "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'inflight')"
COUNT_BY_STATE = "SELECT state, COUNT(*) FROM deliveries GROUP BY state"
# Keys grow with arrival, so the smallest waiting key is the oldest waiting event.
OLDEST_WAITING = """
SELECT received_at FROM events
WHERE pk = (SELECT MIN(event_pk) FROM deliveries WHERE state IN ('pending', 'inflight'))"""

# One statement per event: remember it unless seen within the window (then nothing is returned),
# take a key, store the event and its deliveries when it has destinations.
ENQUEUE = """
WITH fresh AS (
    INSERT INTO seen AS s (source, event_name, event_id, received_at)
    VALUES (%(source)s, %(event_name)s, %(event_id)s, %(received_at)s)
    ON CONFLICT (source, event_name, event_id) DO UPDATE SET received_at = EXCLUDED.received_at
    WHERE s.received_at <= EXCLUDED.received_at - %(window)s
    RETURNING nextval('events_pk_seq') AS pk
), stored AS (
    INSERT INTO events (pk, source, event_id, event_name, received_at, payload)
    SELECT pk, %(source)s, %(event_id)s, %(event_name)s, %(received_at)s, %(payload)s
    FROM fresh WHERE cardinality(%(destinations)s::text[]) > 0
    RETURNING pk
), queued AS (
    INSERT INTO deliveries (event_pk, destination, state, attempts, next_attempt_at, updated_at)
    SELECT stored.pk, destination, 'pending', 0, %(received_at)s, %(now)s
    FROM stored CROSS JOIN unnest(%(destinations)s::text[]) AS destination
)
SELECT pk FROM fresh
"""

CLAIM = """
WITH due AS (
    SELECT event_pk FROM deliveries
    WHERE destination = %(destination)s
      AND state IN ('pending', 'inflight')
      AND next_attempt_at <= %(now)s
      AND (state = 'pending' OR lease_until <= %(now)s)
    ORDER BY next_attempt_at, event_pk
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries AS d
SET state = 'inflight', lease_until = %(lease_until)s, lease_owner = %(owner)s, updated_at = %(now)s
FROM due JOIN events AS e ON e.pk = due.event_pk
WHERE d.event_pk = due.event_pk AND d.destination = %(destination)s
RETURNING d.event_pk, d.next_attempt_at, d.attempts, d.first_attempt_at, e.payload
"""
LOCK_EVENTS = "SELECT pk FROM events WHERE pk = ANY(%s::bigint[]) ORDER BY pk FOR UPDATE"
DELETE_DELIVERED = """
DELETE FROM deliveries WHERE destination = %s AND state = 'inflight' AND event_pk = ANY(%s::bigint[])
RETURNING event_pk
"""
PRUNE_EVENTS = """
DELETE FROM events AS e
WHERE e.pk = ANY(%s::bigint[]) AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.event_pk = e.pk)
"""
# One statement records Retrying, Dead and Skipped; `counts` is 1 when it was an attempt.
RECORD_OUTCOME = """
UPDATE deliveries SET
    state = %(state)s,
    attempts = attempts + %(counts)s,
    next_attempt_at = COALESCE(%(next_attempt_at)s::double precision, next_attempt_at),
    first_attempt_at = CASE WHEN %(counts)s = 1 THEN COALESCE(first_attempt_at, %(now)s)
                            ELSE first_attempt_at END,
    last_error = %(error)s,
    consent = COALESCE(NULLIF(%(consent)s, ''), consent),
    lease_until = NULL,
    lease_owner = NULL,
    updated_at = %(now)s
WHERE event_pk = %(event_pk)s AND destination = %(destination)s AND state = 'inflight'
RETURNING event_pk
"""
RELEASE = """
UPDATE deliveries SET state = 'pending', lease_until = NULL, lease_owner = NULL, updated_at = %s
WHERE destination = %s AND state = 'inflight' AND event_pk = ANY(%s::bigint[])
"""
RECOVER = """
UPDATE deliveries SET state = 'pending', lease_until = NULL, lease_owner = NULL
WHERE state = 'inflight' AND lease_owner = %s
"""
EXPEDITE = """
UPDATE deliveries SET next_attempt_at = %s
WHERE destination = %s AND state = 'pending' AND next_attempt_at > %s
"""
DEAD_MATCH = """
d.state = 'dead'
AND (%(destination)s::text IS NULL OR d.destination = %(destination)s::text)
AND (%(since)s::double precision IS NULL OR d.updated_at >= %(since)s::double precision)
AND (%(event_id)s::text IS NULL OR e.event_id = %(event_id)s::text)
"""
SELECT_DEAD = f"""
SELECT d.event_pk, d.destination, d.last_error, d.attempts, d.first_attempt_at, d.updated_at,
       e.source, e.event_id, e.event_name, d.consent
FROM deliveries AS d JOIN events AS e ON e.pk = d.event_pk
WHERE {DEAD_MATCH}
ORDER BY d.updated_at, d.event_pk
LIMIT %(limit)s
"""
# `state = 'dead'` again outside: a row another replay revived meanwhile is re-checked and skipped.
REPLAY = f"""
UPDATE deliveries SET state = 'pending', attempts = 0, first_attempt_at = NULL, last_error = NULL,
    lease_until = NULL, lease_owner = NULL, next_attempt_at = %(now)s, updated_at = %(now)s
WHERE state = 'dead' AND (event_pk, destination) IN (
    SELECT d.event_pk, d.destination FROM deliveries AS d JOIN events AS e ON e.pk = d.event_pk
    WHERE {DEAD_MATCH} ORDER BY d.updated_at, d.event_pk LIMIT %(limit)s
)
"""
PURGE_DEAD = "DELETE FROM deliveries WHERE state IN ('dead', 'skipped') AND updated_at < %s"
PRUNE_ORPHANS = "DELETE FROM events WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE event_pk = events.pk)"
PURGE_SEEN = "DELETE FROM seen WHERE received_at < %s"

ADD_DELIVERY_COUNT = """
INSERT INTO delivery_counts AS c (destination, bucket, outcome, reason, count)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::bigint[])
ON CONFLICT (destination, bucket, outcome, reason) DO UPDATE SET count = c.count + EXCLUDED.count
"""
ADD_MATCH_COUNT = """
INSERT INTO match_counts AS c (destination, bucket, identifier, count)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bigint[])
ON CONFLICT (destination, bucket, identifier) DO UPDATE SET count = c.count + EXCLUDED.count
"""
"""Count upserts take their rows as one array per column: one statement however many rows (an
`executemany` of 50 rows cost about 1 ms of the router's CPU per ingest transaction). The rows are
unique and in key order, so concurrent writers lock them in one order."""
SUM_DELIVERY_COUNTS = """
SELECT destination, outcome, reason, SUM(count) FROM delivery_counts WHERE bucket >= %s
GROUP BY destination, outcome, reason
"""
SUM_MATCH_COUNTS = """
SELECT destination, identifier, SUM(count) FROM match_counts WHERE bucket >= %s
GROUP BY destination, identifier
"""
PURGE_DELIVERY_COUNTS = "DELETE FROM delivery_counts WHERE bucket < %s"
PURGE_MATCH_COUNTS = "DELETE FROM match_counts WHERE bucket < %s"

Conn = AsyncConnection[tuple[Any, ...]]
Cursor = AsyncCursor[tuple[Any, ...]]


class PostgresQueue:
    """The `Queue` on a PostgreSQL database; `max_depth` caps pending + in-flight deliveries.

    `pool_min` / `pool_max` size the connection pool; `connect_timeout` bounds making a
    connection and waiting for a free one; `statement_timeout` bounds each statement (seconds).
    """

    def __init__(
        self,
        url: str,
        *,
        max_depth: int | None = None,
        pool_min: int = POOL_MIN,
        pool_max: int = POOL_MAX,
        connect_timeout: float = CONNECT_TIMEOUT,
        statement_timeout: float = STATEMENT_TIMEOUT,
    ) -> None:
        self.url = url
        self.max_depth = max_depth
        self._decoded = Decoded()
        self._tallies = counts.MatchTallies()
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.instance_id = secrets.token_hex(8)
        self.target = masked(url)
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._returned: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()
        self._depth_bound = DepthBound()
        self._group: GroupCommit[_Call, list[int | None]] = GroupCommit(self._enqueue_group, concurrency=2)

    def __repr__(self) -> str:
        return f"PostgresQueue({self.target!r}, instance_id={self.instance_id!r})"

    async def __aenter__(self) -> PostgresQueue:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect the pool (failing within `connect_timeout`) and migrate the schema if needed."""
        if self._pool is not None:
            return
        pool = self._new_pool()
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
            async with asyncio.timeout(self._deadline), pool.connection() as conn:
                await _migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Write the match tallies still waiting, then close every pooled connection; safe to call twice."""
        if self._pool is not None:
            try:
                await self._write_tallies()
            except Exception:
                log.exception("match_tallies_not_written", target=self.target)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def enqueue(self, events: Sequence[NewEvent]) -> list[int | None]:
        """Persist new events and their delivery rows in one transaction, shared with the enqueues
        waiting at the same time (group commit); duplicates get None."""
        rows = [_enqueue_params(event, time.time()) for event in events]
        if not rows:
            return []
        return await self._group.submit(_Call(list(events), rows))

    async def _enqueue_group(self, calls: list[_Call]) -> list[list[int | None] | Exception]:
        """Every call's events in one transaction, each call's room checked after the calls before it
        were written; the counts added once for all. A call without room gets QueueFull, writes nothing."""
        results: list[list[int | None] | Exception] = []
        stored: list[NewEvent] = []
        keys: list[int | None] = []
        with self._tallies.round() as tally:
            async with self._transaction() as cur:
                for call in calls:
                    try:
                        await self._check_room(cur, sum(len(row["destinations"]) for row in call.rows))
                    except QueueFull as exc:
                        results.append(exc)
                        continue
                    found = await _insert(cur, call.rows)
                    results.append(found)
                    stored += call.events
                    keys += found
                await _add(cur, ADD_DELIVERY_COUNT, counts.delivery_rows(counts.accepted(stored, keys)))
                await _add(cur, ADD_MATCH_COUNT, tally.rows(counts.matched(stored, keys)))
        return results

    async def _write_tallies(self) -> None:
        """Write the match tallies still waiting (counts.MatchTallies), in a transaction of their own."""
        if not self._tallies.pending:
            return
        with self._tallies.round(force=True) as tally:
            async with self._transaction() as cur:
                await _add(cur, ADD_MATCH_COUNT, tally.rows())

    async def recover(self) -> int:
        """Hand back the deliveries this instance holds; another router's leases are left alone,
        and a freshly started router holds none, so after a restart this returns 0."""
        async with self._transaction() as cur:
            await cur.execute(RECOVER, (self.instance_id,))
            return cur.rowcount

    async def expedite(self, destination: str, now: float) -> int:
        """Make every pending delivery of the destination due now (it just recovered)."""
        async with self._transaction() as cur:
            await cur.execute(EXPEDITE, (now, destination, now))
            return cur.rowcount

    async def claim(self, destination: str, limit: int, now: float, lease: float) -> list[Job]:
        """Lease up to `limit` due deliveries (pending, or in flight with an expired lease)."""
        if limit <= 0:
            return []
        params = {"destination": destination, "now": now, "limit": limit}
        params |= {"lease_until": now + lease, "owner": self.instance_id}
        async with self._transaction() as cur:
            await cur.execute(CLAIM, params)
            rows = await cur.fetchall()
        rows.sort(key=lambda row: (row[1], row[0]))
        return self._decoded.jobs(destination, rows)

    async def settle(self, destination: str, outcomes: Sequence[Outcome], now: float) -> None:
        """Record what happened to claimed deliveries, all in one transaction."""
        delivered = [o.event_pk for o in outcomes if isinstance(o, Delivered)]
        recorded = [outcome_row(o, destination, now) for o in outcomes if not isinstance(o, Delivered)]
        if not delivered and not recorded:
            return
        async with self._transaction() as cur:
            applied = await _delete_delivered(cur, destination, delivered)
            applied |= await _record_all(cur, recorded)
            done = [o for o in outcomes if o.event_pk in applied]
            await _add(cur, ADD_DELIVERY_COUNT, counts.delivery_rows(counts.settled(destination, done, now)))

    async def release(self, destination: str, event_pks: Sequence[int]) -> None:
        """Put claimed deliveries back to pending, attempts unchanged."""
        if not event_pks:
            return
        async with self._transaction() as cur:
            await cur.execute(RELEASE, (time.time(), destination, list(event_pks)))

    async def depth(self) -> int:
        """How many deliveries wait (pending or in flight)."""
        async with self._transaction() as cur:
            return await _depth(cur)

    async def stats(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        async with self._transaction() as cur:
            await cur.execute(COUNT_BY_STATE)
            counts = dict.fromkeys(STATES, 0)
            counts.update(await cur.fetchall())
            return counts

    async def oldest_waiting(self) -> float | None:
        """When the oldest event still waiting for a delivery was received; None when none waits."""
        async with self._transaction() as cur:
            await cur.execute(OLDEST_WAITING)
            row = await cur.fetchone()
            return None if row is None else float(row[0])

    async def dead_letters(
        self, where: DeadFilter | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Dead deliveries matching the filter with their reason, oldest first."""
        async with self._transaction() as cur:
            await cur.execute(SELECT_DEAD, _match(where or DeadFilter()) | {"limit": limit})
            rows = await cur.fetchall()
        return [dict(zip(DEAD_LETTER_KEYS, row, strict=True)) for row in rows]

    async def replay(self, where: DeadFilter, now: float, limit: int) -> int:
        """Make up to `limit` matching dead letters pending again, as if new; returns how many."""
        async with self._transaction() as cur:
            await cur.execute(REPLAY, _match(where) | {"now": now, "limit": limit})
            self._depth_bound.add(cur.rowcount)
            return cur.rowcount

    async def purge(self, dead_before: float, seen_before: float) -> dict[str, int]:
        """Delete old dead/skipped rows, the events left without deliveries, and old dedup keys."""
        await self._write_tallies()
        async with self._transaction() as cur:
            await cur.execute(PURGE_DEAD, (dead_before,))
            dead = cur.rowcount
            await cur.execute(PRUNE_ORPHANS)
            events = cur.rowcount
            await cur.execute(PURGE_SEEN, (seen_before,))
            seen = cur.rowcount
            oldest = counts.bucket(time.time() - counts.RETENTION)
            await cur.execute(PURGE_DELIVERY_COUNTS, (oldest,))
            await cur.execute(PURGE_MATCH_COUNTS, (oldest,))
            return {"dead_or_skipped": dead, "events": events, "dedup_keys": seen}

    async def overview(self, since: float) -> dict[str, dict[str, Any]]:
        """Per destination, outcome counts, top reasons and match tallies of the buckets since `since`."""
        hour = counts.bucket(since)
        await self._write_tallies()
        async with self._transaction() as cur:
            await cur.execute(SUM_DELIVERY_COUNTS, (hour,))
            deliveries = await cur.fetchall()
            await cur.execute(SUM_MATCH_COUNTS, (hour,))
            return counts.overview(deliveries, await cur.fetchall())

    async def _check_room(self, cur: Cursor, new_rows: int) -> None:
        """Raise QueueFull when `new_rows` more would pass `max_depth`; count only when it may."""
        if self.max_depth is None or new_rows == 0:
            return
        if not self._depth_bound.fits(new_rows, self.max_depth):
            depth = await _depth(cur)
            self._depth_bound.counted(depth)
            if depth + new_rows > self.max_depth:
                raise QueueFull(
                    f"queue holds {depth} deliveries; {new_rows} more would exceed {self.max_depth}"
                )
        self._depth_bound.add(new_rows)

    @property
    def _deadline(self) -> float:
        """The longest any call may take: a connection, then its statements."""
        return self.connect_timeout + 2 * self.statement_timeout

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Cursor]:
        """A cursor inside one transaction on a pooled connection; commits, or rolls back on error."""
        if self._pool is None:
            raise RuntimeError(f"queue {self.target} is not open; await open() first")
        async with (
            asyncio.timeout(self._deadline),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            yield cur

    def _new_pool(self) -> AsyncConnectionPool[Conn]:
        return AsyncConnectionPool(
            self.url,
            kwargs=self._connection_kwargs(),
            min_size=self.pool_min,
            max_size=self.pool_max,
            open=False,
            configure=self._configure,
            check=self._check_if_idle,
            reset=self._mark_returned,
            timeout=self.connect_timeout,
            name=f"router-queue-{self.instance_id}",
        )

    def _connection_kwargs(self) -> dict[str, Any]:
        """libpq parameters the URL leaves unset: timeouts, keepalives, application name."""
        given = conninfo_to_dict(self.url)
        defaults = CONNECTION_DEFAULTS | {
            "connect_timeout": str(max(2, round(self.connect_timeout))),
            "application_name": f"router-queue-{self.instance_id}",
        }
        return {key: value for key, value in defaults.items() if key not in given} | {"autocommit": False}

    async def _mark_returned(self, conn: Conn) -> None:
        """Note when a connection went back to the pool."""
        self._returned[conn] = time.monotonic()

    async def _check_if_idle(self, conn: Conn) -> None:
        """Check a connection idle for longer than IDLE_CHECK (or never used) before handing it out."""
        if time.monotonic() - self._returned.get(conn, -math.inf) > IDLE_CHECK:
            await AsyncConnectionPool.check_connection(conn)

    async def _configure(self, conn: Conn) -> None:
        """Session settings for every new pooled connection."""
        timeout = f"{round(self.statement_timeout * 1000)}ms"
        await conn.execute(SESSION_SETTINGS, {"timeout": timeout})
        await conn.commit()


def masked(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "postgresql://?"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


async def _migrate(conn: Conn) -> None:
    """Apply the migrations this database lacks, under an advisory lock, in one transaction."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(LOCK_MIGRATIONS, (MIGRATION_LOCK,))
        await cur.execute(CREATE_VERSIONS)
        await cur.execute(CURRENT_VERSION)
        version = await _scalar(cur)
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"queue schema {version} is newer than this router ({SCHEMA_VERSION})")
        for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in steps:
                await cur.execute(statement)
            await cur.execute(RECORD_VERSION, (number, time.time()))


async def _scalar(cur: Cursor) -> Any:
    row = await cur.fetchone()
    assert row is not None
    return row[0]


@dataclass(frozen=True, slots=True)
class _Call:
    """One `enqueue` call waiting for its group: the events and their ENQUEUE parameters."""

    events: list[NewEvent]
    rows: list[dict[str, Any]]


def _enqueue_params(event: NewEvent, now: float) -> dict[str, Any]:
    """The ENQUEUE parameters of one event; encoding fails here, before any transaction."""
    payload = jsoncodec.dumps_text(event.payload)
    return {
        "source": event.source,
        "event_name": event.event_name,
        "event_id": event.event_id,
        "received_at": event.received_at,
        "window": DEDUP_WINDOW,
        "payload": payload,
        "destinations": list(dict.fromkeys(event.destinations)),
        "now": now,
    }


async def _insert(cur: Cursor, rows: list[dict[str, Any]]) -> list[int | None]:
    """Run ENQUEUE for every event in one pipeline; the key of each, None for a duplicate."""
    await cur.executemany(ENQUEUE, rows, returning=True)
    keys: list[int | None] = []
    while True:
        row = await cur.fetchone()
        keys.append(None if row is None else row[0])
        if not cur.nextset():
            return keys


async def _delete_delivered(cur: Cursor, destination: str, event_pks: list[int]) -> set[int]:
    """Delete delivered rows, then the events left without any, holding the events' locks; returns
    the keys whose row was in flight (the others were not claimed, so nothing happened)."""
    if not event_pks:
        return set()
    await cur.execute(LOCK_EVENTS, (event_pks,))
    await cur.execute(DELETE_DELIVERED, (destination, event_pks))
    deleted = {row[0] for row in await cur.fetchall()}
    await cur.execute(PRUNE_EVENTS, (event_pks,))
    return deleted


async def _record_all(cur: Cursor, recorded: list[dict[str, Any]]) -> set[int]:
    """Run RECORD_OUTCOME for every outcome in one pipeline; the keys whose row was in flight."""
    if not recorded:
        return set()
    await cur.executemany(RECORD_OUTCOME, recorded, returning=True)
    applied: set[int] = set()
    while True:
        applied.update(row[0] for row in await cur.fetchall())
        if not cur.nextset():
            return applied


async def _add(cur: Cursor, statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """Upsert count rows (unique, in key order) in one statement: the rows go as column arrays."""
    if rows:
        await cur.execute(statement, [list(column) for column in zip(*rows, strict=True)])


async def _depth(cur: Cursor) -> int:
    await cur.execute(COUNT_DEPTH)
    count: int = await _scalar(cur)
    return count


def _match(where: DeadFilter) -> dict[str, Any]:
    return {"destination": where.destination, "since": where.since, "event_id": where.event_id}
