"""Google mapping rows and tables: identifiers, click ids, consent, event sources and row error codes.

Each row reads `Google key <- canonical path`. Both APIs take the same signals under different names
(Data Manager `emailAddress`, Ads API `hashedEmail`), so each API has its own rows. Hashing is done at
ingest (router/identity.py); rows only place stored `hashed.*` values and the few raw `user.*` ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
REGION: Final = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True, slots=True)
class Row:
    """One Google field filled from one canonical path; `hashed` values must be 64 lower-case hex."""

    key: str
    path: str
    hashed: bool = False
    upper: bool = False


# -- user identifiers ------------------------------------------------------------------------------

DM_IDENTIFIERS: Final[tuple[Row, ...]] = (
    Row("emailAddress", "hashed.email_google", hashed=True),  # gmail dots and +suffix removed
    Row("phoneNumber", "hashed.phone_e164", hashed=True),  # E.164 with the "+"
)
"""Data Manager `userData.userIdentifiers[]`: one identifier per entry (a oneof)."""

DM_ADDRESS: Final[tuple[Row, ...]] = (
    Row("givenName", "hashed.first_name", hashed=True),
    Row("familyName", "hashed.last_name", hashed=True),
    Row("regionCode", "user.country", upper=True),  # raw ISO-2, upper case
    Row("postalCode", "user.postal_code"),  # raw; stored only with identity.keep_postal_code
)
"""Data Manager `address`: sent only when all four are known (Google needs all four to match)."""

ADS_IDENTIFIERS: Final[tuple[Row, ...]] = (
    Row("hashedEmail", "hashed.email_google", hashed=True),
    Row("hashedPhoneNumber", "hashed.phone_e164", hashed=True),
)
"""Ads API `userIdentifiers[]`. Click conversions take only these two; enhancements add the address."""

ADS_ADDRESS: Final[tuple[Row, ...]] = (
    Row("hashedFirstName", "hashed.first_name", hashed=True),
    Row("hashedLastName", "hashed.last_name", hashed=True),
    Row("countryCode", "user.country", upper=True),
    Row("postalCode", "user.postal_code"),
)
"""Ads API `addressInfo` (enhancements only: ClickConversion does not support it)."""

IDENTITY_VARIANTS: Final[frozenset[str]] = frozenset(
    row.path.removeprefix("hashed.") for row in DM_IDENTIFIERS + DM_ADDRESS + ADS_IDENTIFIERS if row.hashed
)
"""The router/identity.py variants the rows above read."""

MAX_ADS_IDENTIFIERS: Final = 5
"""Ads API: at most 5 user identifiers per conversion or adjustment (field docs)."""

# -- click ids, event sources and consent ----------------------------------------------------------

WEB_CLICK_IDS: Final = ("gclid", "wbraid", "gbraid")
APP_CLICK_IDS: Final = ("gclid", "gbraid", "wbraid")
"""At most one click id is sent, the first present: gclid, else wbraid (iOS web) or gbraid (iOS app)."""

EVENT_SOURCES: Final[Mapping[str, str]] = {
    "website": "WEB",
    "app": "APP",
    "offline": "IN_STORE",
    "phone_call": "PHONE",
    "chat": "MESSAGE",
    "crm": "OTHER",
    "email": "OTHER",
    "other": "OTHER",
}
"""Canonical action_source -> Data Manager `eventSource` (required for offline conversions since v1.2)."""

ADS_CONSENT: Final[Mapping[str, str]] = {"granted": "GRANTED", "denied": "DENIED"}
DM_CONSENT: Final[Mapping[str, str]] = {"granted": "CONSENT_GRANTED", "denied": "CONSENT_DENIED"}
"""Canonical consent -> each API's enum; a missing value is left out (UNSPECIFIED)."""

# -- Ads API row errors (partialFailureError) ------------------------------------------------------

DUPLICATES: Final = frozenset(
    {
        "conversionUploadError.CLICK_CONVERSION_ALREADY_EXISTS",
        "conversionUploadError.ORDER_ID_ALREADY_IN_USE",
        "conversionUploadError.DUPLICATE_CLICK_CONVERSION_IN_REQUEST",
        "conversionUploadError.DUPLICATE_ORDER_ID",
        "conversionAdjustmentUploadError.CONVERSION_ALREADY_ENHANCED",
        "conversionAdjustmentUploadError.DUPLICATE_ENHANCEMENT_IN_REQUEST",
    }
)
"""Row errors that mean Google already has the conversion: delivered, never retried (fact sheet A6)."""

SIX_HOURS: Final = 6 * 3600.0
TRANSIENT: Final[Mapping[str, float | None]] = {
    "quotaError.RESOURCE_EXHAUSTED": None,
    "quotaError.RESOURCE_TEMPORARILY_EXHAUSTED": None,
    "internalError.INTERNAL_ERROR": None,
    "internalError.TRANSIENT_ERROR": None,
    "internalError.DEADLINE_EXCEEDED": None,
    "internalError.ERROR_CODE_NOT_PUBLISHED": None,
    "databaseError.CONCURRENT_MODIFICATION": None,
    "conversionUploadError.TOO_RECENT_EVENT": SIX_HOURS,  # click younger than 6 h
    "conversionUploadError.TOO_RECENT_CONVERSION_ACTION": SIX_HOURS,  # action created < 6 h ago
    "conversionAdjustmentUploadError.TOO_RECENT_CONVERSION_ACTION": SIX_HOURS,
    "conversionAdjustmentUploadError.TOO_RECENT_CONVERSION": SIX_HOURS,
}
"""Row errors worth retrying -> the least wait in seconds (None: the dispatcher's backoff).

Every other row error is permanent and dead-lettered with Google's message (fact sheet A8).
"""

SPLIT: Final = frozenset(
    {
        "conversionUploadError.TOO_MANY_CONVERSIONS_IN_REQUEST",
        "conversionAdjustmentUploadError.TOO_MANY_ADJUSTMENTS_IN_REQUEST",
    }
)
"""Request errors a smaller batch fixes: the dispatcher splits the batch (Drop isolate)."""

# -- Data Manager request errors (fail-fast) -------------------------------------------------------

DM_RETRY_STATUSES: Final = frozenset(
    {"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"}
)
"""google.rpc codes that are retried whatever the HTTP status says."""

DM_REQUEST_REASONS: Final = frozenset(
    {
        "PERMISSION_DENIED",
        "INVALID_DESTINATION",
        "TOO_MANY_DESTINATIONS",
        "INVALID_CONVERSION_ACTION_ID",
        "INVALID_CONVERSION_ACTION_TYPE",
        "OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH",
        "TERMS_AND_CONDITIONS_NOT_SIGNED",
        "DESTINATION_ACCOUNT_NOT_ENABLED_ENHANCED_CONVERSIONS_FOR_LEADS",
        "DESTINATION_ACCOUNT_DATA_POLICY_PROHIBITS_ENHANCED_CONVERSIONS",
        "DESTINATION_ACCOUNT_ENHANCED_CONVERSIONS_TERMS_NOT_SIGNED",
        "NOT_ALLOWLISTED",
    }
)
"""Data Manager ErrorReasons about the destination or account, not a record: splitting the batch
cannot help, so an INVALID_ARGUMENT with one of these is dropped without bisecting."""
