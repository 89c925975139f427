"""Decoded payloads shared by the destinations' claims: a stored event is decoded once, not once each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from router import jsoncodec
from router.queue.base import Job

SIZE: Final = 1_000
"""Events remembered: two claims of `dispatch.max_claim` (500), so the seven loops, which move through a
backlog side by side, find the events the first of them decoded; about 8 MiB at most."""


class Decoded:
    """Payload text -> event, remembered by queue key for the last SIZE events claimed.

    Every loop that claims the same event gets the same dict: the dispatcher, the consent gate and the
    adapters only read it (tests/destinations/test_purity.py holds them to that). A hit needs the same
    key and the same text, so a payload that changed is decoded again. Not thread-safe: one queue calls
    it from one thread (SQLite's worker, PostgreSQL's event loop)."""

    def __init__(self, size: int = SIZE) -> None:
        self._size = size
        self._items: dict[int, tuple[str, dict[str, Any]]] = {}

    def event(self, pk: int, payload: str) -> dict[str, Any]:
        """The decoded payload of event `pk`."""
        hit = self._items.get(pk)
        if hit is not None and hit[0] == payload:
            return hit[1]
        event: dict[str, Any] = jsoncodec.loads(payload)
        if hit is None and len(self._items) >= self._size:
            del self._items[next(iter(self._items))]  # the oldest: dicts keep insertion order
        self._items[pk] = (payload, event)
        return event

    def jobs(self, destination: str, rows: Iterable[tuple[int, float, int, float | None, str]]) -> list[Job]:
        """Claimed rows `(event_pk, due, attempts, first_attempt_at, payload)` as jobs, in row order."""
        event = self.event
        return [Job(pk, destination, event(pk, text), tries, first) for pk, _, tries, first, text in rows]
