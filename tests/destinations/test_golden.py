"""One runner for every destination's golden request cases and response-classification fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from destinations.base import Destination
from router.decisions import Decision, Drop, Retry

from .golden import (
    GoldenFile,
    build,
    build_for_response,
    classify,
    golden_files,
    run_case,
    secrets_of,
    verdict,
)

CASES = golden_files("cases")
RESPONSES = golden_files("responses")
REASON_LIMIT = 300
"""A reason is a short summary; a longer one is echoing a response body."""


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case(case: GoldenFile) -> None:
    """Mapping and building a case's events gives exactly the expected requests, skip or error."""
    expect = case.data["expect"]
    outcome = run_case(case)
    if "requests" in expect:
        assert not outcome.skipped and not outcome.errors, (outcome.skipped, outcome.errors)
        assert outcome.requests == expect["requests"]
    if "skipped" in expect:
        assert any(expect["skipped"] in reason for reason in outcome.skipped), outcome.skipped
    if "error" in expect:
        assert any(expect["error"] in reason for reason in outcome.errors), outcome.errors


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_never_shows_a_secret(case: GoldenFile) -> None:
    """No configured secret appears in a masked request."""
    destination = build(case.type, case.data["config"])
    shown = json.dumps(run_case(case).requests)
    for secret in secrets_of(destination):
        assert secret not in shown


@pytest.mark.parametrize("fixture", RESPONSES, ids=lambda fixture: fixture.id)
def test_response(fixture: GoldenFile) -> None:
    """The adapter classifies a recorded response as the fixture expects, with a short, secret-free reason."""
    destination = build_for_response(fixture, CASES)
    decisions = classify(destination, fixture)
    expect = fixture.data["expect"]
    expected = expect if isinstance(expect, list) else [expect] * len(decisions)
    assert [verdict(d) for d in decisions] == expected
    for decision in decisions:
        _check_details(fixture, destination, decision)


def _check_details(fixture: GoldenFile, destination: Destination[Any], decision: Decision) -> None:
    if isinstance(decision, Retry | Drop):
        assert fixture.data.get("reason_contains", "") in decision.reason
        assert len(decision.reason) <= REASON_LIMIT
        assert not any(secret in decision.reason for secret in secrets_of(destination))
    if "retry_after" in fixture.data and isinstance(decision, Retry):
        assert decision.after == fixture.data["retry_after"]
