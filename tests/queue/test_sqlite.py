"""Behaviour only the SQLite queue has: its file, its pragmas, its schema version, its recover.

The behaviour both backends share lives in test_contract.py and test_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.queue import depth
from router.queue import sqlite as sqlite_module
from router.queue.base import NewEvent, QueueFull
from router.queue.sqlite import SCHEMA_VERSION, SqliteQueue


def event(n: int, destinations: tuple[str, ...] = ("a",), received_at: float = 100.0) -> NewEvent:
    """A small event whose payload carries `n`."""
    return NewEvent("web", f"ev-{n}", "purchase", received_at, {"n": n, "note": "é"}, destinations)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The queue file's path."""
    return tmp_path / "queue.db"


@pytest.fixture
async def queue(db: Path) -> AsyncIterator[SqliteQueue]:
    """An open queue on a fresh file."""
    async with SqliteQueue(str(db)) as opened:
        yield opened


async def test_connection_is_durable(queue: SqliteQueue) -> None:
    """WAL journal, synchronous=FULL (2), a busy timeout and the current schema version."""
    pragmas = await queue.pragmas()
    assert pragmas["journal_mode"] == "wal"
    assert pragmas["synchronous"] == 2
    assert pragmas["busy_timeout"] > 0
    assert pragmas["user_version"] == SCHEMA_VERSION


async def test_open_creates_missing_directories(tmp_path: Path) -> None:
    """The file's directory is created on open."""
    path = tmp_path / "var" / "lib" / "router.db"
    async with SqliteQueue(str(path)) as queue:
        await queue.enqueue([event(1)])
    assert path.exists()


async def test_newer_schema_is_refused(db: Path) -> None:
    """A file written by a newer router is not touched."""
    async with SqliteQueue(str(db)):
        pass
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        await SqliteQueue(str(db)).open()


async def test_recover_after_restart_hands_back_every_lease(db: Path) -> None:
    """One file belongs to one router: a restarted process takes back all in-flight rows at once."""
    async with SqliteQueue(str(db)) as before:
        await before.enqueue([event(1), event(2)])
        await before.claim("a", 10, now=100.0, lease=600.0)
    async with SqliteQueue(str(db)) as after:
        assert await after.recover() == 2
        assert len(await after.claim("a", 10, now=100.0, lease=600.0)) == 2


# Group commit and the depth bound.


async def test_concurrent_enqueues_share_transactions_and_each_gets_its_own_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 concurrent single-event enqueues: fewer transactions than calls, every call answered with its
    own key after the commit, every event stored once; a duplicate inside one group is caught."""
    groups: list[int] = []
    real = sqlite_module._enqueue_group

    def counting(conn: sqlite3.Connection, calls: list[list[NewEvent]], *args: Any) -> Any:
        groups.append(len(calls))
        return real(conn, calls, *args)

    monkeypatch.setattr(sqlite_module, "_enqueue_group", counting)
    async with SqliteQueue(str(tmp_path / "q.db")) as queue:
        answers = await asyncio.gather(
            *(queue.enqueue([event(n)]) for n in range(60)), queue.enqueue([event(5)])
        )
        keys = [a[0] for a in answers[:60]]
        assert None not in keys and len(set(keys)) == 60
        assert answers[60] == [None]  # event 5 again: a duplicate, in the same or a later group
        assert await queue.depth() == 60
    assert sum(groups) == 61 and len(groups) < 61


async def test_the_depth_is_counted_only_when_the_bound_may_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first enqueue counts; later ones add to the bound until it would pass the cap."""
    counted: list[int] = []
    real = sqlite_module._depth

    def counting(conn: sqlite3.Connection) -> int:
        counted.append(real(conn))
        return counted[-1]

    monkeypatch.setattr(sqlite_module, "_depth", counting)
    monkeypatch.setattr(depth, "DEPTH_TRUST", 60.0)  # a slow machine must not expire the bound
    async with SqliteQueue(str(tmp_path / "q.db"), max_depth=12) as queue:
        for n in range(10):
            await queue.enqueue([event(n)])
        assert counted == [0]
        await queue.enqueue([event(10), event(11)])
        with pytest.raises(QueueFull):
            await queue.enqueue([event(12)])
        assert counted == [0, 12]
