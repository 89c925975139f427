"""Normalize: validation, alias folding, event time, event ids, action source and PII-free storage."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from router.aliases import canonical_name
from router.context import RequestContext
from router.identity import VARIANTS
from router.normalize import json_copy, normalize

RECEIVED_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 1000
ALL = frozenset(VARIANTS)
CANARY = "canary-secret-value"
MINUTE_MS = 60_000
DAY_MS = 86_400_000


def browser(**overrides: Any) -> RequestContext:
    """A browser-source request context received at RECEIVED_MS."""
    base: dict[str, Any] = {"source": "web", "browser": True, "received_ms": RECEIVED_MS}
    return RequestContext(**{**base, **overrides})


def server(**overrides: Any) -> RequestContext:
    """A server-source request context received at RECEIVED_MS."""
    base: dict[str, Any] = {"source": "backend", "browser": False, "received_ms": RECEIVED_MS}
    return RequestContext(**{**base, **overrides})


def accepted(raw: dict[str, Any], context: RequestContext | None = None) -> dict[str, Any]:
    """The stored event, asserting the raw event was accepted."""
    outcome = normalize(raw, context or server(), ALL)
    assert outcome.errors == []
    assert outcome.event is not None
    return outcome.event


def error_paths(raw: Any) -> list[str]:
    """The paths of every error for a rejected event."""
    outcome = normalize(raw, server(), ALL)
    assert outcome.event is None
    return [p.path for p in outcome.errors]


# --- aliases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("Purchase", "purchase"),
        ("purchase", "purchase"),
        ("PURCHASE", "purchase"),
        (" Purchase ", "purchase"),
        ("CompleteRegistration", "sign_up"),
        ("InitiateCheckout", "begin_checkout"),
        ("view_item", "view_content"),
        ("generate_lead", "lead"),
        ("Order Completed", "purchase"),
        ("add-to-cart", "add_to_cart"),
    ],
)
def test_aliases_fold_to_canonical_names(alias: str, canonical: str) -> None:
    """Meta, GA4 and Segment names fold to snake_case names, ignoring case, spaces, - and _."""
    assert canonical_name(alias) == canonical
    assert accepted({"event_name": alias})["event_name"] == canonical


@pytest.mark.parametrize(
    ("name", "kept"), [("  My Custom Event ", "My Custom Event"), ("quiz_done", "quiz_done")]
)
def test_custom_event_names_are_kept_stripped(name: str, kept: str) -> None:
    """An unknown name is a custom event: kept as sent, only stripped."""
    assert canonical_name(name) == kept
    assert accepted({"event_name": name})["event_name"] == kept


# --- event time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_time",
    [
        "2025-12-31T23:00:00Z",
        "2025-12-31T23:00:00z",
        "2026-01-01T00:00:00+01:00",
        "2025-12-31T18:00:00-05:00",
        "2025-12-31T23:00:00.000Z",
        1_767_222_000,
        1_767_222_000.0,
        1_767_222_000_000,
    ],
)
def test_event_time_forms_give_the_same_instant(event_time: str | float) -> None:
    """RFC 3339 (Z or offset), epoch seconds and epoch milliseconds name the same instant."""
    assert (
        accepted({"event_name": "lead", "event_time": event_time})["timestamp_ms"] == RECEIVED_MS - 3_600_000
    )


def test_epoch_seconds_keep_milliseconds() -> None:
    """Fractional epoch seconds keep their milliseconds."""
    event = accepted({"event_name": "lead", "event_time": 1_767_225_599.25})
    assert event["timestamp_ms"] == RECEIVED_MS - 750


def test_missing_event_time_is_received_time() -> None:
    """Without event_time the event happened when it was received."""
    event = accepted({"event_name": "lead"})
    assert event["timestamp_ms"] == event["received_ms"] == RECEIVED_MS


def test_event_time_up_to_ten_minutes_ahead_is_accepted() -> None:
    """Clock skew of up to 10 minutes is tolerated."""
    assert (
        accepted({"event_name": "lead", "event_time": RECEIVED_MS + 10 * MINUTE_MS})["timestamp_ms"]
        > RECEIVED_MS
    )


@pytest.mark.parametrize("event_time", [RECEIVED_MS + 10 * MINUTE_MS + 1000, "2026-01-01T00:11:00Z"])
def test_event_time_over_ten_minutes_ahead_is_rejected(event_time: str | int) -> None:
    """An event more than 10 minutes in the future is rejected at /event_time."""
    outcome = normalize({"event_name": "lead", "event_time": event_time}, server(), ALL)
    assert outcome.event is None
    assert [p.path for p in outcome.errors] == ["/event_time"]
    assert "future" in outcome.errors[0].message


def test_event_time_older_than_90_days_is_rejected() -> None:
    """No platform accepts an event older than 90 days."""
    assert accepted({"event_name": "lead", "event_time": RECEIVED_MS - 89 * DAY_MS})
    outcome = normalize({"event_name": "lead", "event_time": RECEIVED_MS - 91 * DAY_MS}, server(), ALL)
    assert outcome.event is None
    assert [p.path for p in outcome.errors] == ["/event_time"]
    assert "90 days" in outcome.errors[0].message


@pytest.mark.parametrize(
    "event_time", ["2026-01-01", "2026-01-01T00:00:00", "yesterday", 12, True, 1e20, {"t": 1}]
)
def test_bad_event_times_are_rejected(event_time: Any) -> None:
    """Dates without a time or zone, words, tiny or huge numbers and booleans are schema errors."""
    assert error_paths({"event_name": "lead", "event_time": event_time}) == ["/event_time"]


# --- schema errors -----------------------------------------------------------------------------


def test_every_schema_error_is_reported_at_once() -> None:
    """Several problems in one event come back together, each with its JSON pointer."""
    raw = {
        "event_name": "purchase",
        "action_source": "billboard",
        "user": {"email": "not-an-email", "country": "USA"},
        "properties": {"currency": "dollars", "value": -1},
        "consent": {"ad_storage": "maybe"},
    }
    assert error_paths(raw) == [
        "/action_source",
        "/consent/ad_storage",
        "/properties/currency",
        "/properties/value",
        "/user/country",
        "/user/email",
    ]


def test_missing_event_name_is_required() -> None:
    """The one required field is named in the path."""
    assert error_paths({"user": {}}) == ["/event_name"]


def test_unknown_top_level_field_is_rejected_with_its_path() -> None:
    """A field outside the schema is an error at its own path."""
    outcome = normalize({"event_name": "lead", "evnt_id": "x"}, server(), ALL)
    assert outcome.event is None
    assert [p.path for p in outcome.errors] == ["/evnt_id"]
    assert "unknown field" in outcome.errors[0].message


def test_unknown_nested_fields_each_reported() -> None:
    """Unknown keys inside user and ids are reported one by one."""
    assert error_paths(
        {"event_name": "lead", "user": {"mail": "a@b.co"}, "ids": {"fbcid": "x", "gcl": "y"}}
    ) == [
        "/ids/fbcid",
        "/ids/gcl",
        "/user/mail",
    ]


def test_non_object_event_is_rejected() -> None:
    """An event that is not a JSON object is one problem at the document root."""
    assert error_paths(["purchase"]) == [""]


def test_error_messages_never_contain_the_offending_value() -> None:
    """A value that fails validation is never echoed back in a message (it may be personal data)."""
    raw = {
        "event_name": "lead",
        "event_id": f"{CANARY} with spaces",
        "event_time": CANARY,
        "action_source": CANARY,
        "page": {"url": CANARY},
        "user": {
            "email": CANARY,
            "phone": CANARY,
            "gender": CANARY,
            "date_of_birth": CANARY,
            "country": CANARY,
            "ip": CANARY,
        },
        "ids": {"fbc": f"{CANARY} x"},
        "consent": {"ad_storage": CANARY},
        "properties": {"currency": CANARY, "value": CANARY, "contents": [{"id": 1, "quantity": CANARY}]},
    }
    outcome = normalize(raw, server(), ALL)
    assert outcome.event is None
    assert [p.path for p in outcome.errors] == [
        "/action_source", "/consent/ad_storage", "/event_id", "/event_time", "/ids/fbc", "/page/url",
        "/properties/contents/0/id", "/properties/contents/0/quantity", "/properties/currency",
        "/properties/value", "/user/country", "/user/date_of_birth", "/user/email", "/user/gender",
        "/user/ip", "/user/phone",
    ]  # fmt: skip
    for problem in outcome.errors:
        assert CANARY not in problem.message
        assert CANARY not in problem.path


# --- canonical fields --------------------------------------------------------------------------


def test_currency_is_upper_cased() -> None:
    """ISO 4217 codes are stored upper-case."""
    assert accepted({"event_name": "purchase", "properties": {"currency": "eur", "value": 1}})[
        "properties"
    ] == {
        "currency": "EUR",
        "value": 1,
    }


def test_event_id_is_kept_when_sent() -> None:
    """A source's own event id is the one stored (it is shared with the browser pixel)."""
    raw = {"event_name": "purchase", "event_id": "order-1001", "properties": {"order_id": "1001"}}
    assert accepted(raw)["event_id"] == "order-1001"


def test_event_id_generated_as_uuid_when_missing() -> None:
    """Without event_id or order_id each event gets a fresh random UUID."""
    first = accepted({"event_name": "lead"})["event_id"]
    second = accepted({"event_name": "lead"})["event_id"]
    assert uuid.UUID(first).version == 4
    assert first != second


def test_event_id_is_deterministic_from_order_id() -> None:
    """Same source, name and order id give the same id, so backend retries deduplicate."""

    def event_id(name: str, order: str, context: RequestContext) -> str:
        return str(accepted({"event_name": name, "properties": {"order_id": order}}, context)["event_id"])

    same = event_id("purchase", "1001", server())
    assert event_id("Purchase", "1001", server()) == same  # alias folded first
    assert event_id("purchase", "1001", server(source="other")) != same
    assert event_id("purchase", "1002", server()) != same
    assert event_id("lead", "1001", server()) != same
    digest = hashlib.sha256(b"backend\0purchase\x001001").hexdigest()
    assert same == f"purchase-{digest[:32]}"


@pytest.mark.parametrize(
    ("raw", "context", "expected"),
    [
        ({"event_name": "lead"}, browser(), "website"),
        ({"event_name": "lead", "page": {"url": "https://shop.example.com/"}}, server(), "website"),
        ({"event_name": "lead"}, server(), "other"),
        ({"event_name": "lead", "action_source": "crm"}, browser(), "crm"),
    ],
)
def test_action_source_default(raw: dict[str, Any], context: RequestContext, expected: str) -> None:
    """Browser events or events with a page URL are website; others are other; a sent value wins."""
    assert accepted(raw, context)["action_source"] == expected


def test_stored_event_shape() -> None:
    """The stored event carries the canonical fields, the source and both timestamps."""
    event = accepted({"event_name": "lead", "event_id": "e-1"}, browser())
    assert set(event) == {
        "event_name", "event_id", "timestamp_ms", "received_ms", "source", "action_source",
        "page", "user", "ids", "consent", "properties", "hashed",
    }  # fmt: skip
    assert (event["source"], event["received_ms"]) == ("web", RECEIVED_MS)


def test_warnings_accompany_an_accepted_event() -> None:
    """A phone without a country code is a warning; the event is still accepted without it."""
    outcome = normalize({"event_name": "lead", "user": {"phone": "650 555 1212"}}, server(), ALL, None)
    assert outcome.event is not None
    assert "phone" not in outcome.event["hashed"]
    assert [w.path for w in outcome.warnings] == ["/user/phone"]
    with_region = normalize({"event_name": "lead", "user": {"phone": "650 555 1212"}}, server(), ALL, "US")
    assert with_region.warnings == []
    assert with_region.event is not None
    assert with_region.event["hashed"]["phone"] == hashlib.sha256(b"16505551212").hexdigest()


# --- no raw personal data ----------------------------------------------------------------------

PII = {
    "email": "Jane.Canary@Example.com",
    "phone": "+44 20 7946 0958",
    "first_name": "Janeqzx",
    "last_name": "Doeqzx",
    "gender": "female",
    "date_of_birth": "1990-07-04",
    "city": "Winterfellqzx",
    "state": "Westerosqzx",
    "zip": "SW1A 1AA",
    "external_id": "cust-canary-77",
}


def test_stored_user_keeps_only_raw_safe_fields() -> None:
    """user keeps only ip, user_agent, language and the ISO-2 country; identifiers live in hashed."""
    user = {**PII, "country": "GB", "ip": "203.0.113.9", "user_agent": "UA/1", "language": "en-GB"}
    event = accepted({"event_name": "lead", "user": user})
    assert event["user"] == {"ip": "203.0.113.9", "user_agent": "UA/1", "language": "en-GB", "country": "gb"}
    assert set(event["hashed"]) == set(VARIANTS)


def test_stored_event_has_no_raw_personal_data() -> None:
    """Neither the raw nor the normalized plaintext of an identifier appears anywhere in the stored event."""
    event = accepted(
        {"event_name": "lead", "user": {**PII, "country": "GB"}}, browser(client_ip="203.0.113.9")
    )
    text = json.dumps(event)
    normalized = ["jane.canary@example.com", "442079460958", "janeqzx", "doeqzx", "19900704", "winterfellqzx"]
    normalized += ["westerosqzx", "sw1a1aa", "cust-canary-77"]
    for plain in [*PII.values(), *normalized]:
        assert plain not in text
        assert plain.lower() not in text.lower()


def test_hashed_country_is_not_stored_raw() -> None:
    """An already-hashed country is kept only under hashed."""
    digest = hashlib.sha256(b"gb").hexdigest()
    event = accepted({"event_name": "lead", "user": {"country": digest}})
    assert "country" not in event["user"]
    assert event["hashed"]["country"] == digest


def test_raw_input_is_not_mutated() -> None:
    """Normalizing does not change the caller's event (its raw PII stays the caller's)."""
    raw = {"event_name": "Purchase", "user": dict(PII), "properties": {"currency": "usd"}}
    snapshot = json.loads(json.dumps(raw))
    accepted(raw, browser(client_ip="203.0.113.9", user_agent="UA"))
    assert raw == snapshot


def test_schema_and_time_problems_reported_together() -> None:
    """A schema error and an out-of-range event_time come back in one answer."""
    raw = {"event_name": "lead", "user": {"email": "not-an-email"}, "event_time": RECEIVED_MS + DAY_MS}
    assert error_paths(raw) == ["/event_time", "/user/email"]


def test_postal_code_is_kept_raw_only_when_the_operator_opts_in() -> None:
    """Google's address match needs the raw postal code: stored (upper-cased) only with keep_postal_code."""
    raw = {"event_name": "purchase", "user": {"zip": " sw1a  1aa "}}
    assert "postal_code" not in accepted(raw)["user"]
    kept = normalize(raw, server(), ALL, keep_postal_code=True).event
    assert kept is not None
    assert kept["user"]["postal_code"] == "SW1A 1AA"
    assert kept["hashed"]["zip"] == hashlib.sha256(b"sw1a1aa").hexdigest()
    hashed_zip = {"event_name": "lead", "user": {"zip": "a" * 64}}
    event = normalize(hashed_zip, server(), ALL, keep_postal_code=True).event
    assert event is not None and "postal_code" not in event["user"]


def test_json_copy_is_a_deep_copy_of_parsed_json() -> None:
    """The properties' copy equals deepcopy's and shares no container with the client's document."""
    raw: dict[str, Any] = {"a": [1, {"b": [2.5, None, True, "x"]}], "c": {"d": {}}, "e": (1, [2])}
    copied = json_copy(raw)
    assert copied == copy.deepcopy(raw)
    copied["a"][1]["b"].append("more")
    copied["c"]["d"]["new"] = 1
    copied["e"][1].append(3)
    assert raw == {"a": [1, {"b": [2.5, None, True, "x"]}], "c": {"d": {}}, "e": (1, [2])}
