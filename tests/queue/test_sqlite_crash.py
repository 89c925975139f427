"""Crash safety of the SQLite queue: real SIGKILLs (R3) and a stateful crash model (R10)."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from router.queue.base import Dead, Delivered, NewEvent, Outcome, QueueFull, Retrying, Skipped
from router.queue.sqlite import SqliteQueue

T = TypeVar("T")
CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[2]
KILL_CYCLES = 10
CHILD_TIMEOUT = 30.0


# R3: kill -9 while enqueueing, then check that every acknowledged event is on disk.


def run_until_killed(path: Path, acks_wanted: int) -> list[int]:
    """Start the child, read `acks_wanted` acknowledged keys, SIGKILL it; every key it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), f"sqlite:///{path}"],
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


def read_acks(proc: subprocess.Popen[str], wanted: int) -> list[int]:
    """Keys read line by line from the child's stdout, up to `wanted`."""
    assert proc.stdout is not None
    acked: list[int] = []
    while len(acked) < wanted and (line := proc.stdout.readline()):
        acked.append(int(line))
    return acked


def scalar(conn: sqlite3.Connection, sql: str) -> Any:
    """The single value a query returns."""
    return conn.execute(sql).fetchone()[0]


def stored_kept_keys(path: Path) -> set[int]:
    """Keys whose event row and never-claimed `kept` delivery are both on disk; checks integrity too."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        orphans = "SELECT COUNT(*) FROM deliveries WHERE event_pk NOT IN (SELECT pk FROM events)"
        assert scalar(conn, orphans) == 0
        rows = conn.execute(
            "SELECT e.pk FROM events AS e JOIN deliveries AS d ON d.event_pk = e.pk"
            " WHERE d.destination = 'kept' AND d.state = 'pending'"
        )
        return {pk for (pk,) in rows}
    finally:
        conn.close()


async def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    """After each SIGKILL every acknowledged key is stored with its delivery and the file is intact."""
    path = tmp_path / "queue.db"
    rng = random.Random(3)
    all_acked: list[int] = []
    for _ in range(KILL_CYCLES):
        acked = run_until_killed(path, rng.randint(150, 400))
        assert acked == sorted(acked) and (not all_acked or acked[0] > all_acked[-1]), "keys reused"
        async with SqliteQueue(str(path)) as queue:  # reopen recovers the WAL, as a restart would
            assert await queue.depth() >= len(all_acked) + len(acked)
        all_acked += acked
        missing = set(all_acked) - stored_kept_keys(path)
        assert not missing, f"{len(missing)} acknowledged events lost"


# R10: a plain-dict model of the queue run against the real thing, with crashes in between.

DESTINATIONS = ("a", "b", "c")
MAX_DEPTH = 25
EXAMPLES = int(os.environ.get("QUEUE_MODEL_EXAMPLES", "60"))
KINDS = ("delivered", "retrying", "dead", "skipped")
ACTIONS = (*KINDS, "release", "keep")


@dataclass(frozen=True)
class Row:
    """The model's view of one delivery row."""

    state: str
    attempts: int
    next_attempt_at: float
    first_attempt_at: float | None
    lease_until: float | None
    last_error: str | None


def outcome(kind: str, pk: int, at: float) -> Outcome:
    """The queue outcome named `kind`; `at` is the retry time."""
    match kind:
        case "delivered":
            return Delivered(pk)
        case "retrying":
            return Retrying(pk, next_attempt_at=at, error=f"retry {at}")
        case "dead":
            return Dead(pk, reason="dead")
    return Skipped(pk, reason="skipped")


def settled(row: Row, o: Outcome, now: float) -> Row | None:
    """What the model expects a claimed row to become; None once delivered."""
    first = row.first_attempt_at if row.first_attempt_at is not None else now
    match o:
        case Delivered():
            return None
        case Retrying(next_attempt_at=at, error=error):
            return Row("pending", row.attempts + 1, at, first, None, error)
        case Dead(reason=reason):
            return replace(
                row,
                state="dead",
                attempts=row.attempts + 1,
                first_attempt_at=first,
                lease_until=None,
                last_error=reason,
            )
        case Skipped(reason=reason):
            return replace(row, state="skipped", lease_until=None, last_error=reason)
    raise AssertionError(o)


class QueueModel(RuleBasedStateMachine):
    """Enqueue, claim, settle, release, advance the clock and crash; model and file must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="queue-model-"))
        self.path = self.dir / "queue-0.db"
        self.crashes = 0
        self.queue = SqliteQueue(str(self.path), max_depth=MAX_DEPTH)
        self.run(self.queue.open())
        self.now = 1000.0
        self.rows: dict[tuple[int, str], Row] = {}
        self.last_key = 0
        self.serial = 0
        self.payloads: dict[int, dict[str, float]] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one queue call to completion."""
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        """Close the queue, the loop and the files."""
        self.run(self.queue.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def depth(self) -> int:
        """The model's pending + in-flight count."""
        return sum(row.state in ("pending", "inflight") for row in self.rows.values())

    def keys_in(self, inflight: bool) -> list[tuple[int, str]]:
        """Row keys that are (or are not) in flight, in a stable order."""
        return sorted(key for key, row in self.rows.items() if (row.state == "inflight") == inflight)

    def has_inflight(self) -> bool:
        """Some row is leased."""
        return bool(self.keys_in(inflight=True))

    def has_settled_or_pending(self) -> bool:
        """Some row is not leased."""
        return bool(self.keys_in(inflight=False))

    @rule(batch=st.lists(st.lists(st.sampled_from(DESTINATIONS), max_size=4), min_size=1, max_size=4))
    def enqueue(self, batch: list[list[str]]) -> None:
        """Store a batch, or refuse all of it when it would pass `max_depth`."""
        payloads = [{"i": self.serial + i, "at": self.now} for i in range(len(batch))]
        self.serial += len(batch)  # unique event ids: a repeated id would be a duplicate, not stored
        events = [
            NewEvent("web", f"e{p['i']}", "lead", self.now, p, tuple(d))
            for p, d in zip(payloads, batch, strict=True)
        ]
        new_rows = sum(len(set(d)) for d in batch)
        if new_rows and self.depth() + new_rows > MAX_DEPTH:
            try:
                self.run(self.queue.enqueue(events))
            except QueueFull:
                return
            raise AssertionError("expected QueueFull")
        keys = self.run(self.queue.enqueue(events))
        assert keys == sorted(keys) and keys[0] > self.last_key and len(set(keys)) == len(keys)
        self.last_key = keys[-1]
        self.payloads.update(zip(keys, payloads, strict=True))
        for pk, dests in zip(keys, batch, strict=True):
            for dest in dests:
                self.rows[(pk, dest)] = Row("pending", 0, self.now, None, None, None)

    @rule(
        destination=st.sampled_from(DESTINATIONS),
        limit=st.integers(1, 4),
        lease=st.integers(1, 20),
        data=st.data(),
    )
    def claim(self, destination: str, limit: int, lease: int, data: st.DataObject) -> None:
        """Claim exactly the rows the model says are due, oldest first; then finish some of them."""
        due = sorted(
            (row.next_attempt_at, pk)
            for (pk, dest), row in self.rows.items()
            if dest == destination and self.claimable(row)
        )[:limit]
        jobs = self.run(self.queue.claim(destination, limit, self.now, float(lease)))
        assert [job.event_pk for job in jobs] == [pk for _, pk in due]
        for job in jobs:
            row = self.rows[(job.event_pk, destination)]
            assert (job.attempts, job.first_attempt_at) == (row.attempts, row.first_attempt_at)
            assert job.event == self.payloads[job.event_pk]
            leased = replace(row, state="inflight", lease_until=self.now + lease)
            self.rows[(job.event_pk, destination)] = leased
        self.finish(destination, [job.event_pk for job in jobs], data)

    def claimable(self, row: Row) -> bool:
        """Pending and due, or in flight with an expired lease."""
        if row.state == "pending":
            return row.next_attempt_at <= self.now
        return row.state == "inflight" and row.lease_until is not None and row.lease_until <= self.now

    @precondition(has_inflight)
    @rule(data=st.data())
    def finish_claimed(self, data: st.DataObject) -> None:
        """Finish rows claimed earlier, possibly with leases that have run out meanwhile."""
        claimed = self.keys_in(inflight=True)
        destination = data.draw(st.sampled_from(sorted({dest for _, dest in claimed})))
        self.finish(destination, [pk for pk, dest in claimed if dest == destination], data)

    def finish(self, destination: str, keys: list[int], data: st.DataObject) -> None:
        """Settle, release or keep each in-flight row, as a dispatcher would after sending."""
        plan = data.draw(
            st.lists(
                st.tuples(st.sampled_from(ACTIONS), st.integers(0, 30)),
                min_size=len(keys),
                max_size=len(keys),
            )
        )
        outcomes = [
            outcome(kind, pk, self.now + delay)
            for pk, (kind, delay) in zip(keys, plan, strict=True)
            if kind in KINDS
        ]
        released = [pk for pk, (kind, _) in zip(keys, plan, strict=True) if kind == "release"]
        self.run(self.queue.settle(destination, outcomes, self.now))
        self.run(self.queue.release(destination, released))
        for o in outcomes:
            self.apply(destination, o)
        for key in [(pk, destination) for pk in released]:
            self.rows[key] = replace(self.rows[key], state="pending", lease_until=None)

    def apply(self, destination: str, o: Outcome) -> None:
        """Record one outcome for a claimed row in the model."""
        key = (o.event_pk, destination)
        after = settled(self.rows[key], o, self.now)
        if after is None:
            del self.rows[key]
        else:
            self.rows[key] = after

    @precondition(has_settled_or_pending)
    @rule(data=st.data(), kind=st.sampled_from((*KINDS, "release")))
    def touch_unclaimed(self, data: st.DataObject, kind: str) -> None:
        """Settling or releasing a row that is not in flight changes nothing."""
        pk, destination = data.draw(st.sampled_from(self.keys_in(inflight=False)))
        if kind == "release":
            self.run(self.queue.release(destination, [pk]))
        else:
            self.run(self.queue.settle(destination, [outcome(kind, pk, self.now)], self.now))

    @rule(seconds=st.none() | st.integers(0, 30))
    def advance(self, seconds: int | None) -> None:
        """Move the clock on, or (None) exactly onto the next due time or lease expiry."""
        if seconds is not None:
            self.now += seconds
            return
        times = [row.next_attempt_at for row in self.rows.values() if row.state == "pending"]
        times += [row.lease_until for row in self.rows.values() if row.lease_until is not None]
        self.now = min((t for t in times if t > self.now), default=self.now)

    @rule()
    def crash(self) -> None:
        """Copy the files as they are on disk (un-checkpointed WAL included) and reopen the copy."""
        self.crashes += 1
        copy = self.dir / f"queue-{self.crashes}.db"
        for suffix in ("", "-wal"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{copy}{suffix}")
        self.run(self.queue.close())
        self.path = copy
        self.queue = SqliteQueue(str(copy), max_depth=MAX_DEPTH)
        self.run(self.queue.open())

    @invariant()
    def depth_agrees(self) -> None:
        """The queue's depth is the model's."""
        assert self.run(self.queue.depth()) == self.depth()

    @invariant()
    def rows_agree(self) -> None:
        """Every stored delivery row and event row is the model's, field by field."""
        conn = sqlite3.connect(self.path)
        try:
            stored = conn.execute(
                "SELECT event_pk, destination, state, attempts, next_attempt_at, first_attempt_at,"
                " lease_until, last_error FROM deliveries"
            ).fetchall()
            events = {pk for (pk,) in conn.execute("SELECT pk FROM events")}
        finally:
            conn.close()
        assert {(pk, dest): Row(*rest) for pk, dest, *rest in stored} == self.rows
        assert events == {pk for pk, _ in self.rows}


QueueModel.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueModel = QueueModel.TestCase
