"""Meta adapter: config, schema, tables and the rules golden files do not show on their own."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.util import Util
from facebook_business.apiconfig import ads_api_config
from jsonschema import Draft202012Validator, ValidationError

from destinations.base import EventError, HttpResponse, Payload, SkipEvent
from destinations.meta import fields
from destinations.meta.adapter import API_VERSION, ERROR_CODES, MetaConfig, MetaDestination
from router.decisions import Drop, Ok, Retry
from router.secret import Secret

NOW = 1_767_225_700.0
TOKEN = "EAAGfaketoken123"
BLOCK: dict[str, Any] = {"id": "meta_main", "type": "meta", "pixel_id": "1234567890", "access_token": TOKEN}
SCHEMA = json.loads(MetaDestination.schema_path().read_text())
UA = "Mozilla/5.0"
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()


def destination(**overrides: Any) -> MetaDestination:
    """A destination from BLOCK plus overrides, validated by the schema like at startup."""
    block = {**BLOCK, **overrides}
    Draft202012Validator(SCHEMA).validate(block)
    return MetaDestination(MetaDestination.parse_config(block))


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


def one(dest: MetaDestination, ev: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    """The single Meta event body that map gives."""
    payloads = dest.map(ev, now)
    assert len(payloads) == 1
    return payloads[0].body


def error_response(status: int, **error: Any) -> HttpResponse:
    """A Graph error answer."""
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps({"error": error}).encode())


# -- constants and config ---------------------------------------------------------------------------


def test_api_version_is_the_sdk_version() -> None:
    """API_VERSION is the Graph version of the installed facebook-business SDK."""
    assert API_VERSION == ads_api_config["API_VERSION"] == MetaDestination.api_version


def test_limits() -> None:
    """1,000 events per request and 7 days of age, as Meta documents."""
    assert MetaDestination.max_batch_size == 1000
    assert MetaDestination.max_event_age == 7 * 86400


def test_identity_variants_are_the_hashed_keys_meta_reads() -> None:
    """Meta reads the no-plus phone variant and every other hashed identifier."""
    assert MetaDestination.identity_variants == {
        "email", "phone", "first_name", "last_name", "gender", "date_of_birth",
        "city", "state", "zip", "country", "external_id",
    }  # fmt: skip


def test_parse_config_defaults() -> None:
    """Optional keys take their documented defaults."""
    config = destination().config
    assert config == MetaConfig(
        id="meta_main", type="meta", pixel_id="1234567890", access_token=Secret(TOKEN)
    )
    assert (config.limited_data_use, config.ldu_country, config.ldu_state) == ("from_consent", 0, 0)
    assert config.send_external_id is True and config.test_event_code is None and config.app_secret is None


def test_parse_config_accepts_a_secret_and_masks_it() -> None:
    """A token already wrapped in Secret is kept; the config's repr never shows it."""
    config = MetaDestination.parse_config({**BLOCK, "access_token": Secret(TOKEN)})
    assert config.access_token.reveal() == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    "bad",
    [
        {"pixel_id": "12ab"},
        {"pixel_id": 1234567890},
        {"access_token": ""},
        {"type": "tiktok"},
        {"limited_data_use": "sometimes"},
        {"events": "purchase"},
        {"event_map": {"sign_up": 3}},
        {"base_url": "ftp://proxy"},
        {"timeout": 0},
        {"pixel": "123"},
    ],
)
def test_schema_rejects(bad: dict[str, Any]) -> None:
    """The schema refuses malformed or unknown keys."""
    with pytest.raises(ValidationError):
        Draft202012Validator(SCHEMA).validate({**BLOCK, **bad})


def test_schema_describes_every_property() -> None:
    """Docs are generated from the schema, so every property has a description."""
    Draft202012Validator.check_schema(SCHEMA)
    assert all(spec.get("description") for spec in SCHEMA["properties"].values())


# -- tables -----------------------------------------------------------------------------------------


def test_event_table_covers_every_canonical_event() -> None:
    """Each canonical standard event has a Meta standard event."""
    assert len(fields.EVENT_NAMES) == 15
    assert fields.EVENT_NAMES["begin_checkout"] == "InitiateCheckout"
    assert fields.EVENT_NAMES["sign_up"] == "CompleteRegistration"


def test_action_sources_are_meta_enum_values() -> None:
    """Every mapped action_source is a value of the SDK's ActionSource enum."""
    assert set(fields.ACTION_SOURCES.values()) <= {source.value for source in ActionSource}


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


def test_event_map_to_purchase_needs_value() -> None:
    """The Purchase check applies to the Meta name, also when event_map produces it."""
    with pytest.raises(EventError, match="2804009"):
        destination(event_map={"checkout_done": "Purchase"}).map(event(event_name="checkout_done"), NOW)


def test_zero_value_and_zero_items_are_kept() -> None:
    """0 is a value, not an empty field."""
    ev = event(event_name="purchase", properties={"value": 0, "currency": "USD", "num_items": 0})
    assert one(destination(), ev)["custom_data"] == {"value": 0, "currency": "USD", "num_items": 0}


def test_custom_property_never_overrides_standard_field() -> None:
    """Derived content_ids win over a free property of the same name."""
    ev = event(properties={"content_ids": ["x"], "contents": [{"id": "sku-1"}], "note": "n"})
    custom = one(destination(), ev)["custom_data"]
    assert custom == {"content_ids": ["sku-1"], "contents": [{"id": "sku-1"}], "note": "n"}


def test_raw_user_fields_are_never_sent() -> None:
    """Plain identifiers in `user` (never stored, but defensively) do not reach the payload."""
    ev = event(user={"email": "joe@example.com", "phone": "+16505551212", "first_name": "Joe"})
    text = json.dumps(one(destination(), ev))
    assert "joe@example.com" not in text and "6505551212" not in text and "Joe" not in text


def test_skip_reason_names_the_event() -> None:
    """A filtered event says which event and why."""
    with pytest.raises(SkipEvent, match="'lead'"):
        destination(events=["purchase"]).map(event(), NOW)


def test_map_is_deterministic() -> None:
    """Same event, same now: same payload (no clock, no randomness)."""
    ev = event(properties={"value": 1, "currency": "USD"})
    assert destination().map(ev, NOW) == destination().map(ev, NOW)


# -- build_request ----------------------------------------------------------------------------------


def test_token_goes_in_the_body_not_the_url() -> None:
    """URLs end up in logs; the token is in the JSON body and listed as a secret."""
    request = destination().build_request([Payload({"event_name": "Lead"})])
    assert TOKEN not in request.url
    assert request.json["access_token"] == TOKEN
    assert request.secrets == (TOKEN,)
    assert TOKEN not in json.dumps(request.masked())


def test_full_batch_in_one_request() -> None:
    """1,000 payloads make one request with 1,000 events."""
    batch = [Payload({"event_id": str(i)}) for i in range(1000)]
    assert len(destination().build_request(batch).json["data"]) == 1000


def test_appsecret_proof_matches_the_sdk() -> None:
    """appsecret_proof is HMAC-SHA256(app secret, token), as the SDK's Util computes it."""
    request = destination(app_secret="s3cret").build_request([Payload({})])
    expected = hmac.new(b"s3cret", TOKEN.encode(), hashlib.sha256).hexdigest()
    assert request.json["appsecret_proof"] == expected == Util.appsecret_proof("s3cret", TOKEN)
    assert expected in request.secrets


# -- classify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "outcome"), sorted(ERROR_CODES.items()))
def test_every_listed_code(code: int, outcome: str) -> None:
    """Each ERROR_CODES row decides, whatever the HTTP status."""
    decision = destination().classify(error_response(400, code=code, message="m"), [Payload({})])
    assert isinstance(decision, Retry if outcome == "retry" else Drop)


def test_unlisted_permission_code_drops() -> None:
    """Codes 200-299 are all permission errors."""
    decision = destination().classify(error_response(403, code=273, message="m"), [Payload({})])
    assert isinstance(decision, Drop)


def test_unlisted_code_falls_back_to_http_status() -> None:
    """Not in the table and not transient: 5xx retries, 4xx drops."""
    dest = destination()
    assert isinstance(dest.classify(error_response(500, code=9999, message="m"), []), Retry)
    assert isinstance(dest.classify(error_response(400, code=9999, message="m"), []), Drop)


def test_reason_leaves_out_the_rest_of_the_body() -> None:
    """The reason keeps code, title and message; user message and trace id stay out."""
    response = error_response(
        400, code=100, error_subcode=2804001, message="Invalid parameter",
        error_user_title="Click ID Incorrectly Formatted", error_user_msg="long text", fbtrace_id="TRACE",
    )  # fmt: skip
    decision = destination().classify(response, [Payload({})])
    assert decision == Drop(
        "Meta 100/2804001: Click ID Incorrectly Formatted: Invalid parameter", isolate=True
    )


def test_long_message_is_cut() -> None:
    """A huge message cannot flood logs."""
    decision = destination().classify(error_response(400, code=100, message="x" * 5000), [])
    assert isinstance(decision, Drop) and len(decision.reason) < 250


def test_more_events_received_than_sent_is_ok() -> None:
    """Only a shortfall is suspicious."""
    response = HttpResponse(200, {}, b'{"events_received": 5, "messages": []}')
    assert destination().classify(response, [Payload({})]) == Ok()


def test_2xx_without_a_count_is_ok() -> None:
    """A 2xx without events_received (a proxy, say) is taken as delivered."""
    assert destination().classify(HttpResponse(200, {}, b""), [Payload({})]) == Ok()


def test_error_object_in_a_2xx_is_not_success() -> None:
    """An error body wins over a 2xx status."""
    decision = destination().classify(error_response(200, code=190, message="bad token"), [Payload({})])
    assert isinstance(decision, Drop) and "access token invalid or expired" in decision.reason
