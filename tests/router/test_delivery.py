"""Delivery planning (pure): age gate, map outcomes, batching, decisions per event, retry policy, backoff."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from destinations.base import (
    BaseConfig,
    Destination,
    Event,
    EventError,
    HttpRequest,
    Payload,
    SkipEvent,
    base_fields,
)
from router.backoff import Backoff
from router.consent import Policy
from router.decisions import Decision, Drop, Ok, Retry
from router.delivery import RetryPolicy, per_event, per_payload, plan
from router.queue.base import Dead, Delivered, Job, Retrying, Skipped

NOW = 1_767_225_600.0
DAY = 86_400.0


class FakeDestination(Destination[BaseConfig]):
    """A pure adapter whose map() does what the event's `do` says; one request per batch."""

    type: ClassVar[str] = "fake"
    api_version: ClassVar[str] = "v1"
    max_batch_size: ClassVar[int] = 3
    max_event_age: ClassVar[float | None] = 7 * DAY
    identity_variants: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> BaseConfig:
        return BaseConfig(**base_fields(block))

    def map(self, event: Event, now: float) -> list[Payload]:
        action = event.get("do", "send")
        if action == "skip":
            raise SkipEvent("not mapped: lead")
        if action == "invalid":
            raise EventError("purchase without value")
        if action == "crash":
            raise KeyError("value")
        if action == "nothing":
            return []
        keys = event.get("keys", [""])
        return [Payload({"id": event["event_id"], "n": i}, key) for i, key in enumerate(keys)]

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        return HttpRequest("POST", "https://fake.test/events", json={"data": [p.body for p in batch]})


ADAPTER = FakeDestination(FakeDestination.parse_config({"id": "fake_main", "type": "fake"}))


def job(pk: int, age: float = 60.0, attempts: int = 0, first: float | None = None, **event: Any) -> Job:
    """A claimed delivery of an event that happened `age` seconds before NOW."""
    body = {"event_id": f"e{pk}", "timestamp_ms": int((NOW - age) * 1000), **event}
    return Job(pk, "fake_main", body, attempts, first)


# --- plan ----------------------------------------------------------------------------------------


def test_plan_sends_fresh_events_in_one_request() -> None:
    """Events with one batch key share a request; owners map each payload to its event."""
    result = plan(ADAPTER, [job(1), job(2)], NOW)
    assert result.settled == []
    [shipment] = result.shipments
    assert shipment.owners == [1, 2]
    assert shipment.request.json == {"data": [{"id": "e1", "n": 0}, {"id": "e2", "n": 0}]}


def test_age_gate_settles_old_events_as_expired() -> None:
    """An event older than the platform's limit, less a one-minute margin, is dead without being mapped."""
    jobs = [job(1, age=7 * DAY + 1, do="crash"), job(2, age=7 * DAY - 30), job(3, age=7 * DAY - 61)]
    result = plan(ADAPTER, jobs, NOW)
    assert result.settled == [Dead(pk, "expired: older than the platform's 7-day limit") for pk in (1, 2)]
    assert [s.owners for s in result.shipments] == [[3]]


def test_no_age_limit_means_no_age_gate() -> None:
    """A destination without max_event_age sends old events."""

    class Ageless(FakeDestination):
        max_event_age = None

    adapter = Ageless(ADAPTER.config)
    assert [s.owners for s in plan(adapter, [job(1, age=365 * DAY)], NOW).shipments] == [[1]]


def test_skip_event_is_skipped_with_its_reason() -> None:
    """SkipEvent is a deliberate skip, kept for audit."""
    result = plan(ADAPTER, [job(1, do="skip")], NOW)
    assert result.settled == [Skipped(1, "not mapped: lead")]
    assert result.shipments == []


def test_event_error_is_dead_with_its_reason() -> None:
    """EventError is permanent: the event goes to dead letters with the adapter's reason."""
    settled = plan(ADAPTER, [job(1, do="invalid")], NOW, Policy("drop", "send", None)).settled
    assert settled == [Dead(1, "purchase without value")]


def test_unexpected_adapter_exception_is_dead_and_others_still_sent() -> None:
    """A bug in map() kills only that event, says 'adapter error', and the batch goes on."""
    result = plan(ADAPTER, [job(1, do="crash"), job(2)], NOW)
    [dead] = result.settled
    assert isinstance(dead, Dead)
    assert dead.event_pk == 1
    assert dead.reason.startswith("adapter error (KeyError)")
    assert [s.owners for s in result.shipments] == [[2]]


def test_no_payload_is_skipped() -> None:
    """An adapter returning no payload settles the event as skipped."""
    assert plan(ADAPTER, [job(1, do="nothing")], NOW).settled == [
        Skipped(1, "the adapter produced no payload")
    ]


def test_batches_grouped_by_batch_key() -> None:
    """Payloads with different batch keys never share a request."""
    jobs = [job(1, keys=["a"]), job(2, keys=["b"]), job(3, keys=["a"])]
    shipments = plan(ADAPTER, jobs, NOW).shipments
    assert [(s.owners, [p.batch_key for p in s.payloads]) for s in shipments] == [
        ([1, 3], ["a", "a"]),
        ([2], ["b"]),
    ]


def test_batches_chunked_at_max_batch_size() -> None:
    """Seven payloads with a max of three make requests of 3, 3 and 1, in order."""
    shipments = plan(ADAPTER, [job(pk) for pk in range(1, 8)], NOW).shipments
    assert [s.owners for s in shipments] == [[1, 2, 3], [4, 5, 6], [7]]
    assert all(len(s.request.json["data"]) == len(s.owners) for s in shipments)


def test_one_event_with_several_payloads() -> None:
    """An event mapped to two payloads owns both; each lands in its own batch key's request."""
    shipments = plan(ADAPTER, [job(1, keys=["a", "b"]), job(2, keys=["a"])], NOW).shipments
    assert [s.owners for s in shipments] == [[1, 2], [1]]


# --- decisions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", [Ok(), Retry("HTTP 503", after=5.0), Drop("HTTP 400")])
def test_per_payload_single_decision_applies_to_all(decision: Ok | Retry | Drop) -> None:
    """One decision for the batch is every payload's decision."""
    assert per_payload(decision, 3) == [decision] * 3


def test_per_payload_list_kept_in_order() -> None:
    """A per-item list of the right length is used as is."""
    decisions: list[Decision] = [Ok(), Drop("bad fbc"), Retry("later")]
    assert per_payload(decisions, 3) == decisions


@pytest.mark.parametrize("decisions", [[], [Ok()], [Ok(), Ok(), Ok(), Ok()]])
def test_per_payload_malformed_list_retries_everything(decisions: list[Ok]) -> None:
    """A list of the wrong length from an adapter is treated as a transient failure for the batch."""
    result = per_payload(decisions, 3)
    assert len(result) == 3
    assert all(isinstance(d, Retry) and "for 3 events" in d.reason for d in result)


def test_per_event_takes_the_worst_payload_decision() -> None:
    """Retry beats Drop beats Ok for an event with several payloads."""
    owners = [1, 1, 2, 2, 3, 3, 4]
    decisions: list[Decision] = [Ok(), Drop("x"), Drop("y"), Retry("z"), Retry("r"), Ok(), Ok()]
    assert per_event(owners, decisions) == {1: Drop("x"), 2: Retry("z"), 3: Retry("r"), 4: Ok()}


def test_per_event_keeps_the_first_of_equal_rank() -> None:
    """Two drops for one event keep the first reason."""
    assert per_event([1, 1], [Drop("first"), Drop("second")]) == {1: Drop("first")}


def test_per_event_length_mismatch_is_an_error() -> None:
    """Owners and decisions must line up one to one."""
    with pytest.raises(ValueError, match="zip"):
        per_event([1, 2], [Ok()])


# --- retry policy --------------------------------------------------------------------------------


def fixed(delay: float) -> Backoff:
    """A backoff whose jitter always returns `delay` (clamped to the ceiling, like uniform)."""
    return Backoff(base=10.0, cap=300.0, uniform=lambda low, high: min(delay, high))


POLICY = RetryPolicy(backoff=fixed(10.0), window=3600.0, max_event_age=7 * DAY)


def test_ok_is_delivered() -> None:
    """Ok -> Delivered."""
    assert POLICY.outcome(job(1), Ok(), NOW) == Delivered(1)


def test_drop_is_dead_with_reason() -> None:
    """Drop -> Dead with the platform's reason."""
    assert POLICY.outcome(job(1), Drop("HTTP 400: invalid pixel"), NOW) == Dead(1, "HTTP 400: invalid pixel")


def test_retry_is_retrying_after_backoff() -> None:
    """Retry -> Retrying at now + backoff delay, with the reason."""
    assert POLICY.outcome(job(1, attempts=1, first=NOW - 10), Retry("HTTP 503"), NOW) == Retrying(
        1, NOW + 10.0, "HTTP 503"
    )


def test_retry_honours_after() -> None:
    """A Retry-After longer than the backoff delays the next attempt to it."""
    outcome = POLICY.outcome(job(1, first=NOW), Retry("HTTP 429", after=120.0), NOW)
    assert outcome == Retrying(1, NOW + 120.0, "HTTP 429")


def test_retry_beyond_window_is_dead() -> None:
    """A retry whose next attempt falls outside the window after the first attempt is dead."""
    outcome = POLICY.outcome(job(1, attempts=5, first=NOW - 3595), Retry("HTTP 503"), NOW)
    assert isinstance(outcome, Dead)
    assert "retry window of 3600s exceeded" in outcome.reason
    assert "HTTP 503" in outcome.reason
    assert isinstance(POLICY.outcome(job(1, attempts=5, first=NOW - 3589), Retry("HTTP 503"), NOW), Retrying)


def test_first_attempt_starts_the_window() -> None:
    """Without a recorded first attempt the window starts now."""
    assert isinstance(POLICY.outcome(job(1, first=None), Retry("HTTP 503"), NOW), Retrying)


def test_retry_beyond_max_event_age_is_dead() -> None:
    """A retry that would land after the platform's age limit is dead now."""
    outcome = POLICY.outcome(job(1, age=7 * DAY - 5, first=NOW), Retry("timeout"), NOW)
    assert isinstance(outcome, Dead)
    assert outcome.reason == "expired: too old for the platform at the next attempt; last error: timeout"
    assert isinstance(POLICY.outcome(job(1, age=7 * DAY - 11, first=NOW), Retry("timeout"), NOW), Retrying)


def test_no_max_age_only_window_applies() -> None:
    """Without an age limit an old event still retries inside the window."""
    policy = RetryPolicy(backoff=fixed(10.0), window=3600.0, max_event_age=None)
    assert isinstance(policy.outcome(job(1, age=365 * DAY, first=NOW), Retry("x"), NOW), Retrying)


# --- backoff -------------------------------------------------------------------------------------


def recording(result: str) -> tuple[Backoff, list[tuple[float, float]]]:
    """A backoff (base 10, cap 300) whose uniform records its bounds and returns the low or high one."""
    calls: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        calls.append((low, high))
        return low if result == "low" else high

    return Backoff(base=10.0, cap=300.0, uniform=uniform), calls


@pytest.mark.parametrize(
    ("attempts", "ceiling"), [(0, 10.0), (1, 20.0), (2, 40.0), (4, 160.0), (5, 300.0), (60, 300.0)]
)
def test_full_jitter_bounds(attempts: int, ceiling: float) -> None:
    """Delay is uniform in [0, min(cap, base * 2**attempts)]."""
    backoff, calls = recording("high")
    assert backoff.delay(attempts) == ceiling
    assert calls == [(0.0, ceiling)]
    low, _ = recording("low")
    assert low.delay(attempts) == 0.0


def test_retry_after_is_a_floor() -> None:
    """Retry-After raises a short jittered delay and leaves a longer one alone."""
    low, _ = recording("low")
    high, _ = recording("high")
    assert low.delay(3, retry_after=30.0) == 30.0
    assert high.delay(3, retry_after=30.0) == 80.0


def test_retry_after_may_exceed_the_cap() -> None:
    """The platform's Retry-After wins over the cap: retrying sooner would only be refused."""
    backoff, _ = recording("high")
    assert backoff.delay(10, retry_after=900.0) == 900.0


def test_default_jitter_stays_within_bounds() -> None:
    """With the real random source every delay is inside [0, ceiling]."""
    backoff = Backoff(base=1.0, cap=8.0)
    for attempts in range(10):
        for _ in range(50):
            assert 0.0 <= backoff.delay(attempts) <= min(8.0, 2.0**attempts)
