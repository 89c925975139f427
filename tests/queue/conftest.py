"""Queue fixtures: `store` and `any_queue` run a test once per backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from router.queue.base import Queue
from router.queue.factory import open_queue
from tests.queue import pg

BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class Store:
    """Where one backend keeps a test's queue: open queues on it, read its tables directly."""

    backend: str
    url: str

    def queue(self, **options: Any) -> Queue:
        """An unopened queue on this store."""
        return open_queue(self.url, **options)

    @asynccontextmanager
    async def opened(self, **options: Any) -> AsyncIterator[Queue]:
        """An open queue on this store, closed afterwards."""
        queue = self.queue(**options)
        await queue.open()
        try:
            yield queue
        finally:
            await queue.close()

    def rows(self, statement: str) -> list[tuple[Any, ...]]:
        """Rows read straight from the store with a separate connection."""
        if self.backend == "postgresql":
            return pg.query(self.url, statement)
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
        try:
            return conn.execute(statement).fetchall()
        finally:
            conn.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield Store("sqlite", f"sqlite:///{tmp_path / 'queue.db'}")
        return
    with pg.fresh_schema() as url:
        yield Store("postgresql", url)


@pytest.fixture
async def any_queue(store: Store) -> AsyncIterator[Queue]:
    """An open, empty queue of each backend."""
    async with store.opened() as queue:
        yield queue
