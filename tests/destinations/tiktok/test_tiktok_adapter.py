"""TikTok adapter: config, schema, tables and the rules golden files do not show on their own."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from destinations.base import EventError, HttpResponse, Payload, SkipEvent
from destinations.tiktok import fields
from destinations.tiktok.adapter import (
    API_VERSION,
    CODES,
    MAX_EVENT_AGE,
    TikTokConfig,
    TikTokDestination,
)
from router.decisions import Drop, Ok, Retry
from router.identity import VARIANTS
from router.secret import Secret

NOW = 1_767_225_700.0
TOKEN = "ttfaketoken123abc"
PIXEL = "C4ABCDEFGHIJK1234567"
BLOCK: dict[str, Any] = {"id": "tiktok_main", "type": "tiktok", "pixel_code": PIXEL, "access_token": TOKEN}
SCHEMA = json.loads(TikTokDestination.schema_path().read_text())
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
CANONICAL_EVENTS = {
    "page_view", "view_content", "search", "add_to_cart", "add_to_wishlist", "begin_checkout",
    "add_payment_info", "purchase", "lead", "sign_up", "subscribe", "start_trial", "contact", "schedule",
    "submit_application",
}  # fmt: skip


def destination(**overrides: Any) -> TikTokDestination:
    """A destination from BLOCK plus overrides, validated by the schema like at startup."""
    block = {**BLOCK, **overrides}
    Draft202012Validator(SCHEMA).validate(block)
    return TikTokDestination(TikTokDestination.parse_config(block))


def event(**overrides: Any) -> dict[str, Any]:
    """A minimal valid CRM lead, 100 seconds before NOW."""
    base: dict[str, Any] = {
        "event_name": "lead",
        "event_id": "e-1",
        "timestamp_ms": int(NOW - 100) * 1000,
        "action_source": "crm",
        "hashed": {"email": EMAIL_HASH},
    }
    return base | overrides


def one(dest: TikTokDestination, ev: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    """The single TikTok event body that map gives."""
    payloads = dest.map(ev, now)
    assert len(payloads) == 1
    return payloads[0].body


def answer(code: Any, message: str = "m", status: int = 200, **headers: str) -> HttpResponse:
    """A Business API answer with the given body code."""
    body = {"code": code, "message": message, "request_id": "r", "data": {}}
    return HttpResponse(status, {"content-type": "application/json", **headers}, json.dumps(body).encode())


# -- constants and config ---------------------------------------------------------------------------


def test_endpoint_and_version() -> None:
    """Events API 2.0 is POST /open_api/v1.3/event/track/ on business-api.tiktok.com."""
    request = destination().build_request([Payload({})])
    assert API_VERSION == TikTokDestination.api_version == "v1.3"
    assert (request.method, request.url) == (
        "POST",
        "https://business-api.tiktok.com/open_api/v1.3/event/track/",
    )


def test_limits() -> None:
    """1,000 events per request; 7 days of age (TikTok's limit is unconfirmed, see MAX_EVENT_AGE)."""
    assert TikTokDestination.max_batch_size == 1000
    assert TikTokDestination.max_event_age == MAX_EVENT_AGE == 7 * 86400


def test_identity_variants_are_the_hashed_keys_tiktok_reads() -> None:
    """TikTok reads the E.164 phone with the plus and letters-only names, never Meta's variants."""
    assert TikTokDestination.identity_variants == {
        "email", "phone_e164", "external_id", "first_name_letters", "last_name_letters", "zip",
    }  # fmt: skip
    assert TikTokDestination.identity_variants <= VARIANTS.keys()


def test_parse_config_defaults() -> None:
    """Optional keys take their documented defaults."""
    config = destination().config
    assert config == TikTokConfig(
        id="tiktok_main", type="tiktok", pixel_code=PIXEL, access_token=Secret(TOKEN)
    )
    assert config.limited_data_use == "from_consent" and config.test_event_code is None


def test_parse_config_accepts_a_secret_and_masks_it() -> None:
    """A token already wrapped in Secret is kept; the config's repr never shows it."""
    config = TikTokDestination.parse_config({**BLOCK, "access_token": Secret(TOKEN)})
    assert config.access_token.reveal() == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    "bad",
    [
        {"pixel_code": "C4AB-123"},
        {"pixel_code": 1234567890},
        {"access_token": ""},
        {"type": "meta"},
        {"limited_data_use": "sometimes"},
        {"events": "purchase"},
        {"event_map": {"purchase": 3}},
        {"base_url": "ftp://proxy"},
        {"timeout": 0},
        {"test_event_code": ""},
        {"pixel_id": "123"},
    ],
)
def test_schema_rejects(bad: dict[str, Any]) -> None:
    """The schema refuses malformed or unknown keys."""
    with pytest.raises(ValidationError):
        Draft202012Validator(SCHEMA).validate({**BLOCK, **bad})


def test_schema_requires_pixel_and_token() -> None:
    """pixel_code and access_token are required."""
    for key in ("pixel_code", "access_token"):
        with pytest.raises(ValidationError):
            Draft202012Validator(SCHEMA).validate({k: v for k, v in BLOCK.items() if k != key})


def test_schema_describes_every_property() -> None:
    """Docs are generated from the schema, so every property has a description."""
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False
    assert all(spec.get("description") for spec in SCHEMA["properties"].values())


# -- tables -----------------------------------------------------------------------------------------


def test_event_table_covers_every_canonical_event() -> None:
    """Each canonical standard event has a row, and every row names a TikTok standard event."""
    assert fields.EVENT_NAMES.keys() == CANONICAL_EVENTS
    assert set(fields.EVENT_NAMES.values()) <= fields.STANDARD_EVENTS


def test_every_canonical_event_maps() -> None:
    """map() gives each canonical event its table name."""
    for canonical, name in fields.EVENT_NAMES.items():
        assert one(destination(), event(event_name=canonical))["event"] == name


def test_rows_never_read_raw_personal_data() -> None:
    """Hashed rows read only `hashed.*`; raw rows read only user.ip/user_agent/language/country and ids."""
    raw_paths = {"user.country", "user.ip", "user.user_agent", "user.language", "ids.ttclid", "ids.ttp"}
    for row in fields.USER:
        assert row.path.startswith("hashed.") if row.check is fields.is_sha256 else row.path in raw_paths


# -- map --------------------------------------------------------------------------------------------


def test_event_time_is_seconds() -> None:
    """Milliseconds become whole seconds."""
    assert one(destination(), event(timestamp_ms=1_767_225_600_999))["event_time"] == 1_767_225_600


def test_exactly_seven_days_old_is_sent() -> None:
    """The 7-day boundary itself is accepted; one second more is refused."""
    seven_days_ago = int(NOW) - 7 * 86400
    assert one(destination(), event(timestamp_ms=seven_days_ago * 1000))["event_time"] == seven_days_ago
    with pytest.raises(EventError, match="older than 7 days"):
        destination().map(event(timestamp_ms=(seven_days_ago - 1) * 1000), NOW)


def test_event_id_is_always_a_string() -> None:
    """TikTok refuses a numeric event_id (40002), so it is sent as text, unchanged otherwise."""
    assert one(destination(), event(event_id=1001))["event_id"] == "1001"
    assert one(destination(), event(event_id="ord-1001"))["event_id"] == "ord-1001"


def test_phone_is_the_e164_variant() -> None:
    """user.phone is the digest of the number with its +, not Meta's no-plus digest."""
    with_plus, without = (
        hashlib.sha256(b"+16505551212").hexdigest(),
        hashlib.sha256(b"16505551212").hexdigest(),
    )
    body = one(destination(), event(hashed={"phone": without, "phone_e164": with_plus}))
    assert body["user"] == {"phone": [with_plus]}


def test_raw_user_fields_are_never_sent() -> None:
    """Plain identifiers in `user` (never stored, but defensively) do not reach the payload."""
    ev = event(
        user={"email": "joe@example.com", "phone": "+16505551212", "first_name": "Joe", "city": "Paris"}
    )
    text = json.dumps(one(destination(), ev))
    assert "joe@example.com" not in text and "6505551212" not in text and "Joe" not in text
    assert "Paris" not in text


def test_empty_sections_are_left_out() -> None:
    """No user data, properties or page: the keys are absent, not empty objects."""
    assert one(destination(), event(hashed={})) == {
        "event": "Lead",
        "event_time": int(NOW) - 100,
        "event_id": "e-1",
    }


def test_ldu_needs_consent_ldu_true() -> None:
    """Only consent.ldu true (not a truthy string) turns limited data use on."""
    assert one(destination(), event(consent={"ldu": True}))["limited_data_use"] is True
    assert "limited_data_use" not in one(destination(), event(consent={"ldu": "yes"}))


def test_contents_get_the_default_content_type() -> None:
    """Contents without a valid content type are sent as `product`; product_group is kept."""
    contents = [{"id": "sku-1"}]
    body = one(destination(), event(properties={"contents": contents}))
    assert body["properties"]["content_type"] == "product"
    body = one(destination(), event(properties={"contents": contents, "content_type": "product_group"}))
    assert body["properties"]["content_type"] == "product_group"


def test_no_content_type_without_contents() -> None:
    """A bare value/currency event gets no invented content type."""
    body = one(destination(), event(properties={"value": 0, "currency": "USD", "num_items": 0}))
    assert body["properties"] == {"value": 0, "currency": "USD", "num_items": 0}


def test_odd_types_are_left_out_not_crashed_on() -> None:
    """A list content type, an integer IP or a bool value are malformed optional fields: left out."""
    ev = event(user={"ip": 3232235777}, properties={"content_type": ["product"], "value": True})
    assert one(destination(), ev) == {
        "event": "Lead",
        "event_time": int(NOW) - 100,
        "event_id": "e-1",
        "user": {"email": [EMAIL_HASH]},
    }


def test_custom_property_never_overrides_standard_field() -> None:
    """Standard rows and derived contents win over free properties of the same TikTok name."""
    ev = event(properties={"value": 5, "contents": [{"id": "a"}], "content_id": "x", "note": "n"})
    assert one(destination(), ev)["properties"] == {
        "content_id": "x", "note": "n", "value": 5,
        "contents": [{"content_id": "a"}], "content_type": "product",
    }  # fmt: skip


def test_event_map_can_name_a_custom_event() -> None:
    """event_map may send any name, for example to match a custom pixel event."""
    assert one(destination(event_map={"lead": "DemoBooked"}), event())["event"] == "DemoBooked"


def test_skip_reason_names_the_event() -> None:
    """A filtered event says which event and why."""
    with pytest.raises(SkipEvent, match="'lead'"):
        destination(events=["purchase"]).map(event(), NOW)


def test_map_is_deterministic() -> None:
    """Same event, same now: same payload (no clock, no randomness)."""
    ev = event(properties={"value": 1, "currency": "USD"})
    assert destination().map(ev, NOW) == destination().map(ev, NOW)


# -- build_request ----------------------------------------------------------------------------------


def test_token_is_the_access_token_header_only() -> None:
    """`Access-Token: <token>` without Bearer; never in the URL or body; listed as a secret and masked."""
    request = destination().build_request([Payload({"event": "Lead"})])
    assert request.headers["Access-Token"] == TOKEN
    assert "Authorization" not in request.headers
    assert TOKEN not in request.url and TOKEN not in json.dumps(request.json)
    assert request.secrets == (TOKEN,)
    assert request.masked()["headers"]["Access-Token"] == "***"


def test_body_names_the_pixel_as_web_event_source() -> None:
    """event_source is `web` and event_source_id the pixel code; test_event_code only when configured."""
    body = destination().build_request([Payload({"event": "Lead"})]).json
    assert body == {"event_source": "web", "event_source_id": PIXEL, "data": [{"event": "Lead"}]}
    assert destination(test_event_code="TEST1").build_request([]).json["test_event_code"] == "TEST1"


def test_full_batch_in_one_request() -> None:
    """1,000 payloads make one request with 1,000 events, in order."""
    batch = [Payload({"event_id": str(i)}) for i in range(1000)]
    data = destination().build_request(batch).json["data"]
    assert [item["event_id"] for item in data] == [str(i) for i in range(1000)]


def test_retries_resend_the_same_event_id() -> None:
    """Mapping the same stored event again (a retry) gives the same event_id for TikTok's dedup."""
    first, again = (one(destination(), event(event_id="ord-9"), now) for now in (NOW, NOW + 3600))
    assert first["event_id"] == again["event_id"] == "ord-9"


# -- classify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "outcome"), sorted(CODES.items()))
def test_every_listed_code(code: int, outcome: str) -> None:
    """Each CODES row decides, inside an HTTP 200."""
    decision = destination().classify(answer(code), [Payload({})])
    expected = {"ok": Ok, "retry": Retry, "drop": Drop, "isolate": Drop}[outcome]
    assert isinstance(decision, expected)
    if isinstance(decision, Drop):
        assert decision.isolate is (outcome == "isolate")


@pytest.mark.parametrize(("code", "expected"), [(40003, Drop), (41000, Drop), (50002, Retry), (1, Retry)])
def test_unlisted_codes_follow_tiktok_numbering(code: int, expected: type) -> None:
    """Unlisted 4xxxx client errors drop; 5xxxx and anything else retries."""
    assert isinstance(destination().classify(answer(code), [Payload({})]), expected)


def test_rate_limit_honours_retry_after() -> None:
    """Code 40100 retries after the Retry-After seconds when the answer carries them."""
    decision = destination().classify(answer(40100, **{"retry-after": "12"}), [Payload({})])
    assert decision == Retry("rate limited (TikTok 40100): m", after=12.0)


def test_invalid_parameter_asks_to_isolate_the_event() -> None:
    """40002 names one event but rejects the request: Drop with isolate, so neighbours are resent."""
    decision = destination().classify(
        answer(40002, "Batch.3.event_id: Not a valid string"), [Payload({})] * 5
    )
    assert decision == Drop("TikTok 40002: Batch.3.event_id: Not a valid string", isolate=True)


def test_code_that_is_not_an_int_is_no_code() -> None:
    """A string or boolean `code` is not TikTok's answer: a 200 then retries."""
    assert isinstance(destination().classify(answer("0"), [Payload({})]), Retry)
    assert isinstance(destination().classify(answer(True), [Payload({})]), Retry)


def test_success_code_inside_an_error_status_still_ok() -> None:
    """The body code decides: code 0 is acceptance whatever a proxy did to the status line."""
    assert destination().classify(answer(0, status=202), [Payload({})]) == Ok()


def test_long_message_is_cut() -> None:
    """A huge message cannot flood logs."""
    decision = destination().classify(answer(40002, "x" * 5000), [])
    assert isinstance(decision, Drop) and len(decision.reason) < 250
