"""GA4 gtag.js pointed at the router: /g/collect hits stored as canonical events of their source."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any, Final

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router import answers, cookies, ga4hit, policy
from router.body import TooLarge, Unreadable, read_limited
from router.clickids import fbc_from_fbclid, from_url
from router.config import Config, Source
from router.context import RequestContext
from router.ingest import RETRY_AFTER, Ingest, Unavailable
from router.normalize import SCHEMA
from router.validation import problems, validator_for

log = structlog.get_logger("router.ga4")

PATH: Final = "/g/collect"
SALVAGEABLE: Final = ("/page/", "/user/", "/ids/", "/consent/", "/properties/")
"""Where a value the event schema refuses is dropped rather than costing the whole event."""
SALVAGE_ROUNDS: Final = 3


def routes(ingest: Ingest, config: Config) -> list[BaseRoute]:
    """The endpoints this protocol adds to the app."""
    return [Route(PATH, Collect(ingest, config).handle, methods=["GET", "POST"])]


def source_for(sources: Sequence[Source], measurement_id: str) -> Source | None:
    """The browser source whose `ga4_measurement_ids` lists the measurement id."""
    return next((s for s in sources if s.kind == "browser" and measurement_id in s.ga4_measurement_ids), None)


class Collect:
    """The /g/collect endpoint, bound to the ingest and the config.

    Answers: 204 when every hit was stored (or was a duplicate); 202 with one result per hit, as
    /v1/events answers, when the ingest rejected one; 400 for an unreadable request (no `tid`, a hit
    without `en`, bad UTF-8); 401 for a measurement id no browser source lists in `ga4_measurement_ids`;
    403 when the request's Origin is not in that source's `allowed_origins` (no Origin is allowed);
    413 for a body over `server.max_body_bytes` or more than MAX_HITS hits; 503 with Retry-After when the
    queue cannot take them. gtag.js ignores every answer, so these are for people debugging with curl.
    """

    def __init__(self, ingest: Ingest, config: Config) -> None:
        self.ingest = ingest
        self.config = config

    async def handle(self, request: Request) -> Response:
        """Answer one GA4 request; nothing a client sends leads to a 500."""
        try:
            collected = ga4hit.parse(request.scope.get("query_string", b""), await self._body(request))
        except TooLarge:
            limit = self.config.server.max_body_bytes
            return self._refuse(413, "body_too_large", f"the body is over {limit} bytes")
        except Unreadable as exc:
            return self._refuse(exc.status, exc.code, exc.message)
        except ga4hit.TooManyHits as exc:
            return self._refuse(413, "too_many_hits", str(exc))
        except ga4hit.ParseError as exc:
            return self._refuse(400, "bad_hit", str(exc))
        source = source_for(self.config.sources, collected.measurement_id)
        if source is None:
            return self._refuse(
                401,
                "unknown_measurement_id",
                f"no browser source lists {collected.measurement_id[:40]} in ga4_measurement_ids",
            )
        refusal = policy.origin_refusal(source, request.headers.get("origin"))
        if refusal:
            return self._refuse(403, "forbidden_origin", refusal)
        return await self._store(collected.events, cookies.prepare(self.ingest.context(request, source)))

    async def _body(self, request: Request) -> bytes:
        if request.method != "POST":
            return b""
        try:
            server = self.config.server
            return await read_limited(request, server.max_body_bytes, server.body_timeout)
        except ClientDisconnect as exc:
            raise ga4hit.ParseError("the client closed the connection before the body was complete") from exc

    async def _store(self, raw: Sequence[dict[str, Any]], context: RequestContext) -> Response:
        events = [salvage(event) for event in raw]
        try:
            results = await self.ingest.store(events, context) if events else []
        except Unavailable as exc:
            return self.ingest.refuse(503, exc.code, exc.message, {"Retry-After": RETRY_AFTER})
        stored = all(r["status"] in ("accepted", "duplicate") for r in results)
        response = Response(status_code=204) if stored else answers.accepted(results)
        domain = self.config.server.cookie_domain
        return cookies.attach(response, context, fbc_events(events, context), domain)

    def _refuse(self, status: int, code: str, message: str) -> Response:
        log.info("ga4_refused", status=status, code=code)
        return self.ingest.refuse(status, code, message)


def fbc_events(events: Iterable[dict[str, Any]], context: RequestContext) -> list[dict[str, Any]]:
    """The `fbc` each event will carry when its page URL brought an fbclid (normalize builds it the same
    way), so the `_fbc` cookie can be refreshed from the raw events."""
    found = []
    for event in events:
        url = event.get("page", {}).get("url") or context.referer or ""
        fbclid = from_url(url).get("fbclid")
        if fbclid:
            found.append({"ids": {"fbc": fbc_from_fbclid(fbclid, context.received_ms)}})
    return found


def salvage(event: dict[str, Any]) -> dict[str, Any]:
    """A copy without the values the event schema refuses under page, user, ids, consent and properties:
    a browser's stray value (a 3-letter country, an over-long title, a negative price) must not cost
    the conversion, since gtag.js never reads the answer that would say why it was rejected."""
    event = copy.deepcopy(event)
    for _ in range(SALVAGE_ROUNDS):
        found = [p for p in problems(validator_for(SCHEMA), event) if p.path.startswith(SALVAGEABLE)]
        if not found:
            break
        targets = {_target(p.path, p.message == "is required") for p in found}
        for parts in sorted(targets, key=_order, reverse=True):
            _delete(event, parts)
        log.info("ga4_values_dropped", paths=sorted({p.path for p in found}))
    return event


def _target(pointer: str, required: bool) -> tuple[str, ...]:
    """What to delete for a problem: the value itself, or the object missing a required key."""
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:])
    return parts[:-1] if required else parts


def _order(parts: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Sort key deleting later list items first, so earlier indexes stay valid."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _delete(document: Any, parts: tuple[str, ...]) -> None:
    parent = document
    for part in parts[:-1]:
        parent = _child(parent, part)
    last = parts[-1] if parts else ""
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return None
