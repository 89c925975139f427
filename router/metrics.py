"""Metrics: every Prometheus metric the router exports, on one registry per app (GET /metrics).

Labels are closed sets or config ids (source, destination, status, outcome, error code): never event
ids or free-text reasons, so the number of series stays bounded.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response

from router import native
from router.collector import CLOCK, PauseCollector
from router.queue.base import Dead, Delivered, Outcome, Queue, Retrying, Skipped

log = structlog.get_logger("router.metrics")

LATENCY_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; platform APIs answer in 50 ms to a few seconds, and time out at the destination's timeout."""

OUTCOMES: Final[dict[type, str]] = {
    Delivered: "delivered",
    Retrying: "retry",
    Dead: "dead",
    Skipped: "skipped",
}


class Metrics:
    """The router's metrics on their own registry; the ingest and the dispatcher count into it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self.events = Counter(
            "router_events_ingested",
            "Events received, by source and status (accepted, duplicate, rejected).",
            ["source", "status"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "router_requests_rejected",
            "Inbound requests refused as a whole, by error code (unauthorized, queue_full...).",
            ["reason"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "router_deliveries",
            "Delivery outcomes by destination (delivered, retry, dead, skipped).",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.consent = Counter(
            "router_consent_decisions",
            "Consent gate decisions by destination (full, stripped, refused); see router/consent.py.",
            ["destination", "decision"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "router_delivery_request_seconds",
            "Time from sending a request to a platform to having its answer (or transport failure).",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "router_delivery_retries",
            "Deliveries scheduled for another attempt, by destination.",
            ["destination"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "router_dead_letters",
            "Deliveries that failed permanently and were kept as dead letters, by destination.",
            ["destination"],
            registry=self.registry,
        )
        self.queue_deliveries = Gauge(
            "router_queue_deliveries",
            "Deliveries in the queue by state (pending, inflight, dead, skipped), read at scrape time.",
            ["state"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "router_queue_depth",
            "Deliveries waiting (pending or in flight), read at scrape time.",
            registry=self.registry,
        )
        self.oldest_age = Gauge(
            "router_queue_oldest_pending_age_seconds",
            "Age of the oldest event still waiting for a delivery (0 when none waits), read at scrape time.",
            registry=self.registry,
        )
        CLOCK.install()
        self.registry.register(PauseCollector(CLOCK))
        self.queue_up = Gauge(
            "router_queue_up",
            "1 when the queue answered the last scrape, 0 when it did not.",
            registry=self.registry,
        )
        self.compiled = Gauge(
            "router_compiled_modules",
            f"Hot-path modules running compiled by mypyc, of the {len(native.MODULES)} in router/native.py.",
            registry=self.registry,
        )
        self.compiled.set(len(native.compiled()))

    def ingested(self, source: str, statuses: Sequence[str]) -> None:
        """Count one status per event of a request from `source`."""
        for status, count in Tally(statuses).items():
            self.events.labels(source, status).inc(count)

    def refused(self, reason: str) -> None:
        """Count a request refused as a whole; `reason` is the answer's error code."""
        self.refusals.labels(reason).inc()

    def settled(self, destination: str, outcomes: Sequence[Outcome]) -> None:
        """Count what happened to a batch of deliveries."""
        kinds = Tally(type(outcome) for outcome in outcomes)
        for kind, count in kinds.items():
            self.deliveries.labels(destination, OUTCOMES[kind]).inc(count)
        if kinds[Retrying]:
            self.retries.labels(destination).inc(kinds[Retrying])
        if kinds[Dead]:
            self.dead_letters.labels(destination).inc(kinds[Dead])

    def consented(self, destination: str, decisions: Sequence[str]) -> None:
        """Count the consent gate's decision for each event planned for `destination`."""
        for decision, count in Tally(decisions).items():
            self.consent.labels(destination, decision).inc(count)

    def answered(self, destination: str, seconds: float) -> None:
        """Record how long one request to a platform took."""
        self.latency.labels(destination).observe(seconds)

    async def read_queue(self, queue: Queue) -> None:
        """Refresh the queue gauges; an unreachable queue sets router_queue_up to 0 and keeps the rest."""
        try:
            stats = await queue.stats()
            oldest = await queue.oldest_waiting()
        except Exception as exc:
            log.warning("metrics_queue_unreachable", error=type(exc).__name__)
            self.queue_up.set(0)
            return
        self.queue_up.set(1)
        for state, count in stats.items():
            self.queue_deliveries.labels(state).set(count)
        self.queue_depth.set(stats.get("pending", 0) + stats.get("inflight", 0))
        self.oldest_age.set(0.0 if oldest is None else max(0.0, self.clock() - oldest))

    def endpoint(self, queue: Queue) -> Callable[[Request], Awaitable[Response]]:
        """The GET /metrics handler: queue gauges read now, then the text exposition format."""

        async def metrics(_: Request) -> Response:
            await self.read_queue(queue)
            return Response(generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        return metrics
