"""The per-destination breaker: one probe per interval while a platform is down, Retry-After respected."""

from __future__ import annotations

from router.breaker import Breaker
from router.decisions import Drop, Ok, Retry


def test_closed_breaker_never_waits() -> None:
    """A healthy destination sends at once."""
    assert Breaker(5, 300).wait(now=100.0) == 0.0


def test_whole_batch_failures_open_it_with_doubling_intervals_up_to_the_cap() -> None:
    """Each failed probe doubles the pause: 5, 10, 20 ... capped at 300 s."""
    breaker = Breaker(5, 300)
    waits = []
    for _ in range(8):
        breaker.record([Retry("HTTP 503"), Retry("HTTP 503")], now=0.0)
        waits.append(breaker.wait(0.0))
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300]


def test_retry_after_holds_every_request_back_for_that_long() -> None:
    """A 429 with Retry-After: 30 pauses the destination 30 s even on the first failure."""
    breaker = Breaker(5, 300)
    breaker.record([Retry("HTTP 429", after=30.0)], now=100.0)
    assert breaker.wait(now=100.0) == 30.0
    assert breaker.wait(now=131.0) == 0.0


def test_per_event_problems_do_not_open_it() -> None:
    """A batch with some events delivered or dropped is not a platform outage."""
    breaker = Breaker(5, 300)
    assert breaker.record([Ok(), Retry("row quota")], now=0.0) is False
    breaker.record([Drop("invalid"), Retry("x")], now=0.0)
    assert breaker.wait(0.0) == 0.0 and breaker.failures == 0


def test_the_first_success_after_failures_reports_recovery_once() -> None:
    """Recovery is reported once, so the backlog is expedited once."""
    breaker = Breaker(5, 300)
    breaker.record([Retry("timeout")], now=0.0)
    assert breaker.record([Ok()], now=10.0) is True
    assert breaker.record([Ok()], now=11.0) is False
    assert breaker.failures == 0
