"""The embedded queue: one SQLite file in WAL mode, fsynced on every commit.

Durability: `journal_mode=WAL` with `synchronous=FULL`, so a commit that returned survives a process
kill, an OS crash and a power loss. Every method runs one transaction and returns after COMMIT.

Threading: a single worker thread owns the connection; async methods hand it work through
`run_in_executor`, so the event loop never waits on an fsync. Calls on one instance are therefore
serialized. Several instances (or processes) may share one file: every write starts with
`BEGIN IMMEDIATE`, which takes SQLite's write lock, and `busy_timeout` makes the others wait for it.

Rows: `events` holds the payload once; `deliveries` holds one row per (event, destination) with its
state: `pending` -> `inflight` (leased by `claim`) -> deleted (delivered), back to `pending`
(retrying, released), or kept as `dead` / `skipped` with the reason for audit.

Decisions worth knowing:
- An events row lives exactly as long as it has a delivery row in any state. Delivering the last
  one deletes the event. An event enqueued with no destinations has nothing to deliver or audit, so
  it is not kept; it still gets a key, so the returned list lines up with the input.
- Keys come from `AUTOINCREMENT` and are never reused, so a stale `Job` can never point at a newer
  event that happens to take the same key.
- `settle` and `release` only touch rows that are `inflight`; an outcome for a row that is not
  claimed (already settled, or never claimed) is ignored.
- A cancelled caller does not cancel the work: a transaction already handed to the worker thread
  still commits. For `enqueue` that means stored but not acknowledged, which at-least-once allows.
- Group commit: `enqueue` calls that arrive while a transaction is running wait, then go into the
  next one together, each call's room checked on its own; one COMMIT (one fsync) serves them all,
  and every caller is answered only after it. Under load that turns one fsync per request into one
  per group, without weakening `synchronous=FULL`.
- The depth check for `max_depth` uses a bound (router/queue/depth.py): an exact count at most once
  a second plus the rows added since, instead of a count over the whole backlog per enqueue.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog

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

log = structlog.get_logger("router.queue.sqlite")

P = ParamSpec("P")
T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
STATES = ("pending", "inflight", "dead", "skipped")

# Each entry moves the schema from version i to i + 1 (PRAGMA user_version). Append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_name TEXT NOT NULL,
            received_at REAL NOT NULL,
            payload TEXT NOT NULL
        )""",
        """CREATE TABLE deliveries (
            event_pk INTEGER NOT NULL,
            destination TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'inflight', 'dead', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            first_attempt_at REAL,
            lease_until REAL,
            last_error TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (event_pk, destination)
        )""",
        # Serves claim (state, destination, due time, key order) and depth/stats (state prefix).
        """CREATE INDEX deliveries_claim
            ON deliveries (state, destination, next_attempt_at, event_pk)""",
    ),
    (
        # Router-side idempotency: (source, event_name, event_id) seen in the last 48 hours.
        """CREATE TABLE seen (
            source TEXT NOT NULL,
            event_name TEXT NOT NULL,
            event_id TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (source, event_name, event_id)
        )""",
        "CREATE INDEX seen_age ON seen (received_at)",
        "CREATE INDEX deliveries_age ON deliveries (state, updated_at)",
    ),
    (
        # Hourly outcome counts (delivered rows leave `deliveries`); reason '' for accepted/delivered.
        """CREATE TABLE delivery_counts (
            destination TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (destination, bucket, outcome, reason)
        )""",
        # Hourly match-quality tallies; identifier '*' is the number of events counted.
        """CREATE TABLE match_counts (
            destination TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            identifier TEXT NOT NULL,
            count INTEGER NOT NULL,
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

INSERT_EVENT = """
INSERT INTO events (source, event_id, event_name, received_at, payload) VALUES (?, ?, ?, ?, ?)
"""
DELETE_EVENT = "DELETE FROM events WHERE pk = ?"
INSERT_DELIVERY = """
INSERT INTO deliveries (event_pk, destination, state, attempts, next_attempt_at, updated_at)
VALUES (?, ?, 'pending', 0, ?, ?)
"""
COUNT_DEPTH = "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'inflight')"
COUNT_BY_STATE = "SELECT state, COUNT(*) FROM deliveries GROUP BY state"
# Keys grow with arrival, so the smallest waiting key is the oldest waiting event (one index probe).
OLDEST_WAITING = """
SELECT received_at FROM events
WHERE pk = (SELECT MIN(event_pk) FROM deliveries WHERE state IN ('pending', 'inflight'))"""

# Two ordered index scans merged, so LIMIT stops early even with a large backlog.
SELECT_DUE = """
SELECT d.event_pk, d.next_attempt_at, d.attempts, d.first_attempt_at, e.payload
FROM deliveries AS d JOIN events AS e ON e.pk = d.event_pk
WHERE d.state = 'pending' AND d.destination = :destination AND d.next_attempt_at <= :now
UNION ALL
SELECT d.event_pk, d.next_attempt_at, d.attempts, d.first_attempt_at, e.payload
FROM deliveries AS d JOIN events AS e ON e.pk = d.event_pk
WHERE d.state = 'inflight' AND d.destination = :destination AND d.lease_until <= :now
ORDER BY 2, 1
LIMIT :limit
"""
# One statement for the whole claim: the keys go as one JSON array (json_each), not one execution each.
LEASE = """
UPDATE deliveries SET state = 'inflight', lease_until = :until, updated_at = :now
WHERE destination = :destination AND event_pk IN (SELECT value FROM json_each(:keys))
"""
# Delivered rows leave in one statement per settle (keys as one JSON array); RETURNING names the rows
# that were in flight, the only ones counted. `+state` keeps the planner on the primary key: on the
# claim index it would walk every row the destination has in flight.
DELETE_DELIVERED = """
DELETE FROM deliveries
WHERE event_pk IN (SELECT value FROM json_each(:keys)) AND destination = :destination
  AND +state = 'inflight'
RETURNING event_pk
"""
PRUNE_EVENTS = """
DELETE FROM events
WHERE pk IN (SELECT value FROM json_each(:keys))
  AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_pk = events.pk)
"""
# One statement records Retrying, Dead and Skipped; `counts` is 1 when it was an attempt.
RECORD_OUTCOME = """
UPDATE deliveries SET
    state = :state,
    attempts = attempts + :counts,
    next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),
    first_attempt_at = CASE WHEN :counts THEN COALESCE(first_attempt_at, :now) ELSE first_attempt_at END,
    last_error = :error,
    consent = COALESCE(NULLIF(:consent, ''), consent),
    lease_until = NULL,
    updated_at = :now
WHERE event_pk = :event_pk AND destination = :destination AND state = 'inflight'
"""
RELEASE = """
UPDATE deliveries SET state = 'pending', lease_until = NULL, updated_at = ?
WHERE event_pk = ? AND destination = ? AND state = 'inflight'
"""
DEAD_MATCH = """
d.state = 'dead'
AND (:destination IS NULL OR d.destination = :destination)
AND (:since IS NULL OR d.updated_at >= :since)
AND (:event_id IS NULL OR e.event_id = :event_id)
"""
SELECT_DEAD = f"""
SELECT d.event_pk, d.destination, d.last_error, d.attempts, d.first_attempt_at, d.updated_at,
       e.source, e.event_id, e.event_name, d.consent
FROM deliveries AS d JOIN events AS e ON e.pk = d.event_pk
WHERE {DEAD_MATCH}
ORDER BY d.updated_at, d.event_pk
LIMIT :limit
"""
REPLAY = f"""
UPDATE deliveries SET state = 'pending', attempts = 0, first_attempt_at = NULL, last_error = NULL,
    lease_until = NULL, next_attempt_at = :now, updated_at = :now
WHERE (event_pk, destination) IN (
    SELECT d.event_pk, d.destination FROM deliveries AS d JOIN events AS e ON e.pk = d.event_pk
    WHERE {DEAD_MATCH} ORDER BY d.updated_at, d.event_pk LIMIT :limit
)
"""
SEEN = "SELECT received_at FROM seen WHERE source = ? AND event_name = ? AND event_id = ?"
REMEMBER = "INSERT OR REPLACE INTO seen (source, event_name, event_id, received_at) VALUES (?, ?, ?, ?)"
RECOVER = "UPDATE deliveries SET state = 'pending', lease_until = NULL WHERE state = 'inflight'"
PURGE_DEAD = "DELETE FROM deliveries WHERE state IN ('dead', 'skipped') AND updated_at < ?"
PRUNE_ORPHANS = "DELETE FROM events WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE event_pk = events.pk)"
PURGE_SEEN = "DELETE FROM seen WHERE received_at < ?"
EXPEDITE = """
UPDATE deliveries SET next_attempt_at = ?
WHERE destination = ? AND state = 'pending' AND next_attempt_at > ?
"""
ADD_DELIVERY_COUNT = """
INSERT INTO delivery_counts (destination, bucket, outcome, reason, count) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (destination, bucket, outcome, reason) DO UPDATE SET count = count + excluded.count
"""
ADD_MATCH_COUNT = """
INSERT INTO match_counts (destination, bucket, identifier, count) VALUES (?, ?, ?, ?)
ON CONFLICT (destination, bucket, identifier) DO UPDATE SET count = count + excluded.count
"""
SUM_DELIVERY_COUNTS = """
SELECT destination, outcome, reason, SUM(count) FROM delivery_counts WHERE bucket >= ?
GROUP BY destination, outcome, reason
"""
SUM_MATCH_COUNTS = """
SELECT destination, identifier, SUM(count) FROM match_counts WHERE bucket >= ?
GROUP BY destination, identifier
"""
PURGE_DELIVERY_COUNTS = "DELETE FROM delivery_counts WHERE bucket < ?"
PURGE_MATCH_COUNTS = "DELETE FROM match_counts WHERE bucket < ?"
REPORTED_PRAGMAS = ("journal_mode", "synchronous", "busy_timeout", "user_version")


class SqliteQueue:
    """The `Queue` on one SQLite file; `max_depth` caps pending + in-flight deliveries."""

    def __init__(self, path: str, *, max_depth: int | None = None) -> None:
        self.path = path
        self.max_depth = max_depth
        self._executor: ThreadPoolExecutor | None = None
        self._decoded = Decoded()
        self._tallies = counts.MatchTallies()
        self._conn: sqlite3.Connection | None = None
        self._depth_bound = DepthBound()
        self._group: GroupCommit[list[NewEvent], list[int | None]] = GroupCommit(self._enqueue_group)

    async def __aenter__(self) -> SqliteQueue:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the file, its directory and the schema if needed; start the worker thread."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-queue")
        try:
            self._conn = await self._submit(_connect, self.path)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        """Close the connection and stop the worker thread; safe to call twice."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(executor, _write_tallies, conn, self._tallies)
            except Exception:
                log.exception("match_tallies_not_written", path=self.path)
            await loop.run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)

    async def enqueue(self, events: Sequence[NewEvent]) -> list[int | None]:
        """Persist new events and their delivery rows in one transaction; duplicates get None."""
        if self._conn is None:
            raise RuntimeError(f"queue {self.path} is not open; await open() first")
        return await self._group.submit(list(events))

    async def _enqueue_group(self, calls: list[list[NewEvent]]) -> list[list[int | None] | Exception]:
        results: list[list[int | None] | Exception] = await self._call(
            _enqueue_group, calls, self.max_depth, self._depth_bound, self._tallies
        )
        return results

    async def recover(self) -> int:
        """Hand every in-flight delivery back: one SQLite file belongs to one router process, so
        whatever is in flight when it opens was claimed by a process that died."""
        return await self._call(_recover)

    async def expedite(self, destination: str, now: float) -> int:
        """Make every pending delivery of the destination due now (it just recovered)."""
        return await self._call(_expedite, destination, now)

    async def claim(self, destination: str, limit: int, now: float, lease: float) -> list[Job]:
        """Lease up to `limit` due deliveries (pending, or in flight with an expired lease)."""
        return await self._call(_claim, destination, limit, now, lease, decoded=self._decoded)

    async def settle(self, destination: str, outcomes: Sequence[Outcome], now: float) -> None:
        """Record what happened to claimed deliveries, all in one transaction."""
        await self._call(_settle, destination, list(outcomes), now)

    async def release(self, destination: str, event_pks: Sequence[int]) -> None:
        """Put claimed deliveries back to pending, attempts unchanged."""
        await self._call(_release, destination, list(event_pks), time.time())

    async def depth(self) -> int:
        """How many deliveries wait (pending or in flight)."""
        return await self._call(_depth)

    async def stats(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        return await self._call(_stats)

    async def oldest_waiting(self) -> float | None:
        """When the oldest event still waiting for a delivery was received; None when none waits."""
        return await self._call(_oldest_waiting)

    async def dead_letters(
        self, where: DeadFilter | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Dead deliveries matching the filter with their reason, oldest first."""
        return await self._call(_dead_letters, where or DeadFilter(), limit)

    async def replay(self, where: DeadFilter, now: float, limit: int) -> int:
        """Make up to `limit` matching dead letters pending again, as if new; returns how many."""
        return await self._call(_replay, where, now, limit, self._depth_bound)

    async def purge(self, dead_before: float, seen_before: float) -> dict[str, int]:
        """Delete old dead/skipped rows, the events left without deliveries, and old dedup keys."""
        return await self._call(_purge, dead_before, seen_before, self._tallies)

    async def overview(self, since: float) -> dict[str, dict[str, Any]]:
        """Per destination, outcome counts, top reasons and match tallies of the buckets since `since`."""
        return await self._call(_overview, since, self._tallies)

    async def pragmas(self) -> dict[str, Any]:
        """The connection's durability settings, for tests and `router check`."""
        return await self._call(_pragmas)

    async def _call(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if self._conn is None:
            raise RuntimeError(f"queue {self.path} is not open; await open() first")
        return await self._submit(functools.partial(fn, self._conn, *args, **kwargs))

    async def _submit(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))


# Everything below runs on the worker thread.


def _connect(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        _configure(conn)
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise sqlite3.OperationalError(f"could not switch to WAL mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")
    try:
        conn.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.OperationalError as exc:  # JSON is built in from SQLite 3.38 unless compiled out
        raise sqlite3.OperationalError(
            f"SQLite {sqlite3.sqlite_version} has no JSON functions (json_each); the queue needs them"
        ) from exc


def _migrate(conn: sqlite3.Connection) -> None:
    with _immediate(conn):
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"queue schema {version} is newer than this router ({SCHEMA_VERSION})")
        for steps in MIGRATIONS[version:]:
            for statement in steps:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: takes the write lock at BEGIN, commits, or rolls back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _enqueue_group(
    conn: sqlite3.Connection,
    calls: list[list[NewEvent]],
    max_depth: int | None,
    bound: DepthBound,
    tallies: counts.MatchTallies,
) -> list[list[int | None] | Exception]:
    """Each call's events in one transaction, a call without room gets QueueFull, the others go on;
    the match tallies waiting in `tallies` are written with them when it is time."""
    results: list[list[int | None] | Exception] = []
    stored: list[NewEvent] = []
    keys: list[int | None] = []
    with tallies.round() as tally, _immediate(conn):
        for events in calls:
            rows = [(_encode(event), tuple(dict.fromkeys(event.destinations))) for event in events]
            try:
                _check_room(conn, sum(len(dests) for _, dests in rows), max_depth, bound)
            except QueueFull as exc:
                results.append(exc)
                continue
            found = [
                None if _seen(conn, event) else _insert(conn, event, *row)
                for event, row in zip(events, rows, strict=True)
            ]
            results.append(found)
            stored += events
            keys += found
        conn.executemany(ADD_DELIVERY_COUNT, counts.delivery_rows(counts.accepted(stored, keys)))
        conn.executemany(ADD_MATCH_COUNT, tally.rows(counts.matched(stored, keys)))
    return results


def _write_tallies(conn: sqlite3.Connection, tallies: counts.MatchTallies) -> None:
    """Write the match tallies still waiting, in a transaction of their own."""
    if not tallies.pending:
        return
    with tallies.round(force=True) as tally, _immediate(conn):
        conn.executemany(ADD_MATCH_COUNT, tally.rows())


def _seen(conn: sqlite3.Connection, event: NewEvent) -> bool:
    """Whether the event is a duplicate; if not, remember it (in the same transaction)."""
    key = (event.source, event.event_name, event.event_id)
    row = conn.execute(SEEN, key).fetchone()
    if row is not None and row[0] > event.received_at - DEDUP_WINDOW:
        return True
    conn.execute(REMEMBER, (*key, event.received_at))
    return False


def _expedite(conn: sqlite3.Connection, destination: str, now: float) -> int:
    with _immediate(conn):
        return conn.execute(EXPEDITE, (now, destination, now)).rowcount


def _recover(conn: sqlite3.Connection) -> int:
    with _immediate(conn):
        return conn.execute(RECOVER).rowcount


def _replay(conn: sqlite3.Connection, where: DeadFilter, now: float, limit: int, bound: DepthBound) -> int:
    with _immediate(conn):
        replayed = conn.execute(REPLAY, _match(where) | {"now": now, "limit": limit}).rowcount
    bound.add(replayed)
    return replayed


def _purge(
    conn: sqlite3.Connection, dead_before: float, seen_before: float, tallies: counts.MatchTallies
) -> dict[str, int]:
    _write_tallies(conn, tallies)
    with _immediate(conn):
        dead = conn.execute(PURGE_DEAD, (dead_before,)).rowcount
        events = conn.execute(PRUNE_ORPHANS).rowcount
        seen = conn.execute(PURGE_SEEN, (seen_before,)).rowcount
        oldest = counts.bucket(time.time() - counts.RETENTION)
        conn.execute(PURGE_DELIVERY_COUNTS, (oldest,))
        conn.execute(PURGE_MATCH_COUNTS, (oldest,))
    return {"dead_or_skipped": dead, "events": events, "dedup_keys": seen}


def _match(where: DeadFilter) -> dict[str, Any]:
    return {"destination": where.destination, "since": where.since, "event_id": where.event_id}


def _encode(event: NewEvent) -> str:
    return jsoncodec.dumps_text(event.payload)


def _check_room(conn: sqlite3.Connection, new_rows: int, max_depth: int | None, bound: DepthBound) -> None:
    if max_depth is None or new_rows == 0:
        return
    if not bound.fits(new_rows, max_depth):
        depth = _depth(conn)
        bound.counted(depth)
        if depth + new_rows > max_depth:
            raise QueueFull(f"queue holds {depth} deliveries; {new_rows} more would exceed {max_depth}")
    bound.add(new_rows)


def _insert(conn: sqlite3.Connection, event: NewEvent, payload: str, destinations: tuple[str, ...]) -> int:
    params = (event.source, event.event_id, event.event_name, event.received_at, payload)
    pk = conn.execute(INSERT_EVENT, params).lastrowid
    assert pk is not None
    if not destinations:
        conn.execute(DELETE_EVENT, (pk,))
        return pk
    now = time.time()
    conn.executemany(INSERT_DELIVERY, [(pk, dest, event.received_at, now) for dest in destinations])
    return pk


def _claim(
    conn: sqlite3.Connection, destination: str, limit: int, now: float, lease: float, *, decoded: Decoded
) -> list[Job]:
    if limit <= 0:
        return []
    with _immediate(conn):
        params = {"destination": destination, "now": now, "limit": limit}
        rows = conn.execute(SELECT_DUE, params).fetchall()
        keys = jsoncodec.dumps_text([row[0] for row in rows])
        conn.execute(LEASE, {"until": now + lease, "now": now, "destination": destination, "keys": keys})
    return decoded.jobs(destination, rows)


def _settle(conn: sqlite3.Connection, destination: str, outcomes: list[Outcome], now: float) -> None:
    with _immediate(conn):
        applied = _delete_delivered(conn, destination, outcomes) + _record(conn, destination, outcomes, now)
        conn.executemany(ADD_DELIVERY_COUNT, counts.delivery_rows(counts.settled(destination, applied, now)))


def _delete_delivered(conn: sqlite3.Connection, destination: str, outcomes: list[Outcome]) -> list[Outcome]:
    """Remove the delivered rows, then the events left without any; the Delivered outcomes whose row
    was in flight (the others were not claimed, so nothing happened and nothing is counted)."""
    delivered = [o for o in outcomes if isinstance(o, Delivered)]
    if not delivered:
        return []
    keys = jsoncodec.dumps_text([o.event_pk for o in delivered])
    params = {"destination": destination, "keys": keys}
    deleted = {row[0] for row in conn.execute(DELETE_DELIVERED, params).fetchall()}
    conn.execute(PRUNE_EVENTS, {"keys": jsoncodec.dumps_text(sorted(deleted))})
    return [o for o in delivered if o.event_pk in deleted]


def _record(conn: sqlite3.Connection, destination: str, outcomes: list[Outcome], now: float) -> list[Outcome]:
    """Record the retries, dead letters and skips; those whose row was in flight (the others not counted)."""
    return [
        o
        for o in outcomes
        if not isinstance(o, Delivered)
        and conn.execute(RECORD_OUTCOME, outcome_row(o, destination, now)).rowcount > 0
    ]


def _release(conn: sqlite3.Connection, destination: str, event_pks: list[int], now: float) -> None:
    with _immediate(conn):
        conn.executemany(RELEASE, [(now, pk, destination) for pk in event_pks])


def _depth(conn: sqlite3.Connection) -> int:
    count: int = conn.execute(COUNT_DEPTH).fetchone()[0]
    return count


def _oldest_waiting(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(OLDEST_WAITING).fetchone()
    return None if row is None else float(row[0])


def _stats(conn: sqlite3.Connection) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    counts.update(conn.execute(COUNT_BY_STATE).fetchall())
    return counts


def _dead_letters(conn: sqlite3.Connection, where: DeadFilter, limit: int | None) -> list[dict[str, Any]]:
    rows = conn.execute(SELECT_DEAD, _match(where) | {"limit": -1 if limit is None else limit}).fetchall()
    return [dict(zip(DEAD_LETTER_KEYS, row, strict=True)) for row in rows]


def _overview(
    conn: sqlite3.Connection, since: float, tallies: counts.MatchTallies
) -> dict[str, dict[str, Any]]:
    _write_tallies(conn, tallies)
    hour = counts.bucket(since)
    deliveries = conn.execute(SUM_DELIVERY_COUNTS, (hour,)).fetchall()
    return counts.overview(deliveries, conn.execute(SUM_MATCH_COUNTS, (hour,)).fetchall())


def _pragmas(conn: sqlite3.Connection) -> dict[str, Any]:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in REPORTED_PRAGMAS}
