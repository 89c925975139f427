"""Claimed events are shared by the seven delivery loops (router/queue/decoded.py), so nothing that
plans a delivery may change one: not an adapter's map or build_request, not the consent gate."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from destinations.base import EventError, SkipEvent
from router import consent
from router.queue.decoded import Decoded

from .golden import GoldenFile, batches, build, golden_files

CASES = golden_files("cases")
POLICIES = [
    consent.DEFAULT,
    consent.Policy(when_denied="strip", when_unknown="strip", regions=None),
    consent.Policy(when_denied="drop", when_unknown="drop", regions=None),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_planning_a_delivery_leaves_the_event_as_it_was(case: GoldenFile) -> None:
    destination = build(case.type, case.data["config"])
    events: list[dict[str, Any]] = case.data["events"]
    before = copy.deepcopy(events)
    payloads = []
    for event in events:
        for policy in POLICIES:
            verdict = consent.decide(event, policy)
            mapped = verdict.event if isinstance(verdict, consent.Stripped) else event
            try:
                payloads.extend(destination.map(mapped, float(case.data["now"])))
            except (SkipEvent, EventError):
                continue
    for batch in batches(payloads, destination.max_batch_size):
        destination.build_request(batch).masked()
    assert events == before


def test_one_event_is_decoded_once_for_every_claim() -> None:
    decoded = Decoded(size=2)
    first = decoded.event(1, '{"event_id": "a"}')
    assert decoded.event(1, '{"event_id": "a"}') is first
    assert first == {"event_id": "a"}


def test_a_changed_payload_is_decoded_again() -> None:
    decoded = Decoded(size=2)
    decoded.event(1, '{"event_id": "a"}')
    assert decoded.event(1, '{"event_id": "b"}') == {"event_id": "b"}


def test_the_oldest_event_is_forgotten_first() -> None:
    decoded = Decoded(size=2)
    one = decoded.event(1, "{}")
    two = decoded.event(2, "{}")
    decoded.event(3, "{}")
    assert decoded.event(2, "{}") is two
    assert decoded.event(1, "{}") is not one


def test_jobs_keep_the_row_order_and_fields() -> None:
    rows = [(7, 1.0, 2, 100.0, '{"n": 1}'), (3, 0.5, 0, None, '{"n": 2}')]
    jobs = Decoded().jobs("meta_main", rows)
    assert [(j.event_pk, j.destination, j.event, j.attempts, j.first_attempt_at) for j in jobs] == [
        (7, "meta_main", {"n": 1}, 2, 100.0),
        (3, "meta_main", {"n": 2}, 0, None),
    ]
