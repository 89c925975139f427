"""Reddit adapter: config, schema, tables and the rules golden files do not show on their own."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from destinations.base import EventError, HttpResponse, Payload, SkipEvent
from destinations.reddit import fields
from destinations.reddit.adapter import (
    API_VERSION,
    MAX_BATCH_SIZE,
    USER_AGENT,
    RedditConfig,
    RedditDestination,
)
from router.decisions import Drop, Ok, Retry
from router.identity import VARIANTS
from router.secret import Secret
from tests.destinations.golden import build, response_of

NOW = 1_767_225_700.0
TOKEN = "rdt-conv-token-0123456789"
BLOCK: dict[str, Any] = {
    "id": "reddit_main",
    "type": "reddit",
    "pixel_id": "a2_fakepixel01",
    "access_token": TOKEN,
}
SCHEMA = json.loads(RedditDestination.schema_path().read_text())
RESPONSES = sorted((Path(__file__).parent / "responses").glob("*.json"))
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
CANONICAL_EVENTS = {
    "page_view", "view_content", "search", "add_to_cart", "add_to_wishlist", "begin_checkout",
    "add_payment_info", "purchase", "lead", "sign_up", "subscribe", "start_trial", "contact", "schedule",
    "submit_application",
}  # fmt: skip


def destination(**overrides: Any) -> RedditDestination:
    """A destination from BLOCK plus overrides, validated by the schema like at startup."""
    block = {**BLOCK, **overrides}
    Draft202012Validator(SCHEMA).validate(block)
    return RedditDestination(RedditDestination.parse_config(block))


def event(**overrides: Any) -> dict[str, Any]:
    """A minimal valid CRM lead with a hashed email, seconds before NOW."""
    base: dict[str, Any] = {
        "event_name": "lead",
        "event_id": "e-1",
        "timestamp_ms": int(NOW - 100) * 1000,
        "action_source": "crm",
        "hashed": {"email_reddit": EMAIL_HASH},
    }
    return base | overrides


def one(dest: RedditDestination, ev: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    """The single Reddit event body that map gives."""
    payloads = dest.map(ev, now)
    assert len(payloads) == 1
    return payloads[0].body


def answer(status: int, body: Any, **headers: str) -> HttpResponse:
    """A response with a JSON body."""
    return HttpResponse(status, headers, json.dumps(body).encode())


# -- constants and config ---------------------------------------------------------------------------


def test_api_version_and_limits() -> None:
    """v3, 1,000 events per request and 7 days of age, as Reddit documents."""
    assert RedditDestination.api_version == API_VERSION == "v3"
    assert RedditDestination.max_batch_size == MAX_BATCH_SIZE == 1000
    assert RedditDestination.max_event_age == 7 * 86400


def test_identity_variants_are_reddit_hashed_keys() -> None:
    """Reddit reads its own email rule, the phone with its `+` and the external id, all existing variants."""
    assert RedditDestination.identity_variants == {"email_reddit", "phone_e164", "external_id"}
    assert RedditDestination.identity_variants <= VARIANTS.keys()


def test_parse_config_defaults() -> None:
    """Optional keys take their documented defaults."""
    config = destination().config
    assert config == RedditConfig(
        id="reddit_main", type="reddit", pixel_id="a2_fakepixel01", access_token=Secret(TOKEN)
    )
    assert (config.limited_data_use, config.ldu_country, config.ldu_region) == ("from_consent", None, None)
    assert config.hash_ip_address is True and config.test_id is None


def test_parse_config_masks_the_token() -> None:
    """A token already wrapped in Secret is kept; the config's repr never shows it."""
    config = RedditDestination.parse_config({**BLOCK, "access_token": Secret(TOKEN)})
    assert config.access_token.reveal() == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    "bad",
    [
        {"pixel_id": "a2/../x"},
        {"pixel_id": 1234},
        {"access_token": ""},
        {"type": "meta"},
        {"limited_data_use": "sometimes"},
        {"ldu_country": "USA"},
        {"ldu_region": "California"},
        {"hash_ip_address": "yes"},
        {"events": "purchase"},
        {"event_map": {"contact": "x" * 65}},
        {"base_url": "ftp://proxy"},
        {"timeout": 0},
        {"test_mode": True},
    ],
)
def test_schema_rejects(bad: dict[str, Any]) -> None:
    """The schema refuses malformed or unknown keys."""
    with pytest.raises(ValidationError):
        Draft202012Validator(SCHEMA).validate({**BLOCK, **bad})


def test_schema_describes_every_property() -> None:
    """Docs are generated from the schema, so every property has a description."""
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False
    assert all(spec.get("description") for spec in SCHEMA["properties"].values())


# -- tables -----------------------------------------------------------------------------------------


def test_event_table_covers_every_canonical_event() -> None:
    """Each canonical event has a row; the 8 with a Reddit standard type use it, the rest are CUSTOM."""
    assert fields.EVENT_TYPES.keys() == CANONICAL_EVENTS
    standard = {name for name, kind in fields.EVENT_TYPES.items() if kind.tracking_type != fields.CUSTOM}
    assert {fields.EVENT_TYPES[name].tracking_type for name in standard} == fields.TRACKING_TYPES
    assert fields.EVENT_TYPES["begin_checkout"] == fields.EventType("CUSTOM", "begin_checkout")


def test_action_sources_cover_every_canonical_source() -> None:
    """Every canonical action_source maps to one of v3's four upper-case values."""
    canonical = {"website", "app", "offline", "crm", "phone_call", "email", "chat", "other"}
    assert fields.ACTION_SOURCES.keys() == canonical
    assert set(fields.ACTION_SOURCES.values()) == {"WEBSITE", "APP", "PHYSICAL_STORE", "OTHER"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PURCHASE", {"tracking_type": "PURCHASE"}),
        ("AddToCart", {"tracking_type": "ADD_TO_CART"}),
        ("sign_up", {"tracking_type": "SIGN_UP"}),
        ("custom", {"tracking_type": "CUSTOM", "custom_event_name": "contact"}),
        ("Contact Form", {"tracking_type": "CUSTOM", "custom_event_name": "Contact Form"}),
    ],
)
def test_event_map_values(name: str, expected: dict[str, str]) -> None:
    """event_map values: standard types in any spelling, CUSTOM, or a custom event name."""
    assert fields.event_type_named(name, "contact").body() == expected


# -- map --------------------------------------------------------------------------------------------


def test_event_at_is_milliseconds() -> None:
    """Reddit v3 wants integer milliseconds, unchanged from the stored timestamp."""
    assert one(destination(), event(timestamp_ms=1_767_225_600_999))["event_at"] == 1_767_225_600_999


def test_exactly_seven_days_old_is_sent() -> None:
    """The 7-day boundary itself is accepted; one millisecond more is refused."""
    limit_ms = int(NOW * 1000) - 7 * 86400 * 1000
    assert one(destination(), event(timestamp_ms=limit_ms))["event_at"] == limit_ms
    with pytest.raises(EventError, match="older than 7 days"):
        destination().map(event(timestamp_ms=limit_ms - 1), NOW)


def test_value_and_currency_travel_as_a_pair() -> None:
    """A value without a currency (or the reverse) is left out rather than refused by Reddit."""
    ev = event(event_name="purchase", properties={"value": 3})
    assert one(destination(), ev)["metadata"] == {"conversion_id": "e-1"}


def test_zero_value_and_zero_items_are_kept() -> None:
    """0 is a value, not an empty field."""
    ev = event(event_name="purchase", properties={"value": 0, "currency": "USD", "num_items": 0})
    assert one(destination(), ev)["metadata"] == {
        "conversion_id": "e-1", "currency": "USD", "value": 0, "item_count": 0
    }  # fmt: skip


@pytest.mark.parametrize("name", ["view_content", "search", "page_view"])
def test_no_value_on_types_that_refuse_it(name: str) -> None:
    """PAGE_VISIT, VIEW_CONTENT and SEARCH carry no value, currency or item_count; products stay."""
    properties = {"value": 5, "currency": "USD", "num_items": 1, "contents": [{"id": "sku-1"}]}
    metadata = one(destination(), event(event_name=name, properties=properties))["metadata"]
    assert metadata == {"conversion_id": "e-1", "products": [{"id": "sku-1"}]}


def test_no_item_count_on_lead() -> None:
    """LEAD takes value and currency but no item_count."""
    properties = {"value": 5, "currency": "USD", "num_items": 2}
    metadata = one(destination(), event(properties=properties))["metadata"]
    assert metadata == {"conversion_id": "e-1", "currency": "USD", "value": 5}


def test_raw_user_fields_are_never_sent() -> None:
    """Plain identifiers in `user` (never stored, but defensively) do not reach the payload."""
    ev = event(user={"email": "joe@example.com", "phone": "+16505551212", "first_name": "Joe"})
    text = json.dumps(one(destination(), ev))
    assert "joe@example.com" not in text and "6505551212" not in text and "Joe" not in text


def test_ip_is_hashed_unless_configured_plain() -> None:
    """SHA-256 of the IP by default (IPv6 too); `hash_ip_address: false` sends it raw."""
    ev = event(user={"ip": "2001:db8::1", "user_agent": "UA"})
    assert one(destination(), ev)["user"]["ip_address"] == hashlib.sha256(b"2001:db8::1").hexdigest()
    assert one(destination(hash_ip_address=False), ev)["user"]["ip_address"] == "2001:db8::1"
    hashed = event(user={"ip": EMAIL_HASH})
    assert one(destination(), hashed)["user"]["ip_address"] == EMAIL_HASH  # never hashed twice


def test_ldu_always_and_never() -> None:
    """`always` adds LDU without consent.ldu, with the configured country; `never` ignores consent.ldu."""
    ev = event(user={"country": "de"}, consent={"ldu": True})
    always = one(destination(limited_data_use="always", ldu_country="us"), event())["user"]
    assert always["data_processing_options"] == {"modes": ["LDU"], "country": "US"}
    assert "data_processing_options" not in one(destination(limited_data_use="never"), ev)["user"]
    assert one(destination(), ev)["user"]["data_processing_options"] == {"modes": ["LDU"], "country": "DE"}


def test_offline_event_without_email_or_phone_is_refused() -> None:
    """Offline events keep only hashed identifiers; with IP and click id alone nothing matches."""
    ev = event(action_source="offline", hashed={}, user={"ip": "203.0.113.9"}, ids={"rdt_cid": "123"})
    with pytest.raises(EventError, match="no match key"):
        destination().map(ev, NOW)


def test_click_id_alone_is_enough() -> None:
    """A click id is a match key of its own, and stays raw."""
    body = one(destination(), event(hashed={}, ids={"rdt_cid": "3184742045291813272"}))
    assert body["click_id"] == "3184742045291813272" and "user" not in body


def test_skip_reason_names_the_event() -> None:
    """A filtered event says which event and why."""
    with pytest.raises(SkipEvent, match="'lead'"):
        destination(events=["purchase"]).map(event(), NOW)


def test_map_is_deterministic() -> None:
    """Same event, same now: same payload (no clock, no randomness)."""
    ev = event(properties={"value": 1, "currency": "USD"}, user={"ip": "203.0.113.9"})
    assert destination().map(ev, NOW) == destination().map(ev, NOW)


# -- build_request ----------------------------------------------------------------------------------


def test_token_goes_in_the_header_only() -> None:
    """URLs and bodies end up in logs; the token is a Bearer header, listed as a secret and masked."""
    request = destination().build_request([Payload({"event_at": 1})])
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request.url and TOKEN not in json.dumps(request.json)
    assert request.secrets == (TOKEN,)
    assert request.masked()["headers"]["Authorization"] == "Bearer ***"


def test_request_names_its_user_agent() -> None:
    """Reddit throttles default client user agents, so the request carries a descriptive one."""
    headers = destination().build_request([Payload({})]).headers
    assert headers["User-Agent"] == USER_AGENT and "adrouter" in USER_AGENT


def test_full_batch_in_one_request() -> None:
    """1,000 payloads make one request with 1,000 events and no test_id."""
    body = destination().build_request([Payload({"event_at": i}) for i in range(1000)]).json
    assert len(body["data"]["events"]) == 1000 and "test_id" not in body["data"]


def test_test_mode_sends_every_event_alone() -> None:
    """With test_id each payload gets its own batch key; without it all share one."""
    keys = [p.batch_key for i in range(3) for p in destination(test_id="T").map(event(event_id=str(i)), NOW)]
    assert len(set(keys)) == 3
    assert {destination().map(event(event_id=str(i)), NOW)[0].batch_key for i in range(3)} == {""}


# -- classify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", RESPONSES, ids=lambda path: path.stem)
def test_fixture_isolation_flag(path: Path) -> None:
    """Whole-batch 400s ask the dispatcher to split the batch; auth and permission errors do not."""
    fixture = json.loads(path.read_text())
    decision = build("reddit", BLOCK).classify(response_of(fixture), [Payload({})] * fixture["batch_size"])
    if "isolate" in fixture:
        assert isinstance(decision, Drop) and decision.isolate is fixture["isolate"]


@pytest.mark.parametrize(("status", "verdict"), [(408, Retry), (413, Drop), (501, Drop), (503, Retry)])
def test_statuses_without_a_body(status: int, verdict: type) -> None:
    """The shared rule decides bare statuses; 413 (too large) also isolates."""
    decision = destination().classify(HttpResponse(status), [Payload({})])
    assert isinstance(decision, verdict)
    assert not isinstance(decision, Drop) or decision.isolate is (status == 413)


def test_reason_scrubs_the_token_and_is_short() -> None:
    """A message echoing the token is masked, and a huge one is cut."""
    decision = destination().classify(answer(401, {"error": {"message": f"bad {TOKEN} " + "x" * 5000}}), [])
    assert isinstance(decision, Drop) and TOKEN not in decision.reason and len(decision.reason) < 300


def test_error_object_in_a_2xx_is_not_success() -> None:
    """An error body wins over a 2xx status, and its code decides."""
    decision = destination().classify(answer(200, {"error": {"code": 400, "message": "invalid"}}), [])
    assert decision == Drop("Reddit HTTP 400: invalid", isolate=True)


def test_2xx_without_a_count_or_with_more_is_ok() -> None:
    """Only a shortfall in "Successfully processed N" is suspicious."""
    more = answer(200, {"data": {"message": "Successfully processed 5 conversion events."}})
    assert destination().classify(more, [Payload({})]) == Ok()
    assert destination().classify(HttpResponse(204), [Payload({})]) == Ok()
