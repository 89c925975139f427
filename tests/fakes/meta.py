"""A loopback fake of Meta's Conversions API that enforces the request contract and records deliveries.

The fake answers ``POST /{version}/{pixel_id}/events`` the way the Graph API does (see
``shared/platforms/meta-tiktok-snap.md`` section 1): one invalid event rejects the whole request and
nothing from it is recorded; errors are Graph-shaped ``{"error": {"message", "type", "code",
"error_subcode", "is_transient", "error_user_title", "error_user_msg", "fbtrace_id"}}``.

Checked, in this order (faults first, because they stand for the platform's infrastructure):

- fault mode (``set_mode`` or ``POST /_admin/mode``): ok, 503, 500, 429, throttle, transient,
  html_502, timeout, reset, bad_token, permanent;
- path: a version other than the configured one -> 2500 "Unknown path components" (what Graph says
  for a bad version, e.g. arsduo/koala#611); a method other than POST -> 100 / 33;
- ``Content-Type: application/json`` and a JSON object body -> else 100. Graph also accepts form
  bodies; the fake does not, because the router's contract is JSON;
- ``access_token`` in the body (or the query string, which Graph also accepts) -> else 190
  (Graph says 104 when the token is missing; the fake uses 190 for both, as the contract asks);
- pixel id -> else 100 / 33 (``GraphMethodException``);
- body: known top-level keys; ``data`` a non-empty list of at most 1000 objects; per event: known
  keys, non-empty ``event_name``, int ``event_time`` within 7 days in the past (else 2804003) and not
  in milliseconds nor more than 7 days ahead (else 2804004), a known ``action_source``, website
  events with ``event_source_url`` and ``client_user_agent``, ``user_data`` with only known keys,
  hashed keys as lists of 64 lower-case hex digests, a raw IP literal, raw ``fbc``/``fbp`` of shape
  ``fb.<int>.<13-digit ms>.<value>[.<appendix>]`` (bad ``fbc`` -> 2804001), and Purchase events with
  ``custom_data.value`` and ``currency`` (else 2804009).

Fault modes that change the transport: ``timeout`` sleeps ``delay`` seconds, then processes the
request normally (a slow platform that still records the events, so a client that gave up and
retries causes a same-id redelivery); ``reset`` aborts the TCP connection without an answer. The ledger,
fault modes, Retry-After checks and admin endpoints are the shared ones of ``tests/fakes/common.py``.

Run standalone (end-to-end tests): ``python -m tests.fakes.meta --port 9001 --token T --pixel P``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import (
    ALL_METHODS,
    ConnectionReset,
    Fake,
    Fault,
    Json,
    command,
    is_int,
    is_number,
    media_type,
    parse_json,
    payload_hash,
    read_body,
    retry_seconds,
    run,
)

FaultMode = Literal[
    "ok",
    "503",
    "500",
    "429",
    "throttle",
    "transient",
    "html_502",
    "timeout",
    "reset",
    "bad_token",
    "permanent",
]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

MAX_EVENTS = 1000
MAX_AGE = 7 * 86400  # [doc] older than 7 days -> the whole request fails with 2804003
MAX_AHEAD = 7 * 86400  # contract choice: later than now + 7 days -> 2804004 (Meta's future limit unconfirmed)
MS_THRESHOLD = 10**10  # an event_time above this is in milliseconds

BODY_KEYS = frozenset(
    {"data", "access_token", "test_event_code", "partner_agent", "appsecret_proof"}
    | {"namespace_id", "upload_id", "upload_tag", "upload_source"}
)
EVENT_KEYS = frozenset(
    {"event_name", "event_time", "event_id", "action_source", "event_source_url", "referrer_url"}
    | {"user_data", "custom_data", "opt_out", "app_data", "data_processing_options"}
    | {"data_processing_options_country", "data_processing_options_state"}
)
ACTION_SOURCES = frozenset(
    {"email", "website", "app", "phone_call", "chat", "physical_store", "system_generated"}
    | {"business_messaging", "other"}
)
HASHED_KEYS = frozenset({"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"})
RAW_ID_KEYS = frozenset({"subscription_id", "fb_login_id", "lead_id", "anon_id", "madid"})
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOOKS_HASHED = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
# fb.<subdomain index>.<creation time>.<fbclid or random>[.<Parameter Builder appendix>]
CLICK_ID = re.compile(r"fb\.(\d+)\.(\d+)\.([^.]+)(?:\.([A-Za-z0-9_-]+))?")
VERSION = re.compile(r"v\d+\.\d+")


class GraphError(Exception):
    """One Graph API error answer: an HTTP status, the ``error`` object and an optional Retry-After."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        subcode: int | None = None,
        status: int = 400,
        title: str | None = None,
        user_msg: str | None = None,
        transient: bool = False,
        kind: str = "OAuthException",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.subcode, self.status = message, code, subcode, status
        self.title, self.user_msg, self.transient, self.kind = title, user_msg, transient, kind
        self.retry_after = retry_after

    def to_json(self, trace_id: str) -> Json:
        """The ``error`` object as Graph writes it (optional members only when set)."""
        error: Json = {"message": self.message, "type": self.kind, "code": self.code}
        optional = {"error_subcode": self.subcode, "error_user_title": self.title}
        error |= {key: value for key, value in optional.items() if value is not None}
        error["is_transient"] = self.transient
        if self.user_msg is not None:
            error["error_user_msg"] = self.user_msg
        return error | {"fbtrace_id": trace_id}


class HtmlError(GraphError):
    """An answer from a proxy in front of Graph: an HTML page instead of JSON."""


@dataclass(frozen=True)
class ReceivedEvent:
    """One accepted event in the ledger, with the metadata of the request that carried it."""

    seq: int
    pixel_id: str
    event_id: str | None
    event_name: str
    event_time: int
    test_event_code: str | None
    partner_agent: str | None
    received_at: float
    payload_hash: str
    event: Json


@dataclass(frozen=True)
class RequestRecord:
    """One request seen on a platform path, with its answer (``status`` is None for a reset)."""

    seq: int
    received_at: float
    method: str
    path: str
    version: str | None
    pixel_id: str | None
    content_type: str
    mode: str
    status: int | None
    error: Json | None
    n_events: int
    test_event_code: str | None
    token_in: str | None
    body: Any


@dataclass(frozen=True)
class Violation:
    """A protocol breach by the client, e.g. a request sent before a Retry-After expired."""

    kind: str
    seq: int
    pixel_id: str
    received_at: float
    retry_until: float
    detail: str


@dataclass(frozen=True)
class _Call:
    """One request on a platform path while it is being answered."""

    seq: int
    request: Request
    fault: Fault
    version: str | None
    pixel_id: str | None


# ---------------------------------------------------------------------------------------------------
# Contract checks: pure functions that raise GraphError.


def invalid(detail: str, *, subcode: int | None = None, title: str = "Invalid parameter") -> GraphError:
    """Graph's code-100 "Invalid parameter" error with the detail as the user message."""
    return GraphError("Invalid parameter", code=100, subcode=subcode, title=title, user_msg=detail)


def no_such_object(pixel_id: str, method: str) -> GraphError:
    """Graph's 100 / 33 answer for an unknown (or not permitted) pixel id."""
    message = (
        f"Unsupported {method.lower()} request. Object with ID '{pixel_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation."
    )
    return GraphError(message, code=100, subcode=33, kind="GraphMethodException")


def bad_token(subcode: int | None = None, message: str = "Invalid OAuth access token data.") -> GraphError:
    """Graph's code-190 access token error."""
    return GraphError(message, code=190, subcode=subcode)


def _check_keys(obj: Json, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise invalid(f"{where}: unknown parameter(s) {', '.join(unknown)}.")


def validate_body(body: Json, now: float) -> list[Json]:
    """Check a parsed request body; return its events or raise the first GraphError."""
    _check_keys(body, BODY_KEYS, "body")
    for key in ("test_event_code", "partner_agent"):
        if key in body and not isinstance(body[key], str):
            raise invalid(f"{key} must be a string.")
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise invalid("data must be a non-empty array of events.")
    if len(data) > MAX_EVENTS:
        raise invalid(f"data holds {len(data)} events; at most {MAX_EVENTS} are allowed per request.")
    for index, event in enumerate(data):
        check_event(event, f"data[{index}]", now)
    return data


def check_event(event: object, where: str, now: float) -> None:
    """Check one event object against the contract."""
    if not isinstance(event, dict):
        raise invalid(f"{where} must be an object.")
    _check_keys(event, EVENT_KEYS, where)
    name = event.get("event_name")
    if not isinstance(name, str) or not name.strip():
        raise invalid(f"{where}.event_name must be a non-empty string.")
    check_event_time(event.get("event_time"), where, now)
    _check_action_source(event, where)
    _check_optional_fields(event, where)
    check_user_data(event.get("user_data"), f"{where}.user_data")
    _check_purchase(event, where)


def check_event_time(value: object, where: str, now: float) -> None:
    """``event_time``: int Unix seconds, at most 7 days old, not milliseconds, not far ahead."""
    if not is_int(value):
        raise invalid(f"{where}.event_time must be an integer (Unix seconds).")
    assert isinstance(value, int)
    if value > MS_THRESHOLD or value > now + MAX_AHEAD:
        detail = f"{where}.event_time {value} is too far in the future (milliseconds instead of seconds?)."
        raise invalid(detail, subcode=2804004, title="Event Timestamp Too Far in the Future")
    if value < now - MAX_AGE:
        detail = f"{where}.event_time {value} is more than 7 days before the time the event was received."
        raise invalid(detail, subcode=2804003, title="Event Timestamp Too Old")


def _check_action_source(event: Json, where: str) -> None:
    source = event.get("action_source")
    if source not in ACTION_SOURCES:
        raise invalid(f"{where}.action_source must be one of {', '.join(sorted(ACTION_SOURCES))}.")
    if source != "website":
        return
    user_data = event.get("user_data")
    agent = user_data.get("client_user_agent") if isinstance(user_data, dict) else None
    if not agent or not event.get("event_source_url"):
        raise invalid(f"{where}: website events need event_source_url and user_data.client_user_agent.")


def _check_optional_fields(event: Json, where: str) -> None:
    for key in ("event_id", "event_source_url", "referrer_url"):
        if key in event and (not isinstance(event[key], str) or not event[key]):
            raise invalid(f"{where}.{key} must be a non-empty string.")
    for key in ("event_source_url", "referrer_url"):
        if key in event and not event[key].startswith(("http://", "https://")):
            raise invalid(f"{where}.{key} must start with http:// or https://.")
    for key in ("custom_data", "app_data"):
        if key in event and not isinstance(event[key], dict):
            raise invalid(f"{where}.{key} must be an object.")
    if "opt_out" in event and not isinstance(event["opt_out"], bool):
        raise invalid(f"{where}.opt_out must be a boolean.")
    _check_data_processing(event, where)
    _check_custom_data(event.get("custom_data") or {}, f"{where}.custom_data")


def _check_data_processing(event: Json, where: str) -> None:
    options = event.get("data_processing_options", [])
    if not isinstance(options, list) or any(option != "LDU" for option in options):
        raise invalid(f'{where}.data_processing_options must be [] or ["LDU"].')
    for key in ("data_processing_options_country", "data_processing_options_state"):
        if key in event and not is_int(event[key]):
            raise invalid(f"{where}.{key} must be an integer.")


def _check_custom_data(custom: Json, where: str) -> None:
    if "value" in custom and not is_number(custom["value"]):
        raise invalid(f"{where}.value must be a number.")
    currency = custom.get("currency")
    if currency is not None and (not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency)):
        raise invalid(f"{where}.currency must be a 3-letter ISO 4217 code.")


def _check_purchase(event: Json, where: str) -> None:
    if event.get("event_name") != "Purchase":
        return
    custom = event.get("custom_data") or {}
    if "value" not in custom or "currency" not in custom:
        detail = f"{where}: Purchase events need custom_data.value and custom_data.currency."
        raise invalid(detail, subcode=2804009, title="Missing Value for Purchase Event")


def check_user_data(user_data: object, where: str) -> None:
    """``user_data``: known keys only, identifiers hashed, IP / user agent / click ids raw."""
    if not isinstance(user_data, dict) or not user_data:
        raise invalid(f"{where} must be a non-empty object of customer information parameters.")
    _check_keys(user_data, HASHED_KEYS | RAW_ID_KEYS | frozenset(USER_DATA_CHECKS), where)
    for key, value in user_data.items():
        check = _check_hashed if key in HASHED_KEYS else USER_DATA_CHECKS.get(key, _check_raw_id)
        check(value, f"{where}.{key}")


def _check_hashed(value: object, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise invalid(f"{where} must be a non-empty list of SHA-256 hex digests.")
    for item in value:
        if not isinstance(item, str) or not SHA256_HEX.fullmatch(item):
            raise invalid(f"{where} must hold SHA-256 digests (64 lower-case hex characters), got {item!r}.")


def _check_raw_id(value: object, where: str) -> None:
    if not (is_int(value) or (isinstance(value, str) and value)):
        raise invalid(f"{where} must be a non-empty string.")


def _check_ip(value: object, where: str) -> None:
    if not isinstance(value, str) or LOOKS_HASHED.fullmatch(value):
        raise invalid(f"{where} must be the raw IP address, not hashed.")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise invalid(f"{where} {value!r} is not a valid IPv4 or IPv6 address.") from None


def _check_user_agent(value: object, where: str) -> None:
    if not isinstance(value, str) or not value.strip() or LOOKS_HASHED.fullmatch(value):
        raise invalid(f"{where} must be the raw, non-empty user agent string.")


def _check_click_id(value: object, where: str) -> str | None:
    """The reason a fbc/fbp value is malformed, or None when it is well formed."""
    match = CLICK_ID.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return f"{where} must look like fb.<subdomain index>.<creation time ms>.<value>[.<appendix>]."
    if len(match.group(2)) != 13:
        return f"{where} creation time {match.group(2)} must be Unix milliseconds (13 digits)."
    return None


def _check_fbc(value: object, where: str) -> None:
    reason = _check_click_id(value, where)
    if reason is not None:
        raise invalid(reason, subcode=2804001, title="Click ID Incorrectly Formatted")


def _check_fbp(value: object, where: str) -> None:
    reason = _check_click_id(value, where)
    if reason is not None:
        raise invalid(reason, title="Browser ID Incorrectly Formatted")


USER_DATA_CHECKS: dict[str, Callable[[object, str], None]] = {
    "client_ip_address": _check_ip,
    "client_user_agent": _check_user_agent,
    "fbc": _check_fbc,
    "fbp": _check_fbp,
}


# ---------------------------------------------------------------------------------------------------
# Fault answers.


def fault_error(fault: Fault) -> GraphError | None:
    """The answer a fault mode forces, or None when the request is processed normally."""
    build = FAULT_ERRORS.get(fault.mode)
    return None if build is None else build(retry_seconds(fault))


FAULT_ERRORS: dict[str, Callable[[int | None], GraphError]] = {
    "503": lambda retry: GraphError(
        "Service temporarily unavailable", code=2, status=503, transient=True, retry_after=retry
    ),
    "500": lambda retry: GraphError("An unknown error occurred", code=1, status=500, retry_after=retry),
    "429": lambda retry: GraphError(
        "(#4) Application request limit reached", code=4, status=429, transient=True, retry_after=retry
    ),
    "throttle": lambda retry: GraphError(
        "(#17) User request limit reached", code=17, transient=True, retry_after=retry
    ),
    "transient": lambda retry: GraphError(
        "An unexpected error has occurred. Please retry your request later.",
        code=2,
        status=500,
        transient=True,
        retry_after=retry,
    ),
    "html_502": lambda retry: HtmlError("502 Bad Gateway", code=0, status=502, retry_after=retry),
    "bad_token": lambda retry: bad_token(463, "Error validating access token: Session has expired."),
    "permanent": lambda retry: invalid("The fake platform was told to reject this request."),
}
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def error_response(error: GraphError, trace_id: str, version: str | None) -> Response:
    """The HTTP answer for an error (JSON, or HTML for a proxy error), with Retry-After when set."""
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    if isinstance(error, HtmlError):
        return HTMLResponse(HTML_502, status_code=error.status, headers=headers)
    headers["x-fb-trace-id"] = trace_id
    if version is not None:
        headers["facebook-api-version"] = version
    body = {"error": error.to_json(trace_id)}
    return JSONResponse(body, status_code=error.status, headers=headers)


# ---------------------------------------------------------------------------------------------------
# The fake.


def _trace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


def _masked(body: Any) -> Any:
    if isinstance(body, dict) and "access_token" in body:
        return body | {"access_token": "***"}
    return body


class MetaFake(Fake[ReceivedEvent, RequestRecord, Violation]):
    """A fake Meta CAPI: ``.app`` (ASGI), the contract it enforces, and its thread-safe ledger."""

    modes = FAULT_MODES

    def __init__(
        self,
        *,
        access_token: str,
        pixel_id: str,
        version: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(now)
        self.access_token, self.pixel_id, self.version = access_token, pixel_id, version
        self.app = Starlette(routes=self._routes())

    def event_ids(self) -> list[str | None]:
        """The ``event_id`` of every accepted event, in arrival order (duplicates kept)."""
        return [event.event_id for event in self.received]

    def _violation(self, seq: int, key: str, now: float, until: float, detail: str) -> Violation:
        return Violation("retry_after", seq, key, now, until, detail)

    # -- HTTP ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            *self._admin_routes(),
            Route("/{version}/{pixel_id}/events", self._events, methods=ALL_METHODS),
            Route("/{path:path}", self._unknown_path, methods=ALL_METHODS),
        ]

    async def _events(self, request: Request) -> Response:
        pixel_id, version = request.path_params["pixel_id"], request.path_params["version"]
        call = self._arrive(request, version, pixel_id)
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        try:
            body = self._validate(call, raw)
        except GraphError as error:
            return self._reject(call, raw, error)
        return self._accept(call, body)

    async def _unknown_path(self, request: Request) -> Response:
        seq, fault = self._turn(None, faulty=False)
        call = _Call(seq, request, fault, None, None)
        error = GraphError(f"Unknown path components: {request.url.path}", code=2500)
        return self._reject(call, await request.body(), error)

    def _arrive(self, request: Request, version: str, pixel_id: str) -> _Call:
        seq, fault = self._turn(pixel_id)
        return _Call(seq, request, fault, version, pixel_id)

    def _validate(self, call: _Call, raw: bytes) -> Json:
        """Run the fault mode and the contract checks; return the parsed body of a valid request."""
        forced = fault_error(call.fault)
        if forced is not None:
            raise forced
        version, pixel_id, method = call.version or "", call.pixel_id or "", call.request.method
        if not VERSION.fullmatch(version) or (self.version is not None and version != self.version):
            raise GraphError(f"Unknown path components: /{version}/{pixel_id}/events", code=2500)
        if method != "POST":
            raise no_such_object(pixel_id, method)
        body = parse_json(raw)
        if media_type(call.request) != "application/json" or not isinstance(body, dict):
            raise invalid("The body must be a JSON object sent with Content-Type: application/json.")
        self._check_token(call.request, body)
        if pixel_id != self.pixel_id:
            raise no_such_object(pixel_id, method)
        validate_body(body, self.now())
        return body

    def _check_token(self, request: Request, body: Json) -> None:
        token = body.get("access_token", request.query_params.get("access_token"))
        if not token:
            raise bad_token(message="An access token is required to request this resource.")
        if token != self.access_token:
            raise bad_token(message="Invalid OAuth access token - Cannot parse access token")

    def _reject(self, call: _Call, raw: bytes, error: GraphError) -> Response:
        trace_id = _trace_id()
        self._hold_off(call.pixel_id, error.retry_after)
        html = isinstance(error, HtmlError)
        detail = {"message": HTML_502, "type": "html"} if html else error.to_json(trace_id)
        self._log(call, status=error.status, error=detail, body=parse_json(raw) if raw else None)
        return error_response(error, trace_id, self.version)

    def _accept(self, call: _Call, body: Json) -> Response:
        now, events = self.now(), body["data"]
        entries = [
            _entry(event, seq=call.seq, pixel_id=self.pixel_id, body=body, now=now) for event in events
        ]
        self._accept_all(entries)
        self._log(call, status=200, body=body)
        trace_id = _trace_id()
        answer = {"events_received": len(events), "messages": [], "fbtrace_id": trace_id}
        return JSONResponse(answer, headers={"x-fb-trace-id": trace_id})

    def _log(self, call: _Call, *, status: int | None, error: Json | None = None, body: Any = None) -> None:
        fields = body if isinstance(body, dict) else {}
        data, code = fields.get("data"), fields.get("test_event_code")
        record = RequestRecord(
            seq=call.seq,
            received_at=self.now(),
            method=call.request.method,
            path=call.request.url.path,
            version=call.version,
            pixel_id=call.pixel_id,
            content_type=call.request.headers.get("content-type", ""),
            mode=call.fault.mode,
            status=status,
            error=error,
            n_events=len(data) if isinstance(data, list) else 0,
            test_event_code=code if isinstance(code, str) else None,
            token_in=_token_place(call.request, body),
            body=_masked(body),
        )
        self._note_request(record)


def _entry(event: Json, *, seq: int, pixel_id: str, body: Json, now: float) -> ReceivedEvent:
    return ReceivedEvent(
        seq=seq,
        pixel_id=pixel_id,
        event_id=event.get("event_id"),
        event_name=event["event_name"],
        event_time=event["event_time"],
        test_event_code=body.get("test_event_code"),
        partner_agent=body.get("partner_agent"),
        received_at=now,
        payload_hash=payload_hash(event),
        event=event,
    )


def _token_place(request: Request, body: Any) -> str | None:
    if isinstance(body, dict) and "access_token" in body:
        return "body"
    return "query" if "access_token" in request.query_params else None


def create_meta_fake(
    *, access_token: str, pixel_id: str, version: str | None = None, now: Callable[[], float] = time.time
) -> MetaFake:
    """Build a fake Meta CAPI for one pixel and token; ``version`` pins the accepted Graph version."""
    return MetaFake(access_token=access_token, pixel_id=pixel_id, version=version, now=now)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone with uvicorn until interrupted."""
    description = "Run a fake Meta Conversions API on a loopback port."
    parser = command("meta", description, 9001, FAULT_MODES)
    parser.add_argument("--token", required=True, help="the access token the fake accepts")
    parser.add_argument("--pixel", required=True, help="the pixel (dataset) id the fake accepts")
    parser.add_argument("--version", default=None, help="accept only this Graph version, e.g. v26.0")
    args = parser.parse_args(argv)
    fake = create_meta_fake(access_token=args.token, pixel_id=args.pixel, version=args.version)
    run(fake, args)


if __name__ == "__main__":
    main()
