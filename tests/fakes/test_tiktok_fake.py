"""Tests of the fake TikTok Events API, over real loopback HTTP, and of our adapter against it."""

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
from destinations.tiktok.adapter import TikTokDestination
from router.decisions import Drop, Ok, Retry
from tests.destinations.golden import GoldenFile, golden_files
from tests.fakes.server import FakeServer, serve
from tests.fakes.tiktok import TikTokError, TikTokFake, check_auth, validate_body

TOKEN = "tt-test-token-0123"
PIXEL = "C4ABCDEFGHIJK1234567"
PATH = "/open_api/v1.3/event/track/"
HEADERS = {"Access-Token": TOKEN, "Content-Type": "application/json"}
NOW = 1_780_000_000.0
DAY = 86400
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
PHONE_HASH = hashlib.sha256(b"+16505551212").hexdigest()
ROOT = Path(__file__).resolve().parents[2]
GOLDEN_REQUESTS = [
    case for case in golden_files("cases") if case.type == "tiktok" and "requests" in case.data["expect"]
]


class Clock:
    """A settable clock for the fake."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TikTokFake, Clock, FakeServer]]:
    """One fake, its clock and its server for the whole module (starting uvicorn costs ~0.2 s)."""
    clock = Clock()
    fake = TikTokFake(access_token=TOKEN, pixel_code=PIXEL, now=clock)
    with serve(fake.app) as running:
        yield fake, clock, running


@pytest.fixture
def clock(served: tuple[TikTokFake, Clock, FakeServer]) -> Clock:
    """The fake's clock, set back to NOW."""
    served[1].t = NOW
    return served[1]


@pytest.fixture
def fake(served: tuple[TikTokFake, Clock, FakeServer], clock: Clock) -> TikTokFake:
    """The fake with an empty ledger and mode ok."""
    served[0].clear()
    return served[0]


@pytest.fixture
def client(served: tuple[TikTokFake, Clock, FakeServer], fake: TikTokFake) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the running fake."""
    with httpx.Client(base_url=served[2].url, timeout=5.0) as http:
        yield http


def make_event(**changes: Any) -> dict[str, Any]:
    """A valid web Purchase event, with top-level keys replaced by ``changes``."""
    event: dict[str, Any] = {
        "event": "Purchase",
        "event_time": int(NOW) - 60,
        "event_id": "order-1",
        "user": {
            "email": [EMAIL_HASH],
            "phone": [PHONE_HASH],
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0",
            "ttclid": "E.C.P.CsQBabc",
            "ttp": "2F7h37YkS1j57AYSKTI7IHhJPYH",
        },
        "properties": {
            "value": 12.5,
            "currency": "EUR",
            "contents": [{"content_id": "sku-1", "quantity": 1}],
        },
        "page": {"url": "https://shop.example.com/thanks"},
    }
    return event | changes


def with_user(**changes: Any) -> dict[str, Any]:
    """A valid event whose user keys are replaced by ``changes``."""
    event = make_event()
    return event | {"user": event["user"] | changes}


def with_properties(**changes: Any) -> dict[str, Any]:
    """A valid event whose properties keys are replaced by ``changes``."""
    event = make_event()
    return event | {"properties": event["properties"] | changes}


def body_of(events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A request body the way the adapter builds it."""
    return {"event_source": "web", "event_source_id": PIXEL, "data": events} | extra


def send(client: httpx.Client, events: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    """POST a batch the way the router does."""
    return client.post(PATH, json=body_of(events, **extra), headers=HEADERS)


def code_of(response: httpx.Response) -> int:
    """The TikTok ``code`` of an answer."""
    code: int = response.json()["code"]
    return code


# -- accepted requests -------------------------------------------------------------------------------


def test_accepts_well_formed_batch_and_records_it(client: httpx.Client, fake: TikTokFake) -> None:
    """A valid batch gets TikTok's success body and lands in the ledger with its test code."""
    events = [make_event(), make_event(event_id="order-2", event="Lead", limited_data_use=True)]
    response = send(client, events, test_event_code="TEST123")
    assert response.status_code == 200
    assert response.json()["code"] == 0 and response.json()["message"] == "OK"
    assert response.json()["request_id"] and response.headers["x-tt-logid"]
    assert fake.event_ids() == ["order-1", "order-2"]
    assert [entry.limited_data_use for entry in fake.received] == [False, True]
    assert {entry.test_event_code for entry in fake.received} == {"TEST123"}
    assert fake.requests[-1].code == 0 and fake.requests[-1].n_events == 2


def test_accepts_custom_events_properties_and_string_identifiers(client: httpx.Client) -> None:
    """Custom event names, custom properties, a single digest string and IPv6 are accepted."""
    event = with_user(email=EMAIL_HASH, ip="2001:db8::1", locale="en_US", country="us")
    event |= {"event": "quote_requested", "properties": {"plan": "pro", "seats": 5}}
    assert code_of(send(client, [event])) == 0


# -- refused requests: HTTP 200 with a TikTok code, nothing recorded --------------------------------


def test_rejects_more_than_1000_events(client: httpx.Client, fake: TikTokFake) -> None:
    """A batch above TikTok's 1,000-event limit is refused with 40002."""
    response = send(client, [make_event(event_id=str(i)) for i in range(1001)])
    assert (response.status_code, code_of(response)) == (200, 40002)
    assert fake.received == []


def test_rejects_empty_data(client: httpx.Client) -> None:
    """An empty data array is refused with 40002."""
    assert code_of(send(client, [])) == 40002


def test_stale_event_rejects_whole_batch(client: httpx.Client, fake: TikTokFake) -> None:
    """One event older than 7 days fails the whole request, named by its batch index."""
    response = send(client, [make_event(), make_event(event_id="old", event_time=int(NOW) - 8 * DAY)])
    assert (response.status_code, code_of(response)) == (200, 40002)
    assert response.json()["message"].startswith("Batch.1.event_time")
    assert fake.received == []


def test_event_ages_with_the_injected_clock(client: httpx.Client, fake: TikTokFake, clock: Clock) -> None:
    """An event accepted today is refused once the fake's clock moves 7 days on."""
    assert code_of(send(client, [make_event()])) == 0
    clock.t += 7 * DAY
    assert code_of(send(client, [make_event()])) == 40002
    assert len(fake.received) == 1


@pytest.mark.parametrize(
    "event_time", [int(NOW) * 1000, NOW - 60.5, "2026-01-01T00:00:00Z", int(NOW) + 2 * DAY]
)
def test_rejects_wrong_time_unit_or_type(client: httpx.Client, event_time: Any) -> None:
    """event_time in milliseconds, as a float or a string, or days ahead, is refused."""
    assert code_of(send(client, [make_event(event_time=event_time)])) == 40002


def test_rejects_numeric_event_id(client: httpx.Client) -> None:
    """event_id must be a string, as TikTok says ("not a valid string")."""
    response = send(client, [make_event(event_id=12345)])
    assert code_of(response) == 40002 and "not a valid string" in response.json()["message"]


@pytest.mark.parametrize(
    "user",
    [
        {"email": ["joe@example.com"]},
        {"email": [EMAIL_HASH.upper()]},
        {"phone": ["+16505551212"]},
        {"external_id": ["cust-42"]},
        {"first_name": "joe"},
        {"zip_code": "94025"},
    ],
)
def test_rejects_unhashed_identifiers(client: httpx.Client, fake: TikTokFake, user: dict[str, Any]) -> None:
    """Raw (or upper-case hex) personal identifiers are refused where TikTok wants SHA-256."""
    assert code_of(send(client, [with_user(**user)])) == 40002
    assert fake.received == []


@pytest.mark.parametrize(
    "user",
    [
        {"ip": EMAIL_HASH},
        {"ip": "300.1.1.1"},
        {"user_agent": EMAIL_HASH},
        {"ttclid": EMAIL_HASH},
        {"ttp": EMAIL_HASH},
        {"country": hashlib.sha256(b"us").hexdigest()},
        {"city": hashlib.sha256(b"menlopark").hexdigest()},
    ],
)
def test_rejects_hashed_values_where_raw_ones_are_required(
    client: httpx.Client, user: dict[str, Any]
) -> None:
    """IP, user agent, ttclid, ttp, country and city must stay raw."""
    assert code_of(send(client, [with_user(**user)])) == 40002


@pytest.mark.parametrize(
    ("event", "extra"),
    [
        (make_event(event="purchase"), {}),
        (make_event(event="addToCart"), {}),
        (make_event(), {"event_source": "WEB"}),
        (with_properties(currency="eur"), {}),
        (with_properties(content_type="Product"), {}),
        (with_user(country="US"), {}),
    ],
)
def test_rejects_wrong_enum_case(client: httpx.Client, event: dict[str, Any], extra: dict[str, Any]) -> None:
    """Standard event names, event_source, currency, content_type and country are case-sensitive."""
    assert code_of(send(client, [event], **extra)) == 40002


@pytest.mark.parametrize(
    ("event", "extra"),
    [
        (make_event(event_name="Purchase"), {}),
        (with_user(phone_number=[PHONE_HASH]), {}),
        (with_properties(contents=[{"id": "sku-1"}]), {}),
        (make_event(page={"uri": "https://x.example"}), {}),
        (make_event(), {"pixel_code": PIXEL}),
    ],
)
def test_rejects_unknown_keys(client: httpx.Client, event: dict[str, Any], extra: dict[str, Any]) -> None:
    """Unknown keys in the body, an event, user, page or contents item are refused (typo guard)."""
    assert code_of(send(client, [event], **extra)) == 40002


def test_rejects_numeric_content_id(client: httpx.Client) -> None:
    """A number as content_id gets RudderStack's recorded 40002 message shape."""
    response = send(client, [with_properties(contents=[{"content_id": 42}])])
    assert response.json()["message"] == "Batch.0.properties.contents.0.content_id: Not a valid string"


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Access-Token": "nope", "Content-Type": "application/json"},
        {"Access-Token": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ],
)
def test_bad_token_is_40105_in_a_200(client: httpx.Client, fake: TikTokFake, headers: dict[str, str]) -> None:
    """A missing, wrong or Bearer-style token gets code 40105 inside HTTP 200."""
    response = client.post(PATH, json=body_of([make_event()]), headers=headers)
    assert (response.status_code, code_of(response)) == (200, 40105)
    assert fake.received == []


def test_wrong_pixel_is_40001(client: httpx.Client) -> None:
    """Another pixel code gets 40001 "No permission to operate pixel code"."""
    response = send(client, [make_event()], event_source_id="OTHERPIXEL")
    assert code_of(response) == 40001 and "OTHERPIXEL" in response.json()["message"]


def test_wrong_path_or_version_is_404(client: httpx.Client, fake: TikTokFake) -> None:
    """Another API version, the 1.0 endpoint or a missing slash is not the track endpoint."""
    for path in ("/open_api/v1.2/event/track/", "/open_api/v1.3/pixel/track/", "/open_api/v1.3/event/track"):
        response = client.post(path, json=body_of([make_event()]), headers=HEADERS)
        assert response.status_code == 404, path
    assert fake.requests[-1].path == "/open_api/v1.3/event/track"


def test_rejects_non_json_body(client: httpx.Client) -> None:
    """A form body, a non-JSON body or a wrong content type is refused with 40002."""
    form = client.post(PATH, data={"data": "[]"}, headers={"Access-Token": TOKEN})
    text = client.post(PATH, content=b"not json", headers=HEADERS)
    plain = client.post(PATH, content=b"{}", headers={"Access-Token": TOKEN, "Content-Type": "text/plain"})
    assert [code_of(r) for r in (form, text, plain)] == [40002, 40002, 40002]


# -- fault modes -------------------------------------------------------------------------------------


def test_503_mode_for_count_then_ok(client: httpx.Client, fake: TikTokFake) -> None:
    """With count=2, two requests get a 503 gateway page and the third is accepted."""
    fake.set_mode("503", count=2)
    responses = [send(client, [make_event()]) for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].headers["content-type"].startswith("text/html")
    assert fake.fault.mode == "ok" and len(fake.received) == 1


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("500", 500, 50000),
        ("40100", 200, 40100),
        ("40002", 200, 40002),
        ("permanent", 200, 40001),
        ("bad_token", 200, 40105),
    ],
)
def test_json_fault_modes(client: httpx.Client, fake: TikTokFake, mode: str, status: int, code: int) -> None:
    """Each JSON fault mode answers with its status and TikTok code, and records nothing."""
    fake.set_mode(mode)
    response = send(client, [make_event()])
    assert (response.status_code, code_of(response)) == (status, code)
    assert fake.received == []


def test_429_mode_sends_retry_after(client: httpx.Client, fake: TikTokFake) -> None:
    """The 429 mode answers HTTP 429 with Retry-After and TikTok's throttling code."""
    fake.set_mode("429", retry_after=7)
    response = send(client, [make_event()])
    assert (response.status_code, response.headers["retry-after"], code_of(response)) == (429, "7", 40100)


def test_timeout_mode_delays_then_processes(client: httpx.Client, fake: TikTokFake) -> None:
    """The timeout mode outlasts the client timeout, then still records the events."""
    fake.set_mode("timeout", count=1, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(PATH, json=body_of([make_event()]), headers=HEADERS, timeout=0.1)
    assert fake.wait_for(1, timeout=3.0)
    assert fake.requests[-1].mode == "timeout"


def test_reset_mode_drops_connection(client: httpx.Client, fake: TikTokFake) -> None:
    """The reset mode closes the connection with no answer and records no event."""
    fake.set_mode("reset", count=1)
    with pytest.raises(httpx.TransportError):
        send(client, [make_event()])
    assert fake.received == [] and fake.requests[-1].status is None
    assert code_of(send(client, [make_event()])) == 0


def test_violation_when_request_precedes_retry_after(
    client: httpx.Client, fake: TikTokFake, clock: Clock
) -> None:
    """A request before the Retry-After expired is a violation; one after it is not."""
    fake.set_mode("40100", count=1, retry_after=5)
    assert code_of(send(client, [make_event()])) == 40100
    clock.t += 2
    assert code_of(send(client, [make_event()])) == 0
    clock.t += 4
    assert code_of(send(client, [make_event()])) == 0
    [violation] = fake.violations
    assert (violation.kind, violation.pixel_code, violation.seq) == ("retry_after", PIXEL, 2)


def test_admin_endpoints(client: httpx.Client, fake: TikTokFake) -> None:
    """/_admin/mode, received, requests, violations and clear work over HTTP."""
    mode = client.post("/_admin/mode", json={"mode": "429", "count": 1, "retry_after": 30})
    assert mode.json() == {"mode": "429", "remaining": 1, "retry_after": 30, "delay": 30.0}
    assert send(client, [make_event()]).status_code == 429
    assert code_of(send(client, [make_event()])) == 0
    assert [entry["event_id"] for entry in client.get("/_admin/received").json()] == ["order-1"]
    assert [entry["code"] for entry in client.get("/_admin/requests").json()] == [40100, 0]
    assert [entry["kind"] for entry in client.get("/_admin/violations").json()] == ["retry_after"]
    assert client.post("/_admin/mode", json={"mode": "nope"}).status_code == 400
    assert client.post("/_admin/mode", json={"mode": "ok", "count": 0}).status_code == 400
    assert client.post("/_admin/clear").status_code == 200
    assert fake.received == [] and fake.requests == [] and fake.violations == []


# -- the adapter against the fake --------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN_REQUESTS, ids=lambda case: case.id)
def test_golden_requests_pass_the_fake(case: GoldenFile) -> None:
    """Every golden case's expected request is one the fake (so the contract) accepts."""
    token, pixel = case.data["config"]["access_token"], case.data["config"]["pixel_code"]
    for request in case.data["expect"]["requests"]:
        headers = {name.lower(): value.replace("***", token) for name, value in request["headers"].items()}
        check_auth(headers, token)
        assert request["url"].endswith("/open_api/v1.3/event/track/")
        validate_body(request["json"], pixel, float(case.data["now"]))


def test_validate_body_names_the_first_problem() -> None:
    """The pure validator raises TikTok's 40002 with the failing field's path."""
    with pytest.raises(TikTokError) as raised:
        validate_body(body_of([make_event(), with_user(email=["raw@example.com"])]), PIXEL, NOW)
    assert (raised.value.code, raised.value.message.split(":")[0]) == (40002, "Batch.1.user.email.0")


def adapter_for(url: str) -> TikTokDestination:
    """Our adapter pointed at the fake."""
    block = {"id": "tt", "type": "tiktok", "pixel_code": PIXEL, "access_token": TOKEN, "base_url": url}
    return TikTokDestination(TikTokDestination.parse_config(block))


def stored_event(event_id: str) -> dict[str, Any]:
    """A stored canonical purchase a minute before NOW."""
    return {
        "event_name": "purchase",
        "event_id": event_id,
        "timestamp_ms": int(NOW - 60) * 1000,
        "action_source": "website",
        "page": {"url": "https://shop.example.com/done"},
        "user": {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0", "language": "en-US", "country": "us"},
        "hashed": {"email": EMAIL_HASH, "phone_e164": PHONE_HASH},
        "ids": {"ttclid": "E.C.P.CsQBabc", "ttp": "2F7h37YkS1j57AYSKTI7IHhJPYH"},
        "properties": {"value": 9.5, "currency": "USD", "contents": [{"id": 7, "quantity": 1, "price": 9.5}]},
    }


def deliver(client: httpx.Client, adapter: TikTokDestination, payloads: list[Payload]) -> Any:
    """Build, send and classify one batch the way the dispatcher does."""
    request = adapter.build_request(payloads)
    answer = client.request(request.method, request.url, headers=dict(request.headers), json=request.json)
    response = HttpResponse(
        answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content
    )
    return adapter.classify(response, payloads)


def test_adapter_batch_is_accepted_and_classified_ok(
    served: tuple[TikTokFake, Clock, FakeServer], client: httpx.Client, fake: TikTokFake
) -> None:
    """Mapped events reach the fake intact and the success answer classifies as Ok."""
    adapter = adapter_for(served[2].url)
    payloads = [p for i in range(3) for p in adapter.map(stored_event(f"ord-{i}"), NOW)]
    assert deliver(client, adapter, payloads) == Ok()
    assert fake.event_ids() == ["ord-0", "ord-1", "ord-2"]
    assert fake.received[0].event["properties"]["contents"] == [
        {"content_id": "7", "price": 9.5, "quantity": 1}
    ]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("503", Retry),
        ("500", Retry),
        ("429", Retry),
        ("40100", Retry),
        ("40002", Drop),
        ("permanent", Drop),
        ("bad_token", Drop),
    ],
)
def test_adapter_classifies_every_fault_answer(
    served: tuple[TikTokFake, Clock, FakeServer],
    client: httpx.Client,
    fake: TikTokFake,
    mode: str,
    expected: type,
) -> None:
    """Each failure the fake can produce gets the decision the adapter documents."""
    adapter = adapter_for(served[2].url)
    fake.set_mode(mode, count=1, retry_after=3 if mode in ("429", "40100") else None)
    decision = deliver(client, adapter, adapter.map(stored_event("ord-f"), NOW))
    assert isinstance(decision, expected)
    if mode in ("429", "40100"):
        assert isinstance(decision, Retry) and decision.after == 3
    if mode == "40002":
        assert isinstance(decision, Drop) and decision.isolate


# -- serving -----------------------------------------------------------------------------------------


async def test_server_works_from_async_tests() -> None:
    """FakeServer is an async context manager that does not block the test's event loop."""
    fake = TikTokFake(access_token=TOKEN, pixel_code=PIXEL, now=Clock())
    async with FakeServer(fake.app) as running, httpx.AsyncClient(base_url=running.url) as http:
        response = await http.post(PATH, json=body_of([make_event()]), headers=HEADERS)
        assert response.json()["code"] == 0
        assert await fake.wait_for_async(1)


def test_cli_runs_fake_standalone() -> None:
    """``python -m tests.fakes.tiktok`` serves the fake on the given port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "tests.fakes.tiktok",
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
        response = httpx.post(f"{url}{PATH}", json=body_of([event]), headers=HEADERS)
        assert response.json()["code"] == 0
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
