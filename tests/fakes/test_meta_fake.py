"""Tests of the fake Meta Conversions API, over real loopback HTTP."""

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

from tests.fakes.meta import MetaFake, create_meta_fake
from tests.fakes.server import FakeServer, serve

TOKEN = "EAAtest-token"
PIXEL = "1234567890"
VERSION = "v26.0"
PATH = f"/{VERSION}/{PIXEL}/events"
NOW = 1_780_000_000.0
DAY = 86400
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A settable clock for the fake."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[MetaFake, Clock, FakeServer]]:
    """One fake, its clock and its server for the whole module (starting uvicorn costs ~0.2 s)."""
    clock = Clock()
    fake = create_meta_fake(access_token=TOKEN, pixel_id=PIXEL, version=VERSION, now=clock)
    with serve(fake.app) as running:
        yield fake, clock, running


@pytest.fixture
def clock(served: tuple[MetaFake, Clock, FakeServer]) -> Clock:
    """The fake's clock, set back to NOW."""
    served[1].t = NOW
    return served[1]


@pytest.fixture
def fake(served: tuple[MetaFake, Clock, FakeServer], clock: Clock) -> MetaFake:
    """The fake pinned to one token, pixel and Graph version, with an empty ledger and mode ok."""
    served[0].clear()
    return served[0]


@pytest.fixture
def server(served: tuple[MetaFake, Clock, FakeServer], fake: MetaFake) -> FakeServer:
    """The running fake's server."""
    return served[2]


@pytest.fixture
def client(server: FakeServer) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the running fake."""
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield http


def make_event(**changes: Any) -> dict[str, Any]:
    """A valid website Purchase event, with top-level keys replaced by ``changes``."""
    event: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": int(NOW) - 60,
        "event_id": "order-1",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": [EMAIL_HASH],
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
            "fbc": "fb.1.1554763741205.AbCdEf",
            "fbp": "fb.1.1596403881668.1116446470",
        },
        "custom_data": {"value": 12.5, "currency": "EUR"},
    }
    return event | changes


def with_user_data(**changes: Any) -> dict[str, Any]:
    """A valid event whose user_data keys are replaced by ``changes``."""
    event = make_event()
    return event | {"user_data": event["user_data"] | changes}


def send(client: httpx.Client, events: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    """POST a batch the way the router does."""
    return client.post(PATH, json={"data": events, "access_token": TOKEN} | extra)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The Graph ``error`` object of an answer."""
    error: dict[str, Any] = response.json()["error"]
    return error


def test_accepts_well_formed_batch_and_records_it(client: httpx.Client, fake: MetaFake) -> None:
    """A valid batch gets Meta's success body and lands in the ledger with its test code."""
    events = [make_event(), make_event(event_id="order-2", event_name="Lead", custom_data={})]
    response = send(client, events, test_event_code="TEST123", partner_agent="adrouter")
    assert response.status_code == 200
    assert response.json()["events_received"] == 2
    assert response.json()["messages"] == []
    assert fake.event_ids() == ["order-1", "order-2"]
    assert {entry.test_event_code for entry in fake.received} == {"TEST123"}
    assert fake.requests[-1].status == 200 and fake.requests[-1].body["access_token"] == "***"


def test_accepts_token_in_query_string(client: httpx.Client, fake: MetaFake) -> None:
    """Graph also takes the access token as a query parameter."""
    response = client.post(PATH, params={"access_token": TOKEN}, json={"data": [make_event()]})
    assert response.status_code == 200
    assert fake.requests[-1].token_in == "query"


def test_rejects_more_than_1000_events(client: httpx.Client, fake: MetaFake) -> None:
    """A batch above Meta's 1000-event limit is refused with code 100."""
    response = send(client, [make_event(event_id=str(i)) for i in range(1001)])
    assert response.status_code == 400
    assert error_of(response)["code"] == 100
    assert fake.received == []


def test_rejects_empty_data(client: httpx.Client) -> None:
    """An empty data array is refused with code 100."""
    assert error_of(send(client, []))["code"] == 100


def test_stale_event_rejects_whole_batch(client: httpx.Client, fake: MetaFake) -> None:
    """One event older than 7 days fails the whole request and nothing from it is recorded."""
    stale = make_event(event_id="old", event_time=int(NOW) - 8 * DAY)
    response = send(client, [make_event(), stale])
    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["error_subcode"]) == (100, 2804003)
    assert fake.received == []
    assert fake.requests[-1].error is not None and fake.requests[-1].n_events == 2


def test_event_ages_with_the_injected_clock(client: httpx.Client, fake: MetaFake, clock: Clock) -> None:
    """An event accepted today is rejected once the fake's clock moves 7 days on."""
    assert send(client, [make_event()]).status_code == 200
    clock.t += 7 * DAY
    assert error_of(send(client, [make_event()]))["error_subcode"] == 2804003
    assert len(fake.received) == 1


def test_rejects_millisecond_event_time(client: httpx.Client) -> None:
    """An event_time in milliseconds reads as far future and is refused (2804004)."""
    response = send(client, [make_event(event_time=int(NOW) * 1000)])
    assert (error_of(response)["code"], error_of(response)["error_subcode"]) == (100, 2804004)


def test_rejects_non_integer_event_time(client: httpx.Client) -> None:
    """event_time must be an integer, not a float or a string."""
    assert error_of(send(client, [make_event(event_time=NOW - 60.5)]))["code"] == 100
    assert error_of(send(client, [make_event(event_time="2026-01-01T00:00:00Z")]))["code"] == 100


def test_rejects_unhashed_email(client: httpx.Client, fake: MetaFake) -> None:
    """A raw email in em is refused; so is an upper-case digest."""
    assert error_of(send(client, [with_user_data(em=["joe@example.com"])]))["code"] == 100
    assert error_of(send(client, [with_user_data(em=[EMAIL_HASH.upper()])]))["code"] == 100
    assert error_of(send(client, [with_user_data(em=EMAIL_HASH)]))["code"] == 100
    assert fake.received == []


def test_rejects_hashed_looking_ip(client: httpx.Client) -> None:
    """A hashed or malformed client_ip_address is refused; IPv6 is accepted."""
    assert error_of(send(client, [with_user_data(client_ip_address=EMAIL_HASH)]))["code"] == 100
    assert error_of(send(client, [with_user_data(client_ip_address="300.1.1.1")]))["code"] == 100
    assert send(client, [with_user_data(client_ip_address="2001:db8::1")]).status_code == 200


def test_rejects_seconds_fbc_but_accepts_five_segments(client: httpx.Client) -> None:
    """An fbc with a 10-digit seconds creation time gets 2804001; a Parameter Builder fbc passes."""
    response = send(client, [with_user_data(fbc="fb.1.1554763741.AbCdEf")])
    assert (error_of(response)["code"], error_of(response)["error_subcode"]) == (100, 2804001)
    assert error_of(send(client, [with_user_data(fbc="AbCdEf")]))["error_subcode"] == 2804001
    assert send(client, [with_user_data(fbc="fb.1.1554763741205.AbC-d_Ef.AQ")]).status_code == 200
    assert error_of(send(client, [with_user_data(fbp="fb.1.1596403881.1116446470")]))["code"] == 100


def test_rejects_unknown_keys(client: httpx.Client) -> None:
    """Unknown event, user_data and body keys are refused with code 100."""
    assert error_of(send(client, [make_event(event_type="x")]))["code"] == 100
    assert error_of(send(client, [with_user_data(email=[EMAIL_HASH])]))["code"] == 100
    assert error_of(send(client, [make_event()], test_code="T"))["code"] == 100


def test_website_event_needs_url_and_user_agent(client: httpx.Client) -> None:
    """A website event without event_source_url or client_user_agent is refused."""
    no_url = make_event()
    del no_url["event_source_url"]
    no_agent = make_event()
    del no_agent["user_data"]["client_user_agent"]
    assert error_of(send(client, [no_url]))["code"] == 100
    assert error_of(send(client, [no_agent]))["code"] == 100
    assert send(client, [make_event(action_source="system_generated")]).status_code == 200


def test_purchase_needs_value_and_currency(client: httpx.Client) -> None:
    """A Purchase without custom_data.value or currency gets 2804009."""
    response = send(client, [make_event(custom_data={"currency": "EUR"})])
    assert (error_of(response)["code"], error_of(response)["error_subcode"]) == (100, 2804009)
    assert error_of(send(client, [make_event(custom_data={"value": 3})]))["error_subcode"] == 2804009


def test_bad_token_is_190(client: httpx.Client) -> None:
    """A wrong or missing access token gets code 190."""
    wrong = client.post(PATH, json={"data": [make_event()], "access_token": "nope"})
    missing = client.post(PATH, json={"data": [make_event()]})
    assert (wrong.status_code, error_of(wrong)["code"], error_of(wrong)["type"]) == (
        400,
        190,
        "OAuthException",
    )
    assert error_of(missing)["code"] == 190


def test_wrong_pixel_and_version(client: httpx.Client) -> None:
    """Another pixel gets 100/33; another Graph version gets 2500 Unknown path components."""
    pixel = client.post(f"/{VERSION}/999/events", json={"data": [make_event()], "access_token": TOKEN})
    version = client.post(f"/v25.0/{PIXEL}/events", json={"data": [make_event()], "access_token": TOKEN})
    assert (error_of(pixel)["code"], error_of(pixel)["error_subcode"]) == (100, 33)
    assert error_of(version)["code"] == 2500


def test_rejects_non_json_body(client: httpx.Client) -> None:
    """A form body, a non-JSON body or a wrong content type is refused with code 100."""
    form = client.post(PATH, data={"data": "[]", "access_token": TOKEN})
    text = client.post(PATH, content=b"not json", headers={"content-type": "application/json"})
    plain = client.post(PATH, content=b'{"data": []}', headers={"content-type": "text/plain"})
    assert [error_of(r)["code"] for r in (form, text, plain)] == [100, 100, 100]


def test_503_mode_for_count_then_ok(client: httpx.Client, fake: MetaFake) -> None:
    """With count=2, two requests get 503 and the third is accepted."""
    fake.set_mode("503", count=2)
    statuses = [send(client, [make_event()]).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert fake.fault.mode == "ok"
    assert [r.mode for r in fake.requests] == ["503", "503", "ok"]
    assert len(fake.received) == 1


def test_429_mode_sends_retry_after(client: httpx.Client, fake: MetaFake) -> None:
    """The 429 mode answers with a Retry-After header and a transient Graph error."""
    fake.set_mode("429", retry_after=7)
    response = send(client, [make_event()])
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert error_of(response)["is_transient"] is True


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("500", 500, 1),
        ("transient", 500, 2),
        ("throttle", 400, 17),
        ("bad_token", 400, 190),
        ("permanent", 400, 100),
    ],
)
def test_json_fault_modes(client: httpx.Client, fake: MetaFake, mode: str, status: int, code: int) -> None:
    """Each JSON fault mode answers with its status and Graph error code, and records nothing."""
    fake.set_mode(mode)
    response = send(client, [make_event()])
    assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert fake.received == []


def test_html_502_mode(client: httpx.Client, fake: MetaFake) -> None:
    """The html_502 mode answers with an HTML page, as a proxy in front of Graph would."""
    fake.set_mode("html_502")
    response = send(client, [make_event()])
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")


def test_timeout_mode_delays_then_processes(client: httpx.Client, fake: MetaFake) -> None:
    """The timeout mode outlasts the client timeout, then still records the events."""
    fake.set_mode("timeout", count=1, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(PATH, json={"data": [make_event()], "access_token": TOKEN}, timeout=0.1)
    assert fake.wait_for(1, timeout=3.0)
    assert fake.requests[-1].mode == "timeout"


def test_reset_mode_drops_connection(client: httpx.Client, fake: MetaFake) -> None:
    """The reset mode closes the connection with no answer and records no event."""
    fake.set_mode("reset", count=1)
    with pytest.raises(httpx.TransportError):
        send(client, [make_event()])
    assert fake.received == []
    assert fake.requests[-1].status is None
    assert send(client, [make_event()]).status_code == 200


def test_violation_when_request_precedes_retry_after(
    client: httpx.Client, fake: MetaFake, clock: Clock
) -> None:
    """A request before the Retry-After expired is a violation; one after it is not."""
    fake.set_mode("429", count=1, retry_after=5)
    assert send(client, [make_event()]).status_code == 429
    clock.t += 2
    assert send(client, [make_event()]).status_code == 200
    clock.t += 4
    assert send(client, [make_event()]).status_code == 200
    [violation] = fake.violations
    assert (violation.kind, violation.pixel_id, violation.seq) == ("retry_after", PIXEL, 2)


def test_unknown_path_is_recorded(client: httpx.Client, fake: MetaFake) -> None:
    """A request to a path Meta does not serve gets 2500 and shows up in the request log."""
    response = client.post(f"/{VERSION}/{PIXEL}/event", json={})
    assert error_of(response)["code"] == 2500
    assert fake.requests[-1].path == f"/{VERSION}/{PIXEL}/event"


def test_admin_endpoints(client: httpx.Client, fake: MetaFake) -> None:
    """/_admin/mode, received, requests, violations and clear work over HTTP."""
    mode = client.post("/_admin/mode", json={"mode": "429", "count": 1, "retry_after": 30})
    assert mode.json() == {"mode": "429", "remaining": 1, "retry_after": 30, "delay": 30.0}
    assert send(client, [make_event()]).status_code == 429
    assert send(client, [make_event()]).status_code == 200
    received = client.get("/_admin/received").json()
    assert [entry["event_id"] for entry in received] == ["order-1"]
    assert [entry["status"] for entry in client.get("/_admin/requests").json()] == [429, 200]
    assert [entry["kind"] for entry in client.get("/_admin/violations").json()] == ["retry_after"]
    assert client.post("/_admin/mode", json={"mode": "nope"}).status_code == 400
    assert client.post("/_admin/mode", json={"mode": "ok", "count": 0}).status_code == 400
    assert client.post("/_admin/clear").status_code == 200
    assert fake.received == [] and fake.requests == [] and fake.violations == []


async def test_server_works_from_async_tests() -> None:
    """FakeServer is an async context manager that does not block the test's event loop."""
    fake = create_meta_fake(access_token=TOKEN, pixel_id=PIXEL, version=VERSION, now=Clock())
    async with FakeServer(fake.app) as running, httpx.AsyncClient(base_url=running.url) as http:
        response = await http.post(PATH, json={"data": [make_event()], "access_token": TOKEN})
        assert response.status_code == 200
        assert await fake.wait_for_async(1)


def test_server_shuts_down_cleanly() -> None:
    """After the with block the port no longer accepts connections."""
    with serve(create_meta_fake(access_token=TOKEN, pixel_id=PIXEL).app) as running:
        port = running.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        pass


def test_cli_runs_fake_standalone() -> None:
    """``python -m tests.fakes.meta`` serves the fake on the given port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "tests.fakes.meta",
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
        response = httpx.post(f"{url}{PATH}", json={"data": [event], "access_token": TOKEN})
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
