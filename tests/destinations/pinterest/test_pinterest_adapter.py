"""Pinterest adapter: config, schema, tables and the rules golden files do not show on their own."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from destinations.base import EventError, HttpResponse, Payload, SkipEvent
from destinations.pinterest import fields
from destinations.pinterest.adapter import (
    API_VERSION,
    MAX_EVENT_AGE,
    PinterestConfig,
    PinterestDestination,
)
from router.decisions import Drop, Ok, Retry
from router.identity import VARIANTS
from router.secret import Secret

NOW = 1_767_225_700.0
TOKEN = "pina_AEfaketoken123"
BLOCK: dict[str, Any] = {
    "id": "pinterest_main",
    "type": "pinterest",
    "ad_account_id": "549755885175",
    "access_token": TOKEN,
}
SCHEMA = json.loads(PinterestDestination.schema_path().read_text())
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
CANONICAL_EVENTS = frozenset(
    {"page_view", "view_content", "search", "add_to_cart", "add_to_wishlist", "begin_checkout"}
    | {"add_payment_info", "purchase", "lead", "sign_up", "subscribe", "start_trial", "contact"}
    | {"schedule", "submit_application"}
)


def destination(**overrides: Any) -> PinterestDestination:
    """A destination from BLOCK plus overrides, validated by the schema like at startup."""
    block = {**BLOCK, **overrides}
    Draft202012Validator(SCHEMA).validate(block)
    return PinterestDestination(PinterestDestination.parse_config(block))


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


def one(dest: PinterestDestination, ev: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    """The single Pinterest event body that map gives."""
    payloads = dest.map(ev, now)
    assert len(payloads) == 1
    return payloads[0].body


def answer(status: int, body: Any, **headers: str) -> HttpResponse:
    """A Pinterest answer with a JSON body."""
    return HttpResponse(status, {"content-type": "application/json", **headers}, json.dumps(body).encode())


def statuses(*names: str) -> list[dict[str, str]]:
    """`events[]` entries with the given statuses."""
    return [{"status": name, "error_message": f"m{i}", "warning_message": ""} for i, name in enumerate(names)]


# -- constants and config ---------------------------------------------------------------------------


def test_constants() -> None:
    """v5 path, 1,000 events per request, 7 days of age."""
    assert API_VERSION == PinterestDestination.api_version == "v5"
    assert PinterestDestination.max_batch_size == 1000
    assert PinterestDestination.max_event_age == MAX_EVENT_AGE == 7 * 86400


def test_identity_variants_exist_and_are_the_hashed_keys() -> None:
    """Pinterest reads the no-plus phone and trim+lower names, all of them real identity variants."""
    assert PinterestDestination.identity_variants == {
        "email", "phone", "first_name", "last_name", "gender", "date_of_birth",
        "city", "state", "zip", "country", "external_id",
    }  # fmt: skip
    assert PinterestDestination.identity_variants <= VARIANTS.keys()


def test_parse_config_defaults() -> None:
    """Optional keys take their documented defaults."""
    config = destination().config
    assert config == PinterestConfig(
        id="pinterest_main", type="pinterest", ad_account_id="549755885175", access_token=Secret(TOKEN)
    )
    assert (config.test, config.limited_data_processing, config.app_action_source) == (
        False,
        "from_consent",
        None,
    )


def test_parse_config_masks_the_token() -> None:
    """A token already wrapped in Secret is kept; the config's repr never shows it."""
    config = PinterestDestination.parse_config({**BLOCK, "access_token": Secret(TOKEN)})
    assert config.access_token.reveal() == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    "bad",
    [
        {"ad_account_id": "12ab"},
        {"ad_account_id": 549755885175},
        {"ad_account_id": "1" * 19},
        {"access_token": ""},
        {"type": "meta"},
        {"test": "yes"},
        {"limited_data_processing": "sometimes"},
        {"app_action_source": "app_adroid"},
        {"events": "purchase"},
        {"event_map": {"sign_up": "Signup"}},
        {"event_map": {"sign_up": "complete_registration"}},
        {"base_url": "ftp://proxy"},
        {"timeout": 0},
        {"pixel_id": "123"},
    ],
)
def test_schema_rejects(bad: dict[str, Any]) -> None:
    """The schema refuses malformed or unknown keys, and event names Pinterest does not know."""
    with pytest.raises(ValidationError):
        Draft202012Validator(SCHEMA).validate({**BLOCK, **bad})


def test_schema_describes_every_property() -> None:
    """Docs are generated from the schema, so every property has a description."""
    Draft202012Validator.check_schema(SCHEMA)
    assert all(spec.get("description") for spec in SCHEMA["properties"].values())


def test_schema_event_map_values_are_the_documented_names() -> None:
    """The schema's event_map enum and fields.DOCUMENTED_EVENT_NAMES are the same list."""
    allowed = SCHEMA["properties"]["event_map"]["additionalProperties"]["enum"]
    assert set(allowed) == fields.DOCUMENTED_EVENT_NAMES and len(allowed) == len(set(allowed))


# -- tables -----------------------------------------------------------------------------------------


def test_event_table_covers_every_canonical_event() -> None:
    """Each canonical event has a row, and each row names an event of the spec's enum."""
    assert fields.EVENT_NAMES.keys() == CANONICAL_EVENTS
    assert set(fields.EVENT_NAMES.values()) <= fields.SPEC_EVENT_NAMES
    assert fields.EVENT_NAMES["purchase"] == "checkout"
    assert fields.EVENT_NAMES["page_view"] == "page_visit"


def test_action_sources_are_pinterest_enum_values() -> None:
    """Every table value and app source is one of web, app_android, app_ios, offline."""
    enum = {"web", "app_android", "app_ios", "offline"}
    assert set(fields.ACTION_SOURCES.values()) | {name for _, name in fields.APP_SOURCES} <= enum


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


@pytest.mark.parametrize(
    ("value", "text"),
    [(12.5, "12.5"), (42, "42"), (0, "0"), (19.99, "19.99"), (1e-7, "0.0000001"), (1e12, "1000000000000.0")],
)
def test_value_is_a_plain_decimal_string(value: float, text: str) -> None:
    """custom_data.value is a string, never in exponent notation."""
    ev = event(properties={"value": value, "currency": "USD"})
    assert one(destination(), ev)["custom_data"]["value"] == text


def test_num_items_from_contents_when_not_given() -> None:
    """Without properties.num_items, the contents' quantities are summed."""
    contents = [{"id": "a", "quantity": 2}, {"id": "b", "quantity": 3}, {"id": "c"}]
    custom = one(destination(), event(properties={"contents": contents}))["custom_data"]
    assert custom["num_items"] == 5 and custom["content_ids"] == ["a", "b", "c"]
    assert "num_items" not in one(destination(), event(properties={"contents": [{"id": "x"}]}))["custom_data"]


def test_content_fields_become_strings() -> None:
    """A numeric free property that Pinterest reads becomes a string; lists and booleans are left out."""
    ev = event(properties={"content_name": 7, "content_category": ["a"], "content_brand": True, "note": "x"})
    assert one(destination(), ev)["custom_data"] == {"content_name": "7"}


@pytest.mark.parametrize(
    ("consent", "opt_out"),
    [
        ({}, None),
        ({"analytics_storage": "denied"}, None),
        ({"ad_storage": "granted"}, False),
        ({"ad_storage": "granted", "ad_user_data": "denied"}, True),
        ({"ad_personalization": "denied"}, True),
    ],
)
def test_opt_out_from_ad_consent(consent: dict[str, str], opt_out: bool | None) -> None:
    """Any ad signal denied: opt_out true; all present ones granted: false; none: no key."""
    assert one(destination(), event(consent=consent)).get("opt_out") == opt_out


@pytest.mark.parametrize(
    ("policy", "ldu", "sent"),
    [
        ("from_consent", True, True),
        ("from_consent", False, False),
        ("always", False, True),
        ("never", True, False),
    ],
)
def test_limited_data_processing_policy(policy: str, ldu: bool, sent: bool) -> None:
    """opt_out_type LDP follows the configured policy and consent.ldu."""
    body = one(destination(limited_data_processing=policy), event(consent={"ldu": ldu}))
    assert (body.get("custom_data", {}).get("opt_out_type") == "LDP") is sent


@pytest.mark.parametrize(
    ("language", "sent"), [("en", "en"), ("pt-BR", "pt"), ("EN_us", "en"), ("eng", None)]
)
def test_language_is_iso_639_1(language: str, sent: str | None) -> None:
    """Pinterest takes the 2-letter primary language subtag."""
    ev = event(user={"ip": "203.0.113.9", "user_agent": "UA", "language": language})
    assert one(destination(), ev).get("language") == sent


@pytest.mark.parametrize(
    ("agent", "source"),
    [
        ("MyApp/1.0 (iPhone; iOS 18.1)", "app_ios"),
        ("MyApp/2 CFNetwork/1490 Darwin/23.2.0", "app_ios"),
        ("Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8)", "app_android"),
    ],
)
def test_app_os_from_user_agent(agent: str, source: str) -> None:
    """An app event's OS comes from its user agent, before the configured fallback."""
    ev = event(action_source="app", user={"ip": "203.0.113.9", "user_agent": agent})
    assert one(destination(app_action_source="app_android"), ev)["action_source"] == source


def test_unknown_action_source_is_offline() -> None:
    """A non-web, non-app source is an offline conversion."""
    assert one(destination(), event(action_source="chat"))["action_source"] == "offline"


def test_custom_event_and_event_map() -> None:
    """An unmapped custom event is `custom`; event_map may turn it into a standard one."""
    assert one(destination(), event(event_name="quote_requested"))["event_name"] == "custom"
    mapped = destination(event_map={"quote_requested": "lead"})
    assert one(mapped, event(event_name="quote_requested"))["event_name"] == "lead"


def test_raw_user_fields_are_never_sent() -> None:
    """Plain identifiers in `user` (never stored, but defensively) do not reach the payload."""
    ev = event(user={"email": "joe@example.com", "phone": "+16505551212", "first_name": "Joe"})
    text = json.dumps(one(destination(), ev))
    assert "joe@example.com" not in text and "6505551212" not in text and "Joe" not in text


def test_malformed_url_and_click_id_are_left_out() -> None:
    """A page URL that is not http(s) and a click id with spaces are dropped, not sent malformed."""
    ev = event(page={"url": "javascript:alert(1)"}, ids={"epik": "has space"})
    body = one(destination(), ev)
    assert "event_source_url" not in body and "click_id" not in body["user_data"]


def test_skip_reason_names_the_event() -> None:
    """A filtered event says which event and why."""
    with pytest.raises(SkipEvent, match="'lead'"):
        destination(events=["purchase"]).map(event(), NOW)


def test_map_is_deterministic() -> None:
    """Same event, same now: same payload (no clock, no randomness)."""
    ev = event(properties={"value": 1.5, "currency": "USD"})
    assert destination().map(ev, NOW) == destination().map(ev, NOW)


# -- build_request ----------------------------------------------------------------------------------


def test_token_goes_in_the_header_only() -> None:
    """The token is a Bearer header, listed as a secret, never in the URL or body, masked when shown."""
    request = destination().build_request([Payload({"event_name": "lead"})])
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request.url and TOKEN not in json.dumps(request.json)
    assert request.secrets == (TOKEN,)
    assert TOKEN not in json.dumps(request.masked())


def test_full_batch_in_one_request() -> None:
    """1,000 payloads make one request with 1,000 events, in order."""
    batch = [Payload({"event_id": str(i)}) for i in range(1000)]
    data = destination().build_request(batch).json["data"]
    assert [item["event_id"] for item in data] == [str(i) for i in range(1000)]


def test_event_id_is_unchanged_across_rebuilds() -> None:
    """A retried batch carries the same event_id (Pinterest's dedup key) as the first attempt."""
    dest = destination()
    payloads = dest.map(event(event_id="ord-9"), NOW)
    first, second = (
        dest.build_request(payloads),
        dest.build_request(dest.map(event(event_id="ord-9"), NOW + 60)),
    )
    assert first.json["data"][0]["event_id"] == second.json["data"][0]["event_id"] == "ord-9"


# -- classify ---------------------------------------------------------------------------------------


def test_failed_event_is_dropped_without_isolation() -> None:
    """A per-event failure is final for that event only: no bisecting needed."""
    decisions = destination().classify(
        answer(200, {"events": statuses("failed", "processed")}), [Payload({})] * 2
    )
    assert decisions == [Drop("Pinterest failed the event: m0"), Ok()]


def test_statuses_that_do_not_match_the_batch_fall_back_to_counts() -> None:
    """An events list of the wrong length is not trusted; the counts decide."""
    body = {"num_events_received": 3, "num_events_processed": 3, "events": statuses("processed")}
    assert destination().classify(answer(200, body), [Payload({})] * 3) == Ok()
    short = body | {"num_events_processed": 1}
    assert isinstance(destination().classify(answer(200, short), [Payload({})] * 3), Retry)


def test_whole_request_400_isolates() -> None:
    """A 400 for the whole request is dropped with isolate, so the dispatcher bisects the batch."""
    decision = destination().classify(
        answer(400, {"code": 1, "message": "Invalid request"}), [Payload({})] * 4
    )
    assert decision == Drop("HTTP 400, Pinterest 1: Invalid request", isolate=True)


def test_reason_scrubs_the_token_and_is_short() -> None:
    """An echoed token never reaches a reason; a huge message is cut."""
    body = {"code": 2, "message": f"bad token {TOKEN} " + "x" * 5000}
    decision = destination().classify(answer(401, body), [Payload({})])
    assert isinstance(decision, Drop) and TOKEN not in decision.reason and len(decision.reason) < 300
    assert decision.reason.startswith("access token rejected (HTTP 401, Pinterest 2)")


def test_429_without_body_retries_after_header() -> None:
    """A bare 429 still retries, honouring Retry-After."""
    decision = destination().classify(HttpResponse(429, {"retry-after": "12"}, b""), [Payload({})])
    assert decision == Retry("HTTP 429", after=12.0)


def test_processed_count_above_batch_is_ok() -> None:
    """Only a shortfall is suspicious."""
    assert destination().classify(answer(200, {"num_events_processed": 5}), [Payload({})]) == Ok()
