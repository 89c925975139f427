"""A loopback fake of Reddit's Conversions API v3 that enforces the request contract and records deliveries.

The fake answers ``POST /api/v3/pixels/{pixel_id}/conversion_events`` the way Reddit does (see
``shared/platforms/reddit-pinterest.md`` section 1): all or nothing, so one invalid event rejects the
whole request and nothing from it is recorded. Answers use Reddit's v3 shapes:
``{"data": {"message": "Successfully processed N conversion events."}}`` on success and
``{"error": {"code", "message"[, "fields": [{"field", "message"}]]}}`` on failure (a real v3 400 is
quoted in segmentio/action-destinations reddit-conversions-api/V3-TEST-SCENARIOS.md).

Checked, in this order (faults first, because they stand for the platform's infrastructure):

- fault mode (``set_mode`` or ``POST /_admin/mode``): ok, 503, 500, 429 (Retry-After), timeout, reset,
  permanent (the whole-batch 400 "There were N invalid conversion events. None were processed."),
  bad_token (401), forbidden (403);
- path and method: only POST on the v3 path, another method is 405; any other path is 404, the v2.0 one
  included (real Reddit still takes v2.0, but the router must send v3 only: never both);
- ``Authorization: Bearer <token>``: missing -> 401 "No bearer token provided", wrong -> 401
  "UNAUTHORIZED"; a default HTTP-client ``User-Agent`` -> 429 "Your user agent was automatically
  ratelimited." (Reddit throttles those); another pixel -> 403 "You're not authorized to post
  conversions to Pixel ID {id}.";
- decoding, like Reddit's strict JSON decoder: a JSON object with ``Content-Type: application/json``;
  only known fields at every level (else 400 ``JSON error "unknown field" on field "<name>"``, what
  Reddit answers for e.g. ``test_id`` inside an event) and JSON types (``JSON error "unexpected type
  <type>" on field "<path>"``); ``data.events`` non-empty, at most 1000 (else 400 "Bad Request");
  ``action_source`` present and upper case (else "missing action_source" / "invalid action_source: web");
- per event, collected into the whole-batch 400 with field-scoped messages: ``event_at`` in
  milliseconds (a seconds value is refused: Reddit would file it in 1970), not older than 168 h, not
  more than 7 days ahead (contract choice: Reddit's future limit is unconfirmed); ``type.tracking_type``
  an UPPER_SNAKE enum value, ``custom_event_name`` exactly with CUSTOM and at most 64 characters;
  ``event_source_url`` http(s) and only on WEBSITE events; ``metadata`` (conversion_id a string;
  currency a 3-letter upper-case code and value a number, as a pair and only on types that take them;
  item_count an integer on types that take it; products with an id); ``user`` with email, phone_number,
  external_id, idfa and aaid as SHA-256 lower-case hex (contract choice: Reddit also takes plain PII, the
  router must never send it), ip_address an IP literal or a SHA-256 digest, user_agent, uuid and
  click_id raw (a digest there is refused), uuid ``[<ms>.]<RFC-4122 uuid>``, data_processing_options
  ``{"modes": ["LDU"], "country": "US", "region": "US-CA"}``; at least one match key or click id;
  PHYSICAL_STORE events without click_id, uuid or device ids.

``poison(*conversion_ids)`` makes the fake refuse events with those conversion ids as invalid, so a test
can put one bad event in a batch the adapter considers valid (to watch the dispatcher isolate it).

Fault modes that change the transport: ``timeout`` sleeps ``delay`` seconds, then processes the
request normally (a client that gave up and retries causes a same-id redelivery); ``reset`` aborts the
TCP connection without an answer. The ledger, fault modes, Retry-After checks and admin endpoints are the
shared ones of ``tests/fakes/common.py``.

Run standalone (end-to-end tests): ``python -m tests.fakes.reddit --port 9002 --token T --pixel P``.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
    Ledger,
    bearer,
    command,
    media_type,
    parse_json,
    payload_hash,
    read_body,
    retry_seconds,
    run,
)

FaultMode = Literal["ok", "503", "500", "429", "timeout", "reset", "permanent", "bad_token", "forbidden"]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

PATH = "/api/v3/pixels/{pixel_id}/conversion_events"
MAX_EVENTS = 1000
MAX_AGE_MS = 168 * 3600 * 1000  # [doc] "event_at timestamp must be less than 168h0m0s old"
MAX_AHEAD_MS = 7 * 86400 * 1000  # contract choice: Reddit's limit for future events is unconfirmed
MS_THRESHOLD = 10**12  # an event_at below this is seconds, not milliseconds
CUSTOM_NAME_LIMIT = 64

ACTION_SOURCES = frozenset({"WEBSITE", "APP", "PHYSICAL_STORE", "OTHER"})
TRACKING_TYPES = frozenset(
    {"PAGE_VISIT", "VIEW_CONTENT", "SEARCH", "ADD_TO_CART", "ADD_TO_WISHLIST", "PURCHASE", "LEAD"}
    | {"SIGN_UP", "CUSTOM"}
)
VALUE_TYPES = frozenset({"PURCHASE", "ADD_TO_CART", "ADD_TO_WISHLIST", "LEAD", "SIGN_UP", "CUSTOM"})
ITEM_COUNT_TYPES = frozenset({"PURCHASE", "ADD_TO_CART", "ADD_TO_WISHLIST", "CUSTOM"})
HASHED_KEYS = frozenset({"email", "phone_number", "external_id", "idfa", "aaid"})
MATCH_KEYS = HASHED_KEYS | {"ip_address", "user_agent", "uuid"}
OFFLINE_FORBIDDEN = frozenset({"uuid", "idfa", "aaid"})
DEFAULT_AGENTS = ("python-httpx/", "python-requests/", "python-urllib", "curl/", "go-http-client/", "axios/")

SCHEMA: Json = {
    "": {"data": dict},
    "data": {"events": list, "test_id": str, "partner": str},
    "event": {
        "event_at": int,
        "action_source": str,
        "type": dict,
        "click_id": str,
        "event_source_url": str,
        "metadata": dict,
        "user": dict,
    },
    "type": {"tracking_type": str, "custom_event_name": str},
    "metadata": {"conversion_id": str, "currency": str, "value": float, "item_count": int, "products": list},
    "product": {"id": str, "name": str, "category": str, "quantity": int, "item_price": float},
    "user": {
        **dict.fromkeys(HASHED_KEYS | {"ip_address", "user_agent", "uuid"}, str),
        "screen_dimensions": dict,
        "data_processing_options": dict,
    },
    "screen_dimensions": {"width": int, "height": int},
    "data_processing_options": {"modes": list, "country": str, "region": str},
}
"""Known fields and their JSON types per object, as Reddit's decoder knows them (v3 reference above)."""

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOOKS_HASHED = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
RDT_UUID = re.compile(r"(\d+\.)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CURRENCY = re.compile(r"[A-Z]{3}")
COUNTRY = re.compile(r"[A-Z]{2}")
REGION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")


class RedditError(Exception):
    """One Reddit error answer: status, message, optional field-scoped details and Retry-After."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        fields: Sequence[Json] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.fields, self.retry_after = message, status, list(fields), retry_after

    def to_json(self) -> Json:
        """The v3 ``error`` object."""
        error: Json = {"code": self.status, "message": self.message}
        return error | ({"fields": self.fields} if self.fields else {})


def invalid_events(problems: Sequence[Json], count: int) -> RedditError:
    """Reddit's whole-batch 400: ``count`` invalid events, none processed, one entry per problem."""
    message = f"There were {count} invalid conversion events. None were processed."
    return RedditError(message, fields=problems)


def json_error(kind: str, where: str) -> RedditError:
    """Reddit's strict-decoder 400, e.g. ``JSON error "unknown field" on field "test_id"``."""
    return RedditError(f'JSON error "{kind}" on field "{where}"')


@dataclass(frozen=True)
class ReceivedEvent:
    """One accepted event in the ledger, with the metadata of the request that carried it."""

    seq: int
    pixel_id: str
    conversion_id: str | None
    tracking_type: str
    custom_event_name: str | None
    event_at: int
    action_source: str
    test_id: str | None
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
    pixel_id: str | None
    content_type: str
    user_agent: str
    mode: str
    status: int | None
    error: Json | None
    n_events: int
    test_id: str | None
    bearer: bool
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


@dataclass
class _Ledger(Ledger[ReceivedEvent, RequestRecord, Violation]):
    """The shared ledger plus the conversion ids to refuse (``poison``)."""

    poisoned: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------------
# Decoding: unknown fields and JSON types, as Reddit's strict decoder refuses them (whole request).


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _has_type(value: object, expected: type) -> bool:
    if isinstance(value, bool):
        return False
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def decode(obj: object, kind: str, where: str) -> None:
    """Check one object's fields against SCHEMA[kind], then its known children, recursively."""
    if not isinstance(obj, dict):
        raise json_error(f"unexpected type {_json_type(obj)}", where or "body")
    known: dict[str, type] = SCHEMA[kind]
    for key, value in obj.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            raise json_error("unknown field", key)
        if not _has_type(value, known[key]):
            raise json_error(f"unexpected type {_json_type(value)}", path)
        _decode_child(key, value, path)


def _decode_child(key: str, value: Any, path: str) -> None:
    if key == "events":
        for index, event in enumerate(value):
            decode(event, "event", f"{path}.{index}")
    elif key == "products":
        for index, product in enumerate(value):
            decode(product, "product", f"{path}.{index}")
    elif key in SCHEMA:
        decode(value, key, path)


def validate_body(body: object, now: float, poisoned: Iterable[str] = ()) -> list[Json]:
    """Check a parsed request body; return its events or raise the first RedditError."""
    decode(body, "", "")
    assert isinstance(body, dict)
    data = body.get("data")
    if not isinstance(data, dict):
        raise json_error("missing field", "data")
    events = data.get("events")
    if not isinstance(events, list) or not events:
        raise RedditError("data.events must hold at least one conversion event.")
    if len(events) > MAX_EVENTS:
        raise RedditError("Bad Request")
    if "test_id" in data and not data["test_id"].strip():
        raise RedditError("test_id must not be empty.")
    for event in events:
        _check_action_source(event.get("action_source"))
    _check_events(events, int(now * 1000), frozenset(poisoned))
    return events


def _check_action_source(source: object) -> None:
    if source is None:
        raise RedditError("missing action_source")
    if source not in ACTION_SOURCES:
        raise RedditError(f"invalid action_source: {source}")


def _check_events(events: Sequence[Json], now_ms: int, poisoned: frozenset[str]) -> None:
    problems: list[Json] = []
    bad = 0
    for index, event in enumerate(events):
        found = check_event(event, now_ms, poisoned)
        problems += [{"field": f"$.data.events[{index}].{name}", "message": text} for name, text in found]
        bad += bool(found)
    if problems:
        raise invalid_events(problems, bad)


# ---------------------------------------------------------------------------------------------------
# Per-event contract: pure functions returning (field, message) problems.

Problem = tuple[str, str]


def check_event(event: Json, now_ms: int, poisoned: frozenset[str] = frozenset()) -> list[Problem]:
    """Every problem of one decoded event, as (field, message) pairs."""
    tracking = _tracking_type(event.get("type"))
    return [
        *_check_event_at(event.get("event_at"), now_ms),
        *_check_type(event.get("type")),
        *_check_source_url(event),
        *_check_raw("click_id", event.get("click_id")),
        *_check_metadata(event.get("metadata"), tracking, poisoned),
        *_check_user(event.get("user") or {}),
        *_check_match_keys(event),
        *_check_offline(event),
    ]


def _tracking_type(kind: object) -> str:
    return str(kind.get("tracking_type")) if isinstance(kind, dict) else ""


def _check_event_at(value: object, now_ms: int) -> list[Problem]:
    if not isinstance(value, int):
        return [("event_at", "event_at is required")]
    if value < MS_THRESHOLD:
        return [("event_at", f"event_at {value} must be a Unix epoch timestamp in milliseconds")]
    if value < now_ms - MAX_AGE_MS:
        return [("event_at", "event_at timestamp must be less than 168h0m0s old")]
    if value > now_ms + MAX_AHEAD_MS:
        return [("event_at", "event_at timestamp is too far in the future")]
    return []


def _check_type(kind: object) -> list[Problem]:
    if not isinstance(kind, dict) or "tracking_type" not in kind:
        return [("type.tracking_type", "tracking_type is required")]
    tracking, name = kind["tracking_type"], kind.get("custom_event_name")
    if tracking not in TRACKING_TYPES:
        return [("type.tracking_type", f"invalid tracking_type: {tracking}")]
    if tracking == "CUSTOM" and (not name or len(name) > CUSTOM_NAME_LIMIT):
        return [("type.custom_event_name", "custom_event_name must be 1 to 64 characters for CUSTOM")]
    if tracking != "CUSTOM" and name is not None:
        return [("type.custom_event_name", "event type with custom_event_name must be a CUSTOM event")]
    return []


def _check_source_url(event: Json) -> list[Problem]:
    url = event.get("event_source_url")
    if url is None:
        return []
    if event.get("action_source") != "WEBSITE":
        return [("event_source_url", "event_source_url can only be sent with action_source WEBSITE")]
    if not re.fullmatch(r"https?://\S+", url):
        return [("event_source_url", "event_source_url must be an http(s) URL")]
    return []


def _check_raw(name: str, value: object) -> list[Problem]:
    """A value that must travel raw: non-empty and not a digest."""
    if value is None:
        return []
    if not isinstance(value, str) or not value.strip() or LOOKS_HASHED.fullmatch(value):
        return [(name, f"{name} must be the raw value, not empty or hashed")]
    return []


def _check_metadata(metadata: object, tracking: str, poisoned: frozenset[str]) -> list[Problem]:
    if not isinstance(metadata, dict):
        return []
    problems = _check_value(metadata, tracking)
    conversion_id = metadata.get("conversion_id")
    if conversion_id is not None and not conversion_id.strip():
        problems.append(("metadata.conversion_id", "conversion_id must not be empty"))
    if conversion_id in poisoned:
        problems.append(("metadata.conversion_id", "rejected by the fake platform (poisoned)"))
    if "item_count" in metadata and tracking not in ITEM_COUNT_TYPES:
        problems.append(("metadata.item_count", f"item_count is not accepted on {tracking} events"))
    elif metadata.get("item_count", 0) < 0:
        problems.append(("metadata.item_count", "item_count must not be negative"))
    for index, product in enumerate(metadata.get("products", [])):
        if not product.get("id"):
            problems.append((f"metadata.products[{index}].id", "product id is required"))
    return problems


def _check_value(metadata: Json, tracking: str) -> list[Problem]:
    has_value, has_currency = "value" in metadata, "currency" in metadata
    if not has_value and not has_currency:
        return []
    if tracking not in VALUE_TYPES:
        return [("metadata.value", f"value and currency are not accepted on {tracking} events")]
    if has_value != has_currency:
        return [("metadata.currency", "value and currency must be sent together")]
    if not CURRENCY.fullmatch(metadata["currency"]):
        return [("metadata.currency", "currency must be an ISO 4217 code in upper case")]
    if not math.isfinite(metadata["value"]) or metadata["value"] < 0:
        return [("metadata.value", "value must be a non-negative number")]
    return []


def _check_user(user: Json) -> list[Problem]:
    problems: list[Problem] = []
    for key in sorted(HASHED_KEYS & user.keys()):
        if not SHA256_HEX.fullmatch(user[key]):
            problems.append((f"user.{key}", f"{key} must be a SHA-256 digest (64 lower-case hex characters)"))
    problems += _check_ip(user.get("ip_address"))
    problems += _check_raw("user.user_agent", user.get("user_agent"))
    if "uuid" in user and not RDT_UUID.fullmatch(user["uuid"]):
        problems.append(("user.UUID", "user.UUID: invalid UUID: UUID must be RFC-4122 compliant"))
    problems += _check_options(user.get("data_processing_options"))
    return problems


def _check_ip(value: str | None) -> list[Problem]:
    if value is None or SHA256_HEX.fullmatch(value):
        return []
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [("user.ip_address", "ip_address must be an IP address or its SHA-256 digest")]
    return []


def _check_options(options: Json | None) -> list[Problem]:
    if options is None:
        return []
    problems: list[Problem] = []
    if options.get("modes") != ["LDU"]:
        problems.append(("user.data_processing_options.modes", 'modes must be ["LDU"]'))
    if "country" in options and not COUNTRY.fullmatch(options["country"]):
        problems.append(("user.data_processing_options.country", "country must be ISO 3166-1 alpha-2"))
    if "region" in options and not REGION.fullmatch(options["region"]):
        problems.append(("user.data_processing_options.region", "region must be ISO 3166-2, e.g. US-CA"))
    return problems


def _check_match_keys(event: Json) -> list[Problem]:
    if "click_id" in event or MATCH_KEYS & (event.get("user") or {}).keys():
        return []
    return [("user", "at least one match key or a click_id is required")]


def _check_offline(event: Json) -> list[Problem]:
    if event.get("action_source") != "PHYSICAL_STORE":
        return []
    sent = (OFFLINE_FORBIDDEN & (event.get("user") or {}).keys()) | ({"click_id"} & event.keys())
    return [(key, f"{key} must not be sent with PHYSICAL_STORE events") for key in sorted(sent)]


# ---------------------------------------------------------------------------------------------------
# Fault answers.


def fault_error(fault: Fault, pixel_id: str) -> RedditError | None:
    """The answer a fault mode forces, or None when the request is processed normally."""
    build = FAULT_ERRORS.get(fault.mode)
    return None if build is None else build(retry_seconds(fault), pixel_id)


FAULT_ERRORS: dict[str, Callable[[int | None, str], RedditError]] = {
    "503": lambda retry, _: RedditError("Service Unavailable", status=503, retry_after=retry),
    "500": lambda retry, _: RedditError(
        "The service is currently unavailable. No conversion events were processed.",
        status=500,
        retry_after=retry,
    ),
    "429": lambda retry, _: RedditError(
        "Too many requests/events within timeframe.", status=429, retry_after=retry
    ),
    "permanent": lambda retry, _: invalid_events(
        [{"field": "$.data.events", "message": "the fake platform was told to reject this request"}], 1
    ),
    "bad_token": lambda retry, _: RedditError("UNAUTHORIZED", status=401),
    "forbidden": lambda retry, pixel: RedditError(
        f"You're not authorized to post conversions to Pixel ID {pixel}.", status=403
    ),
}


def error_response(error: RedditError) -> Response:
    """The HTTP answer for an error, with Retry-After when set."""
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return JSONResponse({"error": error.to_json()}, status_code=error.status, headers=headers)


# ---------------------------------------------------------------------------------------------------
# The fake.


def _default_agent(request: Request) -> bool:
    agent = request.headers.get("user-agent", "").strip().lower()
    return not agent or agent.startswith(DEFAULT_AGENTS)


@dataclass(frozen=True)
class _Call:
    """One request on the platform path while it is being answered."""

    seq: int
    request: Request
    fault: Fault
    pixel_id: str | None


class RedditFake(Fake[ReceivedEvent, RequestRecord, Violation]):
    """A fake Reddit CAPI v3: ``.app`` (ASGI), the contract it enforces, and its thread-safe ledger."""

    modes = FAULT_MODES
    _state: _Ledger

    def __init__(
        self,
        *,
        access_token: str,
        pixel_id: str,
        now: Callable[[], float] = time.time,
        strict_user_agent: bool = True,
    ) -> None:
        super().__init__(now)
        self.access_token, self.pixel_id = access_token, pixel_id
        self.strict_user_agent = strict_user_agent
        self.app = Starlette(routes=self._routes())

    def event_ids(self) -> list[str | None]:
        """The ``metadata.conversion_id`` of every accepted event, in arrival order (duplicates kept)."""
        return [event.conversion_id for event in self.received]

    def poison(self, *conversion_ids: str) -> None:
        """Refuse events with these conversion ids as invalid (the whole batch fails, as on Reddit)."""
        with self._cond:
            self._state.poisoned.update(conversion_ids)

    def _ledger(self) -> _Ledger:
        return _Ledger()

    def _violation(self, seq: int, key: str, now: float, until: float, detail: str) -> Violation:
        return Violation("retry_after", seq, key, now, until, detail)

    # -- HTTP ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            *self._admin_routes(),
            Route("/_admin/poison", self._admin_poison, methods=["POST"]),
            Route(PATH, self._events, methods=ALL_METHODS),
            Route("/{path:path}", self._unknown_path, methods=ALL_METHODS),
        ]

    async def _events(self, request: Request) -> Response:
        call = self._arrive(request, request.path_params["pixel_id"])
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        try:
            events = self._validate(call, raw)
        except RedditError as error:
            return self._reject(call, raw, error)
        return self._accept(call, parse_json(raw), events)

    async def _unknown_path(self, request: Request) -> Response:
        seq, fault = self._turn(None, faulty=False)
        call = _Call(seq, request, fault, None)
        return self._reject(call, await request.body(), RedditError("Not Found", status=404))

    def _arrive(self, request: Request, pixel_id: str) -> _Call:
        seq, fault = self._turn(pixel_id)
        return _Call(seq, request, fault, pixel_id)

    def _validate(self, call: _Call, raw: bytes) -> list[Json]:
        """Run the fault mode and the contract checks; return the events of a valid request."""
        forced = fault_error(call.fault, call.pixel_id or "")
        if forced is not None:
            raise forced
        request = call.request
        if request.method != "POST":
            raise RedditError("Method Not Allowed", status=405)
        self._check_auth(request)
        if self.strict_user_agent and _default_agent(request):
            raise RedditError("Your user agent was automatically ratelimited.", status=429)
        if call.pixel_id != self.pixel_id:
            message = f"You're not authorized to post conversions to Pixel ID {call.pixel_id}."
            raise RedditError(message, status=403)
        body = parse_json(raw)
        if media_type(request) != "application/json" or body is None:
            raise RedditError("JSON error: the body must be JSON sent with Content-Type: application/json")
        with self._cond:
            poisoned = set(self._state.poisoned)
        return validate_body(body, self.now(), poisoned)

    def _check_auth(self, request: Request) -> None:
        token = bearer(request)
        if token is None:
            raise RedditError("No bearer token provided", status=401)
        if token != self.access_token:
            raise RedditError("UNAUTHORIZED", status=401)

    def _reject(self, call: _Call, raw: bytes, error: RedditError) -> Response:
        self._hold_off(call.pixel_id, error.retry_after)
        self._log(call, status=error.status, error=error.to_json(), body=parse_json(raw) if raw else None)
        return error_response(error)

    def _accept(self, call: _Call, body: Json, events: list[Json]) -> Response:
        now, test_id = self.now(), body["data"].get("test_id")
        entries = [
            _entry(event, seq=call.seq, pixel_id=self.pixel_id, test_id=test_id, now=now) for event in events
        ]
        self._accept_all(entries)
        self._log(call, status=200, body=body)
        return JSONResponse({"data": {"message": f"Successfully processed {len(events)} conversion events."}})

    def _log(self, call: _Call, *, status: int | None, error: Json | None = None, body: Any = None) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        data = data if isinstance(data, dict) else {}
        events, test_id = data.get("events"), data.get("test_id")
        record = RequestRecord(
            seq=call.seq,
            received_at=self.now(),
            method=call.request.method,
            path=call.request.url.path,
            pixel_id=call.pixel_id,
            content_type=call.request.headers.get("content-type", ""),
            user_agent=call.request.headers.get("user-agent", ""),
            mode=call.fault.mode,
            status=status,
            error=error,
            n_events=len(events) if isinstance(events, list) else 0,
            test_id=test_id if isinstance(test_id, str) else None,
            bearer=bearer(call.request) is not None,
            body=body,
        )
        self._note_request(record)

    # -- admin -----------------------------------------------------------------------------------

    async def _admin_poison(self, request: Request) -> Response:
        payload = parse_json(await request.body())
        ids = payload.get("conversion_ids") if isinstance(payload, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return JSONResponse({"detail": 'expected {"conversion_ids": ["id", ...]}'}, status_code=400)
        self.poison(*ids)
        with self._cond:
            return JSONResponse({"poisoned": sorted(self._state.poisoned)})

    async def _admin_clear(self, request: Request) -> Response:
        self.clear()
        return JSONResponse({"cleared": True})


def _entry(event: Json, *, seq: int, pixel_id: str, test_id: str | None, now: float) -> ReceivedEvent:
    kind, metadata = event["type"], event.get("metadata") or {}
    return ReceivedEvent(
        seq=seq,
        pixel_id=pixel_id,
        conversion_id=metadata.get("conversion_id"),
        tracking_type=kind["tracking_type"],
        custom_event_name=kind.get("custom_event_name"),
        event_at=event["event_at"],
        action_source=event["action_source"],
        test_id=test_id,
        received_at=now,
        payload_hash=payload_hash(event),
        event=event,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone with uvicorn until interrupted."""
    description = "Run a fake Reddit Conversions API v3 on a loopback port."
    parser = command("reddit", description, 9002, FAULT_MODES)
    parser.add_argument("--token", required=True, help="the conversion access token the fake accepts")
    parser.add_argument("--pixel", required=True, help="the pixel id the fake accepts")
    parser.add_argument("--lenient-user-agent", action="store_true", help="accept default client UAs")
    args = parser.parse_args(argv)
    fake = RedditFake(
        access_token=args.token, pixel_id=args.pixel, strict_user_agent=not args.lenient_user_agent
    )
    run(fake, args)


if __name__ == "__main__":
    main()
