"""A loopback fake of Google's OAuth token endpoint, the Data Manager API and the Google Ads API.

One Starlette app serves the three surfaces (``shared/platforms/google-linkedin.md`` part A), so a
router config points both ``token_url`` and ``base_url`` at it:

- ``POST /token``: the OAuth 2.0 refresh-token grant (form body: ``grant_type``, ``client_id``,
  ``client_secret``, ``refresh_token``, optional ``scope``), and the JWT-bearer grant of the
  configured service accounts (claims checked, signature not). Answers ``{"access_token",
  "expires_in", "token_type", "scope"}``; a revoked or unknown refresh token gets ``400 {"error":
  "invalid_grant"}``, a wrong client ``401 {"error": "invalid_client"}``. Issued tokens expire on the
  fake's clock.
- ``POST /v1/events:ingest`` (Data Manager, fail-fast): a bearer token from ``/token`` with the
  datamanager scope; destinations (operating account = the configured customer, numeric
  ``productDestinationId``); 1 to 2,000 events; known keys only; RFC 3339 ``eventTimestamp`` within 90
  days; ``encoding`` when user data is present; hex-encoded 64-character SHA-256 identifiers (at most
  10, one kind per entry); full addresses; consent and event-source enums. The first violation
  rejects the whole request (400 INVALID_ARGUMENT with ErrorInfo and BadRequest details) and nothing
  is recorded. ``validateOnly`` validates and records nothing.
- ``POST /v26/customers/{id}:uploadClickConversions`` and ``:uploadConversionAdjustments`` (Ads API,
  partial failure): a bearer token with the adwords scope; ``partialFailure: true`` (else 400
  PARTIAL_FAILURE_MODE_REQUIRED); at most 2,000 rows; per row the ``yyyy-mm-dd hh:mm:ss+hh:mm`` time,
  the action resource name, at most one click id, at most 5 hex-hashed user identifiers (no address
  in click conversions), ENHANCEMENT rows with ``orderId``. Row errors come back as HTTP 200 with a
  ``partialFailureError`` (GoogleAdsFailure details located at ``conversions[i]``) and ``{}`` results;
  the other rows are recorded. An order id seen before for the action answers
  ORDER_ID_ALREADY_IN_USE (CONVERSION_ALREADY_ENHANCED for enhancements), as Google dedups.

``fail(order_id, code)`` makes chosen records fail: an Ads row error such as
``internalError.TRANSIENT_ERROR`` (optionally for ``count`` attempts only), or a Data Manager
ErrorReason that rejects the request carrying that transaction id. Fault modes (``set_mode`` or
``POST /_admin/mode``) stand for Google's infrastructure and apply to the two APIs, not the token
endpoint: ok, 503, 500, 429 (RESOURCE_EXHAUSTED with Retry-After), html_502, unauthenticated,
permission_denied, timeout, reset. The ledger, fault modes, Retry-After checks and admin endpoints are
the shared ones of tests/fakes/common.py, plus ``/_admin/tokens``, ``/_admin/fail``, ``/_admin/revoke``
and ``/_admin/expire``.

Run standalone: ``python -m tests.fakes.google --port 9002 --client-id C --client-secret S
--refresh-token R --customer 1234567890``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import (
    ALL_METHODS,
    DEFAULT_RETRY_AFTER,
    ConnectionReset,
    Fake,
    Fault,
    Json,
    Ledger,
    command,
    is_number,
    parse_json,
    read_body,
    run,
)

FaultMode = Literal[
    "ok", "503", "500", "429", "html_502", "unauthenticated", "permission_denied", "timeout", "reset"
]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))

ADS_VERSION = "v26"
DM_SCOPE = "https://www.googleapis.com/auth/datamanager"
ADS_SCOPE = "https://www.googleapis.com/auth/adwords"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_EVENTS = 2000  # [doc] events per events:ingest, rows per upload
MAX_AGE = 90 * 86400  # [doc] longest click-through window; Ads answers EXPIRED_EVENT
MAX_AHEAD = 86400  # contract choice: a conversion more than a day ahead is refused
MAX_DM_IDENTIFIERS = 10  # [doc] Data Manager user identifiers per event
MAX_ADS_IDENTIFIERS = 5  # [doc] Ads API user identifiers per row
FAILURE_TYPE = f"type.googleapis.com/google.ads.googleads.{ADS_VERSION}.errors.GoogleAdsFailure"

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
ADS_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
ACTION = re.compile(r"customers/(\d+)/conversionActions/(\d+)")
DIGITS = re.compile(r"\d+")

DM_BODY_KEYS = frozenset({"destinations", "events", "consent", "validateOnly", "encoding", "encryptionInfo"})
DM_DESTINATION_KEYS = frozenset(
    {"reference", "loginAccount", "linkedAccount", "operatingAccount", "productDestinationId"}
)
DM_EVENT_KEYS = frozenset(
    {"destinationReferences", "transactionId", "eventTimestamp", "lastUpdatedTimestamp", "userData"}
    | {"consent", "adIdentifiers", "currency", "conversionValue", "conversionCount", "eventSource"}
    | {"eventDeviceInfo", "cartData", "customVariables", "experimentalFields", "userProperties"}
    | {"eventName", "clientId", "userId", "additionalEventParameters", "thirdPartyUserData"}
    | {"eventLocation", "appInstanceId"}
)
DM_AD_ID_KEYS = frozenset({"sessionAttributes", "gclid", "gbraid", "wbraid", "landingPageDeviceInfo"})
DEVICE_KEYS = frozenset({"userAgent", "ipAddress", "category", "languageCode", "operatingSystem", "model"})
ACCOUNT_TYPES = frozenset({"GOOGLE_ADS", "DISPLAY_VIDEO_PARTNER", "DISPLAY_VIDEO_ADVERTISER", "DATA_PARTNER"})
EVENT_SOURCES = frozenset({"WEB", "APP", "IN_STORE", "PHONE", "MESSAGE", "OTHER"})
DM_CONSENT = frozenset({"CONSENT_STATUS_UNSPECIFIED", "CONSENT_GRANTED", "CONSENT_DENIED"})
ADDRESS_KEYS = frozenset({"givenName", "familyName", "regionCode", "postalCode"})

CLICK_KEYS = frozenset(
    {"gclid", "gbraid", "wbraid", "conversionAction", "conversionDateTime", "conversionValue"}
    | {"currencyCode", "orderId", "externalAttributionData", "customVariables", "cartData"}
    | {"userIdentifiers", "conversionEnvironment", "consent", "customerType", "userIpAddress"}
)
ADJUSTMENT_KEYS = frozenset(
    {"gclidDateTimePair", "orderId", "conversionAction", "adjustmentDateTime", "adjustmentType"}
    | {"restatementValue", "userIdentifiers", "userAgent"}
)
ADS_CONSENT = frozenset({"UNSPECIFIED", "UNKNOWN", "GRANTED", "DENIED"})
ADJUSTMENT_TYPES = frozenset({"ENHANCEMENT", "RETRACTION", "RESTATEMENT"})
IDENTIFIER_KINDS = frozenset({"hashedEmail", "hashedPhoneNumber", "addressInfo"})
ADS_ADDRESS_KEYS = frozenset(
    {"hashedFirstName", "hashedLastName", "countryCode", "postalCode", "city", "state"}
    | {"hashedStreetAddress"}
)
METHODS = {"uploadClickConversions": "conversions", "uploadConversionAdjustments": "conversionAdjustments"}


# ---------------------------------------------------------------------------------------------------
# Errors: Google's standard envelope; the Ads API puts a GoogleAdsFailure in its details.


class GoogleError(Exception):
    """One non-2xx Google answer: ``{"error": {"code", "message", "status", "details"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Json] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.retry_after = list(details), retry_after

    def to_json(self) -> Json:
        """The envelope."""
        error = {"code": self.status, "message": self.message, "status": self.code, "details": self.details}
        return {"error": error}


class HtmlError(GoogleError):
    """A front end's HTML page instead of JSON."""


def dm_invalid(reason: str, message: str, field_path: str = "") -> GoogleError:
    """Data Manager's fail-fast 400: ErrorInfo with the reason, BadRequest with the field."""
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}
    info["domain"] = "datamanager.googleapis.com"
    violation = {"field": field_path, "description": message, "reason": reason}
    bad = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
    return GoogleError(400, "INVALID_ARGUMENT", message, [info, bad])


def ads_row_error(code: str, message: str, index: int | None, rows: str, sub: str | None = None) -> Json:
    """One GoogleAdsError; ``code`` is ``family.NAME``; located at ``rows[index].sub``."""
    family, name = code.split(".", 1)
    error: Json = {"errorCode": {family: name}, "message": message}
    if index is not None:
        elements: list[Json] = [{"fieldName": snake(rows), "index": index}]
        if sub:
            elements.append({"fieldName": snake(sub)})
        error["location"] = {"fieldPathElements": elements}
    return error


def ads_failure(errors: Sequence[Json]) -> Json:
    """A GoogleAdsFailure detail."""
    return {"@type": FAILURE_TYPE, "errors": list(errors), "requestId": secrets.token_hex(8)}


def ads_error(status: int, code: str, error_code: str, message: str) -> GoogleError:
    """A request-level Ads API error with one GoogleAdsError."""
    return GoogleError(status, code, message, [ads_failure([ads_row_error(error_code, message, None, "")])])


def snake(name: str) -> str:
    """``conversionAdjustments`` -> ``conversion_adjustments`` (locations are snake_case over REST)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


class RowError(Exception):
    """One Ads row failing validation: becomes a located GoogleAdsError."""

    def __init__(self, code: str, message: str, sub: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.sub = code, message, sub


# ---------------------------------------------------------------------------------------------------
# Ledger records.


@dataclass(frozen=True)
class ReceivedConversion:
    """One recorded event (Data Manager) or row (Ads API)."""

    seq: int
    api: str
    customer_id: str
    action: str
    id: str | None
    conversion_time: str | None
    received_at: float
    payload: Json


@dataclass(frozen=True)
class RequestRecord:
    """One request on an API path, with its answer (``status`` None for a reset)."""

    seq: int
    received_at: float
    method: str
    path: str
    api: str
    mode: str
    status: int | None
    error: Json | None
    n_records: int
    row_errors: list[str]
    validate_only: bool
    login_customer_id: str | None
    body: Any


@dataclass(frozen=True)
class TokenGrant:
    """One token endpoint request and its outcome."""

    seq: int
    received_at: float
    refresh_token: str
    scope: str | None
    status: int
    error: str | None
    access_token: str | None


@dataclass(frozen=True)
class Violation:
    """A protocol breach by the client: a request before the Retry-After it was given expired."""

    kind: str
    seq: int
    api: str
    received_at: float
    retry_until: float
    detail: str


@dataclass
class Failure:
    """A chosen failure for one order / transaction id; ``count`` None means always."""

    code: str
    message: str
    count: int | None = None


@dataclass(frozen=True)
class _Token:
    scopes: frozenset[str]
    expires_at: float


@dataclass
class _Ledger(Ledger[ReceivedConversion, RequestRecord, Violation]):
    """The shared ledger plus token grants, issued tokens, dedup keys seen and chosen failures."""

    tokens: list[TokenGrant] = field(default_factory=list)
    issued: dict[str, _Token] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    failures: dict[str, Failure] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Data Manager contract: pure checks raising GoogleError.


def _object(value: Any, where: str) -> Json:
    if not isinstance(value, dict):
        raise dm_invalid("INVALID_ARGUMENT", f"{where} must be an object.", where)
    return value


def _known(obj: Json, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        message = f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at '{where}'."
        raise dm_invalid("INVALID_ARGUMENT", message, where)


def parse_time(text: Any, pattern: re.Pattern[str]) -> float | None:
    """Epoch seconds of an RFC 3339 or Ads-format time, or None when malformed."""
    if not isinstance(text, str) or not pattern.fullmatch(text):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def validate_dm(body: Json, now: float, customer_id: str | None) -> list[Json]:
    """Check an events:ingest body; return its events or raise the first GoogleError (fail-fast)."""
    _known(body, DM_BODY_KEYS, "ingest_events_request")
    destinations = body.get("destinations")
    if not isinstance(destinations, list) or not 1 <= len(destinations) <= 10:
        raise dm_invalid(
            "TOO_MANY_DESTINATIONS", "Between 1 and 10 destinations are required.", "destinations"
        )
    for index, destination in enumerate(destinations):
        _check_destination(_object(destination, f"destinations[{index}]"), index, customer_id)
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise dm_invalid("REQUIRED_FIELD_MISSING", "events is required.", "events")
    if len(events) > MAX_EVENTS:
        raise dm_invalid("TOO_MANY_EVENTS", "Maximum number of events per request is 2000.", "events")
    if any(isinstance(e, dict) and e.get("userData") for e in events) and body.get("encoding") != "HEX":
        raise dm_invalid("REQUIRED_FIELD_MISSING", "encoding must be HEX when userData is sent.", "encoding")
    if "validateOnly" in body and not isinstance(body["validateOnly"], bool):
        raise dm_invalid("INVALID_ARGUMENT", "validateOnly must be a boolean.", "validate_only")
    for index, event in enumerate(events):
        _check_dm_event(_object(event, f"events[{index}]"), f"events[{index}]", now)
    return events


def _check_destination(destination: Json, index: int, customer_id: str | None) -> None:
    where = f"destinations[{index}]"
    _known(destination, DM_DESTINATION_KEYS, where)
    for key in ("operatingAccount", "loginAccount"):
        if key in destination or key == "operatingAccount":
            _check_account(destination.get(key), f"{where}.{key}")
    product = destination.get("productDestinationId")
    if not isinstance(product, str) or not DIGITS.fullmatch(product):
        raise dm_invalid("INVALID_CONVERSION_ACTION_ID", "Conversion action ID is not valid.", where)
    account = destination["operatingAccount"]["accountId"]
    if customer_id is not None and account != customer_id:
        raise GoogleError(403, "PERMISSION_DENIED", "The caller does not have permission")


def _check_account(account: Any, where: str) -> None:
    account = _object(account, where)
    if account.get("accountType") not in ACCOUNT_TYPES:
        raise dm_invalid("INVALID_ENUM_VALUE", "accountType is not valid.", f"{where}.account_type")
    if not isinstance(account.get("accountId"), str) or not DIGITS.fullmatch(account["accountId"]):
        raise dm_invalid("INVALID_FORMAT", "accountId must be digits only.", f"{where}.account_id")


def _check_dm_event(event: Json, where: str, now: float) -> None:
    _known(event, DM_EVENT_KEYS, where)
    moment = parse_time(event.get("eventTimestamp"), RFC3339)
    if moment is None:
        raise dm_invalid("INVALID_FORMAT", "eventTimestamp must be RFC 3339.", f"{where}.event_timestamp")
    if not now - MAX_AGE <= moment <= now + MAX_AHEAD:
        raise dm_invalid("EVENT_TIME_INVALID", "Event time is invalid.", f"{where}.event_timestamp")
    _check_dm_fields(event, where)
    identifiers = _check_user_data(event.get("userData"), f"{where}.user_data")
    clicks = _check_ad_identifiers(event.get("adIdentifiers"), f"{where}.ad_identifiers")
    if not identifiers and not clicks:
        raise dm_invalid("NO_IDENTIFIERS_PROVIDED", "No click id or user identifier.", where)


def _check_dm_fields(event: Json, where: str) -> None:
    if "transactionId" in event and not isinstance(event["transactionId"], str):
        raise dm_invalid("INVALID_FORMAT", "transactionId must be a string.", f"{where}.transaction_id")
    if "eventSource" in event and event["eventSource"] not in EVENT_SOURCES:
        raise dm_invalid("INVALID_ENUM_VALUE", "eventSource is not valid.", f"{where}.event_source")
    if "conversionValue" in event and not is_number(event["conversionValue"]):
        raise dm_invalid("INVALID_NUMBER_FORMAT", "conversionValue must be a number.", f"{where}.value")
    currency = event.get("currency")
    if currency is not None and not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        raise dm_invalid("INVALID_CURRENCY_CODE", "Currency code is not valid.", f"{where}.currency")
    consent = event.get("consent") or {}
    if not isinstance(consent, dict) or any(value not in DM_CONSENT for value in consent.values()):
        raise dm_invalid("INVALID_ENUM_VALUE", "Consent value is not valid.", f"{where}.consent")


def _check_user_data(user_data: Any, where: str) -> int:
    if user_data is None:
        return 0
    identifiers = _object(user_data, where).get("userIdentifiers")
    if not isinstance(identifiers, list) or not identifiers:
        raise dm_invalid("REQUIRED_FIELD_MISSING", "userIdentifiers is required.", where)
    if len(identifiers) > MAX_DM_IDENTIFIERS:
        raise dm_invalid("TOO_MANY_USER_IDENTIFIERS", "At most 10 user identifiers.", where)
    for index, identifier in enumerate(identifiers):
        _check_dm_identifier(_object(identifier, where), f"{where}.user_identifiers[{index}]")
    return len(identifiers)


def _check_dm_identifier(identifier: Json, where: str) -> None:
    if len(identifier) != 1 or not set(identifier) <= {"emailAddress", "phoneNumber", "address"}:
        raise dm_invalid("INVALID_ARGUMENT", "Set exactly one identifier per entry.", where)
    if "address" not in identifier:
        _check_hash(next(iter(identifier.values())), where)
        return
    address = _object(identifier["address"], f"{where}.address")
    if set(address) != ADDRESS_KEYS:
        raise dm_invalid("REQUIRED_FIELD_MISSING", "An address needs names, region and postal code.", where)
    _check_hash(address["givenName"], f"{where}.address.given_name")
    _check_hash(address["familyName"], f"{where}.address.family_name")
    if not isinstance(address["regionCode"], str) or not re.fullmatch(r"[A-Z]{2}", address["regionCode"]):
        raise dm_invalid("INVALID_COUNTRY_CODE", "Country code is not valid.", f"{where}.address.region_code")
    if not isinstance(address["postalCode"], str) or not address["postalCode"].strip():
        raise dm_invalid("INVALID_POSTAL_CODE", "Postal code is not valid.", f"{where}.address.postal_code")


def _check_hash(value: Any, where: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]+", value):
        raise dm_invalid("INVALID_HEX_ENCODING", "The HEX encoded value is malformed.", where)
    if not SHA256_HEX.fullmatch(value):
        raise dm_invalid("INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.", where)


def _check_ad_identifiers(ids: Any, where: str) -> int:
    if ids is None:
        return 0
    ids = _object(ids, where)
    _known(ids, DM_AD_ID_KEYS, where)
    device = ids.get("landingPageDeviceInfo")
    if device is not None:
        _known(_object(device, where), DEVICE_KEYS, f"{where}.landing_page_device_info")
        _check_ip(device.get("ipAddress"), f"{where}.landing_page_device_info.ip_address")
    return sum(1 for key in ("gclid", "gbraid", "wbraid") if isinstance(ids.get(key), str) and ids[key])


def _check_ip(value: Any, where: str) -> None:
    if value is None:
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise dm_invalid("INVALID_FORMAT", "ipAddress is not an IP address.", where) from None


# ---------------------------------------------------------------------------------------------------
# Ads API contract: request checks raise GoogleError, row checks raise RowError.


def validate_ads_request(body: Json, rows_key: str) -> list[Json]:
    """Whole-request checks of an upload body; returns its rows."""
    allowed = frozenset({rows_key, "partialFailure", "validateOnly", "jobId"})
    unknown = sorted(set(body) - allowed)
    if unknown:
        message = f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
        raise GoogleError(400, "INVALID_ARGUMENT", message)
    if body.get("partialFailure") is not True:
        message = "The partial failure field was false in the request. This method requires it set to true."
        raise ads_error(400, "INVALID_ARGUMENT", "partialFailureError.PARTIAL_FAILURE_MODE_REQUIRED", message)
    rows = body.get(rows_key)
    if not isinstance(rows, list) or not rows:
        raise ads_error(400, "INVALID_ARGUMENT", "fieldError.REQUIRED", f"{rows_key} is required.")
    if len(rows) > MAX_EVENTS:
        code = (
            "TOO_MANY_CONVERSIONS_IN_REQUEST"
            if rows_key == "conversions"
            else "TOO_MANY_ADJUSTMENTS_IN_REQUEST"
        )
        family = "conversionUploadError" if rows_key == "conversions" else "conversionAdjustmentUploadError"
        raise ads_error(400, "INVALID_ARGUMENT", f"{family}.{code}", "The request holds more than 2000 rows.")
    allowed_row = CLICK_KEYS if rows_key == "conversions" else ADJUSTMENT_KEYS
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) - allowed_row:
            raise GoogleError(
                400, "INVALID_ARGUMENT", f"Invalid JSON payload received at {rows_key}[{index}]."
            )
        _check_row_enums(row, rows_key, index)
    return rows


def _check_row_enums(row: Json, rows_key: str, index: int) -> None:
    """Enum strings are parsed with the JSON: a bad one fails the whole request, as in the real API."""
    consent = row.get("consent") or {}
    bad_consent = not isinstance(consent, dict) or any(v not in ADS_CONSENT for v in consent.values())
    bad_type = rows_key != "conversions" and row.get("adjustmentType") not in ADJUSTMENT_TYPES
    if bad_consent or bad_type:
        raise GoogleError(400, "INVALID_ARGUMENT", f"Invalid value at '{rows_key}[{index}]' (enum).")


def check_click_row(row: Json, now: float) -> None:
    """Row checks of a ClickConversion."""
    _check_action(row.get("conversionAction"))
    _check_ads_time(row.get("conversionDateTime"), "conversion_date_time", now)
    clicks = [key for key in ("gclid", "gbraid", "wbraid") if row.get(key)]
    if {"gbraid", "wbraid"} <= set(clicks):
        raise RowError("conversionUploadError.GBRAID_WBRAID_BOTH_SET", "Set gbraid or wbraid, not both.")
    if len(clicks) > 1:
        raise RowError("fieldError.VALUE_MUST_BE_UNSET", "Only one click id may be set.", clicks[1])
    identifiers = _check_ads_identifiers(row.get("userIdentifiers"), click=True)
    if not clicks and not identifiers:
        raise RowError("fieldError.REQUIRED", "A click id or user identifiers are required.")
    if "conversionValue" in row and not is_number(row["conversionValue"]):
        raise RowError("fieldError.INVALID_VALUE", "conversionValue must be a number.", "conversion_value")


def check_adjustment_row(row: Json, now: float) -> None:
    """Row checks of an ENHANCEMENT ConversionAdjustment."""
    _check_action(row.get("conversionAction"))
    if row.get("adjustmentType") != "ENHANCEMENT":
        raise RowError("requestError.UNSUPPORTED", "The fake supports ENHANCEMENT adjustments only.")
    if not row.get("orderId"):
        raise RowError("conversionAdjustmentUploadError.MISSING_ORDER_ID_FOR_WEBPAGE", "orderId is required.")
    pair = row.get("gclidDateTimePair") or {}
    if isinstance(pair, dict) and pair.get("gclid"):
        code = "conversionAdjustmentUploadError.GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET"
        raise RowError(code, "Set gclidDateTimePair.gclid or orderId, not both.")
    if isinstance(pair, dict) and "conversionDateTime" in pair:
        _check_ads_time(pair["conversionDateTime"], "gclid_date_time_pair", now)
    if not _check_ads_identifiers(row.get("userIdentifiers"), click=False):
        code = "conversionAdjustmentUploadError.INVALID_USER_IDENTIFIER"
        raise RowError(code, "An enhancement needs user identifiers.")


def _check_action(action: Any) -> None:
    if not isinstance(action, str) or not ACTION.fullmatch(action):
        code = "conversionUploadError.NO_CONVERSION_ACTION_FOUND"
        raise RowError(code, "The conversion action is not a resource name.", "conversion_action")


def _check_ads_time(value: Any, where: str, now: float) -> None:
    moment = parse_time(value, ADS_TIME)
    if moment is None:
        code = "dateError.INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"
        raise RowError(code, "The date time must be yyyy-mm-dd hh:mm:ss+|-hh:mm.", where)
    if moment < now - MAX_AGE:
        raise RowError("conversionUploadError.EXPIRED_EVENT", "The click occurred too long ago.", where)
    if moment > now + MAX_AHEAD:
        raise RowError("dateError.LATER_THAN_MAXIMUM_DATE", "The conversion time is in the future.", where)


def _check_ads_identifiers(identifiers: Any, *, click: bool) -> int:
    if identifiers is None:
        return 0
    family = "conversionUploadError" if click else "conversionAdjustmentUploadError"
    if not isinstance(identifiers, list) or len(identifiers) > MAX_ADS_IDENTIFIERS:
        raise RowError("collectionSizeError.TOO_MANY", "At most 5 user identifiers.", "user_identifiers")
    for identifier in identifiers:
        kinds = set(identifier) & IDENTIFIER_KINDS if isinstance(identifier, dict) else set()
        if len(kinds) != 1:
            raise RowError(f"{family}.INVALID_USER_IDENTIFIER", "One identifier kind per entry.")
        kind = kinds.pop()
        if kind == "addressInfo" and click:
            message = "Click conversions take hashed email and phone only."
            raise RowError(f"{family}.UNSUPPORTED_USER_IDENTIFIER", message, "user_identifiers")
        _check_ads_identifier(kind, identifier[kind], family)
    return len(identifiers)


def _check_ads_identifier(kind: str, value: Any, family: str) -> None:
    if kind == "addressInfo":
        _check_ads_address(value, family)
    elif not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise RowError(f"{family}.INVALID_USER_IDENTIFIER", "The user identifier is not a SHA-256 digest.")


def _check_ads_address(address: Any, family: str) -> None:
    """A full address: hashed first and last name, raw ISO-2 country code and postal code."""
    if not isinstance(address, dict) or not set(address) <= ADS_ADDRESS_KEYS:
        raise RowError(f"{family}.INVALID_USER_IDENTIFIER", "addressInfo has unknown fields.")
    names = (address.get("hashedFirstName"), address.get("hashedLastName"))
    if not all(isinstance(v, str) and SHA256_HEX.fullmatch(v) for v in names):
        raise RowError(f"{family}.INVALID_USER_IDENTIFIER", "Address names must be SHA-256 digests.")
    country, postal = address.get("countryCode"), address.get("postalCode")
    if not (
        isinstance(country, str) and re.fullmatch(r"[A-Z]{2}", country) and isinstance(postal, str) and postal
    ):
        raise RowError(f"{family}.INVALID_USER_IDENTIFIER", "An address needs countryCode and postalCode.")


# ---------------------------------------------------------------------------------------------------
# Fault answers.


def fault_error(fault: Fault, api: str) -> GoogleError | None:
    """The answer a fault mode forces, or None when the request is processed normally."""
    retry = None if fault.retry_after is None else max(0, round(fault.retry_after))
    if fault.mode == "429":
        retry = max(0, round(DEFAULT_RETRY_AFTER if fault.retry_after is None else fault.retry_after))
    build = FAULT_ERRORS.get(fault.mode)
    error = None if build is None else build(api)
    if error is not None:
        error.retry_after = retry
    return error


FAULT_ERRORS: dict[str, Callable[[str], GoogleError]] = {
    "503": lambda api: GoogleError(503, "UNAVAILABLE", "The service is currently unavailable."),
    "500": lambda api: GoogleError(500, "INTERNAL", "Internal error encountered."),
    "429": lambda api: GoogleError(
        429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."
    ),
    "html_502": lambda api: HtmlError(502, "BAD_GATEWAY", "502 Bad Gateway"),
    "unauthenticated": lambda api: unauthenticated(api, "OAUTH_TOKEN_EXPIRED"),
    "permission_denied": lambda api: GoogleError(
        403, "PERMISSION_DENIED", "The caller does not have permission"
    ),
}
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def unauthenticated(api: str, reason: str) -> GoogleError:
    """401 UNAUTHENTICATED, in each API's dialect."""
    message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
    if api == "google_ads":
        return ads_error(401, "UNAUTHENTICATED", f"authenticationError.{reason}", message)
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_EXPIRED"}
    return GoogleError(401, "UNAUTHENTICATED", message, [info])


def error_response(error: GoogleError) -> Response:
    """JSON (or HTML) error answer with Retry-After when set."""
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    if isinstance(error, HtmlError):
        return HTMLResponse(HTML_502, status_code=error.status, headers=headers)
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


# ---------------------------------------------------------------------------------------------------
# The fake.


@dataclass(frozen=True)
class _Call:
    seq: int
    request: Request
    fault: Fault
    api: str


class GoogleFake(Fake[ReceivedConversion, RequestRecord, Violation]):
    """Fake Google token endpoint, Data Manager API and Ads API: ``.app`` and a thread-safe ledger.

    ``received`` holds the recorded conversions: Data Manager events and Ads API rows. The fault mode
    applies to the two APIs, not to the token endpoint.
    """

    modes = FAULT_MODES
    _state: _Ledger

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_tokens: Iterable[str],
        customer_id: str | None = None,
        service_accounts: Iterable[str] = (),
        token_lifetime: int = 3600,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(now)
        self.client_id, self.client_secret = client_id, client_secret
        self.service_accounts = frozenset(service_accounts)
        self._initial_refresh_tokens = frozenset(refresh_tokens)
        self.refresh_tokens = set(self._initial_refresh_tokens)
        self.customer_id, self.token_lifetime = customer_id, token_lifetime
        self.token_delay = 0.0
        self.app = Starlette(routes=self._routes())

    # -- Python API ------------------------------------------------------------------------------

    @property
    def tokens(self) -> list[TokenGrant]:
        """Every token endpoint request (a copy)."""
        with self._cond:
            return list(self._state.tokens)

    def ids(self) -> list[str | None]:
        """The transaction / order id of every recorded conversion, in arrival order."""
        return [entry.id for entry in self.received]

    def fail(self, record_id: str, code: str, message: str | None = None, count: int | None = None) -> None:
        """Make the record with this order/transaction id fail with ``code`` (``count`` times, or always)."""
        if count is not None and count < 1:
            raise ValueError("count must be a positive integer")
        with self._cond:
            self._state.failures[record_id] = Failure(code, message or f"The fake rejects {code}.", count)

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token: the token endpoint answers invalid_grant from now on."""
        with self._cond:
            self.refresh_tokens.discard(refresh_token)

    def expire_tokens(self) -> None:
        """Expire every issued access token: the APIs answer 401 until the client refreshes."""
        with self._cond:
            self._state.issued.clear()

    def clear(self) -> None:
        """Back to the start: ledger, tokens, violations, failures, revocations and fault mode forgotten."""
        with self._cond:
            super().clear()
            self.refresh_tokens = set(self._initial_refresh_tokens)
            self.token_delay = 0.0

    def _ledger(self) -> _Ledger:
        return _Ledger()

    def _violation(self, seq: int, key: str, now: float, until: float, detail: str) -> Violation:
        return Violation("retry_after", seq, key, now, until, detail)

    # -- HTTP ------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            *self._admin_routes(),
            Route("/_admin/tokens", self._admin_list("tokens"), methods=["GET"]),
            Route("/_admin/fail", self._admin_fail, methods=["POST"]),
            Route("/_admin/revoke", self._admin_revoke, methods=["POST"]),
            Route("/_admin/expire", self._admin_expire, methods=["POST"]),
            Route("/token", self._token, methods=["POST"]),
            Route("/v1/events:ingest", self._ingest, methods=["POST"]),
            Route("/{version}/customers/{target}", self._upload, methods=["POST"]),
            Route("/{path:path}", self._unknown_path, methods=ALL_METHODS),
        ]

    # -- token endpoint --------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(), keep_blank_values=True).items()}
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        status, answer = self._grant(form)
        with self._cond:
            self._state.seq += 1
            grant = TokenGrant(
                self._state.seq,
                self.now(),
                form.get("refresh_token", ""),
                form.get("scope"),
                status,
                answer.get("error"),
                answer.get("access_token"),
            )
            self._state.tokens.append(grant)
        return JSONResponse(answer, status_code=status)

    def _grant(self, form: dict[str, str]) -> tuple[int, Json]:
        if form.get("grant_type") == JWT_GRANT:
            return self._service_account_grant(form)
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        if form.get("refresh_token") not in self.refresh_tokens:
            return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        return self._issue(form.get("scope", f"{DM_SCOPE} {ADS_SCOPE}"))

    def _service_account_grant(self, form: dict[str, str]) -> tuple[int, Json]:
        """The JWT-bearer grant of a service account key (ADC from GOOGLE_APPLICATION_CREDENTIALS).

        The fake checks the claims, not the RS256 signature: issuer, audience, expiry and scope.
        """
        claims = jwt_claims(form.get("assertion", ""))
        issuer_known = claims.get("iss") in self.service_accounts
        fresh = isinstance(claims.get("exp"), int) and claims["exp"] > self.now() - 60
        if not issuer_known or not fresh or not str(claims.get("aud", "")).endswith("/token"):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        return self._issue(str(claims.get("scope", "")))

    def _issue(self, scope: str) -> tuple[int, Json]:
        scopes = frozenset(scope.split())
        if not scopes or not scopes <= {DM_SCOPE, ADS_SCOPE}:
            return 400, {"error": "invalid_scope", "error_description": "Some requested scopes were invalid."}
        token = f"ya29.fake-{secrets.token_urlsafe(12)}"
        with self._cond:
            self._state.issued[token] = _Token(scopes, self.now() + self.token_lifetime)
        body = {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        return 200, body | {"scope": " ".join(sorted(scopes))}

    def _check_bearer(self, request: Request, api: str) -> None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        with self._cond:
            grant = self._state.issued.get(token or "")
        if grant is None or grant.expires_at <= self.now():
            reason = "OAUTH_TOKEN_EXPIRED" if grant is not None else "OAUTH_TOKEN_INVALID"
            raise unauthenticated(api, reason)
        if (DM_SCOPE if api == "data_manager" else ADS_SCOPE) not in grant.scopes:
            raise GoogleError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")

    # -- Data Manager ----------------------------------------------------------------------------

    async def _ingest(self, request: Request) -> Response:
        call = self._arrive(request, "data_manager")
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        body = parse_json(raw)
        try:
            events = self._validate_ingest(call, body)
        except GoogleError as error:
            return self._reject(call, body, error)
        return self._accept_events(call, body, events)

    def _validate_ingest(self, call: _Call, body: Any) -> list[Json]:
        forced = fault_error(call.fault, call.api)
        if forced is not None:
            raise forced
        self._check_bearer(call.request, call.api)
        if not isinstance(body, dict):
            raise dm_invalid("INVALID_ARGUMENT", "The body must be a JSON object.")
        events = validate_dm(body, self.now(), self.customer_id)
        for index, event in enumerate(events):
            failure = self._take_failure(event.get("transactionId"))
            if failure is not None:
                raise dm_invalid(failure.code, failure.message, f"events[{index}]")
        return events

    def _accept_events(self, call: _Call, body: Json, events: list[Json]) -> Response:
        validate_only = body.get("validateOnly") is True
        if not validate_only:
            entries = [
                self._dm_entry(call, destination, event)
                for event in events
                for destination in body["destinations"]
            ]
            self._accept_all(entries)
        self._log(call, status=200, body=body, n_records=len(events), validate_only=validate_only)
        return JSONResponse({"requestId": secrets.token_hex(16)})

    def _dm_entry(self, call: _Call, destination: Json, event: Json) -> ReceivedConversion:
        return ReceivedConversion(
            seq=call.seq,
            api="data_manager",
            customer_id=destination["operatingAccount"]["accountId"],
            action=destination["productDestinationId"],
            id=event.get("transactionId"),
            conversion_time=event.get("eventTimestamp"),
            received_at=self.now(),
            payload=event,
        )

    # -- Ads API ---------------------------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        call = self._arrive(request, "google_ads")
        raw = await read_body(request, call.fault)
        if raw is None:
            self._log(call, status=None)
            return ConnectionReset()
        body = parse_json(raw)
        try:
            customer, rows_key, rows = self._validate_upload(call, body)
        except GoogleError as error:
            return self._reject(call, body, error)
        return self._answer_rows(call, body, customer, rows_key, rows)

    def _validate_upload(self, call: _Call, body: Any) -> tuple[str, str, list[Json]]:
        forced = fault_error(call.fault, call.api)
        if forced is not None:
            raise forced
        version, target = call.request.path_params["version"], call.request.path_params["target"]
        customer, _, method = target.partition(":")
        if version != ADS_VERSION or method not in METHODS:
            raise GoogleError(404, "NOT_FOUND", f"Method not found: /{version}/customers/{target}")
        self._check_bearer(call.request, call.api)
        self._check_customer(call.request, customer)
        if not isinstance(body, dict):
            raise GoogleError(400, "INVALID_ARGUMENT", "The body must be a JSON object.")
        return customer, METHODS[method], validate_ads_request(body, METHODS[method])

    def _check_customer(self, request: Request, customer: str) -> None:
        if not re.fullmatch(r"\d{10}", customer):
            raise ads_error(
                400, "INVALID_ARGUMENT", "requestError.INVALID_CUSTOMER_ID", "Invalid customer id."
            )
        login = request.headers.get("login-customer-id")
        if login is not None and not re.fullmatch(r"\d{10}", login):
            message = "The login customer id must be 10 digits without hyphens."
            raise ads_error(400, "INVALID_ARGUMENT", "headerError.INVALID_LOGIN_CUSTOMER_ID", message)
        if self.customer_id is not None and customer != self.customer_id:
            message = "User doesn't have permission to access customer."
            raise ads_error(403, "PERMISSION_DENIED", "authorizationError.USER_PERMISSION_DENIED", message)

    def _answer_rows(
        self, call: _Call, body: Json, customer: str, rows_key: str, rows: list[Json]
    ) -> Response:
        validate_only = body.get("validateOnly") is True
        errors: list[Json] = []
        accepted: list[ReceivedConversion] = []
        results: list[Json] = []
        in_request: set[tuple[str, str]] = set()
        for index, row in enumerate(rows):
            try:
                key = self._check_row(row, rows_key, in_request)
            except RowError as failure:
                errors.append(ads_row_error(failure.code, failure.message, index, rows_key, failure.sub))
                results.append({})
                continue
            in_request.add(key)
            accepted.append(self._ads_entry(call, customer, row))
            results.append(_result(row))
        if not validate_only:
            self._remember(in_request)
            self._accept_all(accepted)
        codes = [_code_of(error) for error in errors]
        self._log(
            call, status=200, body=body, n_records=len(rows), row_errors=codes, validate_only=validate_only
        )
        return JSONResponse(_upload_answer(errors, rows_key, [] if validate_only else results))

    def _check_row(self, row: Json, rows_key: str, in_request: set[tuple[str, str]]) -> tuple[str, str]:
        """Validate one row and apply dedup and chosen failures; returns its (action, order id) key."""
        enhancement = rows_key != "conversions"
        (check_adjustment_row if enhancement else check_click_row)(row, self.now())
        failure = self._take_failure(row.get("orderId"))
        if failure is not None:
            raise RowError(failure.code, failure.message)
        key = (str(row["conversionAction"]), str(row.get("orderId") or _click_key(row)))
        with self._cond:
            seen = key in self._state.seen
        if seen or key in in_request:
            raise RowError(*_duplicate(enhancement, bool(row.get("orderId")), in_request=not seen))
        return key

    def _ads_entry(self, call: _Call, customer: str, row: Json) -> ReceivedConversion:
        pair = row.get("gclidDateTimePair") or {}
        moment = row.get("conversionDateTime") or pair.get("conversionDateTime")
        return ReceivedConversion(
            seq=call.seq,
            api="google_ads",
            customer_id=customer,
            action=row["conversionAction"],
            id=row.get("orderId"),
            conversion_time=moment,
            received_at=self.now(),
            payload=row,
        )

    # -- shared ----------------------------------------------------------------------------------

    async def _unknown_path(self, request: Request) -> Response:
        call = self._arrive(request, "unknown")
        error = GoogleError(404, "NOT_FOUND", f"Not found: {request.url.path}")
        return self._reject(call, parse_json(await request.body()), error)

    def _arrive(self, request: Request, api: str) -> _Call:
        """Retry-After is kept per API; the fault mode leaves unknown paths alone."""
        seq, fault = self._turn(api, faulty=api != "unknown")
        return _Call(seq, request, fault, api)

    def _take_failure(self, record_id: Any) -> Failure | None:
        """The chosen failure for this id, consuming one use of a counted one."""
        with self._cond:
            failure = self._state.failures.get(str(record_id)) if record_id is not None else None
            if failure is not None and failure.count is not None:
                failure.count -= 1
                if failure.count <= 0:
                    del self._state.failures[str(record_id)]
            return failure

    def _remember(self, keys: set[tuple[str, str]]) -> None:
        with self._cond:
            self._state.seen.update(keys)

    def _reject(self, call: _Call, body: Any, error: GoogleError) -> Response:
        self._hold_off(call.api, error.retry_after)
        detail = {"html": HTML_502} if isinstance(error, HtmlError) else error.to_json()["error"]
        self._log(call, status=error.status, error=detail, body=body)
        return error_response(error)

    def _log(
        self,
        call: _Call,
        *,
        status: int | None,
        error: Json | None = None,
        body: Any = None,
        n_records: int = 0,
        row_errors: list[str] | None = None,
        validate_only: bool = False,
    ) -> None:
        record = RequestRecord(
            seq=call.seq,
            received_at=self.now(),
            method=call.request.method,
            path=call.request.url.path,
            api=call.api,
            mode=call.fault.mode,
            status=status,
            error=error,
            n_records=n_records,
            row_errors=row_errors or [],
            validate_only=validate_only,
            login_customer_id=call.request.headers.get("login-customer-id"),
            body=body,
        )
        self._note_request(record)

    # -- admin -----------------------------------------------------------------------------------

    def _mode_arguments(self, payload: Any) -> Json:
        return _arguments(payload, "mode", {"count", "retry_after", "delay"})

    async def _admin_fail(self, request: Request) -> Response:
        try:
            self.fail(
                **_arguments(parse_json(await request.body()), "record_id", {"code", "message", "count"})
            )
        except (TypeError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    async def _admin_revoke(self, request: Request) -> Response:
        payload = parse_json(await request.body())
        if not isinstance(payload, dict) or not isinstance(payload.get("refresh_token"), str):
            return JSONResponse({"detail": 'expected {"refresh_token": "..."}'}, status_code=400)
        self.revoke(payload["refresh_token"])
        return JSONResponse({"revoked": True})

    async def _admin_expire(self, request: Request) -> Response:
        self.expire_tokens()
        return JSONResponse({"expired": True})


def jwt_claims(assertion: str) -> Json:
    """The payload of a compact JWT (not verified), or {} when it is not one."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _click_key(row: Json) -> str:
    """Google's dedup key of a click conversion without orderId: click id + time."""
    click = row.get("gclid") or row.get("gbraid") or row.get("wbraid") or ""
    return f"{click}@{row.get('conversionDateTime')}"


def _duplicate(enhancement: bool, has_order_id: bool, *, in_request: bool) -> tuple[str, str]:
    """The row error Google gives a conversion it already has (or has twice in one request)."""
    if enhancement:
        name = "DUPLICATE_ENHANCEMENT_IN_REQUEST" if in_request else "CONVERSION_ALREADY_ENHANCED"
        return f"conversionAdjustmentUploadError.{name}", "The conversion was already enhanced."
    if has_order_id:
        name = "DUPLICATE_ORDER_ID" if in_request else "ORDER_ID_ALREADY_IN_USE"
        return f"conversionUploadError.{name}", "The order id was already used for this conversion action."
    name = "DUPLICATE_CLICK_CONVERSION_IN_REQUEST" if in_request else "CLICK_CONVERSION_ALREADY_EXISTS"
    return f"conversionUploadError.{name}", "This conversion was already uploaded."


def _result(row: Json) -> Json:
    """The positional result of an accepted row."""
    keys = (
        "gclid",
        "gbraid",
        "wbraid",
        "conversionAction",
        "conversionDateTime",
        "orderId",
        "adjustmentType",
    )
    return {key: row[key] for key in keys if key in row}


def _code_of(error: Json) -> str:
    family, name = next(iter(error["errorCode"].items()))
    return f"{family}.{name}"


def _upload_answer(errors: list[Json], rows_key: str, results: list[Json]) -> Json:
    """HTTP 200 body: results, and a partialFailureError when a row failed."""
    answer: Json = {"jobId": str(2**31 + secrets.randbelow(2**20))}
    if results:
        answer["results"] = results
    if errors:
        locations = [
            f"{e['message']}, at {snake(rows_key)}[{e['location']['fieldPathElements'][0]['index']}]"
            for e in errors
        ]
        message = "; ".join(locations)
        answer["partialFailureError"] = {"code": 3, "message": message, "details": [ads_failure(errors)]}
    return answer


def _arguments(payload: Any, required: str, optional: set[str]) -> Json:
    """Validate an admin JSON body into keyword arguments."""
    if not isinstance(payload, dict) or not isinstance(payload.get(required), str):
        raise ValueError(f"expected a JSON object with a string {required!r}")
    unknown = set(payload) - optional - {required}
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
    return dict(payload)


def create_google_fake(
    *,
    client_id: str,
    client_secret: str,
    refresh_tokens: Iterable[str],
    customer_id: str | None = None,
    service_accounts: Iterable[str] = (),
    now: Callable[[], float] = time.time,
) -> GoogleFake:
    """Build a fake Google for one OAuth client and its refresh tokens, optionally one customer."""
    return GoogleFake(
        client_id=client_id,
        client_secret=client_secret,
        refresh_tokens=refresh_tokens,
        customer_id=customer_id,
        service_accounts=service_accounts,
        now=now,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone with uvicorn until interrupted."""
    description = "Run a fake Google token endpoint, Data Manager API and Google Ads API."
    parser = command("google", description, 9002, FAULT_MODES)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--refresh-token", action="append", required=True, help="repeatable")
    parser.add_argument("--customer", default=None, help="accept only this 10-digit customer id")
    args = parser.parse_args(argv)
    fake = create_google_fake(
        client_id=args.client_id,
        client_secret=args.client_secret,
        refresh_tokens=args.refresh_token,
        customer_id=args.customer,
    )
    run(fake, args)


if __name__ == "__main__":
    main()
