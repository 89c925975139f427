"""Token buckets: the burst, the continuous refill, the wait, and bounded memory."""

from __future__ import annotations

from limits import parse

from router.tokenbucket import Buckets, Rate, seconds


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_then_one_token_per_interval() -> None:
    """50/minute: 50 at once, the 51st waits 1.2 s; after 1.2 s exactly one more passes."""
    clock = Clock()
    buckets = Buckets(Rate.of(parse("50/minute")), clock)
    assert [buckets.take("a") for _ in range(50)] == [None] * 50
    wait = buckets.take("a")
    assert wait is not None and abs(wait - 1.2) < 1e-9 and seconds(wait) == 2
    clock.now += 1.2
    assert buckets.take("a") is None
    assert buckets.take("a") is not None
    assert buckets.take("b") is None  # another client has its own bucket


def test_refill_never_exceeds_the_capacity() -> None:
    """An hour idle refills to the burst size, not to 3,000 tokens."""
    clock = Clock()
    buckets = Buckets(Rate.of(parse("5/second")), clock)
    for _ in range(5):
        buckets.take("a")
    clock.now += 3600
    taken = [buckets.take("a") for _ in range(6)]
    assert taken[:5] == [None] * 5 and taken[5] is not None


def test_memory_stays_bounded_under_a_flood_of_addresses() -> None:
    """1,000 addresses, one request each, 10 ms apart, while one client keeps hammering: refilled
    buckets are forgotten when the table is full, the busy client's empty bucket is kept."""
    clock = Clock()
    buckets = Buckets(Rate.of(parse("2/second")), clock, max_keys=100)
    for i in range(1000):
        clock.now += 0.01
        buckets.take(f"10.0.{i // 256}.{i % 256}")
        buckets.take("busy")
    assert len(buckets) <= 101
    assert buckets.take("busy") is not None


def test_when_nothing_has_refilled_the_oldest_half_goes() -> None:
    """A flood faster than any refill: the table is halved, oldest first, never grows past its bound."""
    clock = Clock()
    buckets = Buckets(Rate.of(parse("2/minute")), clock, max_keys=100)
    for i in range(1000):
        clock.now += 0.001
        buckets.take(f"ip-{i}")
        assert len(buckets) <= 101
    assert buckets.take("ip-999") is None  # recent: kept, one token left
    assert buckets.take("ip-999") is not None
