"""Tests of the fake Pinterest Conversions API, over loopback HTTP (in-process for the golden files)."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from destinations.base import HttpResponse, Payload
from destinations.pinterest.adapter import PinterestDestination
from router.decisions import Drop, Ok
from tests.fakes.pinterest import PinterestFake
from tests.fakes.server import FakeServer, serve

TOKEN = "pina_fake-conversion-token"
ACCOUNT = "549755885175"
PATH = f"/v5/ad_accounts/{ACCOUNT}/events"
NOW = 1_780_000_000.0
DAY = 86400
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]
CASES = [
    path
    for path in sorted((ROOT / "tests/destinations/pinterest/cases").glob("*.json"))
    if "requests" in json.loads(path.read_text())["expect"]
]


class Clock:
    """A settable clock for the fake."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[PinterestFake, Clock, FakeServer]]:
    """One fake, its clock and its server for the whole module (starting uvicorn costs ~0.2 s)."""
    clock = Clock()
    fake = PinterestFake(access_token=TOKEN, ad_account_id=ACCOUNT, now=clock)
    with serve(fake.app) as running:
        yield fake, clock, running


@pytest.fixture
def clock(served: tuple[PinterestFake, Clock, FakeServer]) -> Clock:
    """The fake's clock, set back to NOW."""
    served[1].t = NOW
    return served[1]


@pytest.fixture
def fake(served: tuple[PinterestFake, Clock, FakeServer], clock: Clock) -> PinterestFake:
    """The fake pinned to one token and ad account, with an empty ledger and mode ok."""
    served[0].clear()
    return served[0]


@pytest.fixture
def client(served: tuple[PinterestFake, Clock, FakeServer], fake: PinterestFake) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the running fake."""
    with httpx.Client(base_url=served[2].url, timeout=5.0) as http:
        yield http


def make_event(**changes: Any) -> dict[str, Any]:
    """A valid web checkout, with top-level keys replaced by ``changes``."""
    event: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": "web",
        "event_time": int(NOW) - 60,
        "event_id": "order-1",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": [EMAIL_HASH],
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
            "click_id": "dj0yJnU9b2JDcFFHekV4SHJN",
        },
        "custom_data": {
            "currency": "EUR",
            "value": "12.5",
            "contents": [{"id": "sku-1", "item_price": "12.5", "quantity": 1}],
        },
    }
    return event | changes


def with_user_data(**changes: Any) -> dict[str, Any]:
    """A valid event whose user_data keys are replaced by ``changes``."""
    event = make_event()
    return event | {"user_data": event["user_data"] | changes}


def with_custom_data(**changes: Any) -> dict[str, Any]:
    """A valid event whose custom_data keys are replaced by ``changes``."""
    event = make_event()
    return event | {"custom_data": event["custom_data"] | changes}


def send(client: httpx.Client, events: list[dict[str, Any]], path: str = PATH) -> httpx.Response:
    """POST a batch the way the router does."""
    return client.post(path, json={"data": events}, headers=AUTH)


def failed_messages(response: httpx.Response) -> list[str]:
    """The error_message of every failed event, from a 200 or a 422 answer."""
    body = response.json()
    events = body["details"]["events"] if response.status_code == 422 else body["events"]
    return [event["error_message"] for event in events if event["status"] == "failed"]


def test_accepts_well_formed_batch_and_records_it(client: httpx.Client, fake: PinterestFake) -> None:
    """A valid batch gets a ConversionApiResponse and lands in the ledger."""
    response = send(
        client, [make_event(), make_event(event_id="order-2", event_name="lead", custom_data=None)]
    )
    assert response.status_code == 200
    assert response.json() == {
        "num_events_received": 2,
        "num_events_processed": 2,
        "events": [{"status": "processed", "error_message": "", "warning_message": ""}] * 2,
    }
    assert fake.event_ids() == ["order-1", "order-2"]
    assert {entry.test for entry in fake.received} == {False}
    assert fake.requests[-1].token_in == "header" and fake.requests[-1].n_processed == 2


def test_test_mode_is_recorded_as_test(client: httpx.Client, fake: PinterestFake) -> None:
    """?test=true is answered normally and its events are flagged; a non-boolean test value is a 400."""
    assert client.post(PATH, params={"test": "true"}, json={"data": [make_event()]}, headers=AUTH).is_success
    assert [entry.test for entry in fake.received] == [True]
    bad = client.post(PATH, params={"test": "yes"}, json={"data": [make_event()]}, headers=AUTH)
    assert bad.status_code == 400


def test_auth_must_be_the_bearer_header(client: httpx.Client, fake: PinterestFake) -> None:
    """A missing or wrong token, or one in the query string, gets 401 code 2 and records nothing."""
    missing = client.post(PATH, json={"data": [make_event()]})
    wrong = client.post(PATH, json={"data": [make_event()]}, headers={"Authorization": "Bearer nope"})
    query = client.post(PATH, params={"access_token": TOKEN}, json={"data": [make_event()]})
    for response in (missing, wrong, query):
        assert (response.status_code, response.json()) == (
            401,
            {"code": 2, "message": "Authentication failed."},
        )
    assert fake.received == [] and fake.requests[-1].token_in == "query"


def test_wrong_ad_account(client: httpx.Client) -> None:
    """Another ad account gets 403 code 29; a non-numeric one is a 400."""
    assert send(client, [make_event()], "/v5/ad_accounts/999/events").json()["code"] == 29
    assert send(client, [make_event()], "/v5/ad_accounts/abc/events").status_code == 400


def test_batch_size_limits(client: httpx.Client, fake: PinterestFake) -> None:
    """Empty data and more than 1000 events are refused whole; exactly 1000 is fine."""
    assert send(client, []).status_code == 400
    assert send(client, [make_event(event_id=str(i)) for i in range(1001)]).status_code == 400
    assert fake.received == []
    assert send(client, [make_event(event_id=str(i)) for i in range(1000)]).status_code == 200


@pytest.mark.parametrize(
    "event",
    [
        make_event(event_type="x"),
        with_user_data(email=[EMAIL_HASH]),
        with_custom_data(content_type="product"),
        with_custom_data(contents=[{"id": "a", "price": "1"}]),
    ],
    ids=["event", "user_data", "custom_data", "contents"],
)
def test_rejects_unknown_keys(client: httpx.Client, event: dict[str, Any]) -> None:
    """additionalProperties: false everywhere: an unknown key rejects the whole request."""
    response = send(client, [make_event(event_id="ok"), event])
    assert response.status_code == 400
    assert "Additional properties are not allowed" in response.json()["message"]


@pytest.mark.parametrize(
    "event",
    [
        make_event(event_name="Checkout"),
        make_event(event_name="purchase"),
        make_event(action_source="website"),
        make_event(event_time=str(int(NOW))),
        make_event(event_time=NOW - 60.5),
        with_custom_data(value=12.5),
        with_custom_data(contents=[{"id": "a", "item_price": 5.0}]),
        with_custom_data(num_items="3"),
        with_user_data(em=EMAIL_HASH),
        make_event(opt_out="false"),
        make_event(user_data={"client_ip_address": "203.0.113.7"}),
        {key: value for key, value in make_event().items() if key != "event_id"},
    ],
    ids=[
        "name-case", "name-unknown", "source", "time-string", "time-float", "value-number",
        "item-price-number", "num-items-string", "em-not-list", "opt-out-string", "ip-alone", "no-event-id",
    ],
)  # fmt: skip
def test_rejects_schema_violations_whole(
    client: httpx.Client, fake: PinterestFake, event: dict[str, Any]
) -> None:
    """Wrong types, wrong enum case and a missing identifier reject the whole request."""
    assert send(client, [make_event(event_id="ok"), event]).status_code == 400
    assert fake.received == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (make_event(event_time=int(NOW) - 8 * DAY), "Given timestamp is in the past"),
        (make_event(event_time=int(NOW) * 1000), "milliseconds instead of seconds"),
        (with_user_data(em=["joe@example.com"]), "user_data.em"),
        (with_user_data(em=[EMAIL_HASH.upper()]), "user_data.em"),
        (with_user_data(client_ip_address=EMAIL_HASH), "client_ip_address"),
        (with_user_data(client_ip_address="300.1.1.1"), "client_ip_address"),
        (with_user_data(client_user_agent=EMAIL_HASH), "client_user_agent"),
        (with_user_data(click_id=EMAIL_HASH), "click_id"),
        (with_custom_data(value="12,50"), "custom_data.value"),
        (with_custom_data(currency="EURO"), "currency"),
        (with_custom_data(opt_out_type="CCPA"), "opt_out_type"),
        (make_event(language="en-US"), "language"),
    ],
)
def test_fails_bad_events_one_by_one(
    client: httpx.Client, fake: PinterestFake, event: dict[str, Any], message: str
) -> None:
    """A semantic problem fails only its event (422 with details); the other event is recorded."""
    response = send(client, [make_event(event_id="good"), event | {"event_id": "bad"}])
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["details"]["num_events_processed"]) == (953, 1)
    [error] = failed_messages(response)
    assert message in error
    assert fake.event_ids() == ["good"]


def test_accepts_ipv6_and_time_at_the_limits(client: httpx.Client) -> None:
    """IPv6 is a raw IP; an event exactly 7 days old, or a minute ahead, is processed."""
    events = [
        with_user_data(client_ip_address="2001:db8::1"),
        make_event(event_time=int(NOW) - 7 * DAY),
        make_event(event_time=int(NOW) + 60),
    ]
    assert failed_messages(send(client, events)) == []


def test_event_ages_with_the_injected_clock(client: httpx.Client, fake: PinterestFake, clock: Clock) -> None:
    """An event processed today fails once the fake's clock moves 8 days on."""
    assert send(client, [make_event()]).status_code == 200
    clock.t += 8 * DAY
    assert send(client, [make_event()]).status_code == 422
    assert len(fake.received) == 1


def test_partial_failure_as_200_when_configured() -> None:
    """With partial_status=200 a failed event comes back in a 200 ConversionApiResponse."""
    fake = PinterestFake(access_token=TOKEN, ad_account_id=ACCOUNT, now=Clock(), partial_status=200)
    with TestClient(fake.app) as http:
        events = [make_event(), make_event(event_id="old", event_time=int(NOW) - 8 * DAY)]
        response = http.post(PATH, json={"data": events}, headers=AUTH)
    assert response.status_code == 200
    assert [event["status"] for event in response.json()["events"]] == ["processed", "failed"]
    assert fake.event_ids() == ["order-1"]


def test_503_mode_for_count_then_ok(client: httpx.Client, fake: PinterestFake) -> None:
    """With count=2, two requests get 503 (code 4197) and the third is processed."""
    fake.set_mode("503", count=2)
    responses = [send(client, [make_event()]) for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].json()["code"] == 4197
    assert fake.fault.mode == "ok"
    assert [r.mode for r in fake.requests] == ["503", "503", "ok"]
    assert len(fake.received) == 1


def test_429_mode_sends_retry_after(client: httpx.Client, fake: PinterestFake) -> None:
    """The 429 mode answers with a Retry-After header and Pinterest's rate-limit error."""
    fake.set_mode("429", retry_after=7)
    response = send(client, [make_event()])
    assert (response.status_code, response.headers["retry-after"], response.json()["code"]) == (429, "7", 8)


@pytest.mark.parametrize(
    ("mode", "status", "code"), [("500", 500, 1), ("permanent", 400, 1), ("auth", 401, 2)]
)
def test_error_fault_modes(
    client: httpx.Client, fake: PinterestFake, mode: str, status: int, code: int
) -> None:
    """Each error fault mode answers with its status and Pinterest code, and records nothing."""
    fake.set_mode(mode)
    response = send(client, [make_event()])
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert fake.received == []


def test_partial_mode_fails_the_first_event_in_a_200(client: httpx.Client, fake: PinterestFake) -> None:
    """The partial mode answers 200 with the first event failed and records the others."""
    fake.set_mode("partial")
    response = send(client, [make_event(event_id="a"), make_event(event_id="b")])
    assert response.status_code == 200
    assert [e["status"] for e in response.json()["events"]] == ["failed", "processed"]
    assert fake.event_ids() == ["b"]


def test_timeout_mode_delays_then_processes(client: httpx.Client, fake: PinterestFake) -> None:
    """The timeout mode outlasts the client timeout, then still records the events."""
    fake.set_mode("timeout", count=1, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(PATH, json={"data": [make_event()]}, headers=AUTH, timeout=0.1)
    assert fake.wait_for(1, timeout=3.0)
    assert fake.requests[-1].mode == "timeout"


def test_reset_mode_drops_connection(client: httpx.Client, fake: PinterestFake) -> None:
    """The reset mode closes the connection with no answer and records no event."""
    fake.set_mode("reset", count=1)
    with pytest.raises(httpx.TransportError):
        send(client, [make_event()])
    assert fake.received == [] and fake.requests[-1].status is None
    assert send(client, [make_event()]).status_code == 200


def test_violation_when_request_precedes_retry_after(
    client: httpx.Client, fake: PinterestFake, clock: Clock
) -> None:
    """A request before the Retry-After expired is a violation; one after it is not."""
    fake.set_mode("429", count=1, retry_after=5)
    assert send(client, [make_event()]).status_code == 429
    clock.t += 2
    assert send(client, [make_event()]).status_code == 200
    clock.t += 4
    assert send(client, [make_event()]).status_code == 200
    [violation] = fake.violations
    assert (violation.kind, violation.ad_account_id, violation.seq) == ("retry_after", ACCOUNT, 2)


def test_wrong_method_and_unknown_path(client: httpx.Client, fake: PinterestFake) -> None:
    """GET on the events path is a 405; another path is a 404 that shows in the request log."""
    assert client.get(PATH, headers=AUTH).status_code == 405
    assert client.post(f"/v4/ad_accounts/{ACCOUNT}/events", json={}).status_code == 404
    assert fake.requests[-1].path == f"/v4/ad_accounts/{ACCOUNT}/events"


def test_rejects_non_json_body(client: httpx.Client) -> None:
    """A form body, a non-JSON body or a wrong content type is a 400."""
    form = client.post(PATH, data={"data": "[]"}, headers=AUTH)
    text = client.post(PATH, content=b"nope", headers=AUTH | {"content-type": "application/json"})
    plain = client.post(PATH, content=b'{"data": []}', headers=AUTH | {"content-type": "text/plain"})
    assert [r.status_code for r in (form, text, plain)] == [400, 400, 400]


def test_admin_endpoints(client: httpx.Client, fake: PinterestFake) -> None:
    """/_admin/mode, received, requests, violations and clear work over HTTP."""
    mode = client.post("/_admin/mode", json={"mode": "429", "count": 1, "retry_after": 30})
    assert mode.json() == {"mode": "429", "remaining": 1, "retry_after": 30, "delay": 30.0}
    assert send(client, [make_event()]).status_code == 429
    assert send(client, [make_event()]).status_code == 200
    assert [entry["event_id"] for entry in client.get("/_admin/received").json()] == ["order-1"]
    assert [entry["status"] for entry in client.get("/_admin/requests").json()] == [429, 200]
    assert [entry["kind"] for entry in client.get("/_admin/violations").json()] == ["retry_after"]
    assert client.post("/_admin/mode", json={"mode": "nope"}).status_code == 400
    assert client.post("/_admin/mode", json={"mode": "ok", "count": 0}).status_code == 400
    assert client.post("/_admin/clear").status_code == 200
    assert fake.received == [] and fake.requests == [] and fake.violations == []


def test_adapter_and_fake_agree_on_a_partial_failure(client: httpx.Client, fake: PinterestFake) -> None:
    """Our adapter's request reaches the fake; its 422 answer classifies per event: delivered, dropped."""
    block = {"id": "p", "type": "pinterest", "ad_account_id": ACCOUNT, "access_token": TOKEN}
    adapter = PinterestDestination(PinterestDestination.parse_config(block))
    good = make_event(event_id="good")
    bad = with_user_data(em=["joe@example.com"]) | {"event_id": "bad"}  # bypasses map: a raw email
    batch = [Payload(good), Payload(bad)]
    request = adapter.build_request(batch)
    response = client.request(
        request.method, urlsplit(request.url).path, json=request.json, headers=request.headers
    )
    decisions = adapter.classify(
        HttpResponse(response.status_code, dict(response.headers), response.content), batch
    )
    assert response.status_code == 422
    assert decisions == [Ok(), Drop("Pinterest failed the event: " + failed_messages(response)[0])]
    assert fake.event_ids() == ["good"]


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_every_golden_request_passes_the_fake(path: Path) -> None:
    """Each golden expected request, token restored, is processed whole by the fake at the case's now."""
    case = json.loads(path.read_text())
    token = case["config"]["access_token"]
    fake = PinterestFake(
        access_token=token, ad_account_id=case["config"]["ad_account_id"], now=Clock(case["now"])
    )
    with TestClient(fake.app) as http:
        for expected in case["expect"]["requests"]:
            url = urlsplit(expected["url"])
            headers = {name: value.replace("***", token) for name, value in expected["headers"].items()}
            response = http.request(
                expected["method"], f"{url.path}?{url.query}", json=expected["json"], headers=headers
            )
            assert response.status_code == 200, response.text
            assert response.json()["num_events_processed"] == len(expected["json"]["data"])


def test_server_shuts_down_cleanly() -> None:
    """After the with block the port no longer accepts connections."""
    with serve(PinterestFake(access_token=TOKEN, ad_account_id=ACCOUNT).app) as running:
        port = running.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        pass


def test_cli_runs_fake_standalone() -> None:
    """``python -m tests.fakes.pinterest`` serves the fake on the given port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tests.fakes.pinterest", "--port", str(port)]
    process = subprocess.Popen([*command, "--token", TOKEN, "--ad-account", ACCOUNT], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_listening(port)
        event = make_event(event_time=int(time.time()) - 60)
        assert httpx.post(f"{url}{PATH}", json={"data": [event]}, headers=AUTH).status_code == 200
        assert [entry["event_id"] for entry in httpx.get(f"{url}/_admin/received").json()] == ["order-1"]
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
