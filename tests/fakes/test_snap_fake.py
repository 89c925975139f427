"""Tests of the fake Snap Conversions API v3, over real loopback HTTP."""

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
from urllib.parse import quote, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from destinations.base import HttpResponse, Payload
from destinations.snap.adapter import SnapDestination
from router.decisions import Drop, Ok, Retry
from tests.fakes.server import FakeServer, serve
from tests.fakes.snap import SnapFake

TOKEN = "snap-test-token"
PIXEL = "3c8f1d2e-5b6a-4c7d-9e8f-0a1b2c3d4e5f"
APP = "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9"
PATH = f"/v3/{PIXEL}/events"
APP_PATH = f"/v3/{APP}/events"
NOW = 1_780_000_000.0
DAY = 86400
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((ROOT / "tests" / "destinations" / "snap" / "cases").glob("*.json"))


class Clock:
    """A settable clock for the fake."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SnapFake, Clock, FakeServer]]:
    """One fake, its clock and its server for the whole module (starting uvicorn costs ~0.2 s)."""
    clock = Clock()
    fake = SnapFake(access_token=TOKEN, pixel_id=PIXEL, snap_app_id=APP, now=clock)
    with serve(fake.app) as running:
        yield fake, clock, running


@pytest.fixture
def clock(served: tuple[SnapFake, Clock, FakeServer]) -> Clock:
    """The fake's clock, set back to NOW."""
    served[1].t = NOW
    return served[1]


@pytest.fixture
def fake(served: tuple[SnapFake, Clock, FakeServer], clock: Clock) -> SnapFake:
    """The fake with an empty ledger and mode ok."""
    served[0].clear()
    return served[0]


@pytest.fixture
def server(served: tuple[SnapFake, Clock, FakeServer], fake: SnapFake) -> FakeServer:
    """The running fake's server."""
    return served[2]


@pytest.fixture
def client(server: FakeServer) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the running fake."""
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield http


def make_event(**changes: Any) -> dict[str, Any]:
    """A valid web PURCHASE event, with top-level keys replaced by ``changes``."""
    event: dict[str, Any] = {
        "event_name": "PURCHASE",
        "event_time": int(NOW) - 60,
        "event_id": "order-1",
        "action_source": "WEB",
        "event_source_url": "https://shop.example.com/done",
        "user_data": {
            "em": [EMAIL_HASH],
            "client_ip_address": "203.0.113.9",
            "client_user_agent": "Mozilla/5.0",
            "sc_click_id": "8b2f7c1e-4a3d-4e5f-9a6b-1c2d3e4f5a6b",
            "sc_cookie1": "5c7d2b91-3e4f-4a1b-8c9d-0e1f2a3b4c5d",
        },
        "custom_data": {"value": 12.5, "currency": "USD", "contents": [{"id": "sku-1", "quantity": "2"}]},
    }
    return event | changes


def with_user_data(**changes: Any) -> dict[str, Any]:
    """A valid event whose user_data keys are replaced by ``changes`` (None removes a key)."""
    user_data = make_event()["user_data"] | changes
    return make_event(user_data={k: v for k, v in user_data.items() if v is not None})


def app_event(**changes: Any) -> dict[str, Any]:
    """A valid MOBILE_APP event for the Snap App ID."""
    app_data = {"app_id": "com.example.shop", "advertiser_tracking_enabled": 1, "extinfo": ["a2"] + [""] * 15}
    event = make_event(action_source="MOBILE_APP", app_data=app_data)
    del event["event_source_url"]
    return event | changes


def send(
    client: httpx.Client, events: list[dict[str, Any]], path: str = PATH, token: str = TOKEN, **extra: Any
) -> httpx.Response:
    """POST a batch the way the router does: token in the query string, JSON body."""
    return client.post(path, params={"access_token": token}, json={"data": events} | extra)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """Snap's answer body, asserting it is the INVALID shape."""
    body: dict[str, Any] = response.json()
    assert body["status"] == "INVALID"
    return body


# -- accepted requests ------------------------------------------------------------------------------


def test_accepts_well_formed_batch_and_records_it(client: httpx.Client, fake: SnapFake) -> None:
    """A valid batch gets Snap's VALID answer and lands in the ledger in order."""
    events = [make_event(), make_event(event_id="pv-2", event_name="PAGE_VIEW", custom_data={})]
    response = send(client, events)
    assert response.status_code == 200
    assert response.json() == {"status": "VALID", "reason": "Events have been processed successfully."}
    assert fake.event_ids() == ["order-1", "pv-2"]
    assert {entry.asset_id for entry in fake.received} == {PIXEL}
    assert fake.requests[-1].token_in == "query" and not fake.received[0].test


def test_accepts_hashes_as_string_or_list_and_ldu(client: httpx.Client) -> None:
    """Snap takes a digest as a string or a list, and data_processing_options ["LDU"]."""
    assert send(client, [with_user_data(em=EMAIL_HASH)]).status_code == 200
    assert send(client, [make_event(data_processing_options=["LDU"])]).status_code == 200


def test_app_event_goes_to_the_snap_app_id(client: httpx.Client, fake: SnapFake) -> None:
    """MOBILE_APP events with app_data are accepted on the Snap App ID only."""
    assert send(client, [app_event()], path=APP_PATH).status_code == 200
    assert fake.received[-1].asset_id == APP
    assert "Snap App ID" in error_of(send(client, [app_event()]))["reason"]
    assert "pixel" in error_of(send(client, [make_event()], path=APP_PATH))["reason"]
    no_app_data = app_event()
    del no_app_data["app_data"]
    assert "app_data" in error_of(send(client, [no_app_data], path=APP_PATH))["reason"]


# -- refused requests -------------------------------------------------------------------------------


def test_wrong_or_missing_token_is_401(client: httpx.Client, fake: SnapFake) -> None:
    """A wrong token, no token, or a Bearer header instead of the query parameter gets 401 INVALID."""
    wrong = send(client, [make_event()], token="nope")
    missing = client.post(PATH, json={"data": [make_event()]})
    bearer = client.post(PATH, json={"data": [make_event()]}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert [r.status_code for r in (wrong, missing, bearer)] == [401, 401, 401]
    assert error_of(wrong)["reason"] == "Invalid access token"
    assert fake.requests[-1].token_in == "header" and fake.received == []


def test_rejects_more_than_2000_events(client: httpx.Client, fake: SnapFake) -> None:
    """A batch above 2,000 events is refused whole."""
    response = send(client, [make_event(event_id=str(i)) for i in range(2001)])
    assert response.status_code == 400 and "2000" in error_of(response)["reason"]
    assert fake.received == []


def test_one_stale_event_rejects_the_request(client: httpx.Client, fake: SnapFake) -> None:
    """An event older than 37 days fails the request, names its index, and nothing is recorded."""
    stale = make_event(event_id="old", event_time=int(NOW) - 38 * DAY)
    body = error_of(send(client, [make_event(), stale]))
    assert body["event"] == 1 and body["reason"].startswith("Timestamp invalid or out of range")
    assert fake.received == [] and fake.requests[-1].n_events == 2


def test_event_ages_with_the_injected_clock(client: httpx.Client, fake: SnapFake, clock: Clock) -> None:
    """An event accepted today is refused once the fake's clock moves 37 days on."""
    assert send(client, [make_event()]).status_code == 200
    clock.t += 37 * DAY
    assert send(client, [make_event()]).status_code == 400
    assert len(fake.received) == 1


@pytest.mark.parametrize("event_time", [int(NOW) * 1000, str(int(NOW)), NOW - 60.5, int(NOW) + 2 * DAY])
def test_rejects_wrong_time_unit_or_type(client: httpx.Client, event_time: Any) -> None:
    """Milliseconds, a string, a float or a far-future time are refused."""
    assert "Timestamp" in error_of(send(client, [make_event(event_time=event_time)]))["reason"]


@pytest.mark.parametrize(
    "changes",
    [
        {"event_name": "purchase"},
        {"event_name": "Purchase"},
        {"event_name": "LEAD"},
        {"action_source": "web"},
    ],
)
def test_rejects_wrong_enum_case_and_unknown_names(client: httpx.Client, changes: dict[str, str]) -> None:
    """Event names and action sources are Snap's exact upper-case values."""
    assert send(client, [make_event(**changes)]).status_code == 400


def test_rejects_unknown_fields(client: httpx.Client) -> None:
    """Unknown body, event, user_data, custom_data and contents keys (v2 or Meta names) are refused."""
    assert "test_event_code" in error_of(send(client, [make_event()], test_event_code="T"))["reason"]
    assert "event_type" in error_of(send(client, [make_event(event_type="PURCHASE")]))["reason"]
    assert "hashed_email" in error_of(send(client, [with_user_data(hashed_email=EMAIL_HASH)]))["reason"]
    custom = {"value": 1, "currency": "USD", "coupon": "X"}
    assert "coupon" in error_of(send(client, [make_event(custom_data=custom)]))["reason"]
    contents = {"value": 1, "currency": "USD", "contents": [{"id": "a", "title": "Tea"}]}
    assert "title" in error_of(send(client, [make_event(custom_data=contents)]))["reason"]


@pytest.mark.parametrize("em", ["joe@example.com", EMAIL_HASH.upper(), [EMAIL_HASH, "x"], []])
def test_rejects_unhashed_identifiers(client: httpx.Client, fake: SnapFake, em: Any) -> None:
    """A raw email, an upper-case digest or an empty list is Unhashed PII."""
    assert error_of(send(client, [with_user_data(em=em)]))["reason"].startswith("Unhashed PII")
    assert fake.received == []


def test_rejects_hashed_values_where_raw_ones_are_required(client: httpx.Client) -> None:
    """v3 wants the IP, user agent, click id and cookie raw; IPv6 is fine."""
    reason = error_of(send(client, [with_user_data(client_ip_address=EMAIL_HASH)]))["reason"]
    assert reason.startswith("Invalid hashed IP Address")
    assert send(client, [with_user_data(client_ip_address="300.1.1.1")]).status_code == 400
    for key in ("client_user_agent", "sc_click_id", "sc_cookie1"):
        assert "raw" in error_of(send(client, [with_user_data(**{key: EMAIL_HASH})]))["reason"]
    assert send(client, [with_user_data(client_ip_address="2001:db8::1")]).status_code == 200


def test_insufficient_pii(client: httpx.Client) -> None:
    """Without em, ph, madid, or IP together with user agent the event is refused."""
    only_agent = with_user_data(em=None, client_ip_address=None)
    assert error_of(send(client, [only_agent]))["reason"].startswith("Insufficient PII")
    ip_and_agent = with_user_data(em=None)
    assert send(client, [ip_and_agent]).status_code == 200


def test_purchase_needs_value_and_currency(client: httpx.Client) -> None:
    """A PURCHASE without value or currency is refused; Snap's string value "10" is accepted."""
    for custom in ({"currency": "USD"}, {"value": 3}):
        reason = error_of(send(client, [make_event(custom_data=custom)]))["reason"]
        assert reason.startswith("Missing price and/or currency")
    assert send(client, [make_event(custom_data={"value": "10", "currency": "USD"})]).status_code == 200


def test_web_event_needs_url_and_ldu_is_the_only_option(client: httpx.Client) -> None:
    """WEB without event_source_url, or a data processing option other than LDU, is refused."""
    no_url = make_event()
    del no_url["event_source_url"]
    assert "event_source_url" in error_of(send(client, [no_url]))["reason"]
    assert send(client, [make_event(data_processing_options=["LMU"])]).status_code == 400
    assert (
        send(client, [make_event(action_source="OFFLINE", event_source_url="https://x.example")]).status_code
        == 200
    )


def test_wrong_path_method_asset_and_body(client: httpx.Client) -> None:
    """Unknown asset and other versions are 404, GET is 405, a non-JSON body is 400."""
    assert (
        send(client, [make_event()], path="/v3/00000000-0000-0000-0000-000000000000/events").status_code
        == 404
    )
    assert send(client, [make_event()], path=f"/v2/{PIXEL}/events").status_code == 404
    assert client.get(PATH, params={"access_token": TOKEN}).status_code == 405
    text = client.post(
        PATH, params={"access_token": TOKEN}, content=b"{}", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 400
    assert send(client, []).status_code == 400


# -- the validate (test) endpoint -------------------------------------------------------------------


def test_validate_endpoint_reports_every_event(client: httpx.Client, fake: SnapFake) -> None:
    """/events/validate answers per event and records only the valid ones, as test events."""
    bad = make_event(event_id="bad", custom_data={"value": 1})
    response = send(client, [make_event(), bad], path=f"{PATH}/validate")
    body = response.json()
    assert response.status_code == 400 and body["status"] == "INVALID" and body["test_event"] is True
    assert [log["status"] for log in body["event_logs"]] == ["VALID", "INVALID"]
    assert body["event_logs"][1]["errors"]["error_msgs"][0].startswith("Missing price")
    assert [(entry.event_id, entry.test) for entry in fake.received] == [("order-1", True)]
    ok = send(client, [make_event()], path=f"{PATH}/validate")
    assert (ok.status_code, ok.json()["status"]) == (200, "VALID")


# -- fault modes ------------------------------------------------------------------------------------


def test_503_mode_for_count_then_ok(client: httpx.Client, fake: SnapFake) -> None:
    """With count=2, two requests get 503 and the third is accepted."""
    fake.set_mode("503", count=2)
    assert [send(client, [make_event()]).status_code for _ in range(3)] == [503, 503, 200]
    assert fake.fault.mode == "ok" and len(fake.received) == 1
    assert [r.mode for r in fake.requests] == ["503", "503", "ok"]


def test_429_mode_sends_retry_after(client: httpx.Client, fake: SnapFake) -> None:
    """The 429 mode answers with a Retry-After header and Snap's INVALID shape."""
    fake.set_mode("429", retry_after=7)
    response = send(client, [make_event()])
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert error_of(response)["reason"] == "Too many requests"


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("permanent", 400), ("bad_token", 401)])
def test_json_fault_modes(client: httpx.Client, fake: SnapFake, mode: str, status: int) -> None:
    """Each JSON fault mode answers with its status and Snap's INVALID body, and records nothing."""
    fake.set_mode(mode)
    response = send(client, [make_event()])
    assert response.status_code == status and error_of(response)["reason"]
    assert fake.received == []


def test_html_502_mode(client: httpx.Client, fake: SnapFake) -> None:
    """The html_502 mode answers with an HTML page, as a proxy would."""
    fake.set_mode("html_502")
    response = send(client, [make_event()])
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")


def test_timeout_mode_delays_then_processes(client: httpx.Client, fake: SnapFake) -> None:
    """The timeout mode outlasts the client timeout, then still records the events."""
    fake.set_mode("timeout", count=1, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(PATH, params={"access_token": TOKEN}, json={"data": [make_event()]}, timeout=0.1)
    assert fake.wait_for(1, timeout=3.0)
    assert fake.requests[-1].mode == "timeout"


def test_reset_mode_drops_connection(client: httpx.Client, fake: SnapFake) -> None:
    """The reset mode closes the connection with no answer and records no event."""
    fake.set_mode("reset", count=1)
    with pytest.raises(httpx.TransportError):
        send(client, [make_event()])
    assert fake.received == [] and fake.requests[-1].status is None
    assert send(client, [make_event()]).status_code == 200


def test_violation_when_request_precedes_retry_after(
    client: httpx.Client, fake: SnapFake, clock: Clock
) -> None:
    """A request before the Retry-After expired is a violation; one after it is not."""
    fake.set_mode("429", count=1, retry_after=5)
    assert send(client, [make_event()]).status_code == 429
    clock.t += 2
    assert send(client, [make_event()]).status_code == 200
    clock.t += 4
    assert send(client, [make_event()]).status_code == 200
    [violation] = fake.violations
    assert (violation.kind, violation.asset_id, violation.seq) == ("retry_after", PIXEL, 2)


def test_admin_endpoints(client: httpx.Client, fake: SnapFake) -> None:
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


async def test_server_works_from_async_tests() -> None:
    """FakeServer is an async context manager that does not block the test's event loop."""
    fake = SnapFake(access_token=TOKEN, pixel_id=PIXEL, now=Clock())
    async with FakeServer(fake.app) as running, httpx.AsyncClient(base_url=running.url) as http:
        response = await http.post(PATH, params={"access_token": TOKEN}, json={"data": [make_event()]})
        assert response.status_code == 200
        assert await fake.wait_for_async(1)


def test_cli_runs_fake_standalone() -> None:
    """``python -m tests.fakes.snap`` serves the fake on the given port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "tests.fakes.snap",
        "--port",
        str(port),
        "--token",
        TOKEN,
        "--pixel",
        PIXEL,
    ]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_listening(port)
        event = make_event(event_time=int(time.time()) - 60)
        response = httpx.post(f"{url}{PATH}", params={"access_token": TOKEN}, json={"data": [event]})
        assert response.status_code == 200
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


# -- the adapter against the fake ----------------------------------------------------------------------


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_golden_requests_pass_the_fake(path: Path) -> None:
    """Every request a golden case expects is accepted by the fake, at the case's `now`."""
    case = json.loads(path.read_text())
    config, requests = case["config"], case["expect"].get("requests", [])
    fake = SnapFake(
        access_token=config["access_token"],
        pixel_id=config["pixel_id"],
        snap_app_id=config.get("snap_app_id"),
        now=Clock(case["now"]),
    )
    with TestClient(fake.app) as http:
        for request in requests:
            url = urlsplit(request["url"].replace("***", quote(config["access_token"], safe="")))
            response = http.post(f"{url.path}?{url.query}", json=request["json"], headers=request["headers"])
            assert response.status_code == 200, response.json()
    assert len(fake.received) == sum(len(r["json"]["data"]) for r in requests)


def test_adapter_requests_and_fake_answers_round_trip(client: httpx.Client, server: FakeServer) -> None:
    """The adapter's real request is accepted; the fake's refusals classify as the adapter promises."""
    block = {"id": "snap", "type": "snap", "pixel_id": PIXEL, "access_token": TOKEN, "base_url": server.url}
    adapter = SnapDestination(SnapDestination.parse_config(block))
    event = {
        "event_name": "purchase",
        "event_id": "rt-1",
        "timestamp_ms": int(NOW - 60) * 1000,
        "action_source": "website",
        "page": {"url": "https://shop.example.com/done"},
        "user": {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0"},
        "properties": {"value": 3, "currency": "EUR", "contents": [{"id": "a", "quantity": 1, "price": 3}]},
    }
    payloads = adapter.map(event, NOW)
    assert adapter.classify(_post(client, adapter, payloads), payloads) == Ok()
    stale = adapter.build_request(payloads).json["data"][0] | {"event_time": int(NOW) - 40 * DAY}
    batch = [*payloads, Payload(stale)]
    decision = adapter.classify(_post(client, adapter, batch), batch)
    assert isinstance(decision, Drop) and decision.isolate and "[event 1]" in decision.reason


def test_fake_faults_classify_as_the_adapter_promises(client: httpx.Client, fake: SnapFake) -> None:
    """429 retries after Retry-After, a bad token drops without splitting, 503 retries."""
    block = {"id": "snap", "type": "snap", "pixel_id": PIXEL, "access_token": TOKEN}
    adapter = SnapDestination(SnapDestination.parse_config(block))
    batch = [Payload(make_event()), Payload(make_event(event_id="order-2"))]
    expected = {"429": Retry, "bad_token": Drop, "503": Retry, "permanent": Drop}
    for mode, kind in expected.items():
        fake.set_mode(mode, count=1, retry_after=3)
        decision = adapter.classify(_post(client, adapter, batch), batch)
        assert isinstance(decision, kind), (mode, decision)
        if mode == "429":
            assert isinstance(decision, Retry) and decision.after == 3
        if mode == "bad_token":
            assert isinstance(decision, Drop) and not decision.isolate


def _post(client: httpx.Client, adapter: SnapDestination, batch: list[Payload]) -> HttpResponse:
    """Send the adapter's request for the batch to the fake and wrap the answer for classify."""
    request = adapter.build_request(batch)
    url = urlsplit(request.url)
    answer = client.post(f"{url.path}?{url.query}", json=request.json, headers=dict(request.headers))
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return HttpResponse(answer.status_code, headers, answer.content)
