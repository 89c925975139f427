"""Tests of the fake Reddit Conversions API v3, over real loopback HTTP."""

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
from router.decisions import Drop
from tests.destinations.golden import GoldenFile, batches, build, golden_files
from tests.fakes.reddit import RedditFake, validate_body
from tests.fakes.server import FakeServer, serve

TOKEN = "rdt-conv-token-0123456789"
PIXEL = "a2_fakepixel01"
PATH = f"/api/v3/pixels/{PIXEL}/conversion_events"
NOW = 1_780_000_000.0
NOW_MS = int(NOW * 1000)
DAY_MS = 86_400_000
HEADERS = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "adrouter-tests/1.0"}
EMAIL_HASH = hashlib.sha256(b"joe@example.com").hexdigest()
UUID = "1779999990000.b8f7eb7d-b357-437b-8bd3-e1c8166c7132"
ROOT = Path(__file__).resolve().parents[2]
CASES = [
    case for case in golden_files("cases") if case.type == "reddit" and "requests" in case.data["expect"]
]


class Clock:
    """A settable clock for the fake."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RedditFake, Clock, FakeServer]]:
    """One fake, its clock and its server for the whole module (starting uvicorn costs ~0.2 s)."""
    clock = Clock()
    fake = RedditFake(access_token=TOKEN, pixel_id=PIXEL, now=clock)
    with serve(fake.app) as running:
        yield fake, clock, running


@pytest.fixture
def clock(served: tuple[RedditFake, Clock, FakeServer]) -> Clock:
    """The fake's clock, set back to NOW."""
    served[1].t = NOW
    return served[1]


@pytest.fixture
def fake(served: tuple[RedditFake, Clock, FakeServer], clock: Clock) -> RedditFake:
    """The fake pinned to one token and pixel, with an empty ledger and mode ok."""
    served[0].clear()
    return served[0]


@pytest.fixture(scope="module")
def http(served: tuple[RedditFake, Clock, FakeServer]) -> Iterator[httpx.Client]:
    """One client for the module (a TLS context costs ~60 ms to build), with token and user agent."""
    with httpx.Client(base_url=served[2].url, headers=HEADERS, timeout=5.0) as client:
        yield client


@pytest.fixture
def client(http: httpx.Client, fake: RedditFake) -> httpx.Client:
    """The shared client, once the fake is reset."""
    return http


def make_event(**changes: Any) -> dict[str, Any]:
    """A valid website Purchase event, with top-level keys replaced by ``changes``."""
    event: dict[str, Any] = {
        "event_at": NOW_MS - 60_000,
        "action_source": "WEBSITE",
        "event_source_url": "https://shop.example.com/thanks",
        "click_id": "3184742045291813272",
        "type": {"tracking_type": "PURCHASE"},
        "metadata": {"conversion_id": "order-1", "currency": "EUR", "value": 12.5, "item_count": 1},
        "user": {"email": EMAIL_HASH, "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0", "uuid": UUID},
    }
    return event | changes


def with_user(**changes: Any) -> dict[str, Any]:
    """A valid event whose user keys are replaced by ``changes``."""
    event = make_event()
    return event | {"user": event["user"] | changes}


def with_metadata(**changes: Any) -> dict[str, Any]:
    """A valid event whose metadata keys are replaced by ``changes``."""
    event = make_event()
    return event | {"metadata": event["metadata"] | changes}


def send(client: httpx.Client, events: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    """POST a batch the way the router does."""
    return client.post(PATH, json={"data": {"events": events} | extra})


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The v3 ``error`` object of an answer."""
    error: dict[str, Any] = response.json()["error"]
    return error


def message_of(response: httpx.Response) -> str:
    """The error message, with the first field-scoped detail appended."""
    error = error_of(response)
    fields = error.get("fields") or [{}]
    return f"{error['message']} | {fields[0].get('field', '')}: {fields[0].get('message', '')}"


# -- accepted ---------------------------------------------------------------------------------------


def test_accepts_well_formed_batch_and_records_it(client: httpx.Client, fake: RedditFake) -> None:
    """A valid batch gets Reddit's success body and lands in the ledger with its test id."""
    lead = make_event(type={"tracking_type": "LEAD"}, metadata={"conversion_id": "lead-2"})
    response = send(client, [make_event(), lead], test_id="t2_test")
    assert response.status_code == 200
    assert response.json() == {"data": {"message": "Successfully processed 2 conversion events."}}
    assert fake.event_ids() == ["order-1", "lead-2"]
    assert {(e.tracking_type, e.test_id) for e in fake.received} == {
        ("PURCHASE", "t2_test"),
        ("LEAD", "t2_test"),
    }
    assert fake.requests[-1].bearer and fake.requests[-1].user_agent == "adrouter-tests/1.0"


def test_accepts_hashed_ip_ldu_and_custom_events(client: httpx.Client) -> None:
    """A SHA-256 IP, LDU options and a CUSTOM event with its name are all valid."""
    options = {"modes": ["LDU"], "country": "US", "region": "US-CA"}
    custom = {"tracking_type": "CUSTOM", "custom_event_name": "Promotion Event"}
    event = with_user(ip_address=EMAIL_HASH, data_processing_options=options) | {"type": custom}
    assert send(client, [event]).status_code == 200


# -- rejected: the whole batch ----------------------------------------------------------------------


def test_rejects_more_than_1000_events(client: httpx.Client, fake: RedditFake) -> None:
    """A batch above Reddit's 1000-event limit is a plain 400 Bad Request."""
    response = send(client, [make_event(metadata={"conversion_id": str(i)}) for i in range(1001)])
    assert (response.status_code, error_of(response)["message"]) == (400, "Bad Request")
    assert fake.received == []


def test_rejects_empty_events(client: httpx.Client) -> None:
    """An empty events array is refused."""
    assert send(client, []).status_code == 400


def test_stale_event_rejects_whole_batch(client: httpx.Client, fake: RedditFake) -> None:
    """One event older than 168 h fails the whole request with a field-scoped reason; nothing is kept."""
    stale = make_event(event_at=NOW_MS - 8 * DAY_MS, metadata={"conversion_id": "old"})
    response = send(client, [make_event(), stale])
    assert response.status_code == 400
    assert message_of(response) == (
        "There were 1 invalid conversion events. None were processed. | "
        "$.data.events[1].event_at: event_at timestamp must be less than 168h0m0s old"
    )
    assert fake.received == [] and fake.requests[-1].n_events == 2


def test_event_ages_with_the_injected_clock(client: httpx.Client, fake: RedditFake, clock: Clock) -> None:
    """An event accepted today is refused once the fake's clock moves 7 days on."""
    assert send(client, [make_event()]).status_code == 200
    clock.t += 7 * 86400
    assert "168h0m0s" in message_of(send(client, [make_event()]))
    assert len(fake.received) == 1


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(event_at=int(NOW)), "must be a Unix epoch timestamp in milliseconds"),
        (make_event(event_at=NOW_MS + 8 * DAY_MS), "too far in the future"),
        (make_event(type={"tracking_type": "Purchase"}), "invalid tracking_type: Purchase"),
        (make_event(type={"tracking_type": "CUSTOM"}), "custom_event_name must be 1 to 64"),
        (make_event(type={"tracking_type": "LEAD", "custom_event_name": "x"}), "must be a CUSTOM event"),
        (make_event(action_source="APP"), "only be sent with action_source WEBSITE"),
        (with_user(email="joe@example.com"), "user.email: email must be a SHA-256 digest"),
        (with_user(email=EMAIL_HASH.upper()), "user.email: email must be a SHA-256 digest"),
        (with_user(phone_number="+15554441234"), "user.phone_number: phone_number must be a SHA-256"),
        (with_user(user_agent=EMAIL_HASH), "user.user_agent must be the raw value"),
        (make_event(click_id=EMAIL_HASH), "click_id must be the raw value"),
        (with_user(uuid="1700000000.abcd-uuid"), "user.UUID: invalid UUID: UUID must be RFC-4122 compliant"),
        (with_user(uuid=EMAIL_HASH), "invalid UUID"),
        (with_user(ip_address="300.1.1.1"), "ip_address must be an IP address or its SHA-256 digest"),
        (with_metadata(currency="eur"), "currency must be an ISO 4217 code in upper case"),
        (make_event(metadata={"conversion_id": "x", "value": 3}), "value and currency must be sent together"),
        (
            make_event(type={"tracking_type": "PAGE_VISIT"}),
            "value and currency are not accepted on PAGE_VISIT",
        ),
        (make_event(type={"tracking_type": "LEAD"}), "item_count is not accepted on LEAD events"),
        (with_metadata(products=[{"name": "no id"}]), "product id is required"),
        (with_user(data_processing_options={"modes": ["ldu"]}), 'modes must be ["LDU"]'),
        (with_user(data_processing_options={"modes": ["LDU"], "region": "CA"}), "region must be ISO 3166-2"),
    ],
)
def test_rejects_invalid_event(client: httpx.Client, event: dict[str, Any], expected: str) -> None:
    """Each contract breach in one event fails the whole batch with a field-scoped message."""
    response = send(client, [make_event(metadata={"conversion_id": "ok-1"}), event])
    assert response.status_code == 400
    assert "There were 1 invalid conversion events" in message_of(response)
    assert expected in message_of(response)


def test_needs_a_match_key_and_offline_rules(client: httpx.Client) -> None:
    """A click id alone suffices, no match key at all is refused, offline events carry no click id."""
    assert send(client, [make_event(user={})]).status_code == 200
    bare = make_event(user={"screen_dimensions": {"width": 1, "height": 1}})
    del bare["click_id"]
    assert "at least one match key" in message_of(send(client, [bare]))
    store = make_event(action_source="PHYSICAL_STORE")
    del store["event_source_url"]
    assert "click_id must not be sent with PHYSICAL_STORE" in message_of(send(client, [store]))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": {"events": [make_event(test_id="T")]}}, 'JSON error "unknown field" on field "test_id"'),
        ({"data": {"events": [with_user(em=EMAIL_HASH)]}}, 'JSON error "unknown field" on field "em"'),
        (
            {"data": {"events": [make_event()]}, "test_id": "T"},
            'JSON error "unknown field" on field "test_id"',
        ),
        (
            {"data": {"events": [make_event(event_at=float(NOW_MS))]}},
            'JSON error "unexpected type number" on field "data.events.0.event_at"',
        ),
        (
            {"data": {"events": [make_event(event_at="2026-01-01T00:00:00Z")]}},
            'JSON error "unexpected type string" on field "data.events.0.event_at"',
        ),
        (
            {"data": {"events": [with_metadata(value="12.50")]}},
            'JSON error "unexpected type string" on field "data.events.0.metadata.value"',
        ),
        ({"data": {"events": [make_event(action_source="website")]}}, "invalid action_source: website"),
        ({"data": {"events": [make_event(action_source=None)]}}, 'JSON error "unexpected type null"'),
    ],
)
def test_strict_decoder(client: httpx.Client, body: dict[str, Any], message: str) -> None:
    """Unknown fields, wrong JSON types and bad action_source values fail before any event is checked."""
    response = client.post(PATH, json=body)
    assert response.status_code == 400
    assert error_of(response)["message"].startswith(message)


def test_missing_action_source(client: httpx.Client) -> None:
    """action_source is required in v3."""
    event = make_event()
    del event["action_source"]
    assert error_of(send(client, [event]))["message"] == "missing action_source"


def test_rejects_non_json_body(client: httpx.Client) -> None:
    """A form body, a non-JSON body or a wrong content type is refused with 400."""
    form = client.post(PATH, data={"data": "[]"})
    text = client.post(PATH, content=b"not json", headers={"content-type": "application/json"})
    plain = client.post(PATH, content=b'{"data": {}}', headers={"content-type": "text/plain"})
    assert [r.status_code for r in (form, text, plain)] == [400, 400, 400]


# -- transport: auth, user agent, pixel, path -------------------------------------------------------


def test_auth_errors(client: httpx.Client) -> None:
    """No bearer token or a wrong one gets Reddit's two 401 messages."""
    body = {"data": {"events": [make_event()]}}
    missing = client.post(PATH, json=body, headers={"Authorization": ""})
    wrong = client.post(PATH, json=body, headers={"Authorization": "Bearer nope"})
    basic = client.post(PATH, json=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert [(r.status_code, error_of(r)["message"]) for r in (missing, wrong, basic)] == [
        (401, "No bearer token provided"),
        (401, "UNAUTHORIZED"),
        (401, "No bearer token provided"),
    ]


def test_default_user_agent_is_ratelimited(client: httpx.Client) -> None:
    """Reddit throttles default client user agents with a 429."""
    response = client.post(
        PATH, json={"data": {"events": [make_event()]}}, headers={"User-Agent": "python-httpx/0.27"}
    )
    assert (response.status_code, error_of(response)["message"]) == (
        429,
        "Your user agent was automatically ratelimited.",
    )


def test_wrong_pixel_path_and_method(client: httpx.Client, fake: RedditFake) -> None:
    """Another pixel is 403; the v2.0 path is 404; GET is 405; all show up in the request log."""
    pixel = client.post(
        "/api/v3/pixels/a2_other/conversion_events", json={"data": {"events": [make_event()]}}
    )
    v2 = client.post(f"/api/v2.0/conversions/events/{PIXEL}", json={"events": [make_event()]})
    get = client.get(PATH)
    assert [r.status_code for r in (pixel, v2, get)] == [403, 404, 405]
    assert error_of(pixel)["message"] == "You're not authorized to post conversions to Pixel ID a2_other."
    assert [r.status for r in fake.requests] == [403, 404, 405]


# -- fault modes ------------------------------------------------------------------------------------


def test_503_mode_for_count_then_ok(client: httpx.Client, fake: RedditFake) -> None:
    """With count=2, two requests get 503 and the third is accepted."""
    fake.set_mode("503", count=2)
    assert [send(client, [make_event()]).status_code for _ in range(3)] == [503, 503, 200]
    assert fake.fault.mode == "ok" and len(fake.received) == 1
    assert [r.mode for r in fake.requests] == ["503", "503", "ok"]


def test_429_mode_sends_retry_after(client: httpx.Client, fake: RedditFake) -> None:
    """The 429 mode answers with a Retry-After header and Reddit's quota message."""
    fake.set_mode("429", retry_after=7)
    response = send(client, [make_event()])
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert error_of(response)["message"] == "Too many requests/events within timeframe."


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [
        ("500", 500, "The service is currently unavailable. No conversion events were processed."),
        ("permanent", 400, "There were 1 invalid conversion events. None were processed."),
        ("bad_token", 401, "UNAUTHORIZED"),
        ("forbidden", 403, f"You're not authorized to post conversions to Pixel ID {PIXEL}."),
    ],
)
def test_json_fault_modes(
    client: httpx.Client, fake: RedditFake, mode: str, status: int, message: str
) -> None:
    """Each JSON fault mode answers with its status and Reddit message, and records nothing."""
    fake.set_mode(mode)
    response = send(client, [make_event()])
    assert (response.status_code, error_of(response)["message"]) == (status, message)
    assert fake.received == []


def test_timeout_mode_delays_then_processes(client: httpx.Client, fake: RedditFake) -> None:
    """The timeout mode outlasts the client timeout, then still records the events."""
    fake.set_mode("timeout", count=1, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.post(PATH, json={"data": {"events": [make_event()]}}, timeout=0.1)
    assert fake.wait_for(1, timeout=3.0)
    assert fake.requests[-1].mode == "timeout"


def test_reset_mode_drops_connection(client: httpx.Client, fake: RedditFake) -> None:
    """The reset mode closes the connection with no answer and records no event."""
    fake.set_mode("reset", count=1)
    with pytest.raises(httpx.TransportError):
        send(client, [make_event()])
    assert fake.received == [] and fake.requests[-1].status is None
    assert send(client, [make_event()]).status_code == 200


def test_violation_when_request_precedes_retry_after(
    client: httpx.Client, fake: RedditFake, clock: Clock
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


def test_poisoned_event_sinks_its_batch(client: httpx.Client, fake: RedditFake) -> None:
    """A poisoned conversion id sinks its whole batch, as on Reddit; its neighbours pass on their own."""
    fake.poison("bad-1")
    good, bad = make_event(), make_event(metadata={"conversion_id": "bad-1"})
    assert "poisoned" in message_of(send(client, [good, bad]))
    assert send(client, [good]).status_code == 200 and send(client, [bad]).status_code == 400
    assert fake.event_ids() == ["order-1"]


def test_admin_endpoints(client: httpx.Client, fake: RedditFake) -> None:
    """/_admin/mode, received, requests, violations, poison and clear work over HTTP."""
    mode = client.post("/_admin/mode", json={"mode": "429", "count": 1, "retry_after": 30})
    assert mode.json() == {"mode": "429", "remaining": 1, "retry_after": 30, "delay": 30.0}
    assert send(client, [make_event()]).status_code == 429
    assert send(client, [make_event()]).status_code == 200
    assert [entry["conversion_id"] for entry in client.get("/_admin/received").json()] == ["order-1"]
    assert [entry["status"] for entry in client.get("/_admin/requests").json()] == [429, 200]
    assert [entry["kind"] for entry in client.get("/_admin/violations").json()] == ["retry_after"]
    assert client.post("/_admin/poison", json={"conversion_ids": ["p-1"]}).json() == {"poisoned": ["p-1"]}
    assert client.post("/_admin/poison", json={"conversion_ids": "p-1"}).status_code == 400
    assert client.post("/_admin/mode", json={"mode": "nope"}).status_code == 400
    assert client.post("/_admin/mode", json={"mode": "ok", "count": 0}).status_code == 400
    assert client.post("/_admin/clear").status_code == 200
    assert fake.received == [] and fake.requests == [] and fake.violations == []


# -- the adapter against the fake -------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_golden_bodies_pass_the_fake(case: GoldenFile) -> None:
    """Every golden case's expected request body is valid for the fake at the case's `now`."""
    for request in case.data["expect"]["requests"]:
        assert validate_body(request["json"], float(case.data["now"])) == request["json"]["data"]["events"]


def test_adapter_requests_are_accepted_over_http(
    client: httpx.Client, fake: RedditFake, clock: Clock
) -> None:
    """The adapter's real requests (token, user agent, URL) for every golden case get Reddit's 200."""
    for case in CASES:
        fake.clear()
        clock.t = float(case.data["now"])
        destination = build(
            "reddit", case.data["config"] | {"base_url": str(client.base_url), "pixel_id": PIXEL}
        )
        payloads = [p for event in case.data["events"] for p in destination.map(event, clock.t)]
        for batch in batches(payloads, destination.max_batch_size):
            request = destination.build_request(batch)
            response = client.post(request.url, json=request.json, headers=dict(request.headers))
            assert response.status_code == 200, (case.id, response.text)
        assert len(fake.received) == len(payloads)


def test_adapter_isolates_the_fakes_batch_refusal(client: httpx.Client, fake: RedditFake) -> None:
    """The fake's whole-batch 400 for one bad event is classified Drop(isolate=True) by the adapter."""
    fake.poison("bad")
    destination = build("reddit", {"id": "r", "type": "reddit", "pixel_id": PIXEL, "access_token": TOKEN})
    events = [make_event(metadata={"conversion_id": cid}) for cid in ("a", "bad", "c")]
    response = send(client, events)
    answer = HttpResponse(response.status_code, dict(response.headers), response.content)
    decision = destination.classify(answer, [Payload(e) for e in events])
    assert isinstance(decision, Drop) and decision.isolate and "poisoned" in decision.reason


# -- serving ----------------------------------------------------------------------------------------


async def test_server_works_from_async_tests() -> None:
    """FakeServer is an async context manager that does not block the test's event loop."""
    fake = RedditFake(access_token=TOKEN, pixel_id=PIXEL, now=Clock())
    async with (
        FakeServer(fake.app) as running,
        httpx.AsyncClient(base_url=running.url, headers=HEADERS) as http,
    ):
        response = await http.post(PATH, json={"data": {"events": [make_event()]}})
        assert response.status_code == 200
        assert await fake.wait_for_async(1)


def test_cli_runs_fake_standalone() -> None:
    """``python -m tests.fakes.reddit`` serves the fake on the given port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "tests.fakes.reddit",
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
        event = make_event(event_at=int(time.time() * 1000) - 60_000)
        response = httpx.post(f"{url}{PATH}", json={"data": {"events": [event]}}, headers=HEADERS)
        assert response.status_code == 200
        assert [e["conversion_id"] for e in httpx.get(f"{url}/_admin/received").json()] == ["order-1"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")
