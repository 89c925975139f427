"""Tests of the fake Google token endpoint, Data Manager API and Ads API, over real loopback HTTP."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.destinations.golden import golden_files, run_case
from tests.fakes.google import ADS_SCOPE, DM_SCOPE, GoogleFake, create_google_fake
from tests.fakes.server import FakeServer, serve

CLIENT_ID, CLIENT_SECRET, REFRESH = "client-1.apps.googleusercontent.com", "GOCSPX-secret", "1//refresh"
CUSTOMER = "1234567890"
NOW = 1_767_225_700.0
DAY = 86400
EMAIL = hashlib.sha256(b"janedoe@gmail.com").hexdigest()
PHONE = hashlib.sha256(b"+16505551212").hexdigest()
INGEST = "/v1/events:ingest"
CLICKS = f"/v26/customers/{CUSTOMER}:uploadClickConversions"
ADJUSTMENTS = f"/v26/customers/{CUSTOMER}:uploadConversionAdjustments"
ACTION = f"customers/{CUSTOMER}/conversionActions/456"
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A settable clock for the fake."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[GoogleFake, Clock, FakeServer]]:
    """One fake, its clock and its server for the whole module."""
    clock = Clock()
    fake = create_google_fake(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_tokens=[REFRESH],
        customer_id=CUSTOMER,
        now=clock,
    )
    with serve(fake.app) as running:
        yield fake, clock, running


@pytest.fixture
def clock(served: tuple[GoogleFake, Clock, FakeServer]) -> Clock:
    """The fake's clock, set back to NOW."""
    served[1].t = NOW
    return served[1]


@pytest.fixture
def fake(served: tuple[GoogleFake, Clock, FakeServer], clock: Clock) -> GoogleFake:
    """The fake with an empty ledger, its refresh token valid again and mode ok."""
    served[0].clear()
    return served[0]


@pytest.fixture
def client(served: tuple[GoogleFake, Clock, FakeServer], fake: GoogleFake) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the running fake."""
    with httpx.Client(base_url=served[2].url, timeout=5.0) as http:
        yield http


def grant(client: httpx.Client, **form: str) -> httpx.Response:
    """A refresh-token grant, with the valid values unless overridden."""
    base = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    return client.post("/token", data=base | {"refresh_token": REFRESH} | form)


def bearer(client: httpx.Client, scope: str | None = None) -> dict[str, str]:
    """Authorization headers with a fresh access token."""
    answer = grant(client, **({"scope": scope} if scope else {}))
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def dm_event(**changes: Any) -> dict[str, Any]:
    """A valid Data Manager event."""
    event: dict[str, Any] = {
        "transactionId": "ord-1",
        "eventTimestamp": "2026-01-01T00:00:00Z",
        "eventSource": "WEB",
        "adIdentifiers": {"gclid": "Cj0-gclid", "landingPageDeviceInfo": {"ipAddress": "203.0.113.9"}},
        "userData": {"userIdentifiers": [{"emailAddress": EMAIL}, {"phoneNumber": PHONE}]},
        "conversionValue": 12.5,
        "currency": "USD",
        "consent": {"adUserData": "CONSENT_GRANTED"},
    }
    return event | changes


def ingest(client: httpx.Client, events: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    """POST events:ingest with a valid destination and token."""
    destination = {"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": CUSTOMER}}
    body = {
        "destinations": [destination | {"productDestinationId": "456"}],
        "encoding": "HEX",
        "events": events,
    }
    return client.post(INGEST, json=body | extra, headers=bearer(client))


def click(**changes: Any) -> dict[str, Any]:
    """A valid click conversion row."""
    row: dict[str, Any] = {
        "gclid": "Cj0-gclid",
        "conversionAction": ACTION,
        "conversionDateTime": "2026-01-01 00:00:00+00:00",
        "conversionValue": 12.5,
        "currencyCode": "USD",
        "orderId": "ord-1",
        "userIdentifiers": [{"hashedEmail": EMAIL}],
    }
    return row | changes


def upload(
    client: httpx.Client, rows: list[dict[str, Any]], path: str = CLICKS, **extra: Any
) -> httpx.Response:
    """POST an Ads upload with partialFailure true and a token."""
    key = "conversions" if path == CLICKS else "conversionAdjustments"
    return client.post(path, json={key: rows, "partialFailure": True} | extra, headers=bearer(client))


def reasons(response: httpx.Response) -> list[str]:
    """The ErrorInfo and field-violation reasons of a Data Manager error."""
    found = []
    for detail in response.json()["error"]["details"]:
        found += (
            [detail["reason"]] if "reason" in detail else [v["reason"] for v in detail["fieldViolations"]]
        )
    return found


def row_codes(response: httpx.Response) -> list[tuple[int, str]]:
    """(row index, family.CODE) of every row error in a partial failure."""
    details = response.json()["partialFailureError"]["details"][0]["errors"]
    return [
        (e["location"]["fieldPathElements"][0]["index"], "{}.{}".format(*next(iter(e["errorCode"].items()))))
        for e in details
    ]


# -- token endpoint --------------------------------------------------------------------------------


def test_token_grant_and_refusals(client: httpx.Client, fake: GoogleFake) -> None:
    """A valid grant gets a bearer token; revoked, wrong client, grant type or scope get OAuth errors."""
    answer = grant(client, scope=DM_SCOPE)
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] == 3600
    assert answer.json()["scope"] == DM_SCOPE
    assert (
        grant(client, client_secret="x").status_code,
        grant(client, client_secret="x").json()["error"],
    ) == (
        401,
        "invalid_client",
    )
    assert grant(client, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert grant(client, scope="https://www.googleapis.com/auth/drive").json()["error"] == "invalid_scope"
    fake.revoke(REFRESH)
    revoked = grant(client)
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")
    assert [t.status for t in fake.tokens][-1] == 400


def test_access_tokens_expire_on_the_fake_clock(client: httpx.Client, fake: GoogleFake, clock: Clock) -> None:
    """A token is refused once its lifetime has passed on the fake's clock, or after expire_tokens()."""
    headers = bearer(client)
    assert client.post(INGEST, json={}, headers=headers).status_code == 400  # authenticated, bad body
    clock.t += 3601
    assert client.post(INGEST, json={}, headers=headers).status_code == 401
    headers = bearer(client)
    fake.expire_tokens()
    assert client.post(INGEST, json={}, headers=headers).json()["error"]["status"] == "UNAUTHENTICATED"


def test_scope_must_fit_the_api(client: httpx.Client) -> None:
    """A token for the adwords scope cannot write to Data Manager, and the other way round."""
    body = {"conversions": [click()], "partialFailure": True}
    assert client.post(INGEST, json={}, headers=bearer(client, ADS_SCOPE)).status_code == 403
    assert client.post(CLICKS, json=body, headers=bearer(client, DM_SCOPE)).status_code == 403


# -- Data Manager ----------------------------------------------------------------------------------


def test_ingest_records_events(client: httpx.Client, fake: GoogleFake) -> None:
    """A valid request gets a requestId and every event is recorded with its account and action."""
    response = ingest(client, [dm_event(), dm_event(transactionId="ord-2")])
    assert response.status_code == 200 and response.json()["requestId"]
    assert fake.ids() == ["ord-1", "ord-2"]
    assert {(e.customer_id, e.action, e.api) for e in fake.received} == {(CUSTOMER, "456", "data_manager")}


def test_ingest_without_token_is_401(client: httpx.Client, fake: GoogleFake) -> None:
    """No bearer token, or one the token endpoint never issued: 401 UNAUTHENTICATED."""
    body = {"events": [dm_event()]}
    assert client.post(INGEST, json=body).status_code == 401
    assert client.post(INGEST, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert fake.received == []


def test_fail_fast_one_bad_hash_rejects_all(client: httpx.Client, fake: GoogleFake) -> None:
    """One raw email among valid events: 400 INVALID_ARGUMENT naming events[1], nothing recorded."""
    bad = dm_event(userData={"userIdentifiers": [{"emailAddress": "jane@example.com"}]})
    response = ingest(client, [dm_event(), bad, dm_event(transactionId="ord-3")])
    assert (response.status_code, response.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert reasons(response)[0] == "INVALID_HEX_ENCODING"
    assert "events[1]" in response.json()["error"]["details"][1]["fieldViolations"][0]["field"]
    assert fake.received == []
    upper = dm_event(userData={"userIdentifiers": [{"emailAddress": EMAIL.upper()}]})
    assert reasons(ingest(client, [upper]))[0] == "INVALID_SHA256_FORMAT"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"eventTimestamp": "2026-01-01 00:00:00+00:00"}, "INVALID_FORMAT"),
        ({"eventTimestamp": "2025-09-01T00:00:00Z"}, "EVENT_TIME_INVALID"),
        ({"eventSource": "BROWSER"}, "INVALID_ENUM_VALUE"),
        ({"currency": "usd"}, "INVALID_CURRENCY_CODE"),
        ({"consent": {"adUserData": "GRANTED"}}, "INVALID_ENUM_VALUE"),
        (
            {"userData": {"userIdentifiers": [{"emailAddress": EMAIL, "phoneNumber": PHONE}]}},
            "INVALID_ARGUMENT",
        ),
        ({"userData": {"userIdentifiers": [{"emailAddress": EMAIL}] * 11}}, "TOO_MANY_USER_IDENTIFIERS"),
        (
            {"userData": {"userIdentifiers": [{"address": {"givenName": EMAIL, "familyName": EMAIL}}]}},
            "REQUIRED_FIELD_MISSING",
        ),
        ({"adIdentifiers": {"gclid": "x", "landingPageDeviceInfo": {"ipAddress": "h"}}}, "INVALID_FORMAT"),
        ({"adIdentifiers": {}, "userData": None}, "NO_IDENTIFIERS_PROVIDED"),
        ({"orderId": "ord-1"}, "INVALID_ARGUMENT"),
    ],
)
def test_ingest_contract(client: httpx.Client, changes: dict[str, Any], reason: str) -> None:
    """Each contract breach answers 400 with its ErrorReason."""
    event = {k: v for k, v in dm_event(**changes).items() if v is not None}
    assert reasons(ingest(client, [event]))[0] == reason


def test_ingest_request_level_checks(client: httpx.Client) -> None:
    """Too many events, no encoding with user data, another account, no numeric action id."""
    assert reasons(ingest(client, [dm_event()] * 2001))[0] == "TOO_MANY_EVENTS"
    no_encoding = client.post(
        INGEST,
        json={
            "destinations": [
                {
                    "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": CUSTOMER},
                    "productDestinationId": "456",
                }
            ],
            "events": [dm_event()],
        },
        headers=bearer(client),
    )
    assert reasons(no_encoding)[0] == "REQUIRED_FIELD_MISSING"
    other = {"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1111111111"}}
    denied = client.post(
        INGEST,
        json={
            "destinations": [other | {"productDestinationId": "456"}],
            "events": [dm_event()],
            "encoding": "HEX",
        },
        headers=bearer(client),
    )
    assert denied.status_code == 403
    named = {
        "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": CUSTOMER},
        "productDestinationId": ACTION,
    }
    wrong = client.post(
        INGEST,
        json={"destinations": [named], "events": [dm_event()], "encoding": "HEX"},
        headers=bearer(client),
    )
    assert reasons(wrong)[0] == "INVALID_CONVERSION_ACTION_ID"


def test_validate_only_records_nothing(client: httpx.Client, fake: GoogleFake) -> None:
    """validateOnly: 200 with a requestId, the request logged as such, no event recorded."""
    assert ingest(client, [dm_event()], validateOnly=True).status_code == 200
    assert fake.received == [] and fake.requests[-1].validate_only is True


def test_chosen_failure_rejects_the_request_carrying_it(client: httpx.Client, fake: GoogleFake) -> None:
    """fail(transaction id) makes every request carrying that event fail fast with the reason."""
    fake.fail("ord-bad", "INVALID_EVENT")
    response = ingest(client, [dm_event(), dm_event(transactionId="ord-bad")])
    assert reasons(response)[0] == "INVALID_EVENT" and fake.received == []
    assert ingest(client, [dm_event()]).status_code == 200


# -- Ads API ---------------------------------------------------------------------------------------


def test_click_upload_records_rows_with_results(client: httpx.Client, fake: GoogleFake) -> None:
    """Valid rows get positional results and no partialFailureError."""
    response = upload(client, [click(), click(orderId="ord-2", gclid="Cj0-2")])
    assert response.status_code == 200 and "partialFailureError" not in response.json()
    assert [r["orderId"] for r in response.json()["results"]] == ["ord-1", "ord-2"]
    assert fake.ids() == ["ord-1", "ord-2"]


def test_partial_failure_is_located_and_the_rest_recorded(client: httpx.Client, fake: GoogleFake) -> None:
    """A bad row becomes a located error with an empty result; its neighbours are recorded."""
    rows = [
        click(),
        click(orderId="o-2", conversionDateTime="2026-01-01T00:00:00Z"),
        click(orderId="o-3", userIdentifiers=[{"hashedEmail": EMAIL}] * 6),
        click(orderId="o-4", userIdentifiers=[{"addressInfo": {"hashedFirstName": EMAIL}}]),
        click(orderId="o-5", gbraid="GB", wbraid="WB", gclid=None),
        click(orderId="o-6", gclid="G", wbraid="WB"),
        click(orderId="o-7", conversionDateTime="2025-09-01 00:00:00+00:00"),
    ]
    response = upload(client, [{k: v for k, v in r.items() if v is not None} for r in rows])
    assert row_codes(response) == [
        (1, "dateError.INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"),
        (2, "collectionSizeError.TOO_MANY"),
        (3, "conversionUploadError.UNSUPPORTED_USER_IDENTIFIER"),
        (4, "conversionUploadError.GBRAID_WBRAID_BOTH_SET"),
        (5, "fieldError.VALUE_MUST_BE_UNSET"),
        (6, "conversionUploadError.EXPIRED_EVENT"),
    ]
    assert response.json()["results"][0]["orderId"] == "ord-1"
    assert response.json()["results"][1:] == [{}] * 6
    assert fake.ids() == ["ord-1"]


def test_request_level_ads_errors(client: httpx.Client) -> None:
    """partialFailure false, over 2,000 rows, unknown fields, bad enums, version, customer and header."""
    no_partial = client.post(CLICKS, json={"conversions": [click()]}, headers=bearer(client))
    assert no_partial.status_code == 400
    failure = no_partial.json()["error"]["details"][0]["errors"][0]["errorCode"]
    assert failure == {"partialFailureError": "PARTIAL_FAILURE_MODE_REQUIRED"}
    too_many = upload(client, [click(orderId=str(i)) for i in range(2001)])
    assert too_many.json()["error"]["details"][0]["errors"][0]["errorCode"] == {
        "conversionUploadError": "TOO_MANY_CONVERSIONS_IN_REQUEST"
    }
    assert upload(client, [click(orderID="x")]).status_code == 400
    assert upload(client, [click(consent={"adUserData": "YES"})]).status_code == 400
    assert upload(client, [click()], path=CLICKS.replace("v26", "v25")).status_code == 404
    assert (
        upload(client, [click()], path="/v26/customers/123-456-7890:uploadClickConversions").status_code
        == 400
    )
    headers = bearer(client) | {"login-customer-id": "987-654-3210"}
    body = {"conversions": [click()], "partialFailure": True}
    assert client.post(CLICKS, json=body, headers=headers).status_code == 400
    other = upload(client, [click()], path="/v26/customers/1111111111:uploadClickConversions")
    assert other.status_code == 403


def test_duplicate_order_ids(client: httpx.Client, fake: GoogleFake) -> None:
    """An order id seen before answers ORDER_ID_ALREADY_IN_USE; twice in one request DUPLICATE_ORDER_ID."""
    assert upload(client, [click()]).status_code == 200
    assert row_codes(upload(client, [click()])) == [(0, "conversionUploadError.ORDER_ID_ALREADY_IN_USE")]
    twice = upload(client, [click(orderId="o-9"), click(orderId="o-9")])
    assert row_codes(twice) == [(1, "conversionUploadError.DUPLICATE_ORDER_ID")]
    no_order = click(orderId=None)
    rows = [{k: v for k, v in no_order.items() if v is not None}]
    assert upload(client, rows).status_code == 200
    assert row_codes(upload(client, rows)) == [(0, "conversionUploadError.CLICK_CONVERSION_ALREADY_EXISTS")]
    assert fake.ids() == ["ord-1", "o-9", None]


def test_chosen_transient_row_failure_then_success(client: httpx.Client, fake: GoogleFake) -> None:
    """fail(order, code, count=1): the first attempt gets the row error, the retry is recorded."""
    fake.fail("ord-1", "internalError.TRANSIENT_ERROR", count=1)
    assert row_codes(upload(client, [click()])) == [(0, "internalError.TRANSIENT_ERROR")]
    assert "partialFailureError" not in upload(client, [click()]).json()
    assert fake.ids() == ["ord-1"]


def test_enhancements(client: httpx.Client, fake: GoogleFake) -> None:
    """ENHANCEMENT rows need an orderId and identifiers; a second enhancement is already enhanced."""
    row = {
        "adjustmentType": "ENHANCEMENT",
        "conversionAction": ACTION,
        "orderId": "ord-1",
        "gclidDateTimePair": {"conversionDateTime": "2026-01-01 00:00:00+00:00"},
        "userIdentifiers": [
            {"hashedEmail": EMAIL},
            {"addressInfo": {"hashedFirstName": EMAIL, "hashedLastName": PHONE, "countryCode": "US"}},
        ],
        "userAgent": "Mozilla/5.0",
    }
    partial = upload(client, [row], path=ADJUSTMENTS)
    assert row_codes(partial) == [(0, "conversionAdjustmentUploadError.INVALID_USER_IDENTIFIER")]
    row["userIdentifiers"][1]["addressInfo"]["postalCode"] = "94025"
    assert "partialFailureError" not in upload(client, [row], path=ADJUSTMENTS).json()
    no_order = {k: v for k, v in row.items() if k != "orderId"} | {"gclidDateTimePair": {"gclid": "G"}}
    response = upload(client, [row, no_order], path=ADJUSTMENTS)
    assert row_codes(response) == [
        (0, "conversionAdjustmentUploadError.CONVERSION_ALREADY_ENHANCED"),
        (1, "conversionAdjustmentUploadError.MISSING_ORDER_ID_FOR_WEBPAGE"),
    ]
    location = response.json()["partialFailureError"]["details"][0]["errors"][0]["location"]
    assert location["fieldPathElements"][0]["fieldName"] == "conversion_adjustments"
    assert fake.ids() == ["ord-1"]


def test_ads_validate_only(client: httpx.Client, fake: GoogleFake) -> None:
    """validateOnly: no results and nothing recorded; errors still come back."""
    assert upload(client, [click()], validateOnly=True).json().get("results") is None
    bad = upload(client, [click(conversionDateTime="x")], validateOnly=True)
    assert row_codes(bad)[0][1].startswith("dateError.")
    assert fake.received == []


def test_adapter_golden_requests_pass_the_contract(
    client: httpx.Client, fake: GoogleFake, clock: Clock
) -> None:
    """Every request in the google golden cases is accepted by the fake without a row error."""
    cases = [c for c in golden_files("cases") if c.type == "google" and "requests" in c.data["expect"]]
    assert cases
    fake.customer_id = None
    try:
        for case in cases:
            fake.clear()
            clock.t = float(case.data["now"])
            for request in run_case(case).requests:
                path = "/" + request["url"].split("/", 3)[3]
                headers = {k: v for k, v in request["headers"].items()} | bearer(client)
                response = client.post(path, json=request["json"], headers=headers)
                assert response.status_code == 200, (case.id, response.text)
                assert "partialFailureError" not in response.json(), (case.id, response.text)
    finally:
        fake.customer_id = CUSTOMER


# -- faults and admin ------------------------------------------------------------------------------


def test_503_for_count_then_ok(client: httpx.Client, fake: GoogleFake) -> None:
    """count=2: two requests get 503 UNAVAILABLE, the third is processed."""
    fake.set_mode("503", count=2)
    statuses = [ingest(client, [dm_event(transactionId=str(i))]).status_code for i in range(3)]
    assert statuses == [503, 503, 200] and fake.fault.mode == "ok"
    assert fake.ids() == ["2"]


def test_429_retry_after_and_violation(client: httpx.Client, fake: GoogleFake, clock: Clock) -> None:
    """429 RESOURCE_EXHAUSTED with Retry-After; a request before it expires is a violation."""
    fake.set_mode("429", count=1, retry_after=5)
    response = upload(client, [click()])
    assert (response.status_code, response.headers["retry-after"]) == (429, "5")
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    clock.t += 2
    assert upload(client, [click(orderId="o-2")]).status_code == 200
    [violation] = fake.violations
    assert (violation.kind, violation.api) == ("retry_after", "google_ads")


@pytest.mark.parametrize(
    ("mode", "status"),
    [("500", 500), ("unauthenticated", 401), ("permission_denied", 403), ("html_502", 502)],
)
def test_fault_modes(client: httpx.Client, fake: GoogleFake, mode: str, status: int) -> None:
    """Each fault mode answers its status and records nothing."""
    fake.set_mode(mode)
    assert ingest(client, [dm_event()]).status_code == status
    assert upload(client, [click()]).status_code == status
    assert fake.received == []


def test_reset_and_timeout_modes(client: httpx.Client, fake: GoogleFake) -> None:
    """reset drops the connection; timeout outlasts the client, then still records."""
    fake.set_mode("reset", count=1)
    with pytest.raises(httpx.TransportError):
        ingest(client, [dm_event()])
    assert fake.requests[-1].status is None
    fake.set_mode("timeout", count=1, delay=0.5)
    headers = bearer(client)
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            CLICKS, json={"conversions": [click()], "partialFailure": True}, headers=headers, timeout=0.1
        )
    assert fake.wait_for(1, timeout=3.0)


def test_admin_endpoints(client: httpx.Client, fake: GoogleFake) -> None:
    """mode, fail, revoke, expire, received, requests, tokens, violations and clear work over HTTP."""
    mode = client.post("/_admin/mode", json={"mode": "503", "count": 1})
    assert mode.json() == {"mode": "503", "remaining": 1, "retry_after": None, "delay": 30.0}
    assert ingest(client, [dm_event()]).status_code == 503
    assert (
        client.post("/_admin/fail", json={"record_id": "ord-1", "code": "INVALID_EVENT"}).status_code == 200
    )
    assert reasons(ingest(client, [dm_event()]))[0] == "INVALID_EVENT"
    assert client.post("/_admin/fail", json={"record_id": "x", "bogus": 1}).status_code == 400
    assert [r["status"] for r in client.get("/_admin/requests").json()] == [503, 400]
    assert len(client.get("/_admin/tokens").json()) == 2
    assert client.post("/_admin/revoke", json={"refresh_token": REFRESH}).status_code == 200
    assert grant(client).json()["error"] == "invalid_grant"
    assert client.post("/_admin/expire").status_code == 200
    assert client.get("/_admin/received").json() == [] and client.get("/_admin/violations").json() == []
    assert client.post("/_admin/mode", json={"mode": "nope"}).status_code == 400
    assert client.post("/_admin/clear").status_code == 200
    assert fake.requests == [] and grant(client).status_code == 200


def test_unknown_path_is_404(client: httpx.Client, fake: GoogleFake) -> None:
    """A path Google does not serve answers 404 NOT_FOUND and is logged."""
    assert client.post("/v1/events:ingestt", json={}).status_code == 404
    assert fake.requests[-1].path == "/v1/events:ingestt"


def test_cli_runs_fake_standalone() -> None:
    """``python -m tests.fakes.google`` serves the three surfaces on the given port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "tests.fakes.google", "--port", str(port), "--client-id", CLIENT_ID,
        "--client-secret", CLIENT_SECRET, "--refresh-token", REFRESH, "--customer", CUSTOMER,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        _wait_until_listening(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
            assert ingest(http, [dm_event(eventTimestamp=stamp)]).status_code == 200
            assert [e["id"] for e in http.get("/_admin/received").json()] == ["ord-1"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")
