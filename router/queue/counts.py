"""Counts: hourly per-destination delivery outcomes and match-quality tallies, shared by both backends."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from router.queue.base import Dead, Delivered, NewEvent, Outcome, Retrying, Skipped

BUCKET: Final = 3600
"""Counts are kept per destination and per hour (the epoch second the hour starts)."""
RETENTION: Final = 7 * 86_400.0
"""`purge` deletes buckets older than this."""
MAX_REASON: Final = 200
"""Reasons are cut to this many characters, so one noisy message cannot grow the table."""
TOTAL: Final = "*"
"""The `match_counts.identifier` holding how many events the other identifiers are shares of."""
OUTCOMES: Final = ("accepted", "delivered", "retrying", "dead", "skipped")
REASONED: Final = ("retrying", "dead", "skipped")
TOP_REASONS: Final = 5
MATCH_FLUSH: Final = 1.0
"""Seconds match tallies may wait in memory before an enqueue writes them (see MatchTallies)."""
CONSENT: Final = "consent"
"""The `delivery_counts.outcome` of consent tallies; their reason is the decision (`stripped:unknown`)."""

DeliveryKey = tuple[str, int, str, str]
MatchKey = tuple[str, int, frozenset[str]]
"""Destination, hour, and the set of identifiers events carried: one count per set, not per identifier,
so counting an event costs one addition per destination."""


def bucket(at: float) -> int:
    """The start of the hour `at` falls in."""
    return int(at // BUCKET) * BUCKET


def accepted(events: Sequence[NewEvent], keys: Sequence[int | None]) -> Counter[DeliveryKey]:
    """One `accepted` per stored event and destination, in the hour it was received."""
    counts: Counter[DeliveryKey] = Counter()
    for event, key in zip(events, keys, strict=True):
        if key is not None:
            for destination in dict.fromkeys(event.destinations):
                counts[(destination, bucket(event.received_at), "accepted", "")] += 1
    return counts


def matched(events: Sequence[NewEvent], keys: Sequence[int | None]) -> Counter[MatchKey]:
    """Per stored event and destination it carries identifiers for: its identifier set, counted once
    (`match_rows` spreads the sets over their identifiers and the total when they are written)."""
    counts: Counter[MatchKey] = Counter()
    for event, key in zip(events, keys, strict=True):
        if key is None:
            continue
        hour = bucket(event.received_at)
        for destination, identifiers in event.identifiers.items():
            counts[(destination, hour, identifiers)] += 1
    return counts


def settled(destination: str, outcomes: Iterable[Outcome], now: float) -> Counter[DeliveryKey]:
    """One count per outcome that applied, under its outcome name and reason, in the hour of `now`; and
    for each final outcome the consent gate decided, one under `consent` and its decision."""
    counts: Counter[DeliveryKey] = Counter()
    hour = bucket(now)
    for outcome in outcomes:
        counts[(destination, hour, *_kind(outcome))] += 1
        if outcome.consent and not isinstance(outcome, Retrying):
            counts[(destination, hour, CONSENT, outcome.consent)] += 1
    return counts


def _kind(outcome: Outcome) -> tuple[str, str]:
    match outcome:
        case Delivered():
            return "delivered", ""
        case Retrying(error=error):
            return "retrying", error[:MAX_REASON]
        case Dead(reason=reason):
            return "dead", reason[:MAX_REASON]
        case Skipped(reason=reason):
            return "skipped", reason[:MAX_REASON]


def overview(
    deliveries: Iterable[Sequence[Any]], matches: Iterable[Sequence[Any]]
) -> dict[str, dict[str, Any]]:
    """Summed rows -> per destination: outcome counts, top reasons, and match tallies.

    `deliveries` rows are (destination, outcome, reason, count); `matches` rows (destination,
    identifier, count)."""
    result: dict[str, dict[str, Any]] = {}
    reasons: dict[tuple[str, str], Counter[str]] = {}
    for destination, outcome, reason, count in deliveries:
        entry = result.setdefault(destination, _empty())
        if outcome == CONSENT:
            entry[CONSENT][reason] = entry[CONSENT].get(reason, 0) + int(count)
            continue
        entry[outcome] = entry.get(outcome, 0) + int(count)
        if outcome in REASONED:
            reasons.setdefault((destination, outcome), Counter())[reason] += int(count)
    for (destination, outcome), counter in reasons.items():
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
        result[destination]["reasons"][outcome] = [[reason, count] for reason, count in ranked]
    for destination, identifier, count in matches:
        match = result.setdefault(destination, _empty())["match"]
        if identifier == TOTAL:
            match["events"] = int(count)
        else:
            match["identifiers"][identifier] = int(count)
    return result


def _empty() -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(OUTCOMES, 0)
    entry["reasons"] = {outcome: [] for outcome in REASONED}
    entry["match"] = {"events": 0, "identifiers": {}}
    entry[CONSENT] = {}
    return entry


def delivery_rows(counts: Counter[DeliveryKey]) -> list[tuple[str, int, str, str, int]]:
    """Upsert parameters, in key order (so concurrent writers lock rows in one order)."""
    return [(*key, count) for key, count in sorted(counts.items())]


def match_rows(sets: Counter[MatchKey]) -> list[tuple[str, int, str, int]]:
    """Upsert parameters, in key order: each set's count under the total and under each identifier."""
    counts: Counter[tuple[str, int, str]] = Counter()
    for (destination, hour, identifiers), count in sets.items():
        counts[(destination, hour, TOTAL)] += count
        for name in identifiers - {TOTAL}:
            counts[(destination, hour, name)] += count
    return [(*key, count) for key, count in sorted(counts.items())]


class MatchTallies:
    """Match-quality tallies of committed events that are not written yet.

    Each event adds one upsert per destination and identifier (about 49 for seven destinations):
    measured on the SQLite queue, a third of the CPU of a one-event commit, the commit itself aside.
    So an enqueue writes them only when `MATCH_FLUSH` seconds passed since the last write, together
    with its own; in between they wait here. `overview`, `purge` and `close` write what waits first,
    so this process's reports are exact. A crash loses the tallies still waiting: those of the events
    committed within one interval after the last write (the events themselves and the delivery counts
    are written with every commit). Used from one thread: SQLite's worker, or PostgreSQL's event loop."""

    def __init__(self, interval: float = MATCH_FLUSH, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.pending: Counter[MatchKey] = Counter()
        self._written = float("-inf")

    def take(self, force: bool = False) -> Counter[MatchKey] | None:
        """The waiting tallies when it is time to write them (or `force`), removed from here; None when
        they should keep waiting. A transaction that then fails must `keep` them again."""
        if not force and self.clock() - self._written < self.interval:
            return None
        taken, self.pending = self.pending, Counter()
        self._written = self.clock()
        return taken

    def keep(self, tallies: Counter[MatchKey]) -> None:
        """Tallies of committed events to write later (or taken ones a failed transaction did not write)."""
        self.pending.update(tallies)

    @contextmanager
    def round(self, force: bool = False) -> Iterator[TallyRound]:
        """Wrap one write transaction (entered inside this block): its `rows(current)` are the upserts
        to run in it. When the block fails, the tallies it took wait again; when it succeeds without
        writing (not due), its `current` tallies wait for a later round."""
        taken = self.take(force)
        part = TallyRound(taken)
        try:
            yield part
        except BaseException:
            if taken is not None:
                self.keep(taken)
            raise
        if taken is None:
            self.keep(part.current)


class TallyRound:
    """The match tallies of one write transaction: those taken from MatchTallies (None: not due) and
    those of the events it stores."""

    def __init__(self, taken: Counter[MatchKey] | None) -> None:
        self.taken = taken
        self.current: Counter[MatchKey] = Counter()

    def rows(self, current: Counter[MatchKey] | None = None) -> list[tuple[str, int, str, int]]:
        """The upserts this transaction runs for `current` (the tallies of its own events): all that
        waits plus `current` when due, else none (then `current` waits)."""
        self.current = current or Counter()
        return [] if self.taken is None else match_rows(self.taken + self.current)
