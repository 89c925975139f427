"""Ingest: POST /v1/events - authenticate, read, normalize, persist, then answer 202 per event."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from router import answers, debugbus, jsonlimits, matchquality, policy, signature
from router.body import TooLarge, Unreadable, read_decoded
from router.clientip import client_ip
from router.config import Config, Source
from router.context import RequestContext
from router.debugbus import DebugBus
from router.errors import Problem
from router.metrics import Metrics
from router.normalize import Normalized, normalize
from router.queue.base import NewEvent, Queue, QueueFull
from router.sources import authenticate, bearer, signature_only

log = structlog.get_logger("router.ingest")

JSON_TYPES = ("application/json",)
RETRY_AFTER = "5"


class Unavailable(Exception):
    """The queue could not take the events: answer 503 with Retry-After; nothing was acknowledged."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class BadBody(Exception):
    """The body is not a usable event document; the message says why."""


class Ingest:
    """The /v1/events endpoint, bound to the config, the queue and the dispatcher's wake-up call."""

    def __init__(
        self,
        config: Config,
        queue: Queue,
        wake: Callable[[Sequence[str]], None],
        metrics: Metrics | None = None,
        debug: DebugBus | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.wake = wake
        self.metrics = metrics or Metrics()
        self.debug = debug or DebugBus(enabled=False)
        self.variants = config.identity_variants()
        self._by_id = {d.id: d for d in config.destinations}
        self.replays = signature.ReplayCache()

    def refuse(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        """The error answer to a request refused as a whole, counted by its code."""
        self.metrics.refused(code)
        return answers.error(status, code, message, headers)

    async def handle(self, request: Request) -> JSONResponse:
        """Answer one ingest request; nothing a client sends leads to a 500."""
        signed = signature.is_signed(request.headers)
        credential = bearer(request.headers.get("authorization"))
        source = None if signed else authenticate(self.config.sources, credential)
        if source is None and not signed and signature_only(self.config.sources, credential):
            return self.refuse(
                401,
                "signature_required",
                "this source accepts only signed requests: send X-Router-Timestamp and X-Router-Signature "
                "(HMAC-SHA256 of '<timestamp>.<body>' keyed with the secret), not the secret itself",
                {"WWW-Authenticate": "Bearer"},
            )
        if source is None and not signed:
            return self.refuse(
                401,
                "unauthorized",
                "send 'Authorization: Bearer <key>' with a source key from router.yaml, or sign the body "
                "with a server source's secret (X-Router-Timestamp and X-Router-Signature)",
                {"WWW-Authenticate": "Bearer"},
            )
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in JSON_TYPES:
            return self.refuse(
                415, "unsupported_media_type", "send the body as Content-Type: application/json"
            )
        try:
            body = await self._body(request)
            source = source or self._signed(request, body)
            refusal = policy.origin_refusal(source, request.headers.get("origin"))
            if refusal:
                return self.refuse(403, "forbidden_origin", refusal)
            events = _events(_parse(body), self.config.server.max_batch_events)
        except signature.Refused as exc:
            return self.refuse(401, exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
        except TooLarge:
            limit = self.config.server.max_body_bytes
            return self.refuse(413, "body_too_large", f"the body is over {limit} bytes; send smaller batches")
        except BadBody as exc:
            return self.refuse(400, "bad_request", str(exc))
        except Unreadable as exc:
            return self.refuse(exc.status, exc.code, exc.message)
        except _TooMany as exc:
            return self.refuse(413, "too_many_events", str(exc))
        return await self._accept(events, _context(request, source, self.config))

    def _signed(self, request: Request, body: bytes) -> Source:
        """The server source whose secret signed this body (raises signature.Refused)."""
        headers = request.headers
        timestamp, signed = headers.get(signature.TIMESTAMP_HEADER), headers.get(signature.SIGNATURE_HEADER)
        return signature.authenticate(
            self.config.sources, timestamp, signed, body, now=time.time(), replays=self.replays
        )

    async def _body(self, request: Request) -> bytes:
        try:
            server = self.config.server
            body = await read_decoded(request, server.max_body_bytes, server.body_timeout)
        except ClientDisconnect as exc:
            raise BadBody("the client closed the connection before the body was complete") from exc
        return body

    async def _accept(self, events: list[Any], context: RequestContext) -> JSONResponse:
        try:
            results = await self.store(events, context)
        except Unavailable as exc:
            return self.refuse(503, exc.code, exc.message, {"Retry-After": RETRY_AFTER})
        return answers.accepted(results)

    async def store(self, events: Sequence[Any], context: RequestContext) -> list[dict[str, Any]]:
        """Normalize and persist raw canonical events; one result per event (accepted, duplicate or
        rejected with its problems). Raises Unavailable when nothing could be stored. Every inbound
        protocol (the site tag, GA4, Segment) ends here once it has built canonical events."""
        outcomes = [
            normalize(
                raw,
                context,
                self.variants,
                self.config.default_phone_region,
                keep_postal_code=self.config.keep_postal_code,
            )
            for raw in events
        ]
        source = next((s for s in self.config.sources if s.id == context.source), None)
        outcomes = [policy.apply(source, outcome) for outcome in outcomes]
        valid = [(i, o.event) for i, o in enumerate(outcomes) if o.event is not None]
        new: list[NewEvent] = []
        for i, event in valid:
            targets = self._targets(event)
            new.append(_new_event(event, targets, context, self._matched(outcomes[i], targets)))
        try:
            keys = await self.queue.enqueue(new) if new else []
        except QueueFull as exc:
            raise Unavailable("queue_full", "the router is catching up; retry later") from exc
        except Exception as exc:
            log.exception("queue_write_failed", source=context.source, events=len(new))
            raise Unavailable("queue_unavailable", "events could not be stored; retry later") from exc
        duplicates = {i for (i, _), key in zip(valid, keys, strict=True) if key is None}
        stored = [e for e, key in zip(new, keys, strict=True) if key is not None and e.destinations]
        self.wake(sorted({d for e in stored for d in e.destinations}))
        _log_outcomes(outcomes, new, keys, context)
        results = [_result(i, o, i in duplicates) for i, o in enumerate(outcomes)]
        self.metrics.ingested(context.source, [r["status"] for r in results])
        if self.debug.enabled:
            self.debug.publish_all(debugbus.incoming(context.source, new, results))
        return results

    def context(self, request: Request, source: Source) -> RequestContext:
        """What the request tells about the events it carries (IP, user agent, cookies, referer)."""
        return _context(request, source, self.config)

    def _matched(self, outcome: Normalized, targets: tuple[str, ...]) -> dict[str, frozenset[str]]:
        """Per target destination, the match-quality identifiers the event carries (for `router stats`)."""
        assert outcome.event is not None
        warned = frozenset(p.path for p in outcome.warnings)
        by_id = self._by_id
        read = ((t, by_id[t].type, by_id[t].identity_variants) for t in targets)
        return matchquality.per_destination(outcome.event, read, warned)

    def _targets(self, event: dict[str, Any]) -> tuple[str, ...]:
        name = event["event_name"]
        return tuple(
            d.id for d in self.config.destinations if d.config.events is None or name in d.config.events
        )


class _TooMany(Exception):
    pass


def _parse(body: bytes) -> Any:
    if not body.strip():
        raise BadBody('the body is empty; send one event object or {"events": [...]}')
    try:
        return jsonlimits.loads(body, parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise BadBody("the body is not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise BadBody(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except jsonlimits.TooComplex as exc:
        raise BadBody(str(exc)) from exc
    except (ValueError, RecursionError) as exc:
        raise BadBody(f"the body is not valid JSON: {exc}") from exc


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def _events(document: Any, limit: int) -> list[Any]:
    if not isinstance(document, dict):
        raise BadBody('the body must be one event object or {"events": [...]}')
    if "events" not in document:
        return [document]
    events = document["events"]
    if not isinstance(events, list) or len(document) != 1:
        raise BadBody('a batch must be exactly {"events": [<event>, ...]}')
    if not events:
        raise BadBody("the batch has no events")
    if len(events) > limit:
        raise _TooMany(f"a batch may hold at most {limit} events; this one has {len(events)}")
    return events


def _context(request: Request, source: Source, config: Config) -> RequestContext:
    browser = source.kind == "browser"
    peer = request.client.host if request.client else None
    return RequestContext(
        source=source.id,
        browser=browser,
        received_ms=int(time.time() * 1000),
        client_ip=client_ip(request.headers.get("x-forwarded-for"), peer, config.server.trusted_proxy_hops),
        user_agent=request.headers.get("user-agent") if browser else None,
        referer=request.headers.get("referer") if browser else None,
        country=_country(request, config.server.country_header) if browser else None,
        cookies=request.cookies if browser else {},
    )


def _country(request: Request, header: str | None) -> str | None:
    """The trusted proxy's country header as lower-case ISO-2; None when unset, unknown (Cloudflare's
    `XX`, Tor's `T1`) or malformed."""
    value = request.headers.get(header, "").strip().lower() if header else ""
    return value if len(value) == 2 and value.isascii() and value.isalpha() and value != "xx" else None


def _new_event(
    event: dict[str, Any],
    targets: tuple[str, ...],
    context: RequestContext,
    identifiers: dict[str, frozenset[str]] | None = None,
) -> NewEvent:
    return NewEvent(
        source=context.source,
        event_id=event["event_id"],
        event_name=event["event_name"],
        received_at=context.received_ms / 1000,
        payload=event,
        destinations=targets,
        identifiers=identifiers or {},
    )


def _result(index: int, outcome: Normalized, duplicate: bool) -> dict[str, Any]:
    if outcome.event is None:
        return {"index": index, "status": "rejected", "errors": _dicts(outcome.errors)}
    status = "duplicate" if duplicate else "accepted"
    result: dict[str, Any] = {"index": index, "status": status, "event_id": outcome.event["event_id"]}
    if outcome.warnings:
        result["warnings"] = _dicts(outcome.warnings)
    return result


def _dicts(problems: list[Problem]) -> list[dict[str, str]]:
    return [p.as_dict() for p in problems]


def _log_outcomes(
    outcomes: list[Normalized], new: list[NewEvent], keys: list[int | None], context: RequestContext
) -> None:
    # Accepted and duplicate events are logged one per line only at debug level: such lines cost CPU
    # and Cloud Logging bytes, and /metrics and `router stats` count them anyway.
    each = logging.getLogger("router.ingest").isEnabledFor(logging.DEBUG)
    for event, key in zip(new, keys, strict=True) if each else ():
        name = "event_accepted" if key is not None else "event_duplicate"
        log.debug(
            name,
            source=context.source,
            event_id=event.event_id,
            event_name=event.event_name,
            destinations=list(event.destinations),
        )
    for index, outcome in enumerate(outcomes):
        if outcome.event is None:
            log.info(
                "event_rejected", source=context.source, index=index, paths=[p.path for p in outcome.errors]
            )
