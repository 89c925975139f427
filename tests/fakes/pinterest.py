"""A loopback fake of Pinterest's Conversions API (v5): enforces the request contract, records deliveries.

The fake answers ``POST /v5/ad_accounts/{ad_account_id}/events[?test=true]`` the way Pinterest does (see
``shared/platforms/reddit-pinterest.md`` section 2). Pinterest validates in two stages, and so does the fake:

- **Whole request, HTTP 400** ``{"code": 1, "message": "Invalid request: ..."}`` (the message form of
  woocommerce/pinterest-for-woocommerce#967; the numeric code is a contract choice): the body is not a JSON
  object, ``data`` is empty or holds more than 1000 events, an event or ``user_data`` / ``custom_data`` /
  ``contents[]`` item has a key that spec 5.23 does not list (``additionalProperties: false``), a required
  field is missing, a value has the wrong JSON type (``event_time`` not an integer, ``value`` or
  ``item_price`` not a string, a hashed key not a list of strings), ``event_name`` or ``action_source`` is
  not in its lower-case enum, or ``user_data`` has neither ``em``, ``hashed_maids`` nor the pair
  ``client_ip_address`` + ``client_user_agent``. Nothing from such a request is recorded.
- **Per event** (status ``failed`` with an ``error_message``): ``event_time`` older than 7 days ("Given
  timestamp is in the past", the wording Pinterest used in segmentio/action-destinations#2465), in
  milliseconds or more than an hour ahead; a hashed key holding anything but 64 lower-case hex digits; a
  hashed-looking or malformed ``client_ip_address``; a hashed-looking ``client_user_agent`` or
  ``click_id``; a ``value`` / ``item_price`` that is not a decimal; a currency that is not 3 letters; an
  ``opt_out_type`` other than ``LDP``; a ``language`` that is not 2 letters; an ``event_source_url`` that is
  not http(s). The other events of the request are processed and recorded. When any event failed, the
  answer is HTTP 422 ``{"code": 953, "message", "details": ConversionApiResponse}`` (what Pinterest sent in
  #2465), or HTTP 200 with the statuses when the fake is built with ``partial_status=200``: the sources do
  not settle which one Pinterest uses for a partial failure.

Before that: fault modes (``set_mode`` or ``POST /_admin/mode``): ok, 503, 500, 429 (Retry-After), timeout,
reset, permanent, partial (HTTP 200 whose first event is failed) and auth (HTTP 401); a method other than
POST -> 405; ``Authorization: Bearer <token>`` missing or wrong -> 401 ``{"code": 2, "message":
"Authentication failed."}`` (a token in the query string does not count, Pinterest v5 reads only the
header); another ad account -> 403 ``{"code": 29, ...}``; ``test`` other than true/false -> 400. Requests
with ``?test=true`` are validated and answered normally; their events are recorded with ``test=True``
(Pinterest itself records nothing in test mode).

``timeout`` sleeps ``delay`` seconds, then processes the request normally (a slow platform that still
records, so a client that gave up and retries causes a same-id redelivery); ``reset`` aborts the TCP
connection. The ledger, fault modes, Retry-After checks and admin endpoints are the shared ones of
``tests/fakes/common.py``.

Run standalone (end-to-end tests): ``python -m tests.fakes.pinterest --port 9002 --token T --ad-account A``.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import (
    ALL_METHODS,
    ConnectionReset,
    Fake,
    Fault,
    Json,
    bearer,
    command,
    is_int,
    media_type,
    parse_json,
    payload_hash,
    read_body,
    retry_seconds,
    run,
)

FaultMode = Literal["ok", "503", "500", "429", "timeout", "reset", "permanent", "partial", "auth"]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

VERSION = "v5"
MAX_EVENTS = 1000  # [spec] ConversionEvents.data maxItems
MAX_AGE = 7 * 86400  # [S] Amperity: only events of the previous seven days
MAX_AHEAD = 3600  # contract choice: more than an hour ahead is a clock or unit bug
MS_THRESHOLD = 10**11  # an event_time above this is in milliseconds
PARTIAL_MESSAGE = "The action could not be processed properly due to some or all data provided being invalid."

EVENT_NAMES = frozenset(
    {"add_payment_info", "add_to_cart", "add_to_wishlist", "app_install", "checkout", "custom"}
    | {"initiate_checkout", "lead", "page_visit", "search", "signup", "subscribe", "view_category"}
    | {"view_content", "watch_video"}
    | {"app_open", "contact"}  # listed on developers.pinterest.com/docs/conversions/event/
)
ACTION_SOURCES = frozenset({"app_android", "app_ios", "web", "offline"})
REQUIRED = ("event_name", "action_source", "event_time", "event_id", "user_data")
NULLABLE_STRINGS = frozenset(
    {"event_source_url", "partner_name", "app_id", "app_name", "app_version", "device_brand"}
    | {"device_carrier", "device_model", "device_type", "os_version", "language"}
)
EVENT_KEYS = (
    frozenset(REQUIRED) | NULLABLE_STRINGS | {"custom_data", "opt_out", "wifi", "app_info", "device_info"}
)
HASHED_KEYS = frozenset(
    {"em", "hashed_maids", "ph", "ge", "db", "ln", "fn", "ct", "st", "zp", "country", "external_id"}
)
RAW_KEYS = frozenset({"client_ip_address", "client_user_agent", "click_id", "partner_id"})
CUSTOM_STRINGS = frozenset(
    {"currency", "value", "content_name", "content_category", "content_brand", "order_id"}
    | {"search_string", "opt_out_type", "np", "predicted_ltv", "external_measurement_id"}
)
CUSTOM_KEYS = CUSTOM_STRINGS | {"content_ids", "contents", "num_items", "external_measurement_vendor_id"}
CONTENT_STRINGS = frozenset({"id", "item_price", "item_name", "item_category", "item_brand"})
CONTENT_KEYS = CONTENT_STRINGS | {"quantity"}
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOOKS_HASHED = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
DECIMAL = re.compile(r"-?\d+(\.\d+)?")
ACCOUNT_ID = re.compile(r"\d{1,18}")


class PinterestError(Exception):
    """One Pinterest error answer: HTTP status, ``{code, message}`` (+ ``details``), optional Retry-After."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        status: int = 400,
        details: Json | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status
        self.details, self.retry_after = details, retry_after

    def to_json(self) -> Json:
        """The body as Pinterest writes it (``Error``, or ``DetailedError`` with details)."""
        body: Json = {"code": self.code, "message": self.message}
        return body if self.details is None else body | {"details": self.details}


def invalid(detail: str) -> PinterestError:
    """The whole-request 400 for a schema problem."""
    return PinterestError(f"Invalid request: {detail}", code=1)


@dataclass(frozen=True)
class ReceivedEvent:
    """One processed event in the ledger, with the metadata of the request that carried it."""

    seq: int
    ad_account_id: str
    event_id: str
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
    ad_account_id: str | None
    content_type: str
    mode: str
    status: int | None
    error: Json | None
    n_events: int
    n_processed: int
    test: bool
    token_in: str | None
    body: Any


@dataclass(frozen=True)
class Violation:
    """A protocol breach by the client, e.g. a request sent before a Retry-After expired."""

    kind: str
    seq: int
    ad_account_id: str
    received_at: float
    retry_until: float
    detail: str


@dataclass(frozen=True)
class _Call:
    """One request on a platform path while it is being answered."""

    seq: int
    request: Request
    fault: Fault
    ad_account_id: str | None


# ---------------------------------------------------------------------------------------------------
# Stage 1, the whole request: pure functions that raise PinterestError (400).


def _check_keys(obj: Json, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise invalid(f"Additional properties are not allowed ({names} was unexpected) in {where}")


def _object(value: object, where: str) -> Json:
    if not isinstance(value, dict):
        raise invalid(f"{where} must be an object")
    return value


def _strings(obj: Json, keys: frozenset[str], where: str, *, nullable: bool = False) -> None:
    for key in sorted(keys & set(obj)):
        value = obj[key]
        if not (isinstance(value, str) or (nullable and value is None)):
            raise invalid(f"{where}.{key}: {value!r} is not of type 'string'")


def validate_body(body: object) -> list[Json]:
    """Check a parsed request body against the schema; return its events or raise the 400."""
    data = _object(body, "body")
    _check_keys(data, frozenset({"data"}), "body")
    events = data.get("data")
    if not isinstance(events, list) or not events:
        raise invalid("data must be a non-empty array of events")
    if len(events) > MAX_EVENTS:
        raise invalid(f"data holds {len(events)} events; at most {MAX_EVENTS} are allowed per request")
    return [check_event_schema(event, f"data[{index}]") for index, event in enumerate(events)]


def check_event_schema(value: object, where: str) -> Json:
    """One event: known keys, required fields, JSON types and the two enums."""
    event = _object(value, where)
    _check_keys(event, EVENT_KEYS, where)
    missing = [key for key in REQUIRED if key not in event]
    if missing:
        raise invalid(f"{where}: {', '.join(map(repr, missing))} is a required property")
    if not _member(event["event_name"], EVENT_NAMES):
        raise invalid(f"{where}.event_name: {event['event_name']!r} is not one of {sorted(EVENT_NAMES)}")
    if not _member(event["action_source"], ACTION_SOURCES):
        raise invalid(
            f"{where}.action_source: {event['action_source']!r} is not one of {sorted(ACTION_SOURCES)}"
        )
    if not is_int(event["event_time"]):
        raise invalid(f"{where}.event_time: {event['event_time']!r} is not of type 'integer'")
    if not isinstance(event["event_id"], str) or not event["event_id"]:
        raise invalid(f"{where}.event_id must be a non-empty string")
    _strings(event, NULLABLE_STRINGS, where, nullable=True)
    _check_flags(event, where)
    check_user_data_schema(event["user_data"], f"{where}.user_data")
    if event.get("custom_data") is not None:
        check_custom_data_schema(event["custom_data"], f"{where}.custom_data")
    return event


def _member(value: object, allowed: frozenset[str]) -> bool:
    """Enum membership, exact and case-sensitive (``Checkout`` is not ``checkout``)."""
    return isinstance(value, str) and value in allowed


def _check_flags(event: Json, where: str) -> None:
    for key in ("opt_out", "wifi"):
        if key in event and not isinstance(event[key], bool):
            raise invalid(f"{where}.{key}: {event[key]!r} is not of type 'boolean'")
    for key in ("app_info", "device_info"):
        if key in event:
            _object(event[key], f"{where}.{key}")


def check_user_data_schema(value: object, where: str) -> None:
    """``user_data``: known keys, hashed keys as lists of strings, and the anyOf identifier rule."""
    user_data = _object(value, where)
    _check_keys(user_data, HASHED_KEYS | RAW_KEYS, where)
    for key in sorted(HASHED_KEYS & set(user_data)):
        items = user_data[key]
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise invalid(f"{where}.{key}: {items!r} is not of type 'array' of 'string'")
    _strings(user_data, RAW_KEYS, where, nullable=True)
    pair = user_data.get("client_ip_address") and user_data.get("client_user_agent")
    if not (user_data.get("em") or user_data.get("hashed_maids") or pair):
        raise invalid(
            f"{where} is not valid under any of the given schemas (em, hashed_maids, or IP + user agent)"
        )


def check_custom_data_schema(value: object, where: str) -> None:
    """``custom_data``: known keys and JSON types, ``contents[]`` items included."""
    custom = _object(value, where)
    _check_keys(custom, CUSTOM_KEYS, where)
    _strings(custom, CUSTOM_STRINGS, where, nullable=True)
    for key in ("num_items", "external_measurement_vendor_id"):
        if key in custom and not is_int(custom[key]):
            raise invalid(f"{where}.{key}: {custom[key]!r} is not of type 'integer'")
    ids = custom.get("content_ids", [])
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise invalid(f"{where}.content_ids must be an array of strings")
    contents = custom.get("contents", [])
    if not isinstance(contents, list):
        raise invalid(f"{where}.contents must be an array")
    for index, item in enumerate(contents):
        _check_content(item, f"{where}.contents[{index}]")


def _check_content(value: object, where: str) -> None:
    item = _object(value, where)
    _check_keys(item, CONTENT_KEYS, where)
    _strings(item, CONTENT_STRINGS, where)
    if "quantity" in item and not is_int(item["quantity"]):
        raise invalid(f"{where}.quantity: {item['quantity']!r} is not of type 'integer'")


# ---------------------------------------------------------------------------------------------------
# Stage 2, each event: pure functions that return the error_message of a failed event, or None.


def event_error(event: Json, now: float) -> str | None:
    """Why Pinterest would fail this (schema-valid) event, or None when it is processed."""
    checks = (_time_error, _user_data_error, _custom_data_error, _event_fields_error)
    return next((error for check in checks if (error := check(event, now)) is not None), None)


def _time_error(event: Json, now: float) -> str | None:
    value, current = event["event_time"], int(now)
    if value > MS_THRESHOLD or value > now + MAX_AHEAD:
        return (
            "Invalid event_timestamp parameter. Given timestamp is in the future (milliseconds instead of "
            f"seconds?). Current timestamp: {current}, Given event_timestamp: {value}"
        )
    if value < now - MAX_AGE:
        return (
            "Invalid event_timestamp parameter. Given timestamp is in the past. "
            f"Current timestamp: {current}, Given event_timestamp: {value}"
        )
    return None


def _user_data_error(event: Json, now: float) -> str | None:
    user_data: Json = event["user_data"]
    for key in sorted(HASHED_KEYS & set(user_data)):
        if not all(SHA256_HEX.fullmatch(item) for item in user_data[key]):
            return f"Invalid user_data.{key}: values must be SHA-256 hashes (64 lower-case hex characters)."
    ip = user_data.get("client_ip_address")
    if ip is not None and not _raw_ip(ip):
        return "Invalid user_data.client_ip_address: send the raw IPv4 or IPv6 address, not a hash."
    for key in ("client_user_agent", "click_id"):
        value = user_data.get(key)
        if isinstance(value, str) and LOOKS_HASHED.fullmatch(value):
            return f"Invalid user_data.{key}: send it raw, not hashed."
    return None


def _raw_ip(value: str) -> bool:
    if LOOKS_HASHED.fullmatch(value):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _custom_data_error(event: Json, now: float) -> str | None:
    custom: Json = event.get("custom_data") or {}
    prices = [("value", custom.get("value")), ("predicted_ltv", custom.get("predicted_ltv"))]
    prices += [
        (f"contents[{i}].item_price", item.get("item_price"))
        for i, item in enumerate(custom.get("contents", []))
    ]
    for where, price in prices:
        if price is not None and not _decimal(price):
            return f"Invalid custom_data.{where}: {price!r} is not a decimal number."
    currency = custom.get("currency")
    if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency):
        return f"Invalid custom_data.currency: {currency!r} is not an ISO-4217 code."
    opt_out_type = custom.get("opt_out_type")
    if opt_out_type and any(part.strip() != "LDP" for part in opt_out_type.split(",")):
        return f"Invalid custom_data.opt_out_type: {opt_out_type!r}; the only accepted value is LDP."
    return None


def _decimal(text: str) -> bool:
    if not DECIMAL.fullmatch(text):
        return False
    try:
        return math.isfinite(Decimal(text))
    except InvalidOperation:
        return False


def _event_fields_error(event: Json, now: float) -> str | None:
    url, language = event.get("event_source_url"), event.get("language")
    if url is not None and not url.startswith(("http://", "https://")):
        return f"Invalid event_source_url: {url[:100]!r} is not an http(s) URL."
    if language is not None and not re.fullmatch(r"[a-z]{2}", language):
        return f"Invalid language: {language!r} is not a two-character ISO-639-1 code."
    return None


def answer_body(statuses: Sequence[Json]) -> Json:
    """A ``ConversionApiResponse``: counts and one status per event, in request order."""
    processed = sum(1 for status in statuses if status["status"] == "processed")
    return {"num_events_received": len(statuses), "num_events_processed": processed, "events": list(statuses)}


def status_of(error: str | None) -> Json:
    """One ``ConversionApiResponse.events[]`` entry; empty messages are ``""`` as in real answers."""
    if error is None:
        return {"status": "processed", "error_message": "", "warning_message": ""}
    return {"status": "failed", "error_message": error, "warning_message": ""}


# ---------------------------------------------------------------------------------------------------
# Fault answers.


def fault_error(fault: Fault) -> PinterestError | None:
    """The answer a fault mode forces, or None when the request is processed (ok, timeout, partial)."""
    build = FAULT_ERRORS.get(fault.mode)
    return None if build is None else build(retry_seconds(fault))


FAULT_ERRORS: dict[str, Callable[[int | None], PinterestError]] = {
    "503": lambda retry: PinterestError(
        "The endpoint has been ramped down and is currently not accepting any traffic.",
        code=4197,
        status=503,
        retry_after=retry,
    ),
    "500": lambda retry: PinterestError("Internal server error.", code=1, status=500, retry_after=retry),
    "429": lambda retry: PinterestError(
        "You have exceeded your rate limit. Try again later.", code=8, status=429, retry_after=retry
    ),
    "permanent": lambda retry: invalid("The fake platform was told to reject this request."),
    "auth": lambda retry: PinterestError("Authentication failed.", code=2, status=401),
}
FORCED_FAILURE = "The fake platform was told to fail this event."


# ---------------------------------------------------------------------------------------------------
# The fake.


def _token_place(request: Request) -> str | None:
    if "authorization" in request.headers:
        return "header"
    return "query" if "access_token" in request.query_params else None


def _test_flag(request: Request) -> bool:
    value = request.query_params.get("test")
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise invalid(f"test: {value!r} is not of type 'boolean'")
    return value.lower() == "true"


class PinterestFake(Fake[ReceivedEvent, RequestRecord, Violation]):
    """A fake Pinterest Conversions API: ``.app`` (ASGI), the contract it enforces, a thread-safe ledger.

    ``received`` holds the processed events only.
    """

    modes = FAULT_MODES

    def __init__(
        self,
        *,
        access_token: str,
        ad_account_id: str,
        now: Callable[[], float] = time.time,
        partial_status: int = 422,
    ) -> None:
        if partial_status not in (200, 422):
            raise ValueError("partial_status must be 200 or 422")
        super().__init__(now)
        self.access_token, self.ad_account_id = access_token, ad_account_id
        self.partial_status = partial_status
        self.app = Starlette(routes=self._routes())

    def event_ids(self) -> list[str]:
        """The ``event_id`` of every processed event, in arrival order (duplicates kept)."""
        return [event.event_id for event in self.received]

    def _violation(self, seq: int, key: str, now: float, until: float, detail: str) -> Violation:
        return Violation("retry_after", seq, key, now, until, detail)

    # -- HTTP ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            *self._admin_routes(),
            Route(f"/{VERSION}/ad_accounts/{{ad_account_id}}/events", self._events, methods=ALL_METHODS),
            Route("/{path:path}", self._unknown_path, methods=ALL_METHODS),
        ]

    async def _events(self, request: Request) -> Response:
        call = self._arrive(request, request.path_params["ad_account_id"])
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        try:
            events, test = self._validate(call, raw)
        except PinterestError as error:
            return self._reject(call, raw, error)
        return self._answer(call, parse_json(raw), events, test)

    async def _unknown_path(self, request: Request) -> Response:
        seq, fault = self._turn(None, faulty=False)
        call = _Call(seq, request, fault, None)
        error = PinterestError(f"Not found: {request.url.path}", code=404, status=404)
        return self._reject(call, await request.body(), error)

    def _arrive(self, request: Request, ad_account_id: str) -> _Call:
        seq, fault = self._turn(ad_account_id)
        return _Call(seq, request, fault, ad_account_id)

    def _validate(self, call: _Call, raw: bytes) -> tuple[list[Json], bool]:
        """The fault mode, then transport, auth, account and schema checks; the events and the test flag."""
        forced = fault_error(call.fault)
        if forced is not None:
            raise forced
        request, account = call.request, call.ad_account_id or ""
        if request.method != "POST":
            raise PinterestError(f"Method {request.method} is not allowed.", code=405, status=405)
        if bearer(request) != self.access_token:
            raise PinterestError("Authentication failed.", code=2, status=401)
        if not ACCOUNT_ID.fullmatch(account):
            raise invalid(f"ad_account_id: {account!r} does not match '^\\d+$'")
        if account != self.ad_account_id:
            raise PinterestError("You are not permitted to access that resource.", code=29, status=403)
        test = _test_flag(request)
        body = parse_json(raw)
        if media_type(request) != "application/json" or not isinstance(body, dict):
            raise invalid("the body must be a JSON object sent with Content-Type: application/json")
        return validate_body(body), test

    def _reject(self, call: _Call, raw: bytes, error: PinterestError) -> Response:
        self._hold_off(call.ad_account_id, error.retry_after)
        body = parse_json(raw) if raw else None
        self._log(call, status=error.status, error=error.to_json(), body=body)
        headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
        return JSONResponse(error.to_json(), status_code=error.status, headers=headers)

    def _answer(self, call: _Call, body: Json, events: list[Json], test: bool) -> Response:
        """Per-event statuses; processed events are recorded; 200, or partial_status when any failed."""
        now = self.now()
        errors = [event_error(event, now) for event in events]
        forced = call.fault.mode == "partial"
        if forced:
            errors[0] = FORCED_FAILURE
        statuses = [status_of(error) for error in errors]
        entries = [
            self._entry(event, call.seq, test, now)
            for event, error in zip(events, errors, strict=True)
            if error is None
        ]
        self._accept_all(entries)
        answer = answer_body(statuses)
        failed = len(entries) < len(events)
        if failed and not forced and self.partial_status == 422:
            error = PinterestError(PARTIAL_MESSAGE, code=953, status=422, details=answer)
            self._log(call, status=422, error=error.to_json(), body=body, processed=len(entries), test=test)
            return JSONResponse(error.to_json(), status_code=422)
        self._log(call, status=200, body=body, processed=len(entries), test=test)
        return JSONResponse(answer)

    def _entry(self, event: Json, seq: int, test: bool, now: float) -> ReceivedEvent:
        return ReceivedEvent(
            seq=seq,
            ad_account_id=self.ad_account_id,
            event_id=event["event_id"],
            event_name=event["event_name"],
            event_time=event["event_time"],
            action_source=event["action_source"],
            test=test,
            received_at=now,
            payload_hash=payload_hash(event),
            event=event,
        )

    def _log(
        self,
        call: _Call,
        *,
        status: int | None,
        error: Json | None = None,
        body: Any = None,
        processed: int = 0,
        test: bool = False,
    ) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        record = RequestRecord(
            seq=call.seq,
            received_at=self.now(),
            method=call.request.method,
            path=call.request.url.path,
            ad_account_id=call.ad_account_id,
            content_type=call.request.headers.get("content-type", ""),
            mode=call.fault.mode,
            status=status,
            error=error,
            n_events=len(data) if isinstance(data, list) else 0,
            n_processed=processed,
            test=test,
            token_in=_token_place(call.request),
            body=body,
        )
        self._note_request(record)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone with uvicorn until interrupted."""
    description = "Run a fake Pinterest Conversions API (v5) on a loopback port."
    parser = command("pinterest", description, 9002, FAULT_MODES)
    parser.add_argument("--token", required=True, help="the conversion access token the fake accepts")
    parser.add_argument("--ad-account", required=True, help="the ad account id the fake accepts")
    parser.add_argument("--partial-status", type=int, default=422, choices=(200, 422))
    args = parser.parse_args(argv)
    fake = PinterestFake(
        access_token=args.token, ad_account_id=args.ad_account, partial_status=args.partial_status
    )
    run(fake, args)


if __name__ == "__main__":
    main()
