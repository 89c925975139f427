"""Event time as platforms take it: Unix seconds or milliseconds, clamped to now, refused when too old.

Each platform states its own age limit and its own words for refusing an older event (`too_old`);
the arithmetic is the same everywhere. An event from the future (a client clock ahead) is sent as
`now`, which every platform accepts.
"""

from __future__ import annotations

from destinations.base import Event, EventError


def clamped_seconds(event: Event, now: float) -> int:
    """Unix seconds of the event; a future time is clamped to `now`."""
    return min(int(event["timestamp_ms"]) // 1000, int(now))


def seconds(event: Event, now: float, max_age: float, too_old: str) -> int:
    """Unix seconds, clamped to `now`; older than `max_age` seconds raises EventError(too_old)."""
    sent = clamped_seconds(event, now)
    if now - sent > max_age:
        raise EventError(too_old)
    return sent


def milliseconds(event: Event, now: float, max_age: float, too_old: str) -> int:
    """Unix milliseconds, clamped to `now`; older than `max_age` seconds raises EventError(too_old)."""
    sent = min(int(event["timestamp_ms"]), int(now * 1000))
    if now * 1000 - sent > max_age * 1000:
        raise EventError(too_old)
    return sent
