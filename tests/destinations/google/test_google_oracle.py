"""Google's own client libraries as oracles for our Google bodies, fixtures and identifier hashing.

- Every request in the google golden cases parses strictly (`json_format.ParseDict`: unknown fields,
  bad enums, wrong types and two members of a oneof all raise) into the request type of the same API
  version: google-ads' v26 UploadClickConversionsRequest / UploadConversionAdjustmentsRequest, and
  google-ads-datamanager's IngestEventsRequest. What the protos cannot express is checked by hand.
- The response fixtures parse into the response types and google.rpc.Status, and the row each
  GoogleAdsFailure error names, read by the proto, is the row our classifier decides for.
- A corpus of awkward identifiers: our hash against google-ads-datamanager-util's Formatter, with
  every deliberate difference listed with the plaintext each side hashes and why.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pytest
from google.ads.datamanager_util import Encoding, Formatter
from google.ads.datamanager_v1.types import IngestEventsRequest
from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure
from google.ads.googleads.v26.services.types.conversion_adjustment_upload_service import (
    UploadConversionAdjustmentsRequest,
    UploadConversionAdjustmentsResponse,
)
from google.ads.googleads.v26.services.types.conversion_upload_service import (
    UploadClickConversionsRequest,
    UploadClickConversionsResponse,
)
from google.protobuf import json_format
from google.rpc import status_pb2

from destinations.google.adapter import ADS_API_VERSION, GoogleDestination
from router.context import RequestContext
from router.identity import hash_identifiers
from router.normalize import normalize
from tests.destinations.golden import GoldenFile, build, golden_files, response_of, run_case

VARIANTS = GoogleDestination.identity_variants
FORMATTER = Formatter()
CASES = [c for c in golden_files("cases") if c.type == "google" and "requests" in c.data["expect"]]
RESPONSES = [r for r in golden_files("responses") if r.type == "google"]
ADS_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
ACTION = re.compile(r"customers/\d+/conversionActions/\d+")
HEX64 = re.compile(r"[0-9a-f]{64}")
HASHED_KEYS = frozenset(
    {"emailAddress", "phoneNumber", "givenName", "familyName", "hashedEmail", "hashedPhoneNumber"}
    | {"hashedFirstName", "hashedLastName"}
)


def request_type(url: str) -> Any:
    """The proto-plus request type of an endpoint."""
    if url.endswith("/v1/events:ingest"):
        return IngestEventsRequest
    if url.endswith(":uploadClickConversions"):
        return UploadClickConversionsRequest
    assert url.endswith(":uploadConversionAdjustments"), url
    return UploadConversionAdjustmentsRequest


def requests_of(case: GoldenFile) -> list[dict[str, Any]]:
    """The masked requests a case builds."""
    return run_case(case).requests


def hashed_values(node: Any) -> list[str]:
    """Every value under a key that carries a hash, anywhere in the body."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in HASHED_KEYS]
        return found + [h for v in node.values() for h in hashed_values(v)]
    if isinstance(node, list):
        return [h for item in node for h in hashed_values(item)]
    return []


# -- request bodies ----------------------------------------------------------------------------------


def test_ads_version_is_in_the_installed_library() -> None:
    """ADS_API_VERSION is a version package of the installed google-ads wheel."""
    assert UploadClickConversionsRequest.__module__.startswith(f"google.ads.googleads.{ADS_API_VERSION}.")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_request_parses_strictly_into_the_official_type(case: GoldenFile) -> None:
    """ParseDict with the official request type accepts the body: names, enums, types and oneofs."""
    for request in requests_of(case):
        cls = request_type(request["url"])
        json_format.ParseDict(request["json"], cls.pb()())


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_what_the_proto_cannot_check(case: GoldenFile) -> None:
    """Hashes are 64 lower-case hex; the Ads rules the fact sheet lists hold (C1)."""
    for request in requests_of(case):
        body = request["json"]
        assert all(HEX64.fullmatch(value) for value in hashed_values(body))
        if "events" in body:
            assert body["encoding"] == "HEX" and len(body["events"]) <= 2000
            assert all(d["productDestinationId"].isdigit() for d in body["destinations"])
            continue
        assert body["partialFailure"] is True
        rows = body.get("conversions") or body["conversionAdjustments"]
        assert 1 <= len(rows) <= 2000
        for row in rows:
            _check_ads_row(row, click="conversions" in body)


def _check_ads_row(row: dict[str, Any], *, click: bool) -> None:
    assert ACTION.fullmatch(row["conversionAction"])
    assert len(row.get("userIdentifiers", [])) <= 5
    if click:
        assert ADS_TIME.fullmatch(row["conversionDateTime"])
        assert sum(key in row for key in ("gclid", "gbraid", "wbraid")) <= 1
        assert all("addressInfo" not in ident for ident in row.get("userIdentifiers", []))
    else:
        assert row["adjustmentType"] == "ENHANCEMENT" and row["orderId"]
        assert ADS_TIME.fullmatch(row["gclidDateTimePair"]["conversionDateTime"])
        assert "gclid" not in row["gclidDateTimePair"]


def test_the_oracle_is_strict() -> None:
    """The parser really refuses what Google would: Ads-style time in Data Manager, a bad enum, a typo."""
    dm = {"events": [{"eventTimestamp": "2026-01-01 00:00:00+00:00"}]}
    bad_enum = {"conversions": [{"consent": {"adUserData": "YES"}}]}
    typo = {"conversions": [{"orderID": "1"}]}
    two_kinds = {"conversions": [{"userIdentifiers": [{"hashedEmail": "a", "hashedPhoneNumber": "b"}]}]}
    for body, cls in ((dm, IngestEventsRequest), (bad_enum, UploadClickConversionsRequest)):
        with pytest.raises(json_format.ParseError):
            json_format.ParseDict(body, cls.pb()())
    for body in (typo, two_kinds):
        with pytest.raises(json_format.ParseError):
            json_format.ParseDict(body, UploadClickConversionsRequest.pb()())


# -- response fixtures -------------------------------------------------------------------------------


def _response_type(fixture: GoldenFile) -> Any:
    mode = fixture.data["config"].get("mode")
    return UploadConversionAdjustmentsResponse if mode == "enhancement" else UploadClickConversionsResponse


@pytest.mark.parametrize(
    "fixture",
    [
        r
        for r in RESPONSES
        if r.data["config"].get("api") == "google_ads" and r.data["response"]["status"] == 200
    ],
    ids=lambda fixture: fixture.id,
)
def test_ads_2xx_fixtures_parse_and_rows_match(fixture: GoldenFile) -> None:
    """Each 200 fixture is a valid response; every row a GoogleAdsFailure error names is not OK for us."""
    body = fixture.data["response"]["body"]
    parsed = json_format.ParseDict(body, _response_type(fixture).pb()())
    named = set()
    for detail in parsed.partial_failure_error.details:
        failure = GoogleAdsFailure.pb()()
        assert detail.Unpack(failure)
        named |= {
            e.location.field_path_elements[0].index for e in failure.errors if e.location.field_path_elements
        }
    verdicts = (
        fixture.data["expect"] if isinstance(fixture.data["expect"], list) else [fixture.data["expect"]]
    )
    duplicates = {"ok"}
    for index in named:
        codes = {str(e["errorCode"]) for e in _errors_of(body) if _index(e) == index}
        already = any("ALREADY" in code or "DUPLICATE" in code for code in codes)
        assert (verdicts[index] in duplicates) == already, (index, codes)


def _errors_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for d in body["partialFailureError"]["details"] for e in d["errors"]]


def _index(error: dict[str, Any]) -> int | None:
    elements = error.get("location", {}).get("fieldPathElements", [])
    return elements[0]["index"] if elements else None


@pytest.mark.parametrize(
    "fixture", [r for r in RESPONSES if isinstance(response_of(r.data).json(), dict)], ids=lambda f: f.id
)
def test_error_envelopes_are_google_rpc_status(fixture: GoldenFile) -> None:
    """Every JSON error body is a google.rpc.Status whose details resolve (ErrorInfo, BadRequest, ...)."""
    body = response_of(fixture.data).json()
    if "error" not in body:
        return
    error = dict(body["error"])
    error.pop("status")
    status = json_format.ParseDict(error, status_pb2.Status())
    assert status.code == fixture.data["response"]["status"]
    for detail in status.details:
        if detail.type_url.endswith("GoogleAdsFailure"):
            assert detail.Unpack(GoogleAdsFailure.pb()())


def test_response_fixtures_cover_every_config() -> None:
    """The fixtures classify with a valid config each (golden `build` validates it)."""
    assert all(build("google", r.data["config"]) for r in RESPONSES)


# -- hashing corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Same:
    """An input both sides hash to the same digest."""

    field: str
    raw: str
    plain: str


@dataclass(frozen=True)
class Differs:
    """A deliberate difference: the plaintext each side hashes, and why."""

    field: str
    raw: str
    our_plain: str
    util_plain: str
    why: str
    region: str | None = None


SAME = [
    Same("email", "Jane.Doe@Gmail.com", "janedoe@gmail.com"),
    Same("email", "  jane.doe+ads@gmail.com ", "janedoe@gmail.com"),
    Same("email", "J.A.N.E+news+x@GOOGLEMAIL.COM", "jane@googlemail.com"),
    Same("email", "Jane.Doe+ads@Example.com", "jane.doe+ads@example.com"),  # dots and + kept off gmail
    Same("email", "JANE@EXAMPLE.CO.UK", "jane@example.co.uk"),
    Same("email", "first.last@gmail.com.au", "first.last@gmail.com.au"),  # not gmail.com
    Same("phone", "+1 650 555 1212", "+16505551212"),
    Same("phone", "+1 (650) 555-1212", "+16505551212"),
    Same("phone", "+44 20 7946 0958", "+442079460958"),
    Same("phone", "+49 30 901820", "+4930901820"),
    Same("first_name", "  Jane ", "jane"),
    Same("first_name", "Mary-Ann", "mary-ann"),
    Same("last_name", "DOE", "doe"),
    Same("last_name", "van der Berg", "van der berg"),
]

DIFFERENCES = [
    Differs(
        "phone", "+44 (0)20 7946 0958", "+442079460958", "+4402079460958",
        "the util keeps the UK trunk 0 written as (0); libphonenumber drops it, as E.164 requires",
    ),
    Differs(
        "phone", "(650) 555-1212", "+16505551212", "+6505551212",
        "the util never adds a country code; we take it from the user's country (or the default region)",
        region="US",
    ),
    Differs(
        "phone", "0044 20 7946 0958", "+442079460958", "+00442079460958",
        "the util keeps the 00 international prefix as digits; we read it as +",
    ),
    Differs(
        "first_name", "Jose\u0301", "jos\u00e9", "jose\u0301",
        "we NFC-normalize Unicode (a decomposed accent becomes one character); the util hashes as sent",
    ),
]  # fmt: skip

UTIL = {
    "email": lambda raw: FORMATTER.process_email_address(raw, Encoding.HEX),
    "phone": lambda raw: FORMATTER.process_phone_number(raw, Encoding.HEX),
    "first_name": lambda raw: FORMATTER.process_given_name(raw, Encoding.HEX),
    "last_name": lambda raw: FORMATTER.process_family_name(raw, Encoding.HEX),
}
OUR_KEY = {
    "email": "email_google",
    "phone": "phone_e164",
    "first_name": "first_name",
    "last_name": "last_name",
}


def ours(field: str, raw: str, region: str | None = None) -> str | None:
    """Our stored hash of one raw identifier, in the variant the Google adapter reads."""
    hashed, _warnings = hash_identifiers({field: raw}, VARIANTS, region)
    return hashed.get(OUR_KEY[field])


def sha(text: str) -> str:
    """SHA-256 hex."""
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("row", SAME, ids=lambda row: f"{row.field}:{row.raw.strip()[:24]}")
def test_same_hash_as_the_datamanager_util(row: Same) -> None:
    """Where we agree with Google's util, both are the digest of the expected plaintext."""
    assert ours(row.field, row.raw) == sha(row.plain)
    assert UTIL[row.field](row.raw) == sha(row.plain)


@pytest.mark.parametrize("row", DIFFERENCES, ids=lambda row: f"{row.field}:{row.raw[:24]}")
def test_deliberate_difference_from_the_datamanager_util(row: Differs) -> None:
    """Each deliberate difference: we hash our plaintext, the util its own."""
    assert ours(row.field, row.raw, row.region) == sha(row.our_plain), row.why
    assert UTIL[row.field](row.raw) == sha(row.util_plain), row.why


def test_region_and_postal_code_match_the_util() -> None:
    """Raw address parts: region upper-case ISO-2 as the util formats it; the postal code as the util
    keeps it (trimmed), except that we also upper-case and collapse inner spaces at ingest."""
    event = _stored({"country": " us ", "zip": " 94025 "})
    address = _dm_address(event)
    assert address["regionCode"] == FORMATTER.process_region_code(" us ")
    assert address["postalCode"] == FORMATTER.process_postal_code(" 94025 ")
    uk = _dm_address(_stored({"country": "GB", "zip": "sw1a  1aa"}))
    assert (uk["postalCode"], FORMATTER.process_postal_code("sw1a  1aa")) == ("SW1A 1AA", "sw1a  1aa")


def _stored(extra: dict[str, str]) -> dict[str, Any]:
    """A stored event from a raw one, through the real normalize with keep_postal_code."""
    raw = {
        "event_name": "purchase",
        "event_id": "o-1",
        "action_source": "crm",
        "user": {"email": "Jane.Doe@Gmail.com", "first_name": "Jane", "last_name": "Doe", **extra},
    }
    context = RequestContext("backend", False, 1_767_225_600_000)
    normalized = normalize(raw, context, VARIANTS, keep_postal_code=True)
    assert normalized.event is not None, normalized.errors
    return normalized.event


def _dm_address(event: dict[str, Any]) -> dict[str, Any]:
    block = {"id": "g", "type": "google", "customer_id": "1234567890", "conversions": {"purchase": 1}}
    destination = build("google", block | {"credentials": "adc"})
    body = destination.map(event, 1_767_225_700.0)[0].body
    [address] = [i["address"] for i in body["userData"]["userIdentifiers"] if "address" in i]
    return address


def test_whole_identifier_set_matches_the_util() -> None:
    """Our Data Manager userIdentifiers for one user equal those built with the util's process_*."""
    event = _stored({"phone": "+1 650 555 1212", "country": "US", "zip": "94025"})
    block = {"id": "g", "type": "google", "customer_id": "1234567890", "conversions": {"purchase": 1}}
    ours_ = build("google", block | {"credentials": "adc"}).map(event, 1_767_225_700.0)[0].body
    expected = [
        {"emailAddress": FORMATTER.process_email_address("Jane.Doe@Gmail.com", Encoding.HEX)},
        {"phoneNumber": FORMATTER.process_phone_number("+1 650 555 1212", Encoding.HEX)},
        {
            "address": {
                "givenName": FORMATTER.process_given_name("Jane", Encoding.HEX),
                "familyName": FORMATTER.process_family_name("Doe", Encoding.HEX),
                "regionCode": FORMATTER.process_region_code("US"),
                "postalCode": FORMATTER.process_postal_code("94025"),
            }
        },
    ]
    assert ours_["userData"]["userIdentifiers"] == expected
