"""Delivery planning, pure: claimed jobs -> requests to send, and platform decisions -> queue outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from destinations.base import BatchDecision, Destination, EventError, HttpRequest, Payload, SkipEvent
from router import consent as consent_gate
from router.backoff import Backoff
from router.decisions import Decision, Drop, Ok, Retry
from router.queue.base import Dead, Delivered, Job, Outcome, Retrying, Skipped

log = structlog.get_logger("router.delivery")

AGE_MARGIN = 60.0
"""Seconds of safety under a platform's age limit: an event is never sent in its last minute of validity,
where clock skew or a slow request could carry it past the limit (Meta then refuses the whole batch)."""


@dataclass(frozen=True, slots=True)
class Shipment:
    """One HTTP request and, for each payload in it, the event it belongs to."""

    request: HttpRequest
    payloads: list[Payload]
    owners: list[int]


@dataclass(slots=True)
class Plan:
    """What to send, and the jobs already settled without sending (skipped, expired, invalid)."""

    shipments: list[Shipment] = field(default_factory=list)
    settled: list[Outcome] = field(default_factory=list)
    consent: dict[int, str] = field(default_factory=dict)
    """Per job that reached the gate, its recorded decision: `<decision>:<state>` (router/consent.py)."""

    def recorded(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """The outcomes settled without sending, each carrying its job's consent decision (the sent
        ones get theirs from RetryPolicy.outcome)."""
        return [
            replace(o, consent=self.consent[o.event_pk]) if o.event_pk in self.consent else o
            for o in outcomes
        ]


def plan(
    adapter: Destination[Any],
    jobs: Sequence[Job],
    now: float,
    consent: consent_gate.Policy = consent_gate.DEFAULT,
) -> Plan:
    """Age-gate, consent-gate and map every job, then group payloads by batch key into requests of at most
    max size."""
    result = Plan()
    groups: dict[str, list[tuple[int, Payload]]] = {}
    for job in jobs:
        for payload in _map(adapter, job, now, result, consent):
            groups.setdefault(payload.batch_key, []).append((job.event_pk, payload))
    for items in groups.values():
        for start in range(0, len(items), adapter.max_batch_size):
            chunk = items[start : start + adapter.max_batch_size]
            payloads = [p for _, p in chunk]
            request = adapter.build_request(payloads)
            result.shipments.append(Shipment(request, payloads, [pk for pk, _ in chunk]))
    return result


def _map(
    adapter: Destination[Any], job: Job, now: float, result: Plan, consent: consent_gate.Policy
) -> list[Payload]:
    settled = result.settled
    age = now - job.event["timestamp_ms"] / 1000
    if adapter.max_event_age is not None and age > adapter.max_event_age - AGE_MARGIN:
        days = adapter.max_event_age / 86_400
        settled.append(Dead(job.event_pk, f"expired: older than the platform's {days:g}-day limit"))
        return []
    verdict = _gate(adapter, job, consent, result)
    if isinstance(verdict, consent_gate.Refused):
        settled.append(Skipped(job.event_pk, verdict.reason))
        return []
    event = verdict.event if isinstance(verdict, consent_gate.Stripped) else job.event
    try:
        payloads = adapter.map(event, now)
    except SkipEvent as exc:
        settled.append(Skipped(job.event_pk, exc.reason))
        return []
    except EventError as exc:
        if isinstance(verdict, consent_gate.Stripped):  # no identifiers left by consent, not a broken event
            settled.append(Skipped(job.event_pk, f"consent: identifiers stripped, then: {exc.reason}"))
        else:
            settled.append(Dead(job.event_pk, exc.reason))
        return []
    except Exception as exc:
        log.exception("adapter_failed", destination=adapter.id, event_id=job.event.get("event_id"))
        settled.append(Dead(job.event_pk, f"adapter error ({type(exc).__name__}); replay after the fix"))
        return []
    if not payloads:
        settled.append(Skipped(job.event_pk, "the adapter produced no payload"))
    return payloads


def _gate(
    adapter: Destination[Any], job: Job, consent: consent_gate.Policy, result: Plan
) -> consent_gate.Verdict:
    """The consent verdict for one job, counted in the plan and logged unless the event goes out in full."""
    verdict = consent_gate.decide(job.event, consent)
    result.consent[job.event_pk] = consent_gate.label(verdict)
    if not isinstance(verdict, consent_gate.Full):
        log.info(
            "delivery_consent",
            destination=adapter.id,
            event_id=job.event.get("event_id"),
            decision=type(verdict).__name__.lower(),
            consent_state=verdict.state,
        )
    return verdict


def per_payload(decision: BatchDecision, count: int) -> list[Decision]:
    """One decision per payload; a malformed per-item list from an adapter retries the whole batch."""
    if isinstance(decision, Ok | Retry | Drop):
        return [decision] * count
    decisions = list(decision)
    if len(decisions) != count:
        return [Retry(f"adapter returned {len(decisions)} decisions for {count} events")] * count
    return decisions


def per_event(owners: Sequence[int], decisions: Sequence[Decision]) -> dict[int, Decision]:
    """An event's decision is its worst payload's: Retry over Drop over Ok."""
    if decisions and len(owners) == len(decisions) and all(d is decisions[0] for d in decisions):
        return dict.fromkeys(owners, decisions[0])  # one decision for the whole batch
    rank = {Ok: 0, Drop: 1, Retry: 2}
    worst: dict[int, Decision] = {}
    for owner, decision in zip(owners, decisions, strict=True):
        if owner not in worst or rank[type(decision)] > rank[type(worst[owner])]:
            worst[owner] = decision
    return worst


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a retry is still worth it: inside the retry window and the platform's age limit."""

    backoff: Backoff
    window: float
    max_event_age: float | None

    def outcome(self, job: Job, decision: Decision, now: float, consent: str = "") -> Outcome:
        """The queue outcome for one job given the platform's decision, carrying the consent label."""
        if isinstance(decision, Ok):
            return Delivered(job.event_pk, consent)
        if isinstance(decision, Drop):
            return Dead(job.event_pk, decision.reason, consent)
        next_at = now + self.backoff.delay(job.attempts, decision.after)
        first = job.first_attempt_at if job.first_attempt_at is not None else now
        if next_at - first > self.window:
            return Dead(
                job.event_pk,
                f"retry window of {self.window:g}s exceeded; last error: {decision.reason}",
                consent,
            )
        if self.max_event_age is not None and next_at - job.event["timestamp_ms"] / 1000 > self.max_event_age:
            return Dead(
                job.event_pk,
                f"expired: too old for the platform at the next attempt; last error: {decision.reason}",
                consent,
            )
        return Retrying(job.event_pk, next_at, decision.reason, consent)
