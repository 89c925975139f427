"""Segment-spec clients: /v1/track, /v1/page, /v1/identify and /v1/batch with the write key as Basic user."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from router import cookies, jsonlimits, policy, segmentspec
from router.body import TooLarge, Unreadable, read_decoded
from router.clickids import fbc_from_fbclid, fbclid_of, from_url
from router.config import Config, Source
from router.context import RequestContext
from router.errors import Problem
from router.ingest import RETRY_AFTER, Ingest, Unavailable
from router.sources import authenticate

log = structlog.get_logger("router.segment")

PATHS: Final[dict[str, str]] = {
    "/v1/track": "track",
    "/v1/page": "page",
    "/v1/identify": "identify",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
    "/v1/batch": "batch",
    "/v1/import": "batch",
    # analytics.js (analytics-next) posts to `<apiHost>/<first letter of the call type>` and batches to /b
    "/v1/t": "track",
    "/v1/p": "page",
    "/v1/i": "identify",
    "/v1/s": "screen",
    "/v1/g": "group",
    "/v1/a": "alias",
    "/v1/b": "batch",
}
"""Segment's HTTP Tracking API paths -> the call type each one takes."""

SETTINGS_PATH: Final = "/v1/projects/{write_key}/settings"
"""What analytics.js fetches from its `cdnURL` before it sends anything."""
HOST: Final = re.compile(r"^[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")


class BadBody(Exception):
    """The body cannot be read as JSON; the message says why."""


def routes(ingest: Ingest, config: Config) -> list[BaseRoute]:
    """The endpoints this protocol adds to the app."""
    segment = Segment(ingest, config)
    calls: list[BaseRoute] = [
        Route(path, segment.endpoint(kind), methods=["POST"]) for path, kind in PATHS.items()
    ]
    return [*calls, Route(SETTINGS_PATH, segment.settings, methods=["GET"])]


class Segment:
    """The Segment HTTP Tracking API, bound to the ingest and the config."""

    def __init__(self, ingest: Ingest, config: Config) -> None:
        self.ingest = ingest
        self.config = config

    def endpoint(self, kind: str) -> Callable[[Request], Awaitable[Response]]:
        """The request handler for one call type (`batch` for batches)."""

        async def handle(request: Request) -> Response:
            return await self.handle(request, kind)

        return handle

    async def handle(self, request: Request, kind: str) -> Response:
        """Answer one call or batch; nothing a client sends leads to a 500."""
        header = request.headers.get("authorization")
        source = authenticate(self.config.sources, basic_user(header)) if header else None
        if header and source is None:
            return self._counted(unauthorized(with_challenge=True), "unauthorized")
        try:
            document = parse(await self._body(request))
        except TooLarge:
            return self._refuse(
                413, "body_too_large", f"the body is over {self.config.server.max_body_bytes} bytes"
            )
        except Unreadable as exc:
            return self._refuse(exc.status, exc.code, exc.message)
        except BadBody as exc:
            return self._refuse(400, "bad_request", str(exc))
        source = source or body_source(self.config.sources, document)
        if source is None:
            return self._counted(unauthorized(with_challenge=False), "unauthorized")
        return await self._accept(request, source, document, kind)

    async def _body(self, request: Request) -> bytes:
        server = self.config.server
        try:
            return await read_decoded(request, server.max_body_bytes, server.body_timeout)
        except ClientDisconnect as exc:
            raise BadBody("the client closed the connection before the body was complete") from exc

    async def _accept(self, request: Request, source: Source, document: Any, kind: str) -> Response:
        refusal = policy.origin_refusal(source, request.headers.get("origin"))
        if refusal:
            return self._refuse(403, "forbidden_origin", refusal)
        try:
            items = segmentspec.messages(document, kind)
        except segmentspec.Malformed as exc:
            return self._refuse(400, "bad_request", str(exc))
        limit = self.config.server.max_batch_events
        if len(items) > limit:
            message = f"a batch may hold at most {limit} messages; this one has {len(items)}"
            return self._refuse(413, "too_many_messages", message)
        context = cookies.prepare(self.ingest.context(request, source))
        sent_at = document.get("sentAt")
        mapped = [
            segmentspec.to_canonical(m, context.received_ms, trust_ip=not context.browser, sent_at=sent_at)
            for m in items
        ]
        events = [m.event for m in mapped if m.event is not None]
        try:
            stored = await self.ingest.store(events, context) if events else []
        except Unavailable as exc:
            return self._refuse(503, exc.code, exc.message, {"Retry-After": RETRY_AFTER})
        answer = JSONResponse({"success": True, "results": results(mapped, stored, context.source)})
        domain = self.config.server.cookie_domain
        return cookies.attach(answer, context, cookie_view(events, context), domain)

    def _refuse(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return self._counted(error(status, code, message, headers), code)

    def _counted(self, answer: Response, code: str) -> Response:
        self.ingest.metrics.refused(code)
        return answer

    async def settings(self, request: Request) -> Response:
        """analytics.js's source settings, pointing its Segment.io destination back at this router."""
        key = request.path_params["write_key"]
        source = authenticate(self.config.sources, key)
        if source is None or source.kind != "browser":
            return error(404, "not_found", "no browser source in router.yaml has this write key")
        refusal = policy.origin_refusal(source, request.headers.get("origin"))
        if refusal:
            return error(403, "forbidden_origin", refusal)
        host = request.headers.get("host", "")
        if not HOST.match(host):
            return error(400, "bad_request", "the Host header is not a host name")
        body = source_settings(key, host, self._scheme(request))
        return JSONResponse(body, headers={"Cache-Control": "private, max-age=300"})

    def _scheme(self, request: Request) -> str:
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if self.config.server.trusted_proxy_hops > 0 and forwarded in ("http", "https"):
            return forwarded
        return request.url.scheme


def basic_user(authorization: str | None) -> str | None:
    """The user of `Authorization: Basic base64(user:password)`: Segment's write key (password empty)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded_value = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded_value.partition(":")[0] or None


def body_source(sources: Sequence[Source], document: Any) -> Source | None:
    """The browser source named by `writeKey` in the body (analytics.js sends no Authorization)."""
    key = document.get("writeKey") if isinstance(document, dict) else None
    found = authenticate(sources, key) if isinstance(key, str) else None
    return found if found is not None and found.kind == "browser" else None


def parse(body: bytes) -> Any:
    """The JSON document, or BadBody saying what is wrong with it."""
    if not body.strip():
        raise BadBody('the body is empty; send one Segment call or {"batch": [...]}')
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


def results(
    mapped: Sequence[segmentspec.Mapped], stored: Sequence[dict[str, Any]], source: str
) -> list[dict[str, Any]]:
    """One result per message, in order: the ingest's result for stored calls, else skipped or rejected."""
    outcomes = iter(stored)
    found: list[dict[str, Any]] = []
    for index, item in enumerate(mapped):
        if item.event is not None:
            found.append(_stored(index, item, next(outcomes), source))
        elif item.skipped is not None:
            found.append({"index": index, "status": "skipped", "reason": item.skipped})
        else:
            log.info(
                "segment_message_rejected", source=source, index=index, paths=[p.path for p in item.errors]
            )
            found.append({"index": index, "status": "rejected", "errors": _dicts(item.errors)})
    return found


def _stored(index: int, item: segmentspec.Mapped, outcome: Mapping[str, Any], source: str) -> dict[str, Any]:
    result = {**outcome, "index": index}
    if item.warnings and result["status"] != "rejected":
        log.info("segment_values_dropped", source=source, index=index, paths=[p.path for p in item.warnings])
        result["warnings"] = _dicts(item.warnings) + list(result.get("warnings", []))
    return result


def _dicts(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [p.as_dict() for p in problems]


def cookie_view(events: Sequence[Mapping[str, Any]], context: RequestContext) -> list[dict[str, Any]]:
    """The `fbc` each event will carry once normalized, so cookies.attach can refresh the `_fbc` cookie."""
    view: list[dict[str, Any]] = []
    for event in events:
        ids = event.get("ids", {})
        url = event.get("page", {}).get("url") or context.referer or ""
        fbclid, fbc = ids.get("fbclid") or from_url(url).get("fbclid"), ids.get("fbc")
        if fbclid and (not fbc or fbclid_of(fbc) != fbclid):
            fbc = fbc_from_fbclid(fbclid, context.received_ms)
        if fbc:
            view.append({"ids": {"fbc": fbc}})
    return view


def source_settings(key: str, host: str, scheme: str) -> dict[str, Any]:
    """The smallest settings document analytics.js loads: only its Segment.io destination, no telemetry."""
    segmentio = {"apiKey": key, "apiHost": f"{host}/v1", "protocol": scheme, "addBundledMetadata": False}
    return {
        "integrations": {"Segment.io": segmentio},
        "plan": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
    }


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Segment's error shape, which Segment's SDKs read (`code`, `message`), with the given status."""
    return JSONResponse({"success": False, "code": code, "message": message}, status, headers=headers)


def unauthorized(*, with_challenge: bool) -> JSONResponse:
    """401; the Basic challenge only for clients that sent Basic (a browser would pop up a login box)."""
    message = "send the write key (a source's key or secret) as the Basic user, with an empty password"
    headers = {"WWW-Authenticate": 'Basic realm="router"'} if with_challenge else None
    return error(401, "unauthorized", message, headers)
