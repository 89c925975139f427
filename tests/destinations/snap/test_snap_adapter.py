"""Snap adapter: config, schema, tables and the rules golden files do not show on their own."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from destinations.base import EventError, HttpResponse, Payload, SkipEvent
from destinations.snap import fields
from destinations.snap.adapter import API_VERSION, SnapConfig, SnapDestination
from router.decisions import Drop, Ok, Retry
from router.secret import Secret

NOW = 1_767_225_700.0
DAY = 86400
TOKEN = "snaptoken-abc123"
PIXEL = "3c8f1d2e-5b6a-4c7d-9e8f-0a1b2c3d4e5f"
APP = "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9"
BLOCK: dict[str, Any] = {"id": "snap_main", "type": "snap", "pixel_id": PIXEL, "access_token": TOKEN}
SCHEMA = json.loads(SnapDestination.schema_path().read_text())
EVENT_SCHEMA = Path(__file__).parents[3] / "router" / "schema" / "event.schema.json"
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()


def destination(**overrides: Any) -> SnapDestination:
    """A destination from BLOCK plus overrides, validated by the schema like at startup."""
    block = {**BLOCK, **overrides}
    Draft202012Validator(SCHEMA).validate(block)
    return SnapDestination(SnapDestination.parse_config(block))


def event(**overrides: Any) -> dict[str, Any]:
    """A minimal valid CRM lead, seconds before NOW."""
    base: dict[str, Any] = {
        "event_name": "lead",
        "event_id": "e-1",
        "timestamp_ms": int(NOW - 100) * 1000,
        "action_source": "crm",
        "hashed": {"email": EMAIL_HASH},
    }
    return base | overrides


def one(dest: SnapDestination, ev: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    """The single Snap event body that map gives."""
    payloads = dest.map(ev, now)
    assert len(payloads) == 1
    return payloads[0].body


def answer(status: int, body: Any, **headers: str) -> HttpResponse:
    """A Snap answer with a JSON body."""
    return HttpResponse(status, {"content-type": "application/json", **headers}, json.dumps(body).encode())


BATCH = [Payload({}), Payload({}), Payload({})]


# -- constants and config ---------------------------------------------------------------------------


def test_version_and_limits() -> None:
    """v3, 2,000 events per request and 37 days of age."""
    assert API_VERSION == SnapDestination.api_version == "v3"
    assert SnapDestination.max_batch_size == 2000
    assert SnapDestination.max_event_age == 37 * DAY


def test_identity_variants_are_the_hashed_keys_snap_reads() -> None:
    """Snap reads the letters-only names, the no-plus phone and every other hashed identifier."""
    assert SnapDestination.identity_variants == {
        "email", "phone", "first_name_letters", "last_name_letters", "gender", "date_of_birth",
        "city", "state", "zip", "country", "external_id",
    }  # fmt: skip


def test_parse_config_defaults() -> None:
    """Optional keys take their documented defaults."""
    config = destination().config
    assert config == SnapConfig(id="snap_main", type="snap", pixel_id=PIXEL, access_token=Secret(TOKEN))
    assert (config.test_mode, config.limited_data_use, dict(config.custom_events)) == (
        False,
        "from_consent",
        {},
    )
    assert config.snap_app_id is None and config.app_id is None


def test_parse_config_masks_the_token() -> None:
    """A token already wrapped in Secret is kept; the config's repr never shows it."""
    config = SnapDestination.parse_config({**BLOCK, "access_token": Secret(TOKEN)})
    assert config.access_token.reveal() == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    "bad",
    [
        {"pixel_id": "1234567890"},
        {"pixel_id": 1234567890},
        {"access_token": ""},
        {"type": "meta"},
        {"event_map": {"lead": "Lead"}},
        {"event_map": {"lead": "LEAD"}},
        {"custom_events": {"quote": "CUSTOM_EVENT_6"}},
        {"custom_events": {"quote": "PURCHASE"}},
        {"snap_app_id": APP},
        {"app_id": "com.example.shop"},
        {"limited_data_use": "sometimes"},
        {"test_mode": "yes"},
        {"test_event_code": "TEST1"},
        {"base_url": "ftp://proxy"},
        {"timeout": 0},
    ],
)
def test_schema_rejects(bad: dict[str, Any]) -> None:
    """The schema refuses malformed, unknown or lower-case values and app keys without their pair."""
    with pytest.raises(ValidationError):
        Draft202012Validator(SCHEMA).validate({**BLOCK, **bad})


def test_schema_describes_every_property_and_lists_snap_names() -> None:
    """Docs come from the schema; its event enums are exactly the tables in fields.py."""
    Draft202012Validator.check_schema(SCHEMA)
    properties = SCHEMA["properties"]
    assert all(spec.get("description") for spec in properties.values())
    assert set(properties["event_map"]["additionalProperties"]["enum"]) == fields.SNAP_EVENT_NAMES
    assert properties["custom_events"]["additionalProperties"]["enum"] == list(fields.CUSTOM_SLOTS)


# -- tables -----------------------------------------------------------------------------------------


def test_event_table_covers_every_canonical_event() -> None:
    """Each canonical event has a row: a Snap event name, or None where Snap has no equivalent."""
    assert len(fields.EVENT_NAMES) == 15
    named = {name for name in fields.EVENT_NAMES.values() if name is not None}
    assert named <= fields.SNAP_EVENT_NAMES
    assert [k for k, v in fields.EVENT_NAMES.items() if v is None] == ["contact", "submit_application"]


def test_action_sources_cover_the_canonical_enum() -> None:
    """Every canonical action_source maps to one of Snap's three values."""
    canonical = json.loads(EVENT_SCHEMA.read_text())["properties"]["action_source"]["enum"]
    assert set(fields.ACTION_SOURCES) == set(canonical)
    assert set(fields.ACTION_SOURCES.values()) == {"WEB", "MOBILE_APP", "OFFLINE"}


# -- map --------------------------------------------------------------------------------------------


def test_event_time_is_seconds_and_37_days_is_the_limit() -> None:
    """Milliseconds become whole seconds; 37 days old is sent, one second more is refused."""
    assert one(destination(), event(timestamp_ms=1_767_225_600_999))["event_time"] == 1_767_225_600
    limit = int(NOW) - 37 * DAY
    assert one(destination(), event(timestamp_ms=limit * 1000))["event_time"] == limit
    with pytest.raises(EventError, match="older than 37 days"):
        destination().map(event(timestamp_ms=(limit - 1) * 1000), NOW)


def test_event_id_is_the_canonical_one_every_time() -> None:
    """Dedup: event_id is sent unchanged, and mapping again (a retry) gives the same payload."""
    ev = event(event_id="order-77")
    assert one(destination(), ev)["event_id"] == "order-77"
    assert destination().map(ev, NOW) == destination().map(ev, NOW + 3600)


def test_event_map_wins_over_custom_events_and_the_table() -> None:
    """event_map first, then custom_events, then the standard table."""
    dest = destination(event_map={"lead": "CUSTOM_EVENT_3"}, custom_events={"lead": "CUSTOM_EVENT_1"})
    assert one(dest, event())["event_name"] == "CUSTOM_EVENT_3"
    assert (
        one(destination(custom_events={"lead": "CUSTOM_EVENT_1"}), event())["event_name"] == "CUSTOM_EVENT_1"
    )


def test_event_map_to_purchase_needs_value() -> None:
    """The PURCHASE check applies to the Snap name, also when event_map produces it."""
    with pytest.raises(EventError, match="PURCHASE needs"):
        destination(event_map={"checkout_done": "PURCHASE"}).map(event(event_name="checkout_done"), NOW)


def test_events_without_a_snap_name_are_skipped_with_the_reason() -> None:
    """contact has no Snap event and no slot: skipped, naming the event and the fix."""
    with pytest.raises(SkipEvent, match=r"'contact'.*custom_events"):
        destination().map(event(event_name="contact"), NOW)


def test_raw_user_fields_are_never_sent() -> None:
    """Plain identifiers in `user` (never stored, but defensively) do not reach the payload."""
    ev = event(user={"email": "joe@example.com", "phone": "+16505551212", "first_name": "Joe"})
    text = json.dumps(one(destination(), ev))
    assert "joe@example.com" not in text and "6505551212" not in text and "Joe" not in text


def test_hashed_values_are_lists_of_lower_case_digests() -> None:
    """An upper-case digest is sent lower-case inside a one-element list."""
    assert one(destination(), event(hashed={"email": EMAIL_HASH.upper()}))["user_data"] == {
        "em": [EMAIL_HASH]
    }


def test_custom_fields_keep_scalars_as_strings() -> None:
    """Free properties become custom_fields strings; lists, objects and empty values are left out."""
    props = {"plan": "pro", "seats": 3, "trial": False, "tags": ["a"], "meta": {"a": 1}, "empty": ""}
    custom = one(destination(), event(properties=props))["custom_data"]
    assert custom == {"custom_fields": {"plan": "pro", "seats": "3", "trial": "false"}}


def test_zero_value_and_zero_items_are_kept() -> None:
    """0 is a value, not an empty field."""
    ev = event(event_name="purchase", properties={"value": 0, "currency": "USD", "num_items": 0})
    assert one(destination(), ev)["custom_data"] == {"value": 0, "currency": "USD", "num_items": 0}


def test_app_event_data_from_config_and_consent() -> None:
    """An iOS (numeric) app id gives extinfo i2; ad_storage not granted means tracking 0."""
    dest = destination(snap_app_id=APP, app_id="1234567890")
    payload = dest.map(event(action_source="app"), NOW)[0]
    assert payload.batch_key == APP
    assert payload.body["app_data"] == {"app_id": "1234567890", "advertiser_tracking_enabled": 0,
                                        "extinfo": ["i2"] + [""] * 15}  # fmt: skip
    assert dest.build_request([payload]).url.startswith(f"https://tr.snapchat.com/v3/{APP}/events?")


def test_web_and_offline_events_go_to_the_pixel() -> None:
    """Every non-app event shares the pixel's batch key."""
    dest = destination(snap_app_id=APP, app_id="com.example.shop")
    sources = ("crm", "offline", "phone_call", "email", "chat", "other")
    assert {dest.map(event(action_source=s), NOW)[0].batch_key for s in sources} == {PIXEL}


# -- build_request ----------------------------------------------------------------------------------


def test_token_goes_in_the_query_and_is_masked() -> None:
    """Snap wants the token in the URL; it is listed as a secret in raw and URL-encoded form."""
    request = destination(access_token="a/b+c=d").build_request([Payload({"event_name": "PAGE_VIEW"})])
    assert request.url.endswith("/events?access_token=a%2Fb%2Bc%3Dd")
    assert request.secrets == ("a/b+c=d", "a%2Fb%2Bc%3Dd")
    shown = json.dumps(request.masked())
    assert "a%2Fb" not in shown and "a/b+c" not in shown and "access_token=***" in shown
    assert request.json == {"data": [{"event_name": "PAGE_VIEW"}]}


def test_full_batch_in_one_request() -> None:
    """2,000 payloads make one request with 2,000 events."""
    batch = [Payload({"event_id": str(i)}) for i in range(2000)]
    assert len(destination().build_request(batch).json["data"]) == 2000


# -- classify ---------------------------------------------------------------------------------------


def test_invalid_batch_is_split_but_a_single_event_just_drops() -> None:
    """400 INVALID asks the dispatcher to isolate the bad event."""
    decision = destination().classify(
        answer(400, {"status": "INVALID", "reason": "Unhashed PII", "event": 2}), BATCH
    )
    assert decision == Drop("Snap INVALID (HTTP 400): Unhashed PII [event 2]", isolate=True)


def test_token_problems_never_split_the_batch() -> None:
    """An INVALID about the token, or a 401/403, drops the batch without splitting it."""
    dest = destination()
    for response in (answer(400, {"status": "INVALID", "reason": "Invalid access token"}), answer(403, {})):
        decision = dest.classify(response, BATCH)
        assert (
            isinstance(decision, Drop) and not decision.isolate and "access token rejected" in decision.reason
        )


def test_transient_answers_retry_whatever_their_text() -> None:
    """A 5xx or 429 mentioning a token is still transient."""
    response = answer(
        503, {"status": "INVALID", "reason": "token service unavailable"}, **{"retry-after": "4"}
    )
    assert destination().classify(response, BATCH) == Retry(
        "Snap INVALID (HTTP 503): token service unavailable", after=4.0
    )


def test_reason_is_short_and_never_shows_the_token() -> None:
    """A token echoed in the answer is scrubbed, in either form, and the text is cut."""
    dest = destination(access_token="a/b+c")
    echo = {"status": "INVALID", "reason": "bad a/b+c and a%2Fb%2Bc " + "x" * 5000}
    decision = dest.classify(answer(400, echo), BATCH)
    assert isinstance(decision, Drop) and "a/b+c" not in decision.reason and "a%2Fb" not in decision.reason
    assert len(decision.reason) < 250


def test_validate_logs_outside_the_batch_are_ignored() -> None:
    """event_logs indices beyond the batch do not produce decisions."""
    body = {"status": "VALID", "test_event": True, "event_logs": [{"event": 7, "status": "INVALID"}]}
    assert destination(test_mode=True).classify(answer(200, body), BATCH) == Ok()


def test_2xx_without_a_body_is_ok() -> None:
    """A 2xx without Snap's body (a proxy, say) is taken as delivered."""
    assert destination().classify(HttpResponse(200, {}, b""), BATCH) == Ok()
