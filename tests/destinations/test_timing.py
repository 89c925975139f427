"""Event time as platforms take it: seconds or milliseconds, clamped to now, too old refused."""

from __future__ import annotations

import pytest

from destinations.base import EventError
from destinations.timing import clamped_seconds, milliseconds, seconds

NOW = 1_767_225_600.5
DAY = 86_400


def event(ms: int) -> dict[str, int]:
    """A stored event with only its time."""
    return {"timestamp_ms": ms}


def test_future_times_are_clamped_to_now() -> None:
    """A client clock ahead never sends a future time."""
    ahead = int(NOW * 1000) + 60_000
    assert clamped_seconds(event(ahead), NOW) == int(NOW)
    assert seconds(event(ahead), NOW, DAY, "old") == int(NOW)
    assert milliseconds(event(ahead), NOW, DAY, "old") == int(NOW * 1000)


def test_seconds_accepts_the_limit_and_refuses_beyond_in_the_platforms_words() -> None:
    """Exactly max_age old is sent; one second more raises EventError with the given message."""
    now = float(int(NOW))
    limit = int(now) - DAY
    assert seconds(event(limit * 1000), now, DAY, "old") == limit
    with pytest.raises(EventError, match="too old for the platform"):
        seconds(event((limit - 1) * 1000), now, DAY, "too old for the platform")


def test_milliseconds_keeps_the_milliseconds() -> None:
    """Milliseconds are sent as stored; one millisecond past the limit is refused."""
    sent = int(NOW * 1000) - 1234
    assert milliseconds(event(sent), NOW, DAY, "old") == sent
    with pytest.raises(EventError):
        milliseconds(event(int(NOW * 1000) - DAY * 1000 - 1), NOW, DAY, "old")
