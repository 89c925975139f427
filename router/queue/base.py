"""The queue interface the ingest and the dispatcher use; SQLite now, PostgreSQL later."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    identifiers: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per destination, the match-quality identifiers the event carries (router/matchquality.py)."""


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
    consent: str = ""
    """The consent gate's decision, `<decision>:<state>` (router/consent.py); empty when not gated."""


@dataclass(frozen=True, slots=True)
class Retrying:
    """A transient failure: try again at `next_attempt_at`."""

    event_pk: int
    next_attempt_at: float
    error: str
    consent: str = ""


@dataclass(frozen=True, slots=True)
class Dead:
    """A permanent failure: kept as a dead letter with its reason."""

    event_pk: int
    reason: str
    consent: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """Deliberately not sent (not mapped, consent, filtered): kept with its reason for audit."""

    event_pk: int
    reason: str
    consent: str = ""


Outcome: TypeAlias = Delivered | Retrying | Dead | Skipped


@dataclass(frozen=True, slots=True)
class DeadFilter:
    """Which dead letters a listing or a replay means; None matches everything."""

    destination: str | None = None
    since: float | None = None
    event_id: str | None = None


DEAD_LETTER_KEYS = (
    "event_pk", "destination", "reason", "attempts", "first_attempt_at", "updated_at",
    "source", "event_id", "event_name", "consent",
)  # fmt: skip
"""The keys of every dead letter dict; `updated_at` is when it died."""

DEDUP_WINDOW = 48 * 3600.0
"""How long a (source, event_name, event_id) is remembered: the platforms' own dedup window."""


class QueueFull(Exception):
    """The queue refuses new events (backpressure); the ingest answers 503."""


class Queue(Protocol):
    """Durable storage of events and delivery state. Every method commits before it returns."""

    async def open(self) -> None:
        """Create the schema if needed and get ready."""

    async def close(self) -> None:
        """Release connections; pending work stays stored."""

    async def enqueue(self, events: Sequence[NewEvent]) -> list[int | None]:
        """Persist events and their delivery rows in one transaction; returns their keys.

        An event whose (source, event_name, event_id) was received in the last DEDUP_WINDOW seconds
        is a duplicate: it is not stored and its key is None.
        """

    async def recover(self) -> int:
        """After a crash: hand back deliveries this instance had claimed; returns how many."""

    async def expedite(self, destination: str, now: float) -> int:
        """Make every pending delivery of the destination due now; returns how many (after an outage)."""

    async def claim(self, destination: str, limit: int, now: float, lease: float) -> list[Job]:
        """Take up to `limit` due deliveries (pending, or leased and expired), oldest first."""

    async def settle(self, destination: str, outcomes: Sequence[Outcome], now: float) -> None:
        """Record what happened to claimed deliveries."""

    async def release(self, destination: str, event_pks: Sequence[int]) -> None:
        """Hand claimed deliveries back untouched (shutdown), so they are claimed again at once."""

    async def depth(self) -> int:
        """How many deliveries wait (pending or in flight)."""

    async def stats(self) -> dict[str, int]:
        """How many deliveries are in each state (pending, inflight, dead, skipped)."""

    async def oldest_waiting(self) -> float | None:
        """When the oldest event that still waits for a delivery (pending or in flight) was received;
        None when nothing waits. The metrics turn it into an age at scrape time."""

    async def dead_letters(
        self, where: DeadFilter | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Dead deliveries matching the filter, oldest first, as dicts with DEAD_LETTER_KEYS."""

    async def replay(self, where: DeadFilter, now: float, limit: int) -> int:
        """Turn up to `limit` matching dead letters back into fresh pending deliveries; returns how many."""

    async def purge(self, dead_before: float, seen_before: float) -> dict[str, int]:
        """Delete dead and skipped rows that died before `dead_before`, and dedup keys older than
        `seen_before`; returns how many rows of each kind went. Count buckets older than
        counts.RETENTION go too (not reported)."""

    async def overview(self, since: float) -> dict[str, dict[str, Any]]:
        """Per destination, the counts of the hourly buckets from the one holding `since` on:
        accepted, delivered, retrying, dead, skipped, top reasons, match tallies (router/queue/counts.py)."""


def outcome_row(outcome: Retrying | Dead | Skipped, destination: str, now: float) -> dict[str, Any]:
    """The parameters of both backends' RECORD_OUTCOME update for an outcome whose row stays."""
    params = {
        "event_pk": outcome.event_pk,
        "destination": destination,
        "now": now,
        "consent": outcome.consent,
    }
    match outcome:
        case Retrying(next_attempt_at=next_at, error=error):
            return params | {"state": "pending", "counts": 1, "next_attempt_at": next_at, "error": error}
        case Dead(reason=reason):
            return params | {"state": "dead", "counts": 1, "next_attempt_at": None, "error": reason}
        case Skipped(reason=reason):
            return params | {"state": "skipped", "counts": 0, "next_attempt_at": None, "error": reason}
