"""A loopback fake of LinkedIn's Conversions API: enforces the request contract, records deliveries.

The fake answers ``POST /rest/conversionEvents`` the way LinkedIn does (see
``shared/platforms/google-linkedin.md`` part B). Errors are Rest.li ``ErrorResponse`` bodies
``{"status", "serviceErrorCode"?, "code"?, "message"}``. Checked, in this order (faults first, because
they stand for the platform's infrastructure; the order of the header checks is a contract choice):

- fault mode (``set_mode`` or ``POST /_admin/mode``): ok, 503, 500, 429 (with ``Retry-After``), timeout,
  reset, permanent (403 ``ACCESS_DENIED``);
- ``LinkedIn-Version``: missing -> 400 ``VERSION_MISSING``; not one of the active versions (``YYYYMM`` or
  ``YYYYMM.RR``) -> 426 ``NONEXISTENT_VERSION`` "Requested version 20241101 is not active", the body
  reported in n8n#14737 and pipedream#18398;
- ``X-Restli-Protocol-Version: 2.0.0`` -> else 400;
- ``Authorization: Bearer <token>`` -> 401 ``INVALID_ACCESS_TOKEN`` (65600) when wrong, 65604 "Empty
  oauth2_access_token" when missing;
- a method other than POST -> 405; a body that is not a JSON object sent as ``application/json`` -> 400;
- ``X-RestLi-Method: BATCH_CREATE`` with ``{"elements": [...]}``, 1 to 5,000 elements and no other key;
  without the header the body is one element (a plain CREATE); another method -> 400;
- per element (schema, HTTP 422 for the whole request, nothing recorded; every bad element is listed as
  ``Index: N, ERROR :: /path :: message`` lines, LinkedIn's form in RudderStack's fixtures): only known
  keys; ``conversion`` a ``urn:lla:llaPartnerConversion:<digits>`` URN; ``conversionHappenedAt`` an
  integer of epoch milliseconds within the past 90 days (and not more than 5 minutes ahead, a contract
  choice); ``conversionValue`` with both ``currencyCode`` (3 upper-case letters) and ``amount`` as a
  decimal STRING; ``eventId`` a non-empty string; ``user.userIds`` present (it may be empty), each entry a
  known ``idType`` with a non-empty string ``idValue``, ``SHA256_EMAIL`` 64 lower-case hex digits;
  ``userInfo``, when sent, with ``firstName`` and ``lastName``; at least one identifier overall;
  events refused with ``refuse(event_id, path, message)`` (any per-element check LinkedIn makes that the
  router cannot foresee);
- per element (business, HTTP 400, nothing recorded) when the fake knows its rules (``rules``: rule id ->
  conversionMethod): "Incorrect conversions information provided. Conversion's method should be
  CONVERSIONS_API, indices [0] (0-indexed)" (RudderStack fixture), or for an unknown rule id the same
  sentence with "does not exist" (a contract choice).

A valid BATCH_CREATE is answered 200 ``{"elements": [{"status": 201}, ...]}``; a valid CREATE 201 with an
empty body and ``x-restli-id``. ``timeout`` sleeps ``delay`` seconds and then processes the request (a slow
platform that still records, so a client that gave up causes a same-id redelivery); ``reset`` aborts the
TCP connection. The ledger, fault modes, Retry-After checks and admin endpoints are the shared ones of
``tests/fakes/common.py``.

Run standalone (end-to-end tests): ``python -m tests.fakes.linkedin --port 9004 --token T``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
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
    command,
    is_int,
    media_type,
    parse_json,
    payload_hash,
    read_body,
    retry_seconds,
    run,
)

FaultMode = Literal["ok", "503", "500", "429", "timeout", "reset", "permanent"]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

PATH = "/rest/conversionEvents"
ACTIVE_VERSIONS = ("202601", "202602", "202603", "202604", "202605", "202606", "202607", "202608")
"""Active in the fact sheet's late-2026 snapshot: 202511 was sunset on 2026-11-16, 202608 is the newest."""
MAX_ELEMENTS = 5000
MAX_AGE_MS = 90 * 86_400_000
MAX_AHEAD_MS = 5 * 60_000  # contract choice: LinkedIn's bound on future times is not documented
MIN_MS = 10**12  # 13 digits: a 10-digit value is seconds

VERSION = re.compile(r"(\d{6})(?:\.(\d{2}))?")
CONVERSION = re.compile(r"urn:lla:llaPartnerConversion:(\d+)")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
CURRENCY = re.compile(r"[A-Z]{3}")
AMOUNT = re.compile(r"\d+(\.\d+)?")
ELEMENT_KEYS = frozenset({"conversion", "conversionHappenedAt", "conversionValue", "eventId", "user"})
USER_KEYS = frozenset({"userIds", "userInfo", "lead", "externalIds"})
USER_INFO_KEYS = frozenset({"firstName", "lastName", "companyName", "title", "countryCode"})
ID_TYPES = frozenset(
    {"SHA256_EMAIL", "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "ACXIOM_ID", "ORACLE_MOAT_ID", "GOOGLE_AID"}
)
CONVERSIONS_API = "CONVERSIONS_API"
REQUIRED = "field is required but not found and has no default value"


class LinkedInError(Exception):
    """One LinkedIn error answer: an HTTP status, a Rest.li ErrorResponse body and an optional Retry-After."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        service_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.service_code, self.retry_after = service_code, retry_after

    def to_json(self) -> Json:
        """The ErrorResponse as LinkedIn writes it (optional members only when set)."""
        body: Json = {"status": self.status}
        if self.service_code is not None:
            body["serviceErrorCode"] = self.service_code
        if self.code is not None:
            body["code"] = self.code
        return body | {"message": self.message}


def bad_request(message: str, code: str = "ILLEGAL_ARGUMENT") -> LinkedInError:
    """A 400 for a malformed request."""
    return LinkedInError(400, message, code=code, service_code=100)


@dataclass(frozen=True)
class ReceivedEvent:
    """One accepted conversion event in the ledger, with the metadata of the request that carried it."""

    seq: int
    event_id: str | None
    conversion: str
    happened_at: int
    version: str
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
    protocol: str | None
    restli_method: str | None
    content_type: str
    mode: str
    status: int | None
    error: Json | None
    n_elements: int
    body: Any


@dataclass(frozen=True)
class Violation:
    """A protocol breach by the client, e.g. a request sent before a Retry-After expired."""

    kind: str
    seq: int
    received_at: float
    retry_until: float
    detail: str


@dataclass(frozen=True)
class _Call:
    """One request on the platform path while it is being answered."""

    seq: int
    request: Request
    fault: Fault


@dataclass
class _Ledger(Ledger[ReceivedEvent, RequestRecord, Violation]):
    """The shared ledger plus the schema errors chosen per eventId (``refuse``)."""

    refused: dict[str, list[str]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Contract checks: pure functions. Element checks return LinkedIn's `ERROR :: /path :: message` lines.


def _error(path: str, message: str) -> str:
    return f"ERROR :: {path} :: {message}"


def _unknown(obj: Json, allowed: frozenset[str], where: str) -> list[str]:
    return [
        _error(f"{where}/{key}", "unrecognized field found but is not allowed")
        for key in obj
        if key not in allowed
    ]


def check_version(header: str | None, active: Collection[str]) -> None:
    """The LinkedIn-Version header: present, and an active YYYYMM (optionally `.RR`)."""
    if header is None:
        message = "A version must be present. Please specify a version by adding the LinkedIn-Version header."
        raise LinkedInError(400, message, code="VERSION_MISSING")
    match = VERSION.fullmatch(header.strip())
    if match is None or match.group(1) not in active:
        shown = f"{match.group(1)}{match.group(2) or '01'}" if match else header
        raise LinkedInError(426, f"Requested version {shown} is not active", code="NONEXISTENT_VERSION")


def check_token(authorization: str | None, token: str) -> None:
    """``Authorization: Bearer <token>``."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise LinkedInError(401, "Empty oauth2_access_token", service_code=65604)
    if value.strip() != token:
        raise LinkedInError(401, "Invalid access token", code="INVALID_ACCESS_TOKEN", service_code=65600)


def elements_of(body: Json, restli_method: str | None) -> tuple[list[Any], bool]:
    """The elements of a BATCH_CREATE (True) or the one element of a CREATE (False)."""
    if restli_method is None:
        return [body], False
    if restli_method.upper() != "BATCH_CREATE":
        raise bad_request(f"Unsupported X-RestLi-Method {restli_method} for resource conversionEvents")
    elements = body.get("elements")
    if set(body) != {"elements"} or not isinstance(elements, list) or not elements:
        raise bad_request('A BATCH_CREATE body must be {"elements": [...]} with at least one element')
    if len(elements) > MAX_ELEMENTS:
        raise bad_request(f"Batch size {len(elements)} exceeds the maximum of {MAX_ELEMENTS} elements")
    return elements, True


def element_errors(element: object, now: float) -> list[str]:
    """Every schema problem of one element, as LinkedIn's `ERROR :: /path :: message` lines."""
    if not isinstance(element, dict):
        return [_error("", "the element must be a JSON object")]
    return [
        *_unknown(element, ELEMENT_KEYS, ""),
        *_conversion_errors(element.get("conversion")),
        *_time_errors(element.get("conversionHappenedAt"), now),
        *_value_errors(element),
        *_event_id_errors(element),
        *user_errors(element.get("user")),
    ]


def _conversion_errors(value: object) -> list[str]:
    if value is None:
        return [_error("/conversion", REQUIRED)]
    if not isinstance(value, str) or not CONVERSION.fullmatch(value):
        return [_error("/conversion", f"{value!r} is not a urn:lla:llaPartnerConversion URN")]
    return []


def _time_errors(value: object, now: float) -> list[str]:
    where = "/conversionHappenedAt"
    if value is None:
        return [_error(where, REQUIRED)]
    if not is_int(value):
        return [_error(where, "must be an integer (epoch milliseconds)")]
    assert isinstance(value, int)
    now_ms = int(now * 1000)
    if value < MIN_MS:
        return [_error(where, f"{value} is not in epoch milliseconds (seconds sent?)")]
    if value < now_ms - MAX_AGE_MS:
        return [_error(where, f"{value} is more than 90 days in the past")]
    if value > now_ms + MAX_AHEAD_MS:
        return [_error(where, f"{value} is in the future")]
    return []


def _value_errors(element: Json) -> list[str]:
    if "conversionValue" not in element:
        return []
    value = element["conversionValue"]
    if not isinstance(value, dict):
        return [_error("/conversionValue", "must be an object")]
    errors = _unknown(value, frozenset({"currencyCode", "amount"}), "/conversionValue")
    return errors + _currency_errors(value.get("currencyCode")) + _amount_errors(value.get("amount"))


def _currency_errors(currency: object) -> list[str]:
    where = "/conversionValue/currencyCode"
    if currency is None:
        return [_error(where, REQUIRED)]
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        return [_error(where, f"{currency!r} is not an ISO 4217 code")]
    return []


def _amount_errors(amount: object) -> list[str]:
    where = "/conversionValue/amount"
    if amount is None:
        return [_error(where, REQUIRED)]
    if not isinstance(amount, str):
        return [_error(where, f"{amount!r} must be a string, not a number")]
    if not AMOUNT.fullmatch(amount):
        return [_error(where, f"{amount!r} is not a decimal amount")]
    return []


def _event_id_errors(element: Json) -> list[str]:
    value = element.get("eventId", "x")
    return [] if isinstance(value, str) and value else [_error("/eventId", "must be a non-empty string")]


def user_errors(user: object) -> list[str]:
    """``user``: userIds present, known idTypes, SHA256_EMAIL as 64 lower-case hex, names in userInfo."""
    if user is None:
        return [_error("/user", REQUIRED)]
    if not isinstance(user, dict):
        return [_error("/user", "must be an object")]
    ids = user.get("userIds")
    errors = _unknown(user, USER_KEYS, "/user") + _user_ids_errors(ids)
    errors += _user_info_errors(user.get("userInfo"))
    if ids == [] and "userInfo" not in user and "lead" not in user:
        errors.append(_error("/user", "at least one of userIds, userInfo or lead must identify the member"))
    return errors


def _user_ids_errors(ids: object) -> list[str]:
    """``userIds`` is required even when empty (leaving it out is a 422, fact sheet B2)."""
    if ids is None:
        return [_error("/user/userIds", REQUIRED)]
    if not isinstance(ids, list):
        return [_error("/user/userIds", "must be an array")]
    return [line for index, entry in enumerate(ids) for line in _user_id_errors(entry, index)]


def _user_id_errors(entry: object, index: int) -> list[str]:
    where = f"/user/userIds/{index}"
    if not isinstance(entry, dict) or set(entry) != {"idType", "idValue"}:
        return [_error(where, "must be an object with exactly idType and idValue")]
    id_type, value = entry["idType"], entry["idValue"]
    if id_type not in ID_TYPES:
        return [_error(f"{where}/idType", f"{id_type!r} is not a valid IdType symbol")]
    if not isinstance(value, str) or not value:
        return [_error(f"{where}/idValue", "must be a non-empty string")]
    if id_type == "SHA256_EMAIL" and not SHA256_HEX.fullmatch(value):
        return [_error(f"{where}/idValue", "SHA256_EMAIL must be 64 lower-case hex characters")]
    return []


def _user_info_errors(info: object) -> list[str]:
    if info is None:
        return []
    if not isinstance(info, dict):
        return [_error("/user/userInfo", "must be an object")]
    missing = [key for key in ("firstName", "lastName") if not info.get(key)]
    return _unknown(info, USER_INFO_KEYS, "/user/userInfo") + [
        _error(f"/user/userInfo/{key}", REQUIRED) for key in missing
    ]


def unprocessable(errors: Mapping[int, list[str]], batched: bool) -> LinkedInError:
    """The 422 for bad elements: one `Index: N, ` block per element in a batch, bare lines for a CREATE."""
    blocks = [
        ("" if not batched else f"Index: {i}, ") + "".join(f"{e}\n" for e in errs)
        for i, errs in errors.items()
    ]
    return LinkedInError(422, "".join(blocks))


def rule_problem(element: Json, rules: Mapping[str, str]) -> str | None:
    """Why LinkedIn's business validation refuses the element's conversion rule, or None."""
    match = CONVERSION.fullmatch(str(element.get("conversion", "")))
    rule = match.group(1) if match else ""
    if rule not in rules:
        return "Conversion does not exist or is not accessible"
    if rules[rule] != CONVERSIONS_API:
        return "Conversion's method should be CONVERSIONS_API"
    return None


def business_error(elements: Sequence[Json], rules: Mapping[str, str] | None) -> LinkedInError | None:
    """The 400 naming the elements whose rule LinkedIn refuses, grouped by reason."""
    if rules is None:
        return None
    by_reason: dict[str, list[int]] = {}
    for index, element in enumerate(elements):
        problem = rule_problem(element, rules)
        if problem is not None:
            by_reason.setdefault(problem, []).append(index)
    if not by_reason:
        return None
    parts = [
        f"{reason}, indices [{', '.join(map(str, idx))}] (0-indexed)" for reason, idx in by_reason.items()
    ]
    return LinkedInError(400, "Incorrect conversions information provided. " + "; ".join(parts))


# ---------------------------------------------------------------------------------------------------
# Fault answers.


def fault_error(fault: Fault) -> LinkedInError | None:
    """The answer a fault mode forces, or None when the request is processed normally."""
    build = FAULT_ERRORS.get(fault.mode)
    return None if build is None else build(retry_seconds(fault))


FAULT_ERRORS: dict[str, Callable[[int | None], LinkedInError]] = {
    "503": lambda retry: LinkedInError(503, "Service Unavailable", retry_after=retry),
    "500": lambda retry: LinkedInError(500, "Internal Server Error", retry_after=retry),
    "429": lambda retry: LinkedInError(
        429,
        "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        code="TOO_MANY_REQUESTS",
        service_code=101,
        retry_after=retry,
    ),
    "permanent": lambda retry: LinkedInError(
        403,
        "Not enough permissions to access: partnerConversionEvents.BATCH_CREATE.20260801",
        code="ACCESS_DENIED",
        service_code=100,
    ),
}


def error_response(error: LinkedInError) -> Response:
    """The HTTP answer for an error, with Retry-After when set."""
    headers = {"x-li-uuid": "AAYfakeLinkedInUuid=="}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


# ---------------------------------------------------------------------------------------------------
# The fake.


class LinkedInFake(Fake[ReceivedEvent, RequestRecord, Violation]):
    """A fake LinkedIn Conversions API: ``.app`` (ASGI), the contract it enforces, and its ledger."""

    modes = FAULT_MODES
    _state: _Ledger

    def __init__(
        self,
        *,
        access_token: str,
        versions: Collection[str] = ACTIVE_VERSIONS,
        rules: Mapping[str, str] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(now)
        self.access_token, self.versions = access_token, frozenset(versions)
        self.rules = None if rules is None else {str(k): v for k, v in rules.items()}
        self.app = Starlette(routes=self._routes())

    def event_ids(self) -> list[str | None]:
        """The ``eventId`` of every accepted event, in arrival order (duplicates kept)."""
        return [event.event_id for event in self.received]

    def refuse(self, event_id: str, path: str, message: str) -> None:
        """Make LinkedIn's schema check fail every element with this eventId (a 422 naming its index)."""
        with self._cond:
            self._state.refused.setdefault(event_id, []).append(_error(path, message))

    def _ledger(self) -> _Ledger:
        return _Ledger()

    def _violation(self, seq: int, key: str, now: float, until: float, detail: str) -> Violation:
        return Violation("retry_after", seq, now, until, detail)

    # -- HTTP ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            *self._admin_routes(),
            Route("/_admin/refuse", self._admin_refuse, methods=["POST"]),
            Route(PATH, self._conversion_events, methods=ALL_METHODS),
            Route("/{path:path}", self._unknown_path, methods=ALL_METHODS),
        ]

    async def _conversion_events(self, request: Request) -> Response:
        call = self._arrive(request)
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        body = parse_json(raw)
        try:
            elements, batched = self._validate(call, body)
        except LinkedInError as error:
            return self._reject(call, body, error)
        return self._accept(call, body, elements, batched)

    async def _unknown_path(self, request: Request) -> Response:
        seq, fault = self._turn(None, faulty=False)
        call = _Call(seq, request, fault)
        error = LinkedInError(404, f"Resource {request.url.path} does not exist", code="RESOURCE_NOT_FOUND")
        return self._reject(call, parse_json(await request.body()), error)

    def _arrive(self, request: Request) -> _Call:
        """The fake serves one resource, so its Retry-After is kept under PATH."""
        seq, fault = self._turn(PATH)
        return _Call(seq, request, fault)

    def _validate(self, call: _Call, body: Any) -> tuple[list[Json], bool]:
        """Run the fault mode and the contract checks; return the elements of a valid request."""
        forced = fault_error(call.fault)
        if forced is not None:
            raise forced
        headers = call.request.headers
        check_version(headers.get("linkedin-version"), self.versions)
        if headers.get("x-restli-protocol-version") != "2.0.0":
            raise bad_request("X-Restli-Protocol-Version must be 2.0.0 for this resource")
        check_token(headers.get("authorization"), self.access_token)
        if call.request.method != "POST":
            raise LinkedInError(405, f"Method {call.request.method} is not allowed on conversionEvents")
        if media_type(call.request) != "application/json" or not isinstance(body, dict):
            raise bad_request("The body must be a JSON object sent with Content-Type: application/json")
        elements, batched = elements_of(body, headers.get("x-restli-method"))
        self._check_elements(elements, batched)
        return elements, batched

    def _check_elements(self, elements: list[Any], batched: bool) -> None:
        now = self.now()
        with self._cond:
            refused = {key: list(lines) for key, lines in self._state.refused.items()}
        errors: dict[int, list[str]] = {}
        for index, element in enumerate(elements):
            lines = element_errors(element, now)
            if isinstance(element, dict):
                lines += refused.get(str(element.get("eventId")), [])
            if lines:
                errors[index] = lines
        if errors:
            raise unprocessable(errors, batched)
        business = business_error(elements, self.rules)
        if business is not None:
            raise business

    def _reject(self, call: _Call, body: Any, error: LinkedInError) -> Response:
        self._hold_off(PATH, error.retry_after)
        self._log(call, status=error.status, error=error.to_json(), body=body)
        return error_response(error)

    def _accept(self, call: _Call, body: Json, elements: list[Json], batched: bool) -> Response:
        now, version = self.now(), call.request.headers.get("linkedin-version", "")
        entries = [_entry(element, seq=call.seq, version=version, now=now) for element in elements]
        self._accept_all(entries)
        status = 200 if batched else 201
        self._log(call, status=status, body=body)
        if not batched:
            return Response(
                status_code=201, headers={"x-restli-id": f"urn:lla:llaPartnerConversionEvent:{call.seq}"}
            )
        return JSONResponse({"elements": [{"status": 201} for _ in elements]})

    def _log(self, call: _Call, *, status: int | None, error: Json | None = None, body: Any = None) -> None:
        headers = call.request.headers
        elements = body.get("elements") if isinstance(body, dict) else None
        record = RequestRecord(
            seq=call.seq,
            received_at=self.now(),
            method=call.request.method,
            path=call.request.url.path,
            version=headers.get("linkedin-version"),
            protocol=headers.get("x-restli-protocol-version"),
            restli_method=headers.get("x-restli-method"),
            content_type=headers.get("content-type", ""),
            mode=call.fault.mode,
            status=status,
            error=error,
            n_elements=len(elements) if isinstance(elements, list) else int(isinstance(body, dict)),
            body=body,
        )
        self._note_request(record)

    # -- admin -----------------------------------------------------------------------------------

    async def _admin_refuse(self, request: Request) -> Response:
        payload = parse_json(await request.body())
        keys = ("event_id", "path", "message")
        if (
            not isinstance(payload, dict)
            or set(payload) != set(keys)
            or not all(isinstance(payload[k], str) for k in keys)
        ):
            return JSONResponse(
                {"detail": 'expected {"event_id": ..., "path": ..., "message": ...}'}, status_code=400
            )
        self.refuse(payload["event_id"], payload["path"], payload["message"])
        return JSONResponse({"refused": payload["event_id"]})


def _entry(element: Json, *, seq: int, version: str, now: float) -> ReceivedEvent:
    event_id = element.get("eventId")
    return ReceivedEvent(
        seq=seq,
        event_id=event_id if isinstance(event_id, str) else None,
        conversion=element["conversion"],
        happened_at=element["conversionHappenedAt"],
        version=version,
        received_at=now,
        payload_hash=payload_hash(element),
        event=element,
    )


def create_linkedin_fake(
    *,
    access_token: str,
    versions: Collection[str] = ACTIVE_VERSIONS,
    rules: Mapping[str, str] | None = None,
    now: Callable[[], float] = time.time,
) -> LinkedInFake:
    """A fake LinkedIn CAPI for one token; ``rules`` (rule id -> conversionMethod) turns on rule checks."""
    return LinkedInFake(access_token=access_token, versions=versions, rules=rules, now=now)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone with uvicorn until interrupted."""
    description = "Run a fake LinkedIn Conversions API on a loopback port."
    parser = command("linkedin", description, 9004, FAULT_MODES)
    parser.add_argument("--token", required=True, help="the access token the fake accepts")
    parser.add_argument(
        "--version", action="append", dest="versions", help="an active LinkedIn-Version (repeatable)"
    )
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="ID[=METHOD]",
        help="a known conversion rule (repeatable)",
    )
    args = parser.parse_args(argv)
    rules = dict(_rule(text) for text in args.rule) or None
    fake = create_linkedin_fake(
        access_token=args.token, versions=args.versions or ACTIVE_VERSIONS, rules=rules
    )
    run(fake, args)


def _rule(text: str) -> tuple[str, str]:
    """`123` -> (123, CONVERSIONS_API); `123=INSIGHT_TAG` -> (123, INSIGHT_TAG)."""
    rule, _, method = text.partition("=")
    return rule, method or CONVERSIONS_API


if __name__ == "__main__":
    main()
