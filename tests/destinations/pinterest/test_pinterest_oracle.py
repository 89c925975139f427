"""Pinterest's official SDK (pinterest-api-sdk) as an oracle for our request bodies and response fixtures.

The SDK's models (`Pinterest-Generated-Client`, generated from OpenAPI 5.14) check JSON types, required
fields, the user_data anyOf and the 1..1000 batch size, but accept unknown keys as additional properties
and do not check the enums. So every body our adapter builds for a golden case is validated by the
models, then walked against the models' `attribute_map`s (a key whitelist, recursive), and our enum
tables are compared with the names the SDK documents. Where the API is newer than the SDK (5.23 added
`app_info`, `device_info`, `predicted_ltv`; we send none of them) the whitelist would say so.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from openapi_generated.pinterest_client.configuration import Configuration
from openapi_generated.pinterest_client.exceptions import OpenApiException
from openapi_generated.pinterest_client.model.conversion_api_response import ConversionApiResponse
from openapi_generated.pinterest_client.model.conversion_events import ConversionEvents
from openapi_generated.pinterest_client.model.conversion_events_custom_data import ConversionEventsCustomData
from openapi_generated.pinterest_client.model.conversion_events_custom_data_contents import (
    ConversionEventsCustomDataContents,
)
from openapi_generated.pinterest_client.model.conversion_events_data import ConversionEventsData
from openapi_generated.pinterest_client.model.conversion_events_user_data import ConversionEventsUserData
from openapi_generated.pinterest_client.model_utils import validate_and_convert_types

from destinations.pinterest import fields
from tests.destinations.golden import GoldenFile, golden_files, run_case
from tests.fakes.pinterest import answer_body, status_of

ROOT = Path(__file__).parent
CASES = [
    case for case in golden_files("cases") if case.type == "pinterest" and "requests" in case.data["expect"]
]
RESPONSES = [
    fixture
    for fixture in golden_files("responses")
    if fixture.type == "pinterest" and isinstance(fixture.data["response"]["body"], dict)
]
OFF_SPEC = frozenset({"unknown_event_status", "processed_short_without_statuses"})
"""Fixtures off the spec on purpose (an unknown status, no `events`): anomalies the adapter must survive."""
WHITELIST: Mapping[str, frozenset[str]] = {
    "event": frozenset(ConversionEventsData.attribute_map),
    "user_data": frozenset(ConversionEventsUserData.attribute_map),
    "custom_data": frozenset(ConversionEventsCustomData.attribute_map),
    "contents": frozenset(ConversionEventsCustomDataContents.attribute_map),
}


def validate(model: type, body: Mapping[str, Any]) -> None:
    """The SDK's type check of a body against a model (on a copy: the models rewrite dicts in place)."""
    fresh = json.loads(json.dumps(body))
    validate_and_convert_types(fresh, (model,), ["body"], True, True, configuration=Configuration())


def unknown_keys(event: Mapping[str, Any]) -> list[str]:
    """Every key of an event, at any depth, that the SDK's models do not name."""
    found = [f"event.{key}" for key in event if key not in WHITELIST["event"]]
    found += [f"user_data.{key}" for key in event.get("user_data", {}) if key not in WHITELIST["user_data"]]
    custom = event.get("custom_data", {})
    found += [f"custom_data.{key}" for key in custom if key not in WHITELIST["custom_data"]]
    for item in custom.get("contents", []):
        found += [f"contents[].{key}" for key in item if key not in WHITELIST["contents"]]
    return found


def documented_codes(docstring: str | None, argument: str) -> set[str]:
    """The `<code>` values the SDK's docstring lists for one argument."""
    match = re.search(rf"{argument} \(str\):(.*?)(?:\n\s+\w+ \(|\Z)", docstring or "", re.DOTALL)
    assert match, f"{argument} is not documented in the SDK"
    return set(re.findall(r"<code>([a-z_]+)</code>", match.group(1)))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_golden_bodies_pass_the_sdk_models(case: GoldenFile) -> None:
    """Every body our adapter builds for a golden case has the types and required fields the SDK wants."""
    for request in run_case(case).requests:
        validate(ConversionEvents, request["json"])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_golden_bodies_use_only_keys_the_sdk_names(case: GoldenFile) -> None:
    """No event, user_data, custom_data or contents key outside the SDK models' attribute maps."""
    for request in run_case(case).requests:
        for event in request["json"]["data"]:
            assert unknown_keys(event) == []


def test_the_oracle_is_not_vacuous() -> None:
    """The SDK refuses the mistakes users report: a numeric value, a single-string em, IP without UA."""
    [purchase] = [case for case in CASES if case.path.stem == "purchase_full"]
    good = run_case(purchase).requests[0]["json"]
    mistakes = [
        ("custom_data", "value", 12.5),
        ("custom_data", "num_items", "3"),
        ("user_data", "em", "a" * 64),
        ("user_data", "client_user_agent", None),
    ]
    for section, key, value in mistakes:
        bad = copy.deepcopy(good)
        event = bad["data"][0]
        event[section][key] = value
        if value is None:
            event["user_data"] = {"client_ip_address": "203.0.113.9"}
        with pytest.raises(OpenApiException):
            validate(ConversionEvents, bad)
    assert unknown_keys({"event_name": "x", "custom_data": {"content_type": "product"}}) == [
        "custom_data.content_type"
    ]


def test_our_event_names_include_every_name_the_sdk_documents() -> None:
    """The SDK (OpenAPI 5.14) documents 9 event names: all are in the spec 5.23 enum we enforce."""
    sdk_names = documented_codes(ConversionEventsData._from_openapi_data.__doc__, "event_name")
    assert len(sdk_names) == 9
    assert sdk_names <= fields.SPEC_EVENT_NAMES


def test_our_action_sources_are_exactly_the_sdk_ones() -> None:
    """web, app_android, app_ios and offline, as the SDK documents them."""
    sdk_sources = documented_codes(ConversionEventsData._from_openapi_data.__doc__, "action_source")
    ours = set(fields.ACTION_SOURCES.values()) | {name for _, name in fields.APP_SOURCES}
    assert ours == sdk_sources == {"web", "app_android", "app_ios", "offline"}


@pytest.mark.parametrize("fixture", RESPONSES, ids=lambda fixture: fixture.id)
def test_response_fixtures_are_real_shapes(fixture: GoldenFile) -> None:
    """2xx fixtures and 422 details are ConversionApiResponses (the deliberately off-spec one is refused);
    error fixtures carry Pinterest's integer code and message."""
    status, body = fixture.data["response"]["status"], fixture.data["response"]["body"]
    statuses = body if 200 <= status < 300 else body.get("details")
    if statuses is None:
        assert isinstance(body["code"], int) and isinstance(body["message"], str)
    elif fixture.path.stem in OFF_SPEC:
        with pytest.raises((OpenApiException, TypeError)):
            validate(ConversionApiResponse, _sdk_statuses(statuses))
    else:
        validate(ConversionApiResponse, _sdk_statuses(statuses))


def test_fake_answers_are_conversion_api_responses() -> None:
    """The fake's answer body passes the SDK's response model."""
    validate(ConversionApiResponse, answer_body([status_of(None), status_of("Invalid event_timestamp")]))


def _sdk_statuses(body: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK's response model predates `null` warnings; real answers carry "" or null alike."""
    events = [{k: ("" if v is None else v) for k, v in event.items()} for event in body.get("events", [])]
    return dict(body) | ({"events": events} if "events" in body else {})
