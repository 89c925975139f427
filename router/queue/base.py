"""The queue interface the ingest and the dispatcher use; SQLite now, PostgreSQL later."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A normalized event to persist, with the destinations it must reach."""

    source: str
    event_id: str
    event_name: str
    received_at: float
    payload: dict[str, Any]
    destinations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed (event, destination) delivery."""

    event_pk: int
    destination: str
    event: dict[str, Any]
    attempts: int
    first_attempt_at: float | None


@dataclass(frozen=True, slots=True)
class Delivered:
    """The platform took it: the delivery row leaves the queue."""

    event_pk: int


@dataclass(frozen=True, slots=True)
class Retrying:
    """A transient failure: try again at `next_attempt_at`."""

    event_pk: int
    next_attempt_at: float
    error: str


@dataclass(frozen=True, slots=True)
class Dead:
    """A permanent failure: kept as a dead letter with its reason."""

    event_pk: int
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Deliberately not sent (not mapped, consent, filtered): kept with its reason for audit."""

    event_pk: int
    reason: str


Outcome: TypeAlias = Delivered | Retrying | Dead | Skipped


class QueueFull(Exception):
    """The queue refuses new events (backpressure); the ingest answers 503."""


class Queue(Protocol):
    """Durable storage of events and delivery state. Every method commits before it returns."""

    async def open(self) -> None:
        """Create the schema if needed and get ready."""

    async def close(self) -> None:
        """Release connections; pending work stays stored."""

    async def enqueue(self, events: Sequence[NewEvent]) -> list[int]:
        """Persist events and their delivery rows in one transaction; returns their keys."""

    async def claim(self, destination: str, limit: int, now: float, lease: float) -> list[Job]:
        """Take up to `limit` due deliveries (pending, or leased and expired), oldest first."""

    async def settle(self, destination: str, outcomes: Sequence[Outcome], now: float) -> None:
        """Record what happened to claimed deliveries."""

    async def release(self, destination: str, event_pks: Sequence[int]) -> None:
        """Hand claimed deliveries back untouched (shutdown), so they are claimed again at once."""

    async def depth(self) -> int:
        """How many deliveries wait (pending or in flight)."""
