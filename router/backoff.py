"""Retry timing: exponential backoff with full jitter, honouring a platform's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """`delay(attempts)` is uniform in [0, min(cap, base * 2**attempts)], but never under Retry-After."""

    base: float
    cap: float
    uniform: Callable[[float, float], float] = random.uniform

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt, after `attempts` failed ones."""
        ceiling = min(self.cap, self.base * 2 ** min(attempts, 32))
        jittered = self.uniform(0.0, ceiling)
        return max(jittered, retry_after) if retry_after is not None else jittered
