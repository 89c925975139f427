"""LinkedIn adapter: config, schema, hashing vectors and the rules golden files do not show on their own."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from destinations.base import EventError, HttpResponse, Payload, SkipEvent
from destinations.linkedin import fields
from destinations.linkedin.adapter import (
    API_VERSION,
    MAX_BATCH_SIZE,
    LinkedInConfig,
    LinkedInDestination,
)
from router.decisions import Drop, Ok, Retry
from router.identity import hash_identifiers
from router.secret import Secret

NOW = 1_767_225_700.0
TOKEN = "AQVfake-linkedin-token-123"
BLOCK: dict[str, Any] = {
    "id": "linkedin_main",
    "type": "linkedin",
    "access_token": TOKEN,
    "conversions": {"purchase": 123456, "lead": "234567"},
}
SCHEMA = json.loads(LinkedInDestination.schema_path().read_text())
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()


def destination(**overrides: Any) -> LinkedInDestination:
    """A destination from BLOCK plus overrides, validated by the schema like at startup."""
    block = {**BLOCK, **overrides}
    Draft202012Validator(SCHEMA).validate(block)
    return LinkedInDestination(LinkedInDestination.parse_config(block))


def event(**overrides: Any) -> dict[str, Any]:
    """A minimal valid CRM lead with a hashed email, 100 seconds before NOW."""
    base: dict[str, Any] = {
        "event_name": "lead",
        "event_id": "e-1",
        "timestamp_ms": int(NOW - 100) * 1000,
        "action_source": "crm",
        "hashed": {"email": EMAIL_HASH},
    }
    return base | overrides


def one(dest: LinkedInDestination, ev: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    """The single conversion event body that map gives."""
    payloads = dest.map(ev, now)
    assert len(payloads) == 1
    return payloads[0].body


def user_ids(body: dict[str, Any]) -> dict[str, str]:
    """`user.userIds[]` as idType -> idValue."""
    return {entry["idType"]: entry["idValue"] for entry in body["user"]["userIds"]}


def answer(status: int, body: Any, **headers: str) -> HttpResponse:
    """A LinkedIn answer with a JSON body."""
    return HttpResponse(status, {"content-type": "application/json", **headers}, json.dumps(body).encode())


def batch(size: int) -> list[Payload]:
    """`size` empty payloads."""
    return [Payload({}) for _ in range(size)]


# -- constants and config ---------------------------------------------------------------------------


def test_api_version_is_a_monthly_version() -> None:
    """The default LinkedIn-Version is YYYYMM, the class's api_version, and valid for the schema."""
    assert re.fullmatch(SCHEMA["properties"]["version"]["pattern"], API_VERSION)
    assert LinkedInDestination.api_version == API_VERSION


def test_limits() -> None:
    """5,000 elements per BATCH_CREATE and 90 days of age, as the fact sheet records."""
    assert LinkedInDestination.max_batch_size == MAX_BATCH_SIZE == 5000
    assert LinkedInDestination.max_event_age == 90 * 86400


def test_identity_variants_are_the_plain_email_only() -> None:
    """LinkedIn reads only the trimmed, lower-cased email hash (no gmail rule, no phone, no names)."""
    assert LinkedInDestination.identity_variants == {"email"}


def test_id_types_are_linkedins_names() -> None:
    """The idTypes sent are LinkedIn's enum names (ACXIOM, not the misspelt AXCIOM)."""
    documented = {"SHA256_EMAIL", "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "ACXIOM_ID", "ORACLE_MOAT_ID"}
    assert set(fields.ID_TYPES) == documented


def test_parse_config_defaults_and_rule_ids_as_text() -> None:
    """Integer rule ids become digit strings; the version defaults to API_VERSION."""
    config = destination().config
    assert config == LinkedInConfig(
        id="linkedin_main",
        type="linkedin",
        access_token=Secret(TOKEN),
        conversions={"purchase": "123456", "lead": "234567"},
    )
    assert config.version == API_VERSION and config.events is None and config.base_url is None


def test_parse_config_accepts_a_secret_and_masks_it() -> None:
    """A token already wrapped in Secret is kept; the config's repr never shows it."""
    config = LinkedInDestination.parse_config({**BLOCK, "access_token": Secret(TOKEN)})
    assert config.access_token.reveal() == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    "bad",
    [
        {"version": "2026-08"},
        {"version": "202613"},
        {"version": 202608},
        {"conversions": {}},
        {"conversions": {"purchase": "12a"}},
        {"conversions": {"purchase": 0}},
        {"conversions": {"purchase": 1.5}},
        {"conversions": ["purchase"]},
        {"access_token": ""},
        {"type": "meta"},
        {"event_map": {"purchase": "PURCHASE"}},
        {"base_url": "ftp://proxy"},
        {"timeout": 0},
        {"conversion_rules": {"purchase": 1}},
    ],
)
def test_schema_rejects(bad: dict[str, Any]) -> None:
    """The schema refuses malformed values and unknown keys (event_map means nothing for LinkedIn)."""
    with pytest.raises(ValidationError):
        Draft202012Validator(SCHEMA).validate({**BLOCK, **bad})


def test_schema_requires_token_and_conversions() -> None:
    """access_token and conversions are required."""
    for key in ("access_token", "conversions"):
        with pytest.raises(ValidationError):
            Draft202012Validator(SCHEMA).validate({k: v for k, v in BLOCK.items() if k != key})


def test_schema_describes_every_property() -> None:
    """Docs are generated from the schema, so every property has a description."""
    Draft202012Validator.check_schema(SCHEMA)
    assert all(spec.get("description") for spec in SCHEMA["properties"].values())
    assert SCHEMA["properties"]["conversions"]["additionalProperties"]["description"]


# -- map --------------------------------------------------------------------------------------------


def test_email_hash_vector_is_trimmed_lower_case_sha256() -> None:
    """Ingest's `email` variant equals LinkedIn's rule: trim, lower-case, SHA-256 hex; gmail dots kept."""
    for raw, plain in [
        (" Jane.Doe@Example.com ", b"jane.doe@example.com"),
        ("John.Smith+ads@GMail.com", b"john.smith+ads@gmail.com"),
    ]:
        hashed, _ = hash_identifiers({"email": raw}, LinkedInDestination.identity_variants)
        body = one(destination(), event(hashed=hashed))
        assert user_ids(body)["SHA256_EMAIL"] == hashlib.sha256(plain).hexdigest()


def test_upper_case_digest_is_not_sent() -> None:
    """SHA256_EMAIL must be 64 lower-case hex; anything else under hashed.email is left out."""
    with pytest.raises(EventError):
        destination().map(event(hashed={"email": EMAIL_HASH.upper()}), NOW)


def test_conversion_happened_at_is_milliseconds() -> None:
    """The stored ms timestamp is sent as is: an int of 13 digits."""
    happened = one(destination(), event(timestamp_ms=1_767_225_600_999))["conversionHappenedAt"]
    assert happened == 1_767_225_600_999 and isinstance(happened, int) and len(str(happened)) == 13


def test_ninety_days_and_one_millisecond_is_an_error() -> None:
    """The age bound is exact: 90 days is sent, one millisecond more is refused."""
    limit = int(NOW * 1000) - 90 * 86400 * 1000
    assert one(destination(), event(timestamp_ms=limit))["conversionHappenedAt"] == limit
    with pytest.raises(EventError, match="older than 90 days"):
        destination().map(event(timestamp_ms=limit - 1), NOW)


@pytest.mark.parametrize(
    ("value", "amount"),
    [(12.5, "12.5"), (400, "400"), (0, "0"), (1e-07, "0.0000001"), (1e12, "1000000000000.0"), (9.99, "9.99")],
)
def test_amount_is_a_decimal_string(value: float, amount: str) -> None:
    """conversionValue.amount is a plain decimal string, never a number or exponent notation."""
    body = one(destination(), event(event_name="purchase", properties={"value": value, "currency": "EUR"}))
    assert body["conversionValue"] == {"currencyCode": "EUR", "amount": amount}


@pytest.mark.parametrize("properties", [{"value": True, "currency": "EUR"}, {"value": 3, "currency": "eu"}])
def test_unusable_value_leaves_conversion_value_out(properties: dict[str, Any]) -> None:
    """A boolean value or a malformed currency makes no conversionValue; the event is still sent."""
    assert "conversionValue" not in one(destination(), event(properties=properties))


def test_li_fat_id_is_raw_and_partner_ids_need_a_clean_value() -> None:
    """li_fat_id is sent byte for byte; ids with spaces, lists or booleans are left out."""
    ev = event(
        hashed={},
        ids={"li_fat_id": "AbC-123_x"},
        properties={"acxiom_id": "has space", "oracle_moat_id": True},
    )
    assert user_ids(one(destination(), ev)) == {"LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID": "AbC-123_x"}


def test_no_user_info_ever() -> None:
    """userInfo is never built: names are hashed at ingest and LinkedIn needs them raw."""
    ev = event(
        user={"country": "us", "ip": "203.0.113.9"}, hashed={"email": EMAIL_HASH, "first_name": "a" * 64}
    )
    assert one(destination(), ev)["user"] == {"userIds": [{"idType": "SHA256_EMAIL", "idValue": EMAIL_HASH}]}


def test_event_id_is_the_canonical_event_id() -> None:
    """eventId is the canonical event_id, the Insight Tag's dedup key."""
    assert one(destination(), event(event_id="order-42"))["eventId"] == "order-42"


def test_events_filter_is_checked_before_the_rule() -> None:
    """An event outside `events` is skipped as filtered even when it has a rule."""
    with pytest.raises(SkipEvent, match="`events` list"):
        destination(events=["purchase"]).map(event(), NOW)


def test_unmapped_custom_event_is_skipped() -> None:
    """A custom event without a rule is skipped; with a rule it is sent to it."""
    with pytest.raises(SkipEvent, match="no LinkedIn conversion rule"):
        destination().map(event(event_name="demo_booked"), NOW)
    dest = destination(conversions={"demo_booked": "42"})
    assert one(dest, event(event_name="demo_booked"))["conversion"] == "urn:lla:llaPartnerConversion:42"


# -- build_request ----------------------------------------------------------------------------------


def test_request_carries_the_token_only_in_the_authorization_header() -> None:
    """Bearer token in the header, masked in previews; the body never holds it."""
    request = destination().build_request([Payload(one(destination(), event()))])
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.secrets == (TOKEN,)
    assert TOKEN not in json.dumps(request.json)
    assert request.masked()["headers"]["Authorization"] == "Bearer ***"


def test_a_full_batch_is_one_request() -> None:
    """5,000 payloads make one BATCH_CREATE request with 5,000 elements."""
    request = destination().build_request([Payload({"eventId": str(i)}) for i in range(MAX_BATCH_SIZE)])
    assert request.headers["X-RestLi-Method"] == "BATCH_CREATE"
    assert len(request.json["elements"]) == MAX_BATCH_SIZE


# -- classify ---------------------------------------------------------------------------------------


def test_422_with_index_drops_that_element_without_isolation() -> None:
    """The named element is a plain Drop with LinkedIn's message; the others Retry at once."""
    message = "Index: 1, ERROR :: /conversionValue/amount :: field is required\n"
    decisions = destination().classify(answer(422, {"status": 422, "message": message}), batch(3))
    assert isinstance(decisions, list)
    assert decisions[1] == Drop("LinkedIn 422: ERROR :: /conversionValue/amount :: field is required")
    assert decisions[0] == decisions[2]
    assert isinstance(decisions[0], Retry) and decisions[0].after == 0.0


def test_422_without_a_usable_index_asks_for_isolation() -> None:
    """No index, or one outside the batch: the dispatcher must split the batch to find the culprit."""
    for message in ("ERROR :: /user :: bad\n", "Index: 7, ERROR :: /user :: bad\n"):
        decision = destination().classify(answer(422, {"status": 422, "message": message}), batch(3))
        assert isinstance(decision, Drop) and decision.isolate is True


def test_400_indices_list_names_several_elements() -> None:
    """`indices [0, 2]` drops elements 0 and 2 and retries 1."""
    message = "Conversion's method should be CONVERSIONS_API, indices [0, 2] (0-indexed)"
    decisions = destination().classify(answer(400, {"status": 400, "message": message}), batch(3))
    assert [type(d) for d in decisions] == [Drop, Retry, Drop]  # type: ignore[union-attr]


def test_426_names_the_configured_version() -> None:
    """The 426 reason names the version in YAML and how to fix it."""
    body = {
        "status": 426,
        "code": "NONEXISTENT_VERSION",
        "message": "Requested version 20241101 is not active",
    }
    decision = destination(version="202411").classify(answer(426, body), batch(1))
    assert isinstance(decision, Drop) and not decision.isolate
    assert decision.reason.startswith("LinkedIn-Version 202411 is not active")
    assert "raise `version`" in decision.reason


def test_reason_never_echoes_the_token() -> None:
    """A token echoed in LinkedIn's message is scrubbed from the reason."""
    body = {"status": 401, "code": "INVALID_ACCESS_TOKEN", "message": f"Invalid access token {TOKEN}"}
    decision = destination().classify(answer(401, body), batch(1))
    assert isinstance(decision, Drop) and TOKEN not in decision.reason and "***" in decision.reason


def test_empty_2xx_is_ok() -> None:
    """A 2xx whose body is not JSON is taken as OK."""
    assert destination().classify(HttpResponse(201, {}, b""), batch(2)) == Ok()
