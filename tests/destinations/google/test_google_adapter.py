"""Google adapter: config, schema, tables and the rules the golden files do not show on their own."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from destinations.base import EventError, HttpResponse, Payload, SkipEvent
from destinations.google import auth, fields
from destinations.google.adapter import (
    ADS_API_VERSION,
    MAX_BATCH,
    MAX_EVENT_AGE,
    GoogleConfig,
    GoogleDestination,
)
from router.decisions import Drop, Ok, Retry
from router.secret import Secret
from router.validation import problems, validator_for

NOW = 1_767_225_700.0
DAY = 86_400
SECRET, REFRESH = "GOCSPX-fake-client-secret", "1//0fake-refresh-token"
BLOCK: dict[str, Any] = {
    "id": "google_main",
    "type": "google",
    "customer_id": "123-456-7890",
    "conversions": {"purchase": "customers/1234567890/conversionActions/456", "lead": 789},
    "client_id": "1234-abc.apps.googleusercontent.com",
    "client_secret": SECRET,
    "refresh_token": REFRESH,
}
SCHEMA = json.loads(GoogleDestination.schema_path().read_text())
EMAIL = hashlib.sha256(b"janedoe@gmail.com").hexdigest()
NAME = hashlib.sha256(b"jane").hexdigest()


def destination(**overrides: Any) -> GoogleDestination:
    """A destination from BLOCK plus overrides (None removes a key), validated like at startup."""
    block = {k: v for k, v in {**BLOCK, **overrides}.items() if v is not None}
    Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(block)
    return GoogleDestination(GoogleDestination.parse_config(block))


def ads(**overrides: Any) -> GoogleDestination:
    """A Google Ads API destination."""
    return destination(api="google_ads", **overrides)


def event(**overrides: Any) -> dict[str, Any]:
    """A stored purchase, 100 s before NOW, with a gclid and a hashed email."""
    base: dict[str, Any] = {
        "event_name": "purchase",
        "event_id": "e-1",
        "timestamp_ms": int(NOW - 100) * 1000,
        "action_source": "website",
        "user": {"user_agent": "Mozilla/5.0", "ip": "203.0.113.9"},
        "hashed": {"email_google": EMAIL},
        "ids": {"gclid": "Cj0-gclid"},
        "properties": {"value": 10, "currency": "usd", "order_id": "o-1"},
    }
    return base | overrides


def one(dest: GoogleDestination, ev: dict[str, Any]) -> dict[str, Any]:
    """The single payload body map gives."""
    payloads = dest.map(ev, NOW)
    assert len(payloads) == 1
    return payloads[0].body


def response(status: int, body: Any, **headers: str) -> HttpResponse:
    """A JSON answer."""
    return HttpResponse(
        status, {k.lower().replace("_", "-"): v for k, v in headers.items()}, json.dumps(body).encode()
    )


def dm_error(status: int, code: str, *reasons: str, field: str = "events.events[0]") -> HttpResponse:
    """A Data Manager error answer with ErrorInfo reasons and one field violation per reason."""
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason} for reason in reasons
    ]
    violations = [{"field": field, "reason": reason} for reason in reasons]
    details.append({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations})
    return response(status, {"error": {"code": status, "message": "m", "status": code, "details": details}})


def partial(errors: list[tuple[str, int | None]], results: Any = None) -> HttpResponse:
    """HTTP 200 with a partialFailureError holding (family.CODE, row index) errors."""
    items = []
    for code, index in errors:
        family, name = code.split(".")
        error: dict[str, Any] = {"errorCode": {family: name}, "message": f"{name} happened"}
        if index is not None:
            error["location"] = {"fieldPathElements": [{"fieldName": "conversions", "index": index}]}
        items.append(error)
    detail = {
        "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
        "errors": items,
    }
    body: dict[str, Any] = {"partialFailureError": {"code": 3, "message": "x", "details": [detail]}}
    if results is not None:
        body["results"] = results
    return response(200, body)


# -- constants and config ---------------------------------------------------------------------------


def test_limits_and_version() -> None:
    """2,000 per request, 90 days, Ads API v26, the four hashed variants Google reads."""
    assert (GoogleDestination.max_batch_size, MAX_BATCH) == (2000, 2000)
    assert GoogleDestination.max_event_age == MAX_EVENT_AGE == 90 * DAY
    assert GoogleDestination.api_version == ADS_API_VERSION == "v26"
    assert GoogleDestination.identity_variants == {"email_google", "phone_e164", "first_name", "last_name"}


def test_parse_config_defaults_and_normalization() -> None:
    """Hyphens stripped, ids turned into resource names, Data Manager and click mode by default."""
    config = destination().config
    assert config.customer_id == "1234567890" and config.api == "data_manager" and config.mode == "click"
    assert config.conversions == {
        "purchase": ("customers/1234567890/conversionActions/456",),
        "lead": ("customers/1234567890/conversionActions/789",),
    }
    assert (config.token_url, config.validate_only, config.login_customer_id) == (auth.TOKEN_URL, False, None)
    assert config.client_secret == Secret(SECRET) and config.refresh_token == Secret(REFRESH)
    assert SECRET not in repr(config) and REFRESH not in repr(config)


def test_parse_config_variants() -> None:
    """Integer ids, operating_account_id, ADC, lists of actions (repeats removed), login customer."""
    config = destination(
        customer_id=None, operating_account_id=1234567890, login_customer_id="987-654-3210",
        conversions={"purchase": [456, "456", "customers/1234567890/conversionActions/457"]},
        client_id=None, client_secret=None, refresh_token=None, credentials="adc",
    ).config  # fmt: skip
    assert (config.customer_id, config.login_customer_id) == ("1234567890", "9876543210")
    assert config.conversions["purchase"] == (
        "customers/1234567890/conversionActions/456",
        "customers/1234567890/conversionActions/457",
    )
    assert config.client_secret is None and config.refresh_token is None and config.client_id is None
    assert isinstance(config, GoogleConfig)


@pytest.mark.parametrize(
    "bad",
    [
        {"operating_account_id": "1234567890"},  # both customer_id and operating_account_id
        {"customer_id": None},  # neither
        {"customer_id": "12345"},
        {"customer_id": "123-456-7890-1"},
        {"credentials": "adc"},  # and a refresh token
        {"client_secret": None},
        {"credentials": "service_account", "client_id": None, "client_secret": None, "refresh_token": None},
        {"mode": "enhancement"},  # Data Manager has no enhancement mode here
        {"api": "ads"},
        {"token_url": "http://oauth.example.com/token"},
        {"token_url": "ftp://127.0.0.1/token"},
        {"base_url": "ftp://proxy"},
        {"conversions": {}},
        {"conversions": {"purchase": "conversionActions/456"}},
        {"conversions": {"purchase": []}},
        {"conversions": {"purchase": 0}},
        {"validate_only": "yes"},
        {"timeout": 0},
        {"developer_token": "x"},
    ],
)
def test_schema_rejects(bad: dict[str, Any]) -> None:
    """The schema refuses malformed, conflicting or unknown keys."""
    with pytest.raises(ValidationError):
        destination(**bad)


def test_schema_accepts_loopback_token_url_and_enhancement_on_ads() -> None:
    """Tests point token_url at a loopback fake; enhancement is a Google Ads API mode."""
    assert destination(token_url="http://127.0.0.1:8123/token").config.token_url.endswith("/token")
    assert ads(mode="enhancement").config.mode == "enhancement"


def test_schema_describes_every_property() -> None:
    """Docs are generated from the schema, so every property has a description."""
    Draft202012Validator.check_schema(SCHEMA)
    assert all(spec.get("description") for spec in SCHEMA["properties"].values())


def test_startup_messages_name_the_missing_key() -> None:
    """`router check` says which credential key is missing, by path."""
    block = {k: v for k, v in BLOCK.items() if k != "client_secret"}
    found = problems(validator_for(GoogleDestination.schema_path()), block)
    assert [(p.path, p.message) for p in found] == [("/client_secret", "is required")]


# -- map --------------------------------------------------------------------------------------------


def test_unmapped_and_filtered_events_are_skipped_with_reasons() -> None:
    """The skip reason names the event and the config key to change."""
    with pytest.raises(SkipEvent, match="'sign_up' has no conversion action in `conversions`"):
        destination().map(event(event_name="sign_up"), NOW)
    with pytest.raises(SkipEvent, match="'purchase' is not in this destination's `events` list"):
        destination(events=["lead"]).map(event(), NOW)


def test_age_boundaries() -> None:
    """Exactly 90 days is sent, one second more is refused; enhancements stop at 54 days."""
    limit = int(NOW) - 90 * DAY
    assert one(destination(), event(timestamp_ms=limit * 1000))["eventTimestamp"] == "2025-10-03T00:01:40Z"
    with pytest.raises(EventError, match="older than 90 days"):
        destination().map(event(timestamp_ms=(limit - 1) * 1000), NOW)
    with pytest.raises(EventError, match="older than 54 days"):
        ads(mode="enhancement").map(event(timestamp_ms=(int(NOW) - 55 * DAY) * 1000), NOW)


def test_value_and_currency_rules() -> None:
    """A boolean is not a value; 0 is; the currency is upper-cased; a malformed one is left out."""
    body = one(destination(), event(properties={"value": 0, "currency": "eur"}))
    assert (body["conversionValue"], body["currency"]) == (0, "EUR")
    body = one(destination(), event(properties={"value": True, "currency": "euro"}))
    assert "conversionValue" not in body and "currency" not in body


def test_raw_identifiers_are_never_sent() -> None:
    """Plain values in `user` or under `hashed` (never stored, but defensively) do not reach the body."""
    ev = event(
        user={"email": "jane@example.com", "phone": "+16505551212", "country": "us", "postal_code": "94025"},
        hashed={"email_google": "jane@example.com", "phone_e164": "+16505551212", "first_name": "Jane"},
    )
    enhancement = ev | {"hashed": {**ev["hashed"], "phone_e164": NAME, "last_name": NAME}}
    text = json.dumps(one(destination(), ev)) + json.dumps(
        one(ads(mode="enhancement"), enhancement | {"ids": {}})
    )
    assert "jane@example.com" not in text and "6505551212" not in text and "Jane" not in text


def test_address_needs_all_four_parts() -> None:
    """Names without country or postal code: no address identifier."""
    ev = event(hashed={"first_name": NAME, "last_name": NAME}, user={"country": "us"})
    assert "userData" not in one(destination(), ev)
    full = ev | {"user": {"country": "us", "postal_code": "94025"}}
    assert one(destination(), full)["userData"]["userIdentifiers"][0]["address"]["postalCode"] == "94025"


def test_click_conversions_never_carry_an_address() -> None:
    """The Ads API refuses addressInfo in click conversions: only email and phone go."""
    ev = event(hashed={"email_google": EMAIL, "first_name": NAME, "last_name": NAME})
    body = one(ads(), ev | {"user": {"country": "us", "postal_code": "94025"}})
    assert body["userIdentifiers"] == [{"hashedEmail": EMAIL}]


def test_consent_denied_keeps_no_personal_data() -> None:
    """ad_user_data denied: no identifiers and no IP in any API; enhancement skipped."""
    ev = event(consent={"ad_user_data": "denied", "ad_personalization": "granted"})
    dm = one(destination(), ev)
    assert "userData" not in dm and "ipAddress" not in json.dumps(dm)
    assert dm["consent"] == {"adUserData": "CONSENT_DENIED", "adPersonalization": "CONSENT_GRANTED"}
    assert one(ads(), ev)["consent"] == {"adUserData": "DENIED"}
    with pytest.raises(SkipEvent):
        ads(mode="enhancement").map(ev, NOW)


def test_unknown_consent_values_are_left_out() -> None:
    """Only granted/denied map; anything else is left unspecified, never guessed as granted."""
    body = one(destination(), event(consent={"ad_user_data": "yes"}))
    assert "consent" not in body


def test_transaction_id_is_stable_across_attempts() -> None:
    """Same event, same now: same body (no clock reads, no randomness); orderId from the event."""
    ev = event(properties={})
    assert destination().map(ev, NOW) == destination().map(ev, NOW)
    assert one(destination(), ev)["transactionId"] == "e-1" and one(ads(), ev)["orderId"] == "e-1"


def test_data_manager_batches_per_conversion_action() -> None:
    """Data Manager payloads carry their action id as batch key; Ads rows share one batch."""
    assert [p.batch_key for p in destination().map(event(), NOW)] == ["456"]
    assert [p.batch_key for p in destination().map(event(event_name="lead"), NOW)] == ["789"]
    assert [p.batch_key for p in ads().map(event(), NOW)] == [""]


# -- build_request ----------------------------------------------------------------------------------


def test_requests_carry_no_credentials() -> None:
    """The token is added at send time by the authenticator; no secret is ever in a built request."""
    for dest in (destination(), ads(), ads(mode="enhancement")):
        request = dest.build_request(dest.map(event(), NOW))
        text = json.dumps(request.masked())
        assert SECRET not in text and REFRESH not in text and "Authorization" not in request.headers
        assert "developer-token" not in request.headers


def test_base_url_override_and_full_batch() -> None:
    """base_url replaces the host for both APIs; 2,000 payloads make one request."""
    request = destination(base_url="http://127.0.0.1:9/").build_request([Payload({}, "456")] * MAX_BATCH)
    assert request.url == "http://127.0.0.1:9/v1/events:ingest" and len(request.json["events"]) == 2000
    assert ads(base_url="https://proxy.example.com").build_request([Payload({})]).url == (
        "https://proxy.example.com/v26/customers/1234567890:uploadClickConversions"
    )


# -- classify ---------------------------------------------------------------------------------------


def test_record_level_invalid_argument_isolates() -> None:
    """Data Manager fail-fast: a record error asks the dispatcher to bisect the batch."""
    decision = destination().classify(dm_error(400, "INVALID_ARGUMENT", "INVALID_SHA256_FORMAT"), [])
    assert isinstance(decision, Drop) and decision.isolate
    bare = response(400, {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}})
    assert destination().classify(bare, []) == Drop(
        "Data Manager HTTP 400 INVALID_ARGUMENT: bad", isolate=True
    )


@pytest.mark.parametrize("reason", sorted(fields.DM_REQUEST_REASONS))
def test_destination_level_errors_do_not_bisect(reason: str) -> None:
    """An error about the account or action cannot be fixed by splitting the batch."""
    decision = destination().classify(dm_error(400, "INVALID_ARGUMENT", reason, field="destinations[0]"), [])
    assert isinstance(decision, Drop) and not decision.isolate and reason in decision.reason


def test_retry_after_wins_over_retry_info() -> None:
    """Retry-After first; RetryInfo's retryDelay otherwise; a 401 is retried at once."""
    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
    body = {"error": {"code": 429, "message": "m", "status": "RESOURCE_EXHAUSTED", "details": [info]}}
    assert destination().classify(response(429, body, retry_after="30"), []) == Retry(
        "Data Manager HTTP 429 RESOURCE_EXHAUSTED: m", after=30.0
    )
    unauthenticated = destination().classify(response(401, {"error": {"status": "UNAUTHENTICATED"}}), [])
    assert isinstance(unauthenticated, Retry) and unauthenticated.after == 0.0


def test_retry_status_inside_an_unusual_http_status() -> None:
    """A google.rpc ABORTED or UNAVAILABLE is retried whatever the HTTP status."""
    aborted = response(409, {"error": {"code": 409, "message": "m", "status": "ABORTED"}})
    assert isinstance(destination().classify(aborted, []), Retry)


def test_ads_row_with_a_duplicate_and_another_error_is_delivered() -> None:
    """Already exists means Google has the conversion, whatever else it says about the row."""
    both = partial([("conversionUploadError.ORDER_ID_ALREADY_IN_USE", 0), ("fieldError.INVALID_VALUE", 0)])
    assert ads().classify(both, [Payload({})]) == [Ok()]


def test_ads_error_naming_no_row_without_results_concerns_every_row() -> None:
    """validateOnly answers no results: an unlocated error decides for every row not otherwise named."""
    decisions = ads().classify(
        partial([("conversionUploadError.EXPIRED_EVENT", 1), ("requestError.UNKNOWN", None)]),
        [Payload({})] * 3,
    )
    assert [type(d) for d in decisions] == [Drop, Drop, Drop]
    assert "EXPIRED_EVENT" in decisions[1].reason and "requestError.UNKNOWN" in decisions[0].reason


def test_ads_out_of_range_index_is_treated_as_unlocated() -> None:
    """An index beyond the batch cannot be trusted: it does not pick a random row."""
    decisions = ads().classify(
        partial([("internalError.INTERNAL_ERROR", 7)], [{}, {"gclid": "g"}]), [Payload({})] * 2
    )
    assert [type(d) for d in decisions] == [Retry, Ok]


def test_too_many_rows_splits_the_batch() -> None:
    """TOO_MANY_CONVERSIONS_IN_REQUEST: Drop with isolate, so the dispatcher halves the batch."""
    failure = {
        "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
        "errors": [
            {"errorCode": {"conversionUploadError": "TOO_MANY_CONVERSIONS_IN_REQUEST"}, "message": "m"}
        ],
    }
    body = {"error": {"code": 400, "message": "m", "status": "INVALID_ARGUMENT", "details": [failure]}}
    decision = ads().classify(response(400, body), [Payload({})] * 2)
    assert isinstance(decision, Drop) and decision.isolate


def test_reasons_are_short() -> None:
    """A huge message cannot flood logs or the dead-letter table."""
    body = {"error": {"code": 400, "message": "x" * 5000, "status": "INVALID_ARGUMENT"}}
    decision = destination().classify(response(400, body), [])
    assert isinstance(decision, Drop) and len(decision.reason) < 250
    row = ads().classify(partial([("fieldError.INVALID_VALUE", 0)]), [Payload({})])
    assert isinstance(row, list) and len(row[0].reason) < 250


def test_transient_row_errors_wait_as_google_says() -> None:
    """TOO_RECENT_* waits 6 hours; quota and internal errors use the dispatcher's backoff."""
    assert fields.TRANSIENT["conversionUploadError.TOO_RECENT_EVENT"] == 6 * 3600
    assert fields.TRANSIENT["internalError.TRANSIENT_ERROR"] is None
    assert not fields.DUPLICATES & set(fields.TRANSIENT)


# -- authenticator ----------------------------------------------------------------------------------


def test_authenticator_does_no_io_until_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the authenticator (at dispatcher start) looks nothing up: ADC is resolved on first use."""

    def forbidden(**_: Any) -> Any:
        raise AssertionError("google.auth.default() called too early")

    monkeypatch.setattr("google.auth.default", forbidden)
    dest = destination(client_id=None, client_secret=None, refresh_token=None, credentials="adc")
    assert isinstance(dest.authenticator(), auth.GoogleAuthenticator)
