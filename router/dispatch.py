"""Dispatcher: one loop per destination that claims due deliveries, sends them and settles the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import structlog

from destinations.base import AuthError, Destination, HttpRequest, HttpResponse
from router import debugbus
from router.backoff import Backoff
from router.breaker import Breaker
from router.config import DispatchSettings
from router.consent import DEFAULT as DEFAULT_CONSENT
from router.consent import Policy as ConsentPolicy
from router.debugbus import DebugBus
from router.decisions import Decision, Drop, Retry
from router.delivery import RetryPolicy, Shipment, per_event, per_payload, plan
from router.metrics import Metrics
from router.queue.base import Dead, Delivered, Job, Outcome, Queue, Retrying, Skipped
from router.sender import TransportError, send

log = structlog.get_logger("router.dispatch")


class Dispatcher:
    """Delivers queued events to every destination; each destination has its own loop (no head-of-line)."""

    def __init__(
        self,
        destinations: Sequence[Destination[Any]],
        queue: Queue,
        settings: DispatchSettings,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        retry_windows: Mapping[str, float] | None = None,
        consent_policies: Mapping[str, ConsentPolicy] | None = None,
        metrics: Metrics | None = None,
        debug: DebugBus | None = None,
    ) -> None:
        self.destinations = {d.id: d for d in destinations}
        self.queue = queue
        self.settings = settings
        self.client = client
        self.clock = clock
        self.retry_windows = dict(retry_windows or {})
        self.consent_policies = dict(consent_policies or {})
        self.metrics = metrics or Metrics()
        self.debug = debug or DebugBus(enabled=False)
        self._event_ids: dict[int, str] = {}
        self._breakers = {d: Breaker(settings.probe_base, settings.backoff_cap) for d in self.destinations}
        self._authenticators = {d.id: a for d in destinations if (a := d.authenticator()) is not None}
        self.backoff = Backoff(settings.backoff_base, settings.backoff_cap)
        self._wakeups = {d: asyncio.Event() for d in self.destinations}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def wake(self, destination_ids: Sequence[str]) -> None:
        """New work for these destinations: do not wait for the next poll."""
        for destination_id in destination_ids:
            if destination_id in self._wakeups:
                self._wakeups[destination_id].set()

    def start(self) -> None:
        """Start one loop per destination."""
        for destination in self.destinations.values():
            self._tasks.append(
                asyncio.create_task(self._loop(destination), name=f"dispatch:{destination.id}")
            )

    async def stop(self, grace: float) -> None:
        """Stop claiming; let in-flight batches finish for `grace` seconds, then hand back what is left."""
        self._stopping.set()
        for event in self._wakeups.values():
            event.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, destination: Destination[Any]) -> None:
        wakeup = self._wakeups[destination.id]
        breaker = self._breakers[destination.id]
        while not self._stopping.is_set():
            paused = breaker.wait(self.clock())
            if paused:
                await _wait(self._stopping, paused)
                continue
            try:
                handled = await self.run_once(destination)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch_failed", destination=destination.id)
                handled = 0
            if handled == 0:
                await _wait(wakeup, self.settings.poll_interval)
            elif handled < self._claim_size(destination) and self.settings.linger:
                await _wait(self._stopping, self.settings.linger)

    def _claim_size(self, destination: Destination[Any]) -> int:
        """The platform's batch size, capped by dispatch.max_claim (at least 1)."""
        return max(1, min(destination.max_batch_size, self.settings.max_claim))

    async def run_once(self, destination: Destination[Any]) -> int:
        """Claim one batch for the destination, deliver it, settle it; returns how many jobs it handled."""
        self._wakeups[destination.id].clear()
        now = self.clock()
        jobs = await self.queue.claim(destination.id, self._claim_size(destination), now, self.settings.lease)
        if not jobs:
            return 0
        try:
            outcomes = await self._deliver(destination, jobs, now)
        except asyncio.CancelledError:
            await asyncio.shield(self.queue.release(destination.id, [j.event_pk for j in jobs]))
            log.info("delivery_released", destination=destination.id, events=len(jobs))
            raise
        await self.queue.settle(destination.id, outcomes, self.clock())
        _log_outcomes(destination.id, jobs, outcomes, self.clock())
        self.metrics.settled(destination.id, outcomes)
        if self.debug.enabled:
            self.debug.publish(_settled_record(destination.id, jobs, outcomes))
        return len(jobs)

    async def _deliver(self, destination: Destination[Any], jobs: Sequence[Job], now: float) -> list[Outcome]:
        prepared = plan(destination, jobs, now, self.consent_policies.get(destination.id, DEFAULT_CONSENT))
        self.metrics.consented(destination.id, [d.partition(":")[0] for d in prepared.consent.values()])
        if self.debug.enabled:
            self._remember_ids(jobs)
        results = await asyncio.gather(*(self._ship(destination, s) for s in prepared.shipments))
        decisions: dict[int, Decision] = {}
        for shipment, decided in zip(prepared.shipments, results, strict=True):
            for pk, decision in per_event(shipment.owners, decided).items():
                decisions[pk] = _worse(decisions.get(pk), decision)
        window = self.retry_windows.get(destination.id, self.settings.retry_window)
        policy = RetryPolicy(self.backoff, window, destination.max_event_age)
        by_pk = {job.event_pk: job for job in jobs}
        finished = self.clock()
        labels = prepared.consent
        sent = [policy.outcome(by_pk[pk], d, finished, labels.get(pk, "")) for pk, d in decisions.items()]
        return prepared.recorded(prepared.settled) + sent

    def _remember_ids(self, jobs: Sequence[Job]) -> None:
        """Event ids by queue key, for the debug view's shipment records (bounded: cleared when large)."""
        if len(self._event_ids) > 10_000:
            self._event_ids.clear()
        self._event_ids.update({job.event_pk: job.event["event_id"] for job in jobs})

    async def _ship(self, destination: Destination[Any], shipment: Shipment) -> list[Decision]:
        decisions = await self._send(destination, shipment)
        if self._breakers[destination.id].record(decisions, self.clock()):
            expedited = await self.queue.expedite(destination.id, self.clock())
            log.info("destination_recovered", destination=destination.id, expedited=expedited)
        return decisions

    async def _send(self, destination: Destination[Any], shipment: Shipment) -> list[Decision]:
        started = self.clock()
        count = len(shipment.payloads)
        auth = self._authenticators.get(destination.id)
        try:
            request = await auth.apply(shipment.request, self.client) if auth else shipment.request
            response = await self._timed(destination.id, request, destination.config.timeout)
        except AuthError as exc:
            log.error("credentials_refused", destination=destination.id, reason=str(exc))
            return self._shown(destination.id, shipment, None, [Drop(f"credentials refused: {exc}")] * count)
        except (TransportError, httpx.HTTPError) as exc:
            return self._shown(
                destination.id,
                shipment,
                None,
                [Retry(str(exc) if isinstance(exc, TransportError) else f"auth: {type(exc).__name__}")]
                * count,
            )
        if response.status == 401 and auth is not None:
            auth.invalidate()
            return self._shown(
                destination.id,
                shipment,
                response,
                [Retry("HTTP 401: access token refreshed", after=0.0)] * count,
            )
        decided = destination.classify(response, shipment.payloads)
        _log_response(destination.id, response, len(shipment.payloads), self.clock() - started)
        if isinstance(decided, Drop) and decided.isolate and len(shipment.payloads) > 1:
            self._shown(destination.id, shipment, response, [decided] * count, "batch refused: split")
            return await self._bisect(destination, shipment)
        return self._shown(destination.id, shipment, response, per_payload(decided, len(shipment.payloads)))

    def _shown(
        self,
        destination_id: str,
        shipment: Shipment,
        response: HttpResponse | None,
        decisions: list[Decision],
        note: str | None = None,
    ) -> list[Decision]:
        """Publish the shipment to the debug view (when it is on); returns the decisions unchanged."""
        if self.debug.enabled:
            ids = [self._event_ids.get(pk, str(pk)) for pk in shipment.owners]
            self.debug.publish(
                debugbus.shipment(
                    destination_id,
                    shipment.request,
                    payloads=shipment.payloads,
                    event_ids=ids,
                    response=response,
                    decisions=decisions,
                    note=note,
                )
            )
        return decisions

    async def _timed(self, destination_id: str, request: HttpRequest, timeout: float) -> HttpResponse:
        started = time.perf_counter()
        try:
            return await send(self.client, request, timeout)
        finally:
            self.metrics.answered(destination_id, time.perf_counter() - started)

    async def _bisect(self, destination: Destination[Any], shipment: Shipment) -> list[Decision]:
        """Send each half on its own, so one invalid event costs about 2*log2(n) requests, not its batch."""
        middle = len(shipment.payloads) // 2
        halves = [
            (shipment.payloads[:middle], shipment.owners[:middle]),
            (shipment.payloads[middle:], shipment.owners[middle:]),
        ]
        log.info("batch_split", destination=destination.id, events=len(shipment.payloads))
        decided: list[Decision] = []
        for payloads, owners in halves:
            decided += await self._ship(
                destination, Shipment(destination.build_request(payloads), payloads, owners)
            )
        return decided


def _worse(current: Decision | None, new: Decision) -> Decision:
    if current is None:
        return new
    return per_event([0, 0], [current, new])[0]


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _log_response(destination: str, response: HttpResponse, events: int, seconds: float) -> None:
    log.debug(
        "platform_answered",
        destination=destination,
        status=response.status,
        events=events,
        latency_ms=round(seconds * 1000, 1),
    )


def _log_outcomes(destination: str, jobs: Sequence[Job], outcomes: Sequence[Outcome], now: float) -> None:
    """One info line per settled batch with its tallies; one line per event that was not delivered
    (retry, dead letter, skip); a line per delivered event only at debug level, where logging every
    success would cost more CPU and Cloud Logging bytes than the delivery itself."""
    log.info("deliveries_settled", destination=destination, **_tallies(outcomes))
    each_ok = logging.getLogger("router.dispatch").isEnabledFor(logging.DEBUG)
    shown = outcomes if each_ok else [o for o in outcomes if type(o) is not Delivered]
    by_pk = {job.event_pk: job for job in jobs} if shown else {}
    for outcome in shown:
        job = by_pk[outcome.event_pk]
        fields: dict[str, Any] = {
            "destination": destination,
            "event_id": job.event["event_id"],
            "event_name": job.event["event_name"],
            "attempt": job.attempts + 1,
        }
        if outcome.consent:
            fields["consent"] = outcome.consent
        if isinstance(outcome, Delivered):
            log.debug("delivery_ok", **fields)
        elif isinstance(outcome, Retrying):
            log.warning(
                "delivery_retry",
                reason=outcome.error,
                retry_in_s=round(outcome.next_attempt_at - now, 1),
                **fields,
            )
        elif isinstance(outcome, Dead):
            log.error("delivery_dropped", reason=outcome.reason, **fields)
        elif isinstance(outcome, Skipped):
            log.info("delivery_skipped", reason=outcome.reason, **fields)


def _tallies(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """How many outcomes of each kind, and the consent decisions among them."""
    kinds = Counter(type(outcome).__name__.lower() for outcome in outcomes)
    decisions = Counter(outcome.consent for outcome in outcomes if outcome.consent)
    return {kind: kinds.get(kind, 0) for kind in ("delivered", "retrying", "dead", "skipped")} | {
        "consent": dict(sorted(decisions.items()))
    }


def _settled_record(destination: str, jobs: Sequence[Job], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    events = {job.event_pk: job.event for job in jobs}
    attempts = {job.event_pk: job.attempts for job in jobs}
    return debugbus.settled(destination, outcomes, events, attempts)
