"""Tests of the fake LinkedIn Conversions API, over real loopback HTTP."""

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

from destinations.base import HttpResponse, Payload
from destinations.linkedin.adapter import API_VERSION, LinkedInDestination
from router.decisions import Drop, Retry
from tests.fakes.linkedin import LinkedInFake, create_linkedin_fake
from tests.fakes.server import FakeServer, serve

TOKEN = "AQVtest-linkedin-token"
PATH = "/rest/conversionEvents"
NOW = 1_780_000_000.0
DAY_MS = 86_400_000
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "LinkedIn-Version": "202608",
    "X-Restli-Protocol-Version": "2.0.0",
    "X-RestLi-Method": "BATCH_CREATE",
}
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A settable clock for the fake."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LinkedInFake, Clock, FakeServer]]:
    """One fake, its clock and its server for the whole module (starting uvicorn costs ~0.2 s)."""
    clock = Clock()
    fake = create_linkedin_fake(access_token=TOKEN, now=clock)
    with serve(fake.app) as running:
        yield fake, clock, running


@pytest.fixture
def clock(served: tuple[LinkedInFake, Clock, FakeServer]) -> Clock:
    """The fake's clock, set back to NOW."""
    served[1].t = NOW
    return served[1]


@pytest.fixture
def fake(served: tuple[LinkedInFake, Clock, FakeServer], clock: Clock) -> LinkedInFake:
    """The fake with an empty ledger, no rules and mode ok."""
    served[0].clear()
    served[0].rules = None
    return served[0]


@pytest.fixture
def client(served: tuple[LinkedInFake, Clock, FakeServer], fake: LinkedInFake) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the running fake."""
    with httpx.Client(base_url=served[2].url, timeout=5.0) as http:
        yield http


def element(**changes: Any) -> dict[str, Any]:
    """A valid purchase conversion event, with top-level keys replaced by ``changes``."""
    base: dict[str, Any] = {
        "conversion": "urn:lla:llaPartnerConversion:123456",
        "conversionHappenedAt": int(NOW * 1000) - 60_000,
        "conversionValue": {"currencyCode": "USD", "amount": "12.5"},
        "eventId": "order-1",
        "user": {"userIds": [{"idType": "SHA256_EMAIL", "idValue": EMAIL_HASH}]},
    }
    return base | changes


def with_user(**user: Any) -> dict[str, Any]:
    """A valid element whose ``user`` is exactly ``user``."""
    return element(user=user)


def send(client: httpx.Client, elements: list[Any], **headers: str) -> httpx.Response:
    """POST a BATCH_CREATE the way the router does; a header set to "" is left out."""
    merged = {k: v for k, v in (HEADERS | headers).items() if v}
    return client.post(PATH, json={"elements": elements}, headers=merged)


def message_of(response: httpx.Response) -> str:
    """LinkedIn's error ``message``."""
    message: str = response.json()["message"]
    return message


def test_accepts_a_batch_and_records_it(client: httpx.Client, fake: LinkedInFake) -> None:
    """A valid BATCH_CREATE gets 200 with one status 201 per element, in order, and lands in the ledger."""
    response = send(client, [element(), element(eventId="order-2")])
    assert response.status_code == 200
    assert response.json() == {"elements": [{"status": 201}, {"status": 201}]}
    assert fake.event_ids() == ["order-1", "order-2"]
    assert fake.received[0].version == "202608" and fake.received[0].conversion.endswith(":123456")
    assert fake.requests[-1].restli_method == "BATCH_CREATE" and fake.requests[-1].n_elements == 2


def test_accepts_a_single_create(client: httpx.Client, fake: LinkedInFake) -> None:
    """Without X-RestLi-Method the body is one event: 201 Created, empty body, x-restli-id."""
    headers = {k: v for k, v in HEADERS.items() if k != "X-RestLi-Method"}
    response = client.post(PATH, json=element(), headers=headers)
    assert (response.status_code, response.content) == (201, b"")
    assert response.headers["x-restli-id"].startswith("urn:lla:llaPartnerConversionEvent:")
    assert fake.event_ids() == ["order-1"]


def test_version_header_is_enforced(client: httpx.Client, fake: LinkedInFake) -> None:
    """No version -> 400 VERSION_MISSING; a sunset one -> 426 NONEXISTENT_VERSION; YYYYMM.RR is accepted."""
    missing = send(client, [element()], **{"LinkedIn-Version": ""})
    sunset = send(client, [element()], **{"LinkedIn-Version": "202511"})
    assert (missing.status_code, missing.json()["code"]) == (400, "VERSION_MISSING")
    assert sunset.status_code == 426
    assert sunset.json() == {
        "status": 426,
        "code": "NONEXISTENT_VERSION",
        "message": "Requested version 20251101 is not active",
    }
    assert send(client, [element()], **{"LinkedIn-Version": "2026-08"}).status_code == 426
    assert send(client, [element()], **{"LinkedIn-Version": "202608.01"}).status_code == 200
    assert fake.event_ids() == ["order-1"]


def test_protocol_header_is_required(client: httpx.Client) -> None:
    """X-Restli-Protocol-Version must be 2.0.0."""
    assert send(client, [element()], **{"X-Restli-Protocol-Version": ""}).status_code == 400
    assert send(client, [element()], **{"X-Restli-Protocol-Version": "1.0.0"}).status_code == 400


def test_bearer_token_is_enforced(client: httpx.Client, fake: LinkedInFake) -> None:
    """A wrong token gets 401 INVALID_ACCESS_TOKEN (65600); a missing one 65604."""
    wrong = send(client, [element()], Authorization="Bearer nope")
    missing = send(client, [element()], Authorization="")
    assert (wrong.status_code, wrong.json()["serviceErrorCode"], wrong.json()["code"]) == (
        401,
        65600,
        "INVALID_ACCESS_TOKEN",
    )
    assert (missing.status_code, missing.json()["serviceErrorCode"]) == (401, 65604)
    assert fake.received == []


def test_batch_shape_is_enforced(client: httpx.Client) -> None:
    """Empty, over 5,000, extra keys, a non-JSON body and another Rest.li method are refused with 400."""
    assert send(client, []).status_code == 400
    assert send(client, [element(eventId=str(i)) for i in range(5001)]).status_code == 400
    extra = client.post(PATH, json={"elements": [element()], "test": True}, headers=HEADERS)
    text = client.post(PATH, content=b"nope", headers=HEADERS | {"Content-Type": "application/json"})
    other = send(client, [element()], **{"X-RestLi-Method": "BATCH_UPDATE"})
    assert [r.status_code for r in (extra, text, other)] == [400, 400, 400]


def test_accepts_5000_elements(client: httpx.Client, fake: LinkedInFake) -> None:
    """5,000 elements is the limit, not beyond it."""
    assert send(client, [element(eventId=str(i)) for i in range(5000)]).status_code == 200
    assert len(fake.received) == 5000


def test_422_names_the_bad_element_and_records_nothing(client: httpx.Client, fake: LinkedInFake) -> None:
    """One invalid element fails the whole batch with `Index: N, ERROR :: ...` lines; nothing is recorded."""
    bad = element(eventId="bad", conversionValue={"currencyCode": "USD"}, user={"userInfo": {"title": "cto"}})
    response = send(client, [element(), bad, element(eventId="order-3")])
    assert response.status_code == 422
    required = "field is required but not found and has no default value"
    assert message_of(response) == (
        f"Index: 1, ERROR :: /conversionValue/amount :: {required}\n"
        f"ERROR :: /user/userIds :: {required}\n"
        f"ERROR :: /user/userInfo/firstName :: {required}\n"
        f"ERROR :: /user/userInfo/lastName :: {required}\n"
    )
    assert fake.received == []


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        (element(conversionHappenedAt=int(NOW) - 60), "/conversionHappenedAt"),
        (element(conversionHappenedAt=int(NOW * 1000) - 91 * DAY_MS), "/conversionHappenedAt"),
        (element(conversionHappenedAt=NOW * 1000), "/conversionHappenedAt"),
        (element(conversionValue={"currencyCode": "USD", "amount": 12.5}), "/conversionValue/amount"),
        (element(conversionValue={"currencyCode": "usd", "amount": "1"}), "/conversionValue/currencyCode"),
        (element(conversion="urn:li:conversion:1"), "/conversion"),
        (element(eventId=""), "/eventId"),
        (element(extra=1), "/extra"),
        (with_user(userIds=[{"idType": "SHA256_EMAIL", "idValue": EMAIL_HASH.upper()}]), "/user/userIds/0"),
        (with_user(userIds=[{"idType": "SHA256_EMAIL", "idValue": "joe@example.com"}]), "/user/userIds/0"),
        (with_user(userIds=[{"idType": "AXCIOM_ID", "idValue": "x"}]), "/user/userIds/0/idType"),
        (with_user(userIds=[]), "/user"),
        (with_user(userIds=[], userInfo={"firstName": "mike"}), "/user/userInfo/lastName"),
    ],
)
def test_422_per_element_checks(client: httpx.Client, bad: dict[str, Any], path: str) -> None:
    """Seconds, stale or non-integer times, numeric amounts, bad URNs, unhashed emails... are 422."""
    response = send(client, [element(), bad])
    assert response.status_code == 422
    assert message_of(response).startswith(f"Index: 1, ERROR :: {path}")


def test_user_info_with_names_and_empty_user_ids_is_accepted(client: httpx.Client) -> None:
    """userIds may be empty when userInfo carries both names."""
    ok = with_user(userIds=[], userInfo={"firstName": "mike", "lastName": "smith", "countryCode": "US"})
    assert send(client, [ok]).status_code == 200


def test_fake_422_is_what_the_adapter_splits(client: httpx.Client) -> None:
    """The adapter reads the fake's 422: the bad element dropped with its message, the others retried."""
    response = send(client, [element(), element(conversionHappenedAt=1), element()])
    adapter = LinkedInDestination(
        LinkedInDestination.parse_config(
            {"id": "li", "type": "linkedin", "access_token": TOKEN, "conversions": {"purchase": 1}}
        )
    )
    answered = HttpResponse(response.status_code, dict(response.headers), response.content)
    decisions = adapter.classify(answered, [Payload({})] * 3)
    assert isinstance(decisions, list)
    assert isinstance(decisions[1], Drop) and "/conversionHappenedAt" in decisions[1].reason
    assert isinstance(decisions[0], Retry) and isinstance(decisions[2], Retry)


def test_adapter_request_is_accepted(client: httpx.Client, fake: LinkedInFake) -> None:
    """What the adapter builds for a stored event passes every check of the fake."""
    block = {"id": "li", "type": "linkedin", "access_token": TOKEN, "conversions": {"purchase": 123456}}
    adapter = LinkedInDestination(LinkedInDestination.parse_config(block))
    event = {
        "event_name": "purchase",
        "event_id": "ord-9",
        "timestamp_ms": int(NOW * 1000) - 5000,
        "hashed": {"email": EMAIL_HASH},
        "ids": {"li_fat_id": "df5gf5-gh6t7"},
        "properties": {"value": 49.99, "currency": "EUR", "acxiom_id": "AX-1"},
    }
    request = adapter.build_request(adapter.map(event, NOW))
    assert request.headers["LinkedIn-Version"] == API_VERSION
    response = client.post(PATH, json=request.json, headers=dict(request.headers))
    assert response.status_code == 200, response.text
    assert fake.received[0].event["conversionValue"] == {"currencyCode": "EUR", "amount": "49.99"}


def test_rules_with_another_method_get_400_indices(client: httpx.Client, fake: LinkedInFake) -> None:
    """A rule not created for CONVERSIONS_API, or an unknown one, is a 400 naming the indices."""
    fake.rules = {"123456": "CONVERSIONS_API", "222": "INSIGHT_TAG"}
    wrong = element(eventId="w", conversion="urn:lla:llaPartnerConversion:222")
    unknown = element(eventId="u", conversion="urn:lla:llaPartnerConversion:999")
    response = send(client, [element(), wrong, unknown, wrong])
    assert response.status_code == 400
    assert message_of(response) == (
        "Incorrect conversions information provided. Conversion's method should be CONVERSIONS_API, "
        "indices [1, 3] (0-indexed); Conversion does not exist or is not accessible, indices [2] (0-indexed)"
    )
    assert fake.received == []


def test_refused_event_id_gets_422(client: httpx.Client, fake: LinkedInFake) -> None:
    """``refuse`` fails the element with that eventId with the given error, at its index."""
    fake.refuse("order-2", "/conversionValue/amount", "amount exceeds the allowed maximum")
    response = send(client, [element(), element(eventId="order-2")])
    assert message_of(response) == (
        "Index: 1, ERROR :: /conversionValue/amount :: amount exceeds the allowed maximum\n"
    )
    assert send(client, [element()]).status_code == 200


def test_503_mode_for_count_then_ok(client: httpx.Client, fake: LinkedInFake) -> None:
    """With count=2, two requests get 503 and the third is accepted."""
    fake.set_mode("503", count=2)
    assert [send(client, [element()]).status_code for _ in range(3)] == [503, 503, 200]
    assert fake.fault.mode == "ok" and len(fake.received) == 1


def test_429_mode_sends_retry_after(client: httpx.Client, fake: LinkedInFake) -> None:
    """The 429 mode answers TOO_MANY_REQUESTS with a Retry-After header."""
    fake.set_mode("429", retry_after=7)
    response = send(client, [element()])
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert response.json()["code"] == "TOO_MANY_REQUESTS"


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("permanent", 403)])
def test_json_fault_modes(client: httpx.Client, fake: LinkedInFake, mode: str, status: int) -> None:
    """Each JSON fault mode answers with its status and records nothing."""
    fake.set_mode(mode)
    assert send(client, [element()]).status_code == status
    assert fake.received == []


def test_timeout_mode_delays_then_processes(client: httpx.Client, fake: LinkedInFake) -> None:
    """The timeout mode outlasts the client timeout, then still records the events."""
    fake.set_mode("timeout", count=1, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(PATH, json={"elements": [element()]}, headers=HEADERS, timeout=0.1)
    assert fake.wait_for(1, timeout=3.0)


def test_reset_mode_drops_connection(client: httpx.Client, fake: LinkedInFake) -> None:
    """The reset mode closes the connection with no answer and records no event."""
    fake.set_mode("reset", count=1)
    with pytest.raises(httpx.TransportError):
        send(client, [element()])
    assert fake.received == [] and fake.requests[-1].status is None
    assert send(client, [element()]).status_code == 200


def test_violation_when_request_precedes_retry_after(
    client: httpx.Client, fake: LinkedInFake, clock: Clock
) -> None:
    """A request before the Retry-After expired is a violation; one after it is not."""
    fake.set_mode("429", count=1, retry_after=5)
    assert send(client, [element()]).status_code == 429
    clock.t += 2
    assert send(client, [element()]).status_code == 200
    clock.t += 4
    assert send(client, [element()]).status_code == 200
    [violation] = fake.violations
    assert (violation.kind, violation.seq) == ("retry_after", 2)


def test_unknown_path_and_method(client: httpx.Client, fake: LinkedInFake) -> None:
    """Another path is a 404 RESOURCE_NOT_FOUND; GET on conversionEvents a 405."""
    missing = client.post("/rest/conversionEvent", json={}, headers=HEADERS)
    assert (missing.status_code, missing.json()["code"]) == (404, "RESOURCE_NOT_FOUND")
    assert client.get(PATH, headers=HEADERS).status_code == 405
    assert fake.requests[0].path == "/rest/conversionEvent"


def test_admin_endpoints(client: httpx.Client, fake: LinkedInFake) -> None:
    """/_admin/mode, refuse, received, requests, violations and clear work over HTTP."""
    mode = client.post("/_admin/mode", json={"mode": "429", "count": 1, "retry_after": 30})
    assert mode.json() == {"mode": "429", "remaining": 1, "retry_after": 30, "delay": 30.0}
    assert send(client, [element()]).status_code == 429
    assert send(client, [element()]).status_code == 200
    refuse = {"event_id": "x", "path": "/eventId", "message": "no"}
    assert client.post("/_admin/refuse", json=refuse).status_code == 200
    assert client.post("/_admin/refuse", json={"event_id": "x"}).status_code == 400
    assert send(client, [element(eventId="x")]).status_code == 422
    assert [e["event_id"] for e in client.get("/_admin/received").json()] == ["order-1"]
    assert [r["status"] for r in client.get("/_admin/requests").json()] == [429, 200, 422]
    assert [v["seq"] for v in client.get("/_admin/violations").json()] == [2, 3]  # before Retry-After
    assert client.post("/_admin/mode", json={"mode": "nope"}).status_code == 400
    assert client.post("/_admin/clear").status_code == 200
    assert fake.received == [] and fake.requests == [] and fake.violations == []
    assert send(client, [element(eventId="x")]).status_code == 200


def test_cli_runs_fake_standalone() -> None:
    """``python -m tests.fakes.linkedin`` serves the fake with the given versions and rules."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tests.fakes.linkedin", "--port", str(port), "--token", TOKEN]
    command += ["--version", "202603", "--rule", "123456", "--rule", "7=INSIGHT_TAG"]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}{PATH}"
        _wait_until_listening(port)
        fresh = element(conversionHappenedAt=int(time.time() * 1000) - 1000)
        body = {"elements": [fresh]}
        headers = HEADERS | {"LinkedIn-Version": "202603"}
        assert httpx.post(url, json=body, headers=headers).status_code == 200
        assert httpx.post(url, json=body, headers=HEADERS).status_code == 426
        wrong = fresh | {"conversion": "urn:lla:llaPartnerConversion:7"}
        assert httpx.post(url, json={"elements": [wrong]}, headers=headers).status_code == 400
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
