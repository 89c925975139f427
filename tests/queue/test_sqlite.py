"""Behaviour only the SQLite queue has: its file, its pragmas, its schema version, its recover.

The behaviour both backends share lives in test_contract.py and test_lifecycle.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.queue.base import NewEvent
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
