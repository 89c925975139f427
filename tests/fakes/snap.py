"""A loopback fake of Snap's Conversions API v3 that enforces the request contract and records deliveries.

The fake answers ``POST /v3/{asset_id}/events`` and the test endpoint ``POST /v3/{asset_id}/events/validate``
the way Snap documents them (``shared/platforms/meta-tiktok-snap.md`` section 3; Snap's Using the API,
Parameters and Verify Set Up pages; the v3 OpenAPI schema in Snapchat/business-sdk-v3-java). Answers are
Snap's ``EventResponse`` ``{"status": "VALID" | "INVALID", "reason", "event"?}``; the validate endpoint
answers ``ValidateResponse`` ``{"status", "test_event": true, "reason", "event_logs": [{"event", "status",
"errors": {"error_msgs"}, "warnings"}]}``. One invalid event fails a production request and nothing from
it is recorded (``event`` names it); the validate endpoint reports every event and records the valid ones
as test events.

Checked, in this order (faults first, because they stand for the platform's infrastructure):

- fault mode (``set_mode`` or ``POST /_admin/mode``): ok, 503, 500, 429, timeout, reset, permanent,
  bad_token, html_502;
- path: ``/v3/{asset}/events[/validate]``, else 404; a method other than POST -> 405;
- auth: ``access_token`` in the query string equal to the configured token, else 401 (a Bearer header
  alone is not Snap's v3 auth and is refused too);
- asset: the pixel id or the Snap App ID, else 404;
- ``Content-Type: application/json`` and a JSON object body with only ``data`` (no Meta-style
  ``test_event_code``), ``data`` a non-empty list of at most 2,000 events -> else 400;
- per event (400 INVALID with ``event``): known keys; event_name one of Snap's upper-case names;
  ``event_time`` int Unix seconds (not milliseconds, not a string), at most 37 days old and at most one
  day ahead ("Timestamp invalid or out of range"); action_source ``WEB`` / ``MOBILE_APP`` / ``OFFLINE``
  exactly (upper case), web events with ``event_source_url``, app events only to the Snap App ID and with
  ``app_data``, web/offline events only to the pixel; ``data_processing_options`` a list of ``"LDU"``;
  ``user_data`` known keys, hashed keys as SHA-256 lower-case hex (a string or a list) - "Unhashed PII" -,
  ``client_ip_address`` a raw IP ("Invalid hashed IP Address"), user agent, ``sc_click_id``,
  ``sc_cookie1``, ``madid`` and ``idfv`` raw (a 64-hex value is refused), at least a hashed email or
  phone, a madid, or IP plus user agent ("Insufficient PII"); ``custom_data`` known keys, number value,
  3-letter currency, ``contents`` objects, ``custom_fields`` of strings, and PURCHASE with value and
  currency ("Missing price and/or currency in Purchase events").

Contract choices stricter than the documents: unknown keys are refused (Snap's public docs do not say
what it does with them; its v3 SDK refuses them when parsing), and the enums are case-sensitive (Snap's
own SDK example sends ``"purchase"`` / ``"web"``, so Snap may be lenient; the router sends Snap's
documented upper case and the fake holds it to that).

Fault modes that change the transport: ``timeout`` sleeps ``delay`` seconds, then processes the request
normally (a client that gave up and retries causes a same-id redelivery); ``reset`` aborts the TCP
connection without an answer. The ledger, fault modes, Retry-After checks and admin endpoints are the
shared ones of ``tests/fakes/common.py``.

Run standalone (end-to-end tests): ``python -m tests.fakes.snap --port 9003 --token T --pixel P``.
"""

from __future__ import annotations

import ipaddress
import re
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

FaultMode = Literal["ok", "503", "500", "429", "timeout", "reset", "permanent", "bad_token", "html_502"]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

MAX_EVENTS = 2000  # RudderStack MAX_BATCH_SIZE; Tealium's connector limit (Snap states none)
MAX_AGE = 37 * 86400  # [doc] "maximum 37 days back"
MAX_AHEAD = 86400  # contract choice: Snap's future tolerance is unconfirmed
MS_THRESHOLD = 10**10  # an event_time above this is in milliseconds
SUCCESS_REASON = "Events have been processed successfully."

EVENT_NAMES = frozenset(
    {"PAGE_VIEW", "VIEW_CONTENT", "ADD_CART", "ADD_TO_WISHLIST", "SIGN_UP", "SEARCH", "PURCHASE"}
    | {"ADD_BILLING", "START_CHECKOUT", "SUBSCRIBE", "AD_CLICK", "AD_VIEW", "COMPLETE_TUTORIAL"}
    | {"LEVEL_COMPLETE", "ACHIEVEMENT_UNLOCKED", "INVITE", "LOGIN", "SHARE", "RESERVE", "SAVE", "RATE"}
    | {"START_TRIAL", "LIST_VIEW", "SPENT_CREDITS", "APP_OPEN", "APP_INSTALL"}
    | {f"CUSTOM_EVENT_{n}" for n in range(1, 6)}
)
ACTION_SOURCES = frozenset({"WEB", "MOBILE_APP", "OFFLINE"})
EVENT_KEYS = frozenset(
    {"event_name", "event_time", "action_source", "event_id", "event_source_url", "user_data"}
    | {"custom_data", "app_data", "data_processing_options", "opt_out", "integration"}
)
HASHED_KEYS = frozenset({"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"})
RAW_KEYS = frozenset({"client_ip_address", "client_user_agent", "sc_click_id", "sc_cookie1", "madid", "idfv"})
RAW_KEYS |= {"mobile_ad_id", "lead_id", "subscription_id"}
CUSTOM_DATA_KEYS = frozenset(
    {"currency", "value", "content_category", "content_ids", "content_type", "contents", "delivery_category"}
    | {"num_items", "order_id", "search_string", "status", "custom_fields", "brands", "sign_up_method"}
    | {"checkin_date", "travel_end", "travel_start", "suggested_destinations", "destination_airport"}
    | {"country", "city", "region", "neighborhood", "departing_departure_date", "departing_arrival_date"}
    | {"num_adults", "origin_airport", "returning_departure_date", "returning_arrival_date", "num_children"}
    | {"hotel_score", "postal_code", "num_infants", "preferred_neighborhoods", "preferred_star_ratings"}
    | {"suggested_hotels"}
)
CONTENT_KEYS = frozenset({"id", "quantity", "item_price", "delivery_category", "brand"})
APP_DATA_KEYS = frozenset(
    {"app_id", "advertiser_tracking_enabled", "application_tracking_enabled", "extinfo", "campaign_ids"}
    | {"install_referrer", "installer_package", "url_schemes", "windows_attribution_id"}
)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOOKS_HASHED = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
CURRENCY = re.compile(r"[A-Za-z]{3}")
NUMBER_TEXT = re.compile(r"-?\d+(\.\d+)?")
PATH = re.compile(r"/(?P<version>[^/]+)/(?P<asset>[^/]+)/events(?P<validate>/validate)?/?")


class SnapError(Exception):
    """One refusal: an HTTP status, Snap's ``reason``, the offending event index and a Retry-After."""

    def __init__(
        self,
        reason: str,
        *,
        status: int = 400,
        event: int | None = None,
        retry_after: int | None = None,
        html: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason, self.status, self.event = reason, status, event
        self.retry_after, self.html = retry_after, html

    def to_json(self) -> Json:
        """Snap's EventResponse for an error (``event`` only when one event caused it)."""
        body: Json = {"status": "INVALID", "reason": self.reason}
        return body if self.event is None else body | {"event": self.event}


@dataclass(frozen=True)
class ReceivedEvent:
    """One accepted event in the ledger, with the metadata of the request that carried it."""

    seq: int
    asset_id: str
    event_id: str | None
    event_name: str
    event_time: int
    action_source: str
    test: bool
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
    asset_id: str | None
    validate: bool
    content_type: str
    mode: str
    status: int | None
    error: Json | None
    n_events: int
    token_in: str | None
    body: Any


@dataclass(frozen=True)
class Violation:
    """A protocol breach by the client, e.g. a request sent before a Retry-After expired."""

    kind: str
    seq: int
    asset_id: str
    received_at: float
    retry_until: float
    detail: str


@dataclass(frozen=True)
class _Call:
    """One request on a platform path while it is being answered."""

    seq: int
    request: Request
    fault: Fault
    asset_id: str | None
    validate: bool


@dataclass(frozen=True)
class Assets:
    """The asset ids the fake serves: the pixel (web, offline) and the optional Snap App ID (app)."""

    pixel_id: str
    snap_app_id: str | None = None

    def kind(self, asset_id: str) -> str | None:
        """``pixel``, ``app`` or None for an unknown asset."""
        if asset_id == self.pixel_id:
            return "pixel"
        return "app" if self.snap_app_id is not None and asset_id == self.snap_app_id else None


# ---------------------------------------------------------------------------------------------------
# Contract checks: pure functions that raise SnapError (``event`` is set by ``check_events``).


def _check_keys(obj: Json, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise SnapError(f"{where}: unknown field(s) {', '.join(unknown)}")


def validate_body(body: Json) -> list[Json]:
    """Check a parsed request body's envelope; return its events (each is checked by ``check_events``)."""
    _check_keys(body, frozenset({"data"}), "body")
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise SnapError("data must be a non-empty array of events")
    if len(data) > MAX_EVENTS:
        raise SnapError(f"data holds {len(data)} events; at most {MAX_EVENTS} are allowed per request")
    return data


def check_events(data: Sequence[object], asset_kind: str, now: float) -> list[SnapError | None]:
    """The problem of each event, in order (None for a valid one)."""
    problems: list[SnapError | None] = []
    for index, event in enumerate(data):
        try:
            check_event(event, f"data[{index}]", asset_kind, now)
        except SnapError as error:
            error.event = index
            problems.append(error)
        else:
            problems.append(None)
    return problems


def check_event(event: object, where: str, asset_kind: str, now: float) -> None:
    """Check one event object against the contract."""
    if not isinstance(event, dict):
        raise SnapError(f"{where} must be an object")
    _check_keys(event, EVENT_KEYS, where)
    missing = [key for key in ("event_name", "event_time", "action_source", "user_data") if key not in event]
    if missing:
        raise SnapError(f"{where}: missing required field(s) {', '.join(missing)}")
    if event["event_name"] not in EVENT_NAMES:
        raise SnapError(f"{where}.event_name {event['event_name']!r} is not a Snap event name (upper case)")
    check_event_time(event["event_time"], where, now)
    _check_action_source(event, where, asset_kind)
    _check_optional_fields(event, where)
    check_user_data(event["user_data"], f"{where}.user_data")
    _check_custom_data(event.get("custom_data", {}), event["event_name"], f"{where}.custom_data")


def check_event_time(value: object, where: str, now: float) -> None:
    """``event_time``: int Unix seconds, at most 37 days old, not milliseconds, not far ahead."""
    if not is_int(value):
        raise SnapError(f"Timestamp invalid or out of range: {where}.event_time must be an integer (seconds)")
    assert isinstance(value, int)
    if value > MS_THRESHOLD:
        raise SnapError(f"Timestamp invalid or out of range: {where}.event_time {value} is not in seconds")
    if value < now - MAX_AGE:
        raise SnapError(f"Timestamp invalid or out of range: {where}.event_time {value} is over 37 days old")
    if value > now + MAX_AHEAD:
        raise SnapError(f"Timestamp invalid or out of range: {where}.event_time {value} is in the future")


def _check_action_source(event: Json, where: str, asset_kind: str) -> None:
    source = event["action_source"]
    if source not in ACTION_SOURCES:
        raise SnapError(f"{where}.action_source must be one of {', '.join(sorted(ACTION_SOURCES))}")
    if (source == "MOBILE_APP") != (asset_kind == "app"):
        owner = "Snap App ID" if source == "MOBILE_APP" else "pixel"
        raise SnapError(f"{where}: {source} events must be sent to the {owner}")
    if source == "WEB" and not event.get("event_source_url"):
        raise SnapError(f"{where}: missing required field event_source_url for WEB events")
    if source == "MOBILE_APP":
        _check_app_data(event.get("app_data"), f"{where}.app_data")


def _check_app_data(app_data: object, where: str) -> None:
    if not isinstance(app_data, dict):
        raise SnapError(f"{where} is required for MOBILE_APP events")
    _check_keys(app_data, APP_DATA_KEYS, where)
    extinfo = app_data.get("extinfo")
    if not isinstance(extinfo, list) or len(extinfo) != 16 or not all(isinstance(x, str) for x in extinfo):
        raise SnapError(f"{where}.extinfo must be a list of 16 strings")
    if extinfo[0] not in ("a2", "i2"):
        raise SnapError(f"{where}.extinfo[0] must be a2 (Android) or i2 (iOS)")
    if app_data.get("advertiser_tracking_enabled") not in (0, 1):
        raise SnapError(f"{where}.advertiser_tracking_enabled must be 0 or 1")


def _check_optional_fields(event: Json, where: str) -> None:
    for key in ("event_id", "event_source_url", "integration"):
        if key in event and (not isinstance(event[key], str) or not event[key]):
            raise SnapError(f"{where}.{key} must be a non-empty string")
    if "event_source_url" in event and not event["event_source_url"].startswith(("http://", "https://")):
        raise SnapError(f"{where}.event_source_url must start with http:// or https://")
    if "opt_out" in event and not isinstance(event["opt_out"], bool):
        raise SnapError(f"{where}.opt_out must be a boolean")
    options = event.get("data_processing_options", [])
    if not isinstance(options, list) or any(option != "LDU" for option in options):
        raise SnapError(f'{where}.data_processing_options must be [] or ["LDU"]')


def check_user_data(user_data: object, where: str) -> None:
    """``user_data``: known keys, identifiers hashed, IP / user agent / click id / cookie raw, enough PII."""
    if not isinstance(user_data, dict) or not user_data:
        raise SnapError(f"Insufficient PII: {where} must be a non-empty object")
    _check_keys(user_data, HASHED_KEYS | RAW_KEYS, where)
    for key, value in user_data.items():
        check = _check_hashed if key in HASHED_KEYS else RAW_CHECKS.get(key, _check_raw)
        check(value, f"{where}.{key}")
    pair = {"client_ip_address", "client_user_agent"} <= user_data.keys()
    if not ({"em", "ph", "madid", "mobile_ad_id"} & user_data.keys() or pair):
        raise SnapError(f"Insufficient PII: {where} needs em, ph, madid, or IP address and user agent")


def _check_hashed(value: object, where: str) -> None:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and SHA256_HEX.fullmatch(item) for item in items):
        raise SnapError(f"Unhashed PII: {where} must be SHA-256 hex digests (64 lower-case characters)")


def _check_raw(value: object, where: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SnapError(f"{where} must be a non-empty string")
    if LOOKS_HASHED.fullmatch(value):
        raise SnapError(f"{where} must be the raw value, not a hash")


def _check_ip(value: object, where: str) -> None:
    if not isinstance(value, str) or LOOKS_HASHED.fullmatch(value):
        raise SnapError(f"Invalid hashed IP Address: {where} must be the raw IP address in v3")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise SnapError(f"{where} {value!r} is not a valid IPv4 or IPv6 address") from None


RAW_CHECKS: dict[str, Callable[[object, str], None]] = {"client_ip_address": _check_ip}


def _check_custom_data(custom: object, event_name: str, where: str) -> None:
    if not isinstance(custom, dict):
        raise SnapError(f"{where} must be an object")
    _check_keys(custom, CUSTOM_DATA_KEYS, where)
    value, currency = custom.get("value"), custom.get("currency")
    if value is not None and not _is_amount(value):
        raise SnapError(f"{where}.value must be a number")
    if currency is not None and (not isinstance(currency, str) or not CURRENCY.fullmatch(currency)):
        raise SnapError(f"{where}.currency must be a 3-letter ISO 4217 code")
    if "num_items" in custom and not is_int(custom["num_items"]):
        raise SnapError(f"{where}.num_items must be an integer")
    _check_contents(custom.get("contents", []), f"{where}.contents")
    _check_strings(custom.get("custom_fields", {}), f"{where}.custom_fields")
    if event_name == "PURCHASE" and (value is None or currency is None):
        raise SnapError(f"Missing price and/or currency in Purchase events ({where})")


def _is_amount(value: object) -> bool:
    """A number, or a number written as a string (Snap's own example sends "value": "10")."""
    return is_number(value) or (isinstance(value, str) and NUMBER_TEXT.fullmatch(value) is not None)


def _check_contents(contents: object, where: str) -> None:
    if not isinstance(contents, list) or not all(isinstance(item, dict) for item in contents):
        raise SnapError(f"{where} must be a list of objects")
    for index, item in enumerate(contents):
        _check_keys(item, CONTENT_KEYS, f"{where}[{index}]")


def _check_strings(fields: object, where: str) -> None:
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise SnapError(f"{where} must be an object of strings")


# ---------------------------------------------------------------------------------------------------
# Fault answers.


def fault_error(fault: Fault) -> SnapError | None:
    """The answer a fault mode forces, or None when the request is processed normally."""
    build = FAULT_ERRORS.get(fault.mode)
    return None if build is None else build(retry_seconds(fault))


FAULT_ERRORS: dict[str, Callable[[int | None], SnapError]] = {
    "503": lambda retry: SnapError("Service unavailable", status=503, retry_after=retry),
    "500": lambda retry: SnapError("Internal server error", status=500, retry_after=retry),
    "429": lambda retry: SnapError("Too many requests", status=429, retry_after=retry),
    "html_502": lambda retry: SnapError("502 Bad Gateway", status=502, retry_after=retry, html=True),
    "bad_token": lambda retry: SnapError("Invalid access token", status=401),
    "permanent": lambda retry: SnapError("The fake platform was told to reject this request."),
}
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def error_response(error: SnapError) -> Response:
    """The HTTP answer for an error (Snap's JSON, or HTML for a proxy error), with Retry-After when set."""
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    if error.html:
        return HTMLResponse(HTML_502, status_code=error.status, headers=headers)
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


# ---------------------------------------------------------------------------------------------------
# The fake.


def _event_log(index: int, problem: SnapError | None) -> Json:
    """One ``event_logs`` entry of the validate endpoint."""
    if problem is None:
        return {"event": index, "status": "VALID", "errors": {}, "warnings": []}
    return {"event": index, "status": "INVALID", "errors": {"error_msgs": [problem.reason]}, "warnings": []}


class SnapFake(Fake[ReceivedEvent, RequestRecord, Violation]):
    """A fake Snap CAPI v3: ``.app`` (ASGI), the contract it enforces, and its thread-safe ledger.

    ``received`` holds test events too (from the validate endpoint), flagged ``test``.
    """

    modes = FAULT_MODES

    def __init__(
        self,
        *,
        access_token: str,
        pixel_id: str,
        snap_app_id: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(now)
        self.access_token = access_token
        self.assets = Assets(pixel_id, snap_app_id)
        self.app = Starlette(routes=self._routes())

    def event_ids(self) -> list[str | None]:
        """The ``event_id`` of every accepted event, in arrival order (duplicates kept)."""
        return [event.event_id for event in self.received]

    def _violation(self, seq: int, key: str, now: float, until: float, detail: str) -> Violation:
        return Violation("retry_after", seq, key, now, until, detail)

    # -- HTTP ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [*self._admin_routes(), Route("/{path:path}", self._platform, methods=ALL_METHODS)]

    async def _platform(self, request: Request) -> Response:
        match = PATH.fullmatch(request.url.path)
        asset = match["asset"] if match else None
        call = self._arrive(request, asset, bool(match and match["validate"]))
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        try:
            body, kind = self._validate(call, match, raw)
        except SnapError as error:
            return self._reject(call, raw, error)
        return self._answer(call, raw, body, kind)

    def _arrive(self, request: Request, asset: str | None, validate: bool) -> _Call:
        seq, fault = self._turn(asset)
        return _Call(seq, request, fault, asset, validate)

    def _validate(self, call: _Call, match: re.Match[str] | None, raw: bytes) -> tuple[Json, str]:
        """Run the fault mode and the request-level checks; return the body and the asset kind."""
        forced = fault_error(call.fault)
        if forced is not None:
            raise forced
        if match is None or match["version"] != "v3":
            raise SnapError(f"Not found: {call.request.url.path}", status=404)
        if call.request.method != "POST":
            raise SnapError(f"Method {call.request.method} not allowed", status=405)
        self._check_token(call.request)
        kind = self.assets.kind(match["asset"])
        if kind is None:
            raise SnapError(f"Asset not found: {match['asset']}", status=404)
        body = parse_json(raw)
        if media_type(call.request) != "application/json" or not isinstance(body, dict):
            raise SnapError("The body must be a JSON object sent with Content-Type: application/json")
        validate_body(body)
        return body, kind

    def _check_token(self, request: Request) -> None:
        token = request.query_params.get("access_token")
        if not token:
            raise SnapError("Unauthorized: the access_token query parameter is required", status=401)
        if token != self.access_token:
            raise SnapError("Invalid access token", status=401)

    def _answer(self, call: _Call, raw: bytes, body: Json, kind: str) -> Response:
        """Check every event: one invalid event fails a production request, nothing of it recorded."""
        problems = check_events(body["data"], kind, self.now())
        if call.validate:
            return self._answer_validate(call, body, problems)
        first = next((problem for problem in problems if problem is not None), None)
        if first is not None:
            return self._reject(call, raw, first)
        self._record(call, body["data"])
        self._log(call, status=200, body=body)
        return JSONResponse({"status": "VALID", "reason": SUCCESS_REASON})

    def _answer_validate(self, call: _Call, body: Json, problems: list[SnapError | None]) -> Response:
        """The test endpoint: every event reported, the valid ones recorded as test events."""
        logs = [_event_log(index, problem) for index, problem in enumerate(problems)]
        valid = [event for event, problem in zip(body["data"], problems, strict=True) if problem is None]
        self._record(call, valid)
        invalid = len(valid) < len(problems)
        answer: Json = {
            "status": "INVALID" if invalid else "VALID",
            "test_event": True,
            "reason": "Some events are invalid" if invalid else "All events are valid",
            "event_logs": logs,
        }
        status = 400 if invalid else 200
        self._log(call, status=status, body=body, error=answer if invalid else None)
        return JSONResponse(answer, status_code=status)

    def _record(self, call: _Call, events: list[Json]) -> None:
        now = self.now()
        entries = [_entry(event, call=call, now=now) for event in events]
        self._accept_all(entries)

    def _reject(self, call: _Call, raw: bytes, error: SnapError) -> Response:
        self._hold_off(call.asset_id, error.retry_after)
        detail = {"status": "html", "reason": HTML_502} if error.html else error.to_json()
        self._log(call, status=error.status, error=detail, body=parse_json(raw) if raw else None)
        return error_response(error)

    def _log(self, call: _Call, *, status: int | None, error: Json | None = None, body: Any = None) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        record = RequestRecord(
            seq=call.seq,
            received_at=self.now(),
            method=call.request.method,
            path=call.request.url.path,
            asset_id=call.asset_id,
            validate=call.validate,
            content_type=call.request.headers.get("content-type", ""),
            mode=call.fault.mode,
            status=status,
            error=error,
            n_events=len(data) if isinstance(data, list) else 0,
            token_in=_token_place(call.request),
            body=body,
        )
        self._note_request(record)


def _entry(event: Json, *, call: _Call, now: float) -> ReceivedEvent:
    return ReceivedEvent(
        seq=call.seq,
        asset_id=call.asset_id or "",
        event_id=event.get("event_id"),
        event_name=event["event_name"],
        event_time=event["event_time"],
        action_source=event["action_source"],
        test=call.validate,
        received_at=now,
        payload_hash=payload_hash(event),
        event=event,
    )


def _token_place(request: Request) -> str | None:
    if "access_token" in request.query_params:
        return "query"
    return "header" if "authorization" in request.headers else None


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone with uvicorn until interrupted."""
    description = "Run a fake Snap Conversions API v3 on a loopback port."
    parser = command("snap", description, 9003, FAULT_MODES)
    parser.add_argument("--token", required=True, help="the access token the fake accepts")
    parser.add_argument("--pixel", required=True, help="the Snap Pixel id the fake serves")
    parser.add_argument("--snap-app-id", default=None, help="the Snap App ID the fake serves (app events)")
    args = parser.parse_args(argv)
    fake = SnapFake(access_token=args.token, pixel_id=args.pixel, snap_app_id=args.snap_app_id)
    run(fake, args)


if __name__ == "__main__":
    main()
