"""The site tag: serves /tag.js and turns its /collect beacons into canonical events."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from router import cookies, jsonlimits, policy
from router.body import TooLarge, Unreadable, read_decoded
from router.clickids import COOKIES, URL_PARAMS, fbc_from_fbclid, fbclid_of, from_url
from router.config import Config, Source
from router.context import RequestContext
from router.ingest import RETRY_AFTER, Ingest, Unavailable
from router.sources import authenticate

log = structlog.get_logger("router.sitetag")

TAG: Final = Path(__file__).parent / "static" / "tag.js"
TAG_CACHE: Final = "public, max-age=3600"
"""An hour: a changed tag reaches every visitor within that, and revalidation is a cheap 304."""
BODY_TYPES: Final = ("text/plain", "application/json")
"""sendBeacon sends a string as text/plain, which needs no CORS preflight; fetch callers may say JSON."""
TAG_COOKIES: Final = frozenset({*COOKIES, "_gcl_aw"})
"""The platform cookies the tag reads from document.cookie and sends along."""
EVENT_KEYS: Final = ("event_name", "event_id", "consent", "properties")
"""Taken from the tag's event as they are; the rest is built here."""
REQUEST_OWNED_USER_KEYS: Final = ("ip", "user_agent")
"""For a browser the request itself tells these; the tag's body may not override them."""
MAX_CLICK_AGE_MS: Final = 90 * 86_400 * 1000


class BadBody(Exception):
    """The body is not a usable beacon; the message says what to send instead."""


class TooMany(Exception):
    """The beacon holds more events than server.max_batch_events."""


def routes(ingest: Ingest, config: Config) -> list[BaseRoute]:
    """GET /tag.js and POST /collect."""
    collector = Collector(ingest, config)
    return [
        Route("/tag.js", tag_endpoint(TAG.read_bytes()), methods=["GET"]),
        Route("/collect", collector.handle, methods=["POST"]),
    ]


def tag_endpoint(source: bytes) -> Any:
    """An endpoint serving the tag's bytes as JavaScript, cacheable, with an ETag for cheap revalidation."""
    etag = f'"{hashlib.sha256(source).hexdigest()[:20]}"'
    headers = {"Cache-Control": TAG_CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff"}

    async def tag(request: Request) -> Response:
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(source, media_type="text/javascript", headers=headers)

    return tag


class Collector:
    """POST /collect: `{"key": "pk_...", "events": [...]}` from the tag, for browser sources only."""

    def __init__(self, ingest: Ingest, config: Config) -> None:
        self.ingest, self.config = ingest, config

    async def handle(self, request: Request) -> Response:
        """Read, authenticate, check the origin, store, then answer 200 with the results and cookies."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in BODY_TYPES:
            return self.ingest.refuse(415, "unsupported_media_type", "send the body as text/plain or JSON")
        try:
            document = await self._document(request)
        except TooLarge:
            limit = self.config.server.max_body_bytes
            return self.ingest.refuse(413, "body_too_large", f"the body is over {limit} bytes")
        except Unreadable as exc:
            return self.ingest.refuse(exc.status, exc.code, exc.message)
        except BadBody as exc:
            return self.ingest.refuse(400, "bad_request", str(exc))
        source = self._source(document.get("key"))
        if source is None:
            return self.ingest.refuse(401, "unauthorized", 'put a browser source\'s public key in "key"')
        refusal = policy.origin_refusal(source, request.headers.get("origin"))
        if refusal:
            return self.ingest.refuse(403, "forbidden_origin", refusal)
        try:
            events = beacon_events(document, self.config.server.max_batch_events)
        except BadBody as exc:
            return self.ingest.refuse(400, "bad_request", str(exc))
        except TooMany as exc:
            return self.ingest.refuse(413, "too_many_events", str(exc))
        return await self._store(request, source, events)

    async def _document(self, request: Request) -> dict[str, Any]:
        try:
            server = self.config.server
            body = await read_decoded(request, server.max_body_bytes, server.body_timeout)
        except ClientDisconnect as exc:
            raise BadBody("the client closed the connection before the body was complete") from exc
        return parse(body)

    def _source(self, key: Any) -> Source | None:
        source = authenticate(self.config.sources, key if isinstance(key, str) else None)
        if source is not None and source.kind != "browser":
            log.warning("server_secret_sent_to_collect", source=source.id)
            return None
        return source

    async def _store(self, request: Request, source: Source, events: list[Any]) -> Response:
        context = with_tag_cookies(self.ingest.context(request, source), events)
        storage = storage_allowed(events)
        if storage:
            context = cookies.prepare(context)
        built = [canonical(event, context) for event in events]
        try:
            results = await self.ingest.store(built, context)
        except Unavailable as exc:
            return self.ingest.refuse(503, exc.code, exc.message, {"Retry-After": RETRY_AFTER})
        response = JSONResponse({"results": results}, headers={"Cache-Control": "no-store"})
        if storage:
            dicts = [event for event in built if isinstance(event, dict)]
            domain = self.config.server.cookie_domain
            cookies.attach(response, context, dicts, domain, secure=is_https(request))
        return response


def parse(body: bytes) -> dict[str, Any]:
    """The beacon document: a JSON object, else BadBody saying what to send."""
    try:
        document = jsonlimits.loads(body, parse_constant=_no_constants)
    except jsonlimits.TooComplex as exc:
        raise BadBody(str(exc)) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadBody(f'the body is not valid JSON ({exc}); send {{"key": ..., "events": [...]}}') from exc
    if not isinstance(document, dict):
        raise BadBody('the body must be {"key": "pk_...", "events": [...]}')
    return document


def _no_constants(name: str) -> None:
    """NaN and Infinity are not JSON, and no platform would take them."""
    raise ValueError(f"{name} is not allowed in JSON")


def beacon_events(document: Mapping[str, Any], limit: int) -> list[Any]:
    """The events of a beacon: a non-empty list of at most `limit`."""
    events = document.get("events")
    if not isinstance(events, list) or not events:
        raise BadBody('"events" must be a non-empty list of events')
    if len(events) > limit:
        raise TooMany(f"a beacon may hold at most {limit} events; this one has {len(events)}")
    return events


def with_tag_cookies(context: RequestContext, events: Sequence[Any]) -> RequestContext:
    """The platform cookies the tag read on the page win over the router host's: they are what the
    pixels on that page use (and the only ones there are when the router runs on another domain)."""
    found: dict[str, str] = {}
    for event in events:
        sent = event.get("cookies") if isinstance(event, dict) else None
        if isinstance(sent, dict):
            found.update({k: v for k, v in sent.items() if k in TAG_COOKIES and _cookie_value(v)})
    return replace(context, cookies={**context.cookies, **found}) if found else context


def _cookie_value(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 1024


def storage_allowed(events: Sequence[Any]) -> bool:
    """Cookies are set unless an event says ad_storage is denied."""
    consents = [e.get("consent") for e in events if isinstance(e, dict)]
    return not any(isinstance(c, dict) and c.get("ad_storage") == "denied" for c in consents)


def canonical(raw: Any, context: RequestContext) -> Any:
    """A tag event -> a raw canonical event (normalize validates it); a non-object goes on to be rejected."""
    if not isinstance(raw, dict):
        return raw
    event = {key: raw[key] for key in EVENT_KEYS if key in raw}
    event["action_source"] = "website"
    event["page"] = _page(raw.get("page"))
    event["user"] = _user(raw.get("user"))
    page_url = event["page"].get("url") if isinstance(event["page"], dict) else None
    event["ids"] = click_ids(raw.get("clicks"), page_url if isinstance(page_url, str) else "", context)
    return event


def _page(page: Any) -> Any:
    """The page without empty fields (a direct visit has an empty document.referrer); a non-object
    goes on so the schema names it."""
    if not isinstance(page, dict):
        return {} if page is None else page
    return {k: v for k, v in page.items() if v != ""}


def _user(user: Any) -> Any:
    """What identify() gave, without what the request itself tells (IP, user agent)."""
    if not isinstance(user, dict):
        return {} if user is None else user
    return {k: v for k, v in user.items() if k not in REQUEST_OWNED_USER_KEYS}


def click_ids(clicks: Any, page_url: str, context: RequestContext) -> dict[str, str]:
    """Click ids kept by the tag for the session, then the page URL's own; `fbc` built from a new fbclid
    with the time of the click, unless the `_fbc` cookie already holds that fbclid."""
    kept = session_clicks(clicks, context.received_ms)
    ids = {key: value for key, (value, _) in kept.items()}
    ids.update(from_url(page_url))
    fbclid = ids.get("fbclid")
    if fbclid and fbclid_of(context.cookies.get("_fbc", "")) != fbclid:
        value, at = kept.get("fbclid", ("", context.received_ms))
        ids["fbc"] = fbc_from_fbclid(fbclid, at if value == fbclid else context.received_ms)
    return ids


def session_clicks(clicks: Any, received_ms: int) -> dict[str, tuple[str, int]]:
    """`{"fbclid": ["IwAR...", <ms seen>], ...}` from the tag -> canonical key -> (click id, click ms);
    malformed entries are dropped, and a click time in the future or over 90 days old becomes now."""
    if not isinstance(clicks, dict):
        return {}
    found: dict[str, tuple[str, int]] = {}
    for name, pair in clicks.items():
        key = URL_PARAMS.get(name)
        if key and isinstance(pair, list) and len(pair) == 2 and _click_id(pair[0]):
            found[key] = (pair[0], _click_ms(pair[1], received_ms))
    return found


def _click_id(value: Any) -> bool:
    """What the event schema allows for ids: 1 to 1024 printable ASCII characters without spaces."""
    return isinstance(value, str) and 0 < len(value) <= 1024 and all("\x21" <= ch <= "\x7e" for ch in value)


def _click_ms(value: Any, received_ms: int) -> int:
    usable = isinstance(value, int) and not isinstance(value, bool)
    return value if usable and received_ms - MAX_CLICK_AGE_MS < value <= received_ms else received_ms


def is_https(request: Request) -> bool:
    """Whether the visitor reached the router over https (directly, or per the proxy's X-Forwarded-Proto):
    Secure cookies only then, since a browser drops Secure cookies set over plain http."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"
