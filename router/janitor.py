"""Janitor: the periodic retention purge of old dead letters, skipped rows and dedup keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from destinations.base import Destination
from router.queue.base import DEDUP_WINDOW, Queue

log = structlog.get_logger("router.janitor")

DEFAULT_RETENTION = 7 * 86_400.0
INTERVAL = 600.0


def dead_letter_retention(destinations: Sequence[Destination[Any]]) -> float:
    """Dead letters are kept as long as the longest platform age limit: past it, replay is pointless."""
    ages = [d.max_event_age for d in destinations if d.max_event_age is not None]
    return max(ages, default=DEFAULT_RETENTION)


async def purge_once(queue: Queue, retention: float, now: float) -> dict[str, int]:
    """One purge pass; logs what went."""
    purged = await queue.purge(dead_before=now - retention, seen_before=now - DEDUP_WINDOW)
    if any(purged.values()):
        log.info("retention_purged", **purged)
    return purged


async def run(
    queue: Queue, retention: float, interval: float = INTERVAL, clock: Callable[[], float] = time.time
) -> None:
    """Purge every `interval` seconds until cancelled; a failed pass is logged and retried next time."""
    while True:
        try:
            await purge_once(queue, retention, clock())
        except Exception:
            log.exception("retention_purge_failed")
        await asyncio.sleep(interval)
