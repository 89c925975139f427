"""Queue fixtures: `any_queue` runs a test once per backend (SQLite now; PostgreSQL joins it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.queue.base import Queue
from router.queue.factory import open_queue

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def any_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Queue]:
    """An open, empty queue of each backend."""
    queue = open_queue(f"sqlite:///{tmp_path / 'queue.db'}")
    await queue.open()
    try:
        yield queue
    finally:
        await queue.close()
