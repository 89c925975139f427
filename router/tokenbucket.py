"""Token buckets: a burst up to the limit, refilled continuously at the limit's rate, O(1) per hit.

`limits`' notation sets each bucket ("200/second": 200 tokens, 200 more per second; "50/minute": 50,
refilled at 50 per 60 s). Buckets live in this process's memory; a bucket that would be full again is
the same as no bucket, so when the table grows past `max_keys` the full ones are dropped, and memory
stays bounded however many addresses a flood uses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem

MAX_KEYS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """Capacity and refill per second of one bucket kind."""

    capacity: float
    per_second: float

    @classmethod
    def of(cls, item: RateLimitItem) -> Rate:
        """The bucket for a parsed `limits` item."""
        return cls(float(item.amount), item.amount / item.get_expiry())


class Buckets:
    """Token buckets of one rate, keyed by client; `take` spends one token or says how long to wait."""

    def __init__(
        self, rate: Rate, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self.rate, self.clock, self.max_keys = rate, clock, max_keys
        self._tokens: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float | None:
        """None when a token was spent; else the seconds until one will be there."""
        now = self.clock()
        tokens, at = self._tokens.get(key, (self.rate.capacity, now))
        tokens = min(self.rate.capacity, tokens + (now - at) * self.rate.per_second)
        if tokens >= 1.0:
            self._tokens[key] = (tokens - 1.0, now)
            if len(self._tokens) > self.max_keys:
                self._forget_full(now)
            return None
        self._tokens[key] = (tokens, now)
        return (1.0 - tokens) / self.rate.per_second

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (the same as absent); if none has, the oldest half."""
        full = self.rate.capacity
        refill = self.rate.per_second
        kept = {k: v for k, v in self._tokens.items() if v[0] + (now - v[1]) * refill < full}
        if len(kept) > self.max_keys:
            kept = dict(sorted(kept.items(), key=lambda item: item[1][1])[len(kept) // 2 :])
        self._tokens = kept

    def __len__(self) -> int:
        return len(self._tokens)


def seconds(wait: float) -> int:
    """A Retry-After value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))
