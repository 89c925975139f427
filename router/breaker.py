"""Breaker: a per-destination pause after platform-wide failures: one probe per interval while it is down.

Closed (normal) until a batch fails as a whole (every event Retry: timeouts, resets, 5xx, 429). Then
open for an exponentially growing interval (never shorter than the platform's Retry-After), after
which one batch goes out as a probe. The first success closes it and tells the caller to make the
waiting backlog due at once, so recovery drains in seconds, not in the events' own backoff times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from router.decisions import Decision, Ok, Retry


@dataclass(slots=True)
class Breaker:
    """The state of one destination; pure, the clock is passed in."""

    base: float
    cap: float
    failures: int = 0
    open_until: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds until the next batch may go out (0 when closed or the probe is due)."""
        return max(0.0, self.open_until - now)

    def record(self, decisions: Sequence[Decision], now: float) -> bool:
        """Learn from one request's decisions; True when this success ended a failure streak."""
        after = max((d.after for d in decisions if isinstance(d, Retry) and d.after), default=0.0)
        if after:
            self.open_until = max(self.open_until, now + after)
        if any(isinstance(d, Ok) for d in decisions):
            recovered = self.failures > 0
            self.failures = 0
            return recovered
        if decisions and all(isinstance(d, Retry) for d in decisions):
            self.failures += 1
            interval = min(self.cap, self.base * 2 ** min(self.failures - 1, 32))
            self.open_until = max(self.open_until, now + interval)
        return False
