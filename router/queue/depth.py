"""Depth bound: the queue's depth without counting it on every enqueue (a count is O(backlog))."""

from __future__ import annotations

import math
import time
from typing import Final

DEPTH_TRUST: Final = 1.0
"""Seconds an exact count is trusted, with this instance's additions, before it is counted again."""


class DepthBound:
    """An upper bound of the depth: the last exact count plus every row added since.

    Rows are added when an enqueue passes the check, before it commits: a batch that then fails
    only makes the bound err high, which costs an extra count, never a missed QueueFull.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.counted_at = -math.inf

    def fits(self, new_rows: int, max_depth: int) -> bool:
        """Whether the bound is recent and leaves room for `new_rows`."""
        fresh = time.monotonic() - self.counted_at < DEPTH_TRUST
        return fresh and self.depth + new_rows <= max_depth

    def counted(self, depth: int) -> None:
        """Start again from an exact count."""
        self.depth, self.counted_at = depth, time.monotonic()

    def add(self, rows: int) -> None:
        """Rows this instance made waiting."""
        self.depth += rows
