"""A loopback fake of TikTok's Events API 2.0 that enforces the request contract and records deliveries.

The fake answers ``POST /open_api/v1.3/event/track/`` the way the Business API does (see
``shared/platforms/meta-tiktok-snap.md`` section 2): almost every answer is HTTP 200 and the outcome is
the body's ``code`` (``{"code", "message", "request_id", "data"}``, 0 = OK). One invalid event rejects
the whole request (code 40002, the message naming the event as ``Batch.<i>.<field>``) and nothing from
it is recorded.

Checked, in this order (faults first, because they stand for the platform's infrastructure):

- fault mode (``set_mode`` or ``POST /_admin/mode``): ok, 503, 500, 429, 40100 (HTTP 200 + code 40100),
  40002 (HTTP 200 + code 40002), permanent (code 40001), bad_token (code 40105), timeout, reset;
- path: another API version or path -> HTTP 404 with code 40400 (shape not confirmed);
- ``Access-Token`` header equal to the token, no ``Bearer`` prefix -> else 40105;
- ``Content-Type: application/json`` and a JSON object body -> else 40002;
- body: known top-level keys; ``event_source`` exactly ``web`` (lower case); ``event_source_id`` the
  pixel code (else 40001 "No permission to operate pixel code"); ``data`` 1 to 1,000 events;
- per event: known keys; ``event`` a non-empty string, and a standard name only in its exact case
  ("purchase" for "Purchase" is refused: TikTok would silently count it as a custom event);
  ``event_time`` an int in seconds (not milliseconds), at most 7 days old and 1 day ahead (TikTok's age
  limit is unconfirmed; 7 days is the contract, as in the adapter); ``event_id`` a string;
  ``limited_data_use`` a bool; ``page.url`` / ``page.referrer`` http(s) URLs;
- ``user``: known keys; email, phone and external_id SHA-256 digests (a string or a list);
  first_name, last_name and zip_code digests; country, city, state, ip, user_agent, locale, ttclid
  and ttp raw (a digest there is refused); ip a valid IPv4/IPv6 literal;
- ``properties``: value a number, currency three upper-case letters, content_type ``product`` or
  ``product_group``, contents[] with known keys and a string content_id, num_items an int; other
  keys are custom properties and pass.

Unknown keys: TikTok itself ignores them (RudderStack sends ``partner_name`` inside events), so a
misspelt key is silently lost there. The fake is stricter on purpose and refuses them (except custom
keys under ``properties``).

Run standalone (end-to-end tests): ``python -m tests.fakes.tiktok --port 9002 --token T --pixel P``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
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

FaultMode = Literal["ok", "503", "500", "429", "40100", "40002", "permanent", "bad_token", "timeout", "reset"]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

VERSION = "v1.3"
TRACK_PATH = f"/open_api/{VERSION}/event/track/"
MAX_EVENTS = 1000  # [doc] more than 1,000 events: the whole request is rejected
MAX_AGE = 7 * 86400  # contract: TikTok's own limit is unconfirmed; the adapter refuses older events too
MAX_AHEAD = 86400  # contract: an event_time more than a day ahead is a clock or unit bug
MS_THRESHOLD = 10**10  # an event_time above this is in milliseconds

BODY_KEYS = frozenset({"event_source", "event_source_id", "data", "test_event_code", "partner_name"})
EVENT_SOURCES = frozenset({"web", "app", "offline", "crm"})
EVENT_KEYS = frozenset({"event", "event_time", "event_id", "user", "properties", "page", "limited_data_use"})
HASHED_LISTS = frozenset({"email", "phone", "external_id"})
HASHED_SCALARS = frozenset({"first_name", "last_name", "zip_code"})
RAW_TEXT = frozenset({"city", "state", "ttclid", "ttp", "user_agent", "locale"})
USER_KEYS = HASHED_LISTS | HASHED_SCALARS | RAW_TEXT | {"country", "ip"}
CONTENT_KEYS = frozenset(
    {"content_id", "content_name", "content_category", "brand", "price", "quantity", "content_type"}
)
STRING_PROPERTIES = ("order_id", "search_string", "query", "description", "shop_id")
STANDARD_EVENTS = frozenset(
    {"ViewContent", "ClickButton", "Search", "AddToWishlist", "AddToCart", "InitiateCheckout"}
    | {"AddPaymentInfo", "CompletePayment", "PlaceAnOrder", "Contact", "Download", "SubmitForm"}
    | {"CompleteRegistration", "Subscribe", "Purchase", "Lead", "ApplicationApproval", "SubmitApplication"}
    | {"CustomizeProduct", "FindLocation", "Schedule", "StartTrial", "Pageview"}
)
STANDARD_BY_LOWER = {name.lower(): name for name in STANDARD_EVENTS}
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOOKS_HASHED = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
HTML_503 = "<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>"


class TikTokError(Exception):
    """One Business API answer other than success: the body code, HTTP status and optional Retry-After."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        html: bool = False,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.retry_after, self.html = retry_after, html


def invalid(detail: str) -> TikTokError:
    """TikTok's 40002 invalid-parameter answer (HTTP 200)."""
    return TikTokError(40002, detail)


@dataclass(frozen=True)
class ReceivedEvent:
    """One accepted event in the ledger, with the metadata of the request that carried it."""

    seq: int
    pixel_code: str
    event_id: str | None
    event_name: str
    event_time: int
    test_event_code: str | None
    limited_data_use: bool
    received_at: float
    payload_hash: str
    event: Json


@dataclass(frozen=True)
class RequestRecord:
    """One request seen on a platform path, with its answer (``status`` None for a reset)."""

    seq: int
    received_at: float
    method: str
    path: str
    mode: str
    status: int | None
    code: int | None
    message: str | None
    n_events: int
    test_event_code: str | None
    body: Any


@dataclass(frozen=True)
class Violation:
    """A protocol breach by the client, e.g. a request sent before a Retry-After expired."""

    kind: str
    seq: int
    pixel_code: str
    received_at: float
    retry_until: float
    detail: str


# ---------------------------------------------------------------------------------------------------
# Contract checks: pure functions that raise TikTokError.


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise invalid(f"{where}: unknown parameter(s) {', '.join(unknown)}.")


def check_auth(headers: Mapping[str, str], token: str) -> None:
    """``Access-Token: <token>`` exactly: a missing, wrong or ``Bearer``-prefixed token is 40105."""
    given = headers.get("access-token")
    if given is None and headers.get("authorization", "").lower().startswith("bearer"):
        raise TikTokError(
            40105, "Access-Token header is missing; an Authorization: Bearer header is ignored."
        )
    if given != token:
        raise TikTokError(40105, "The access token is invalid or has been revoked.")


def validate_body(body: Any, pixel_code: str, now: float) -> list[Json]:
    """Check a parsed request body; return its events or raise the first TikTokError."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    _check_keys(body, BODY_KEYS, "body")
    _check_source(body, pixel_code)
    for key in ("test_event_code", "partner_name"):
        if key in body and not _is_text(body[key]):
            raise invalid(f"{key}: Not a valid string")
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise invalid("data: must be a non-empty array of events.")
    if len(data) > MAX_EVENTS:
        raise invalid(f"data: {len(data)} events; at most {MAX_EVENTS} are allowed per request.")
    for index, event in enumerate(data):
        check_event(event, f"Batch.{index}", now)
    return data


def _check_source(body: Json, pixel_code: str) -> None:
    source = body.get("event_source")
    if source not in EVENT_SOURCES:
        raise invalid(f"event_source: {source!r} is not one of app, crm, offline, web (lower case).")
    if source != "web":
        raise invalid(f"event_source: this fake serves the web pixel {pixel_code} only.")
    if body.get("event_source_id") != pixel_code:
        raise TikTokError(40001, f"No permission to operate pixel code: {body.get('event_source_id')}")


def check_event(event: object, where: str, now: float) -> None:
    """Check one event object against the contract."""
    if not isinstance(event, dict):
        raise invalid(f"{where}: must be an object.")
    _check_keys(event, EVENT_KEYS, where)
    check_event_name(event.get("event"), f"{where}.event")
    check_event_time(event.get("event_time"), f"{where}.event_time", now)
    if "event_id" in event and not _is_text(event["event_id"]):
        raise invalid(f"Invalid value for {where}.event_id: not a valid string.")
    if "limited_data_use" in event and not isinstance(event["limited_data_use"], bool):
        raise invalid(f"{where}.limited_data_use: must be a boolean.")
    if "user" in event:
        check_user(event["user"], f"{where}.user")
    if "properties" in event:
        check_properties(event["properties"], f"{where}.properties")
    if "page" in event:
        _check_page(event["page"], f"{where}.page")


def check_event_name(name: object, where: str) -> None:
    """A non-empty string; a standard event name only in its exact (case-sensitive) spelling."""
    if not _is_text(name):
        raise invalid(f"{where}: must be a non-empty string.")
    assert isinstance(name, str)
    standard = STANDARD_BY_LOWER.get(name.lower())
    if standard is not None and standard != name:
        raise invalid(
            f"{where}: {name!r} is not a standard event; event names are case-sensitive ({standard})."
        )


def check_event_time(value: object, where: str, now: float) -> None:
    """Unix seconds as an int, neither milliseconds nor outside the accepted window."""
    if not is_int(value):
        raise invalid(f"{where}: must be an integer (Unix seconds).")
    assert isinstance(value, int)
    if value > MS_THRESHOLD:
        raise invalid(f"{where}: {value} looks like milliseconds; send Unix seconds.")
    if value > now + MAX_AHEAD:
        raise invalid(f"{where}: {value} is in the future.")
    if value < now - MAX_AGE:
        raise invalid(f"{where}: {value} is older than 7 days.")


def check_user(user: object, where: str) -> None:
    """``user``: known keys, identifiers hashed, IP / user agent / click id / cookie raw."""
    if not isinstance(user, dict):
        raise invalid(f"{where}: must be an object.")
    _check_keys(user, USER_KEYS, where)
    for key, value in user.items():
        USER_CHECKS.get(key, _check_raw_text)(value, f"{where}.{key}")


def _check_digest(value: object, where: str) -> None:
    if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise invalid(f"{where}: must be SHA-256 hashed (64 lower-case hex characters), got {value!r}.")


def _check_digests(value: object, where: str) -> None:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise invalid(f"{where}: must not be empty.")
    for index, item in enumerate(items):
        _check_digest(item, f"{where}.{index}" if isinstance(value, list) else where)


def _check_raw_text(value: object, where: str) -> None:
    if not _is_text(value) or LOOKS_HASHED.fullmatch(str(value)):
        raise invalid(f"{where}: must be the raw, unhashed value.")


def _check_country(value: object, where: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{2}", value):
        raise invalid(f"{where}: must be the unhashed ISO 3166-1 alpha-2 code in lower case.")


def _check_ip(value: object, where: str) -> None:
    _check_raw_text(value, where)
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        raise invalid(f"{where}: {value!r} is not a valid IPv4 or IPv6 address.") from None


def _check_locale(value: object, where: str) -> None:
    if not isinstance(value, str) or not LOCALE.fullmatch(value):
        raise invalid(f"{where}: must be a BCP 47 language tag such as en-US.")


USER_CHECKS: dict[str, Callable[[object, str], None]] = {
    **dict.fromkeys(HASHED_LISTS, _check_digests),
    **dict.fromkeys(HASHED_SCALARS, _check_digest),
    "country": _check_country,
    "ip": _check_ip,
    "locale": _check_locale,
}


def check_properties(properties: object, where: str) -> None:
    """``properties``: typed standard keys and contents[]; any other key is a custom property."""
    if not isinstance(properties, dict):
        raise invalid(f"{where}: must be an object.")
    if "value" in properties and not is_number(properties["value"]):
        raise invalid(f"{where}.value: must be a number.")
    currency = properties.get("currency")
    if currency is not None and (not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency)):
        raise invalid(f"{where}.currency: must be an ISO 4217 code in upper case, got {currency!r}.")
    if "content_type" in properties and properties["content_type"] not in ("product", "product_group"):
        raise invalid(f"{where}.content_type: must be product or product_group.")
    if "num_items" in properties and not is_int(properties["num_items"]):
        raise invalid(f"{where}.num_items: must be an integer.")
    for key in STRING_PROPERTIES:
        if key in properties and not isinstance(properties[key], str):
            raise invalid(f"{where}.{key}: Not a valid string")
    if "contents" in properties:
        _check_contents(properties["contents"], f"{where}.contents")


def _check_contents(contents: object, where: str) -> None:
    if not isinstance(contents, list):
        raise invalid(f"{where}: must be an array.")
    for index, item in enumerate(contents):
        at = f"{where}.{index}"
        if not isinstance(item, dict):
            raise invalid(f"{at}: must be an object.")
        _check_keys(item, CONTENT_KEYS, at)
        if "content_id" in item and not isinstance(item["content_id"], str):
            raise invalid(f"{at}.content_id: Not a valid string")
        if "price" in item and not is_number(item["price"]):
            raise invalid(f"{at}.price: must be a number.")
        if "quantity" in item and not is_int(item["quantity"]):
            raise invalid(f"{at}.quantity: must be an integer.")


def _check_page(page: object, where: str) -> None:
    if not isinstance(page, dict):
        raise invalid(f"{where}: must be an object.")
    _check_keys(page, frozenset({"url", "referrer"}), where)
    for key, value in page.items():
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise invalid(f"{where}.{key}: must be an http(s) URL.")


# ---------------------------------------------------------------------------------------------------
# Fault answers.


def fault_error(fault: Fault) -> TikTokError | None:
    """The answer a fault mode forces, or None when the request is processed normally."""
    build = FAULT_ERRORS.get(fault.mode)
    return None if build is None else build(retry_seconds(fault))


FAULT_ERRORS: dict[str, Callable[[int | None], TikTokError]] = {
    "503": lambda retry: TikTokError(0, "Service Unavailable", status=503, retry_after=retry, html=True),
    "500": lambda retry: TikTokError(50000, "System error", status=500, retry_after=retry),
    "429": lambda retry: TikTokError(
        40100, "Too many requests. Please retry in some time.", status=429, retry_after=retry
    ),
    "40100": lambda retry: TikTokError(
        40100, "Too many requests. Please retry in some time.", retry_after=retry
    ),
    "40002": lambda retry: invalid("Batch.0.event: the fake platform was told to reject this request."),
    "permanent": lambda retry: TikTokError(40001, "No permission to operate pixel code (fault mode)."),
    "bad_token": lambda retry: TikTokError(40105, "The access token is invalid or has been revoked."),
}


def answer(code: int, message: str, request_id: str) -> Json:
    """The Business API body: ``{"code", "message", "request_id", "data"}``."""
    return {"code": code, "message": message, "request_id": request_id, "data": {}}


def error_response(error: TikTokError, request_id: str) -> Response:
    """The HTTP answer for an error (JSON, or HTML from a gateway), with Retry-After when set."""
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    if error.html:
        return HTMLResponse(HTML_503, status_code=error.status, headers=headers)
    headers["X-Tt-Logid"] = request_id
    body = answer(error.code, error.message, request_id)
    return JSONResponse(body, status_code=error.status, headers=headers)


# ---------------------------------------------------------------------------------------------------
# The fake.


def _request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8).upper()


@dataclass(frozen=True)
class _Call:
    """One request on a platform path while it is being answered."""

    seq: int
    request: Request
    fault: Fault


class TikTokFake(Fake[ReceivedEvent, RequestRecord, Violation]):
    """A fake TikTok Events API: ``.app`` (ASGI), the contract it enforces, and its thread-safe ledger."""

    modes = FAULT_MODES
    mode_example = '{"mode": "40100", "count": 2, "retry_after": 5}'

    def __init__(self, *, access_token: str, pixel_code: str, now: Callable[[], float] = time.time) -> None:
        super().__init__(now)
        self.access_token, self.pixel_code = access_token, pixel_code
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
            Route(TRACK_PATH, self._track, methods=ALL_METHODS),
            Route("/{path:path}", self._unknown_path, methods=ALL_METHODS),
        ]

    async def _track(self, request: Request) -> Response:
        call = self._arrive(request)
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        try:
            body = self._validate(call, raw)
        except TikTokError as error:
            return self._reject(call, raw, error)
        return self._accept(call, body)

    async def _unknown_path(self, request: Request) -> Response:
        seq, fault = self._turn(None, faulty=False)
        call = _Call(seq, request, fault)
        error = TikTokError(40400, f"Not Found: {request.url.path}", status=404)
        return self._reject(call, await request.body(), error)

    def _arrive(self, request: Request) -> _Call:
        """The fake serves one pixel, so its Retry-After is kept under the pixel code."""
        seq, fault = self._turn(self.pixel_code)
        return _Call(seq, request, fault)

    def _validate(self, call: _Call, raw: bytes) -> Json:
        """Run the fault mode and the contract checks; return the parsed body of a valid request."""
        forced = fault_error(call.fault)
        if forced is not None:
            raise forced
        if call.request.method != "POST":
            raise TikTokError(40400, f"Method {call.request.method} is not allowed.", status=405)
        check_auth(call.request.headers, self.access_token)
        body = parse_json(raw)
        if media_type(call.request) != "application/json" or not isinstance(body, dict):
            raise invalid("The body must be a JSON object sent with Content-Type: application/json.")
        validate_body(body, self.pixel_code, self.now())
        return body

    def _reject(self, call: _Call, raw: bytes, error: TikTokError) -> Response:
        self._hold_off(self.pixel_code, error.retry_after)
        code = None if error.html else error.code
        self._log(call, status=error.status, code=code, message=error.message, body=parse_json(raw))
        return error_response(error, _request_id())

    def _accept(self, call: _Call, body: Json) -> Response:
        now, pixel = self.now(), self.pixel_code
        entries = [
            _entry(event, seq=call.seq, pixel_code=pixel, body=body, now=now) for event in body["data"]
        ]
        self._accept_all(entries)
        self._log(call, status=200, code=0, message="OK", body=body)
        request_id = _request_id()
        return JSONResponse(answer(0, "OK", request_id), headers={"X-Tt-Logid": request_id})

    def _log(
        self,
        call: _Call,
        *,
        status: int | None,
        code: int | None = None,
        message: str | None = None,
        body: Any = None,
    ) -> None:
        fields = body if isinstance(body, dict) else {}
        data, test_code = fields.get("data"), fields.get("test_event_code")
        record = RequestRecord(
            seq=call.seq,
            received_at=self.now(),
            method=call.request.method,
            path=call.request.url.path,
            mode=call.fault.mode,
            status=status,
            code=code,
            message=message,
            n_events=len(data) if isinstance(data, list) else 0,
            test_event_code=test_code if isinstance(test_code, str) else None,
            body=body,
        )
        self._note_request(record)


def _entry(event: Json, *, seq: int, pixel_code: str, body: Json, now: float) -> ReceivedEvent:
    return ReceivedEvent(
        seq=seq,
        pixel_code=pixel_code,
        event_id=event.get("event_id"),
        event_name=event["event"],
        event_time=event["event_time"],
        test_event_code=body.get("test_event_code"),
        limited_data_use=event.get("limited_data_use") is True,
        received_at=now,
        payload_hash=payload_hash(event),
        event=event,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone with uvicorn until interrupted."""
    description = "Run a fake TikTok Events API 2.0 on a loopback port."
    parser = command("tiktok", description, 9002, FAULT_MODES)
    parser.add_argument("--token", required=True, help="the Access-Token the fake accepts")
    parser.add_argument("--pixel", required=True, help="the pixel code (event_source_id) the fake accepts")
    args = parser.parse_args(argv)
    fake = TikTokFake(access_token=args.token, pixel_code=args.pixel)
    run(fake, args)


if __name__ == "__main__":
    main()
