"""Google end to end: `router serve` as a process -> the loopback fake token endpoint and Google APIs.

Data Manager: a browser purchase and server leads arrive hashed the Google way, all batches share one
access token, a 401 refreshes it, a revoked refresh token dead-letters loudly, and one invalid record
is isolated by bisecting. Ads API: a partial failure where the good rows are delivered, the
already-exists row counts as delivered, the permanent row is dead-lettered with Google's message
and the transient row is retried and delivered.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.process import RouterProcess
from tests.fakes.google import GoogleFake, create_google_fake
from tests.fakes.server import FakeServer, serve

WEB_KEY, BACKEND_SECRET = "pk_web_google_e2e", "sk_backend_google_e2e_0123456789"
CLIENT_ID, CLIENT_SECRET = "e2e-client.apps.googleusercontent.com", "GOCSPX-e2e-canary-secret"
REFRESH = "1//0e2e-canary-refresh-token"
CUSTOMER = "1234567890"
ENV = {
    "GOOGLE_CLIENT_ID": CLIENT_ID,
    "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
    "GOOGLE_REFRESH_TOKEN": REFRESH,
    "LOG_LEVEL": "debug",  # one delivery_ok line per delivered event
}


def sha(text: str) -> str:
    """SHA-256 hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def config_text(queue: Path, url: str, api: str) -> str:
    """router.yaml: two sources and one google destination at the fake, secrets from the environment."""
    return f"""
server:
  trusted_proxy_hops: 1
queue:
  url: sqlite:///{queue}
identity:
  default_phone_region: US
  keep_postal_code: true
dispatch:
  poll_interval: 0.05
  linger: 0
  backoff_base: 0.05
  backoff_cap: 0.2
# US test traffic without consent signals: sent in full (the EEA-safe default: test_consent*.py)
consent: {{when_unknown: send}}
sources:
  - id: web
    kind: browser
    key: {WEB_KEY}
    allow_money_events: true
  - id: backend
    kind: server
    secret: {BACKEND_SECRET}
destinations:
  - id: google_main
    type: google
    api: {api}
    customer_id: "123-456-7890"
    login_customer_id: "987-654-3210"
    conversions:
      purchase: "456"
      lead: customers/{CUSTOMER}/conversionActions/789
    client_id: ${{GOOGLE_CLIENT_ID}}
    client_secret: ${{GOOGLE_CLIENT_SECRET}}
    refresh_token: ${{GOOGLE_REFRESH_TOKEN}}
    token_url: {url}/token
    base_url: {url}
    retry_window: 1m
"""


@pytest.fixture
def google() -> Iterator[tuple[GoogleFake, FakeServer]]:
    """The fake token endpoint, Data Manager and Ads API on one loopback port."""
    fake = create_google_fake(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_tokens=[REFRESH], customer_id=CUSTOMER
    )
    with serve(fake.app) as server:
        yield fake, server


def start(tmp_path: Path, server: FakeServer, api: str = "data_manager") -> RouterProcess:
    """The router as a real process, configured for the fake."""
    config = tmp_path / "router.yaml"
    config.write_text(config_text(tmp_path / "queue.db", server.url, api))
    return RouterProcess(config, tmp_path / "router.log", env=ENV).start()


@pytest.fixture
def router_for(
    tmp_path: Path, google: tuple[GoogleFake, FakeServer]
) -> Iterator[Callable[[str], RouterProcess]]:
    """Start the router for one API; killed at the end of the test."""
    started: list[RouterProcess] = []

    def make(api: str) -> RouterProcess:
        started.append(start(tmp_path, google[1], api))
        return started[-1]

    yield make
    for process in started:
        process.kill()


def post(
    router: RouterProcess, body: Any, credential: str = BACKEND_SECRET, **headers: str
) -> httpx.Response:
    """POST /v1/events as the given source."""
    auth = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json", **headers}
    return httpx.post(f"{router.url}/v1/events", content=json.dumps(body), headers=auth, timeout=10)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until the predicate holds, failing the test on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def log_events(router: RouterProcess, name: str) -> list[dict[str, Any]]:
    """The router's JSON log lines with this event name."""
    lines = router.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if entry.get("event") == name]


def dead_letters(router: RouterProcess) -> list[dict[str, Any]]:
    """`router dlq list --json` on the router's config."""
    command = [sys.executable, "-m", "router", "dlq", "list", "--config", str(router.config), "--json"]
    environment = {**os.environ, **ENV}
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=30, env=environment
    ).stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def lead(index: int, **extra: Any) -> dict[str, Any]:
    """A server-side lead with a hashed-at-ingest email."""
    return {
        "event_name": "lead",
        "event_id": f"lead-{index}",
        "action_source": "crm",
        "user": {"email": f"Person.{index}@Example.com"},
        **extra,
    }


def test_browser_purchase_and_leads_reach_data_manager(
    router_for: Callable[[str], RouterProcess], google: tuple[GoogleFake, FakeServer]
) -> None:
    """Hashed the Google way, gclid from the page URL, raw postal code; one token for every batch."""
    fake, _ = google
    router = router_for("data_manager")
    now = time.time()
    purchase = {
        "event_name": "purchase",
        "event_id": "order-42",
        "event_time": int(now),
        "page": {"url": "https://shop.example.com/thanks?gclid=Cj0KCQ-e2e"},
        "user": {
            "email": " Jane.Doe+ads@Gmail.com ", "phone": "+1 (650) 555-1212", "first_name": "Jane",
            "last_name": "Doe", "zip": "94025", "country": "US",
        },
        "consent": {"ad_user_data": "granted", "ad_personalization": "denied"},
        "properties": {"value": 42.5, "currency": "usd", "order_id": "42"},
    }  # fmt: skip
    headers = {"X-Forwarded-For": "198.51.100.23", "User-Agent": "Mozilla/5.0 (e2e)"}
    assert post(router, purchase, credential=WEB_KEY, **headers).status_code == 202
    wait_until(lambda: len(fake.received) == 1)
    assert post(router, {"events": [lead(i) for i in range(5)]}).status_code == 202
    wait_until(lambda: len(fake.received) == 6)
    sent = fake.received[0]
    assert (sent.customer_id, sent.action, sent.id) == (CUSTOMER, "456", "42")
    event = sent.payload
    assert event["eventTimestamp"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(now)))
    assert event["adIdentifiers"] == {
        "gclid": "Cj0KCQ-e2e",
        "landingPageDeviceInfo": {"userAgent": "Mozilla/5.0 (e2e)", "ipAddress": "198.51.100.23"},
    }
    assert event["userData"]["userIdentifiers"] == [
        {"emailAddress": sha("janedoe@gmail.com")},
        {"phoneNumber": sha("+16505551212")},
        {
            "address": {
                "givenName": sha("jane"),
                "familyName": sha("doe"),
                "regionCode": "US",
                "postalCode": "94025",
            }
        },
    ]
    assert (event["conversionValue"], event["currency"]) == (42.5, "USD")
    assert event["consent"] == {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"}
    assert sorted(e.id for e in fake.received[1:]) == [f"lead-{i}" for i in range(5)]
    assert {e.action for e in fake.received[1:]} == {"789"}
    assert [t.status for t in fake.tokens] == [200]
    assert {r.login_customer_id for r in fake.requests} == {None}  # Data Manager: loginAccount in the body
    assert fake.requests[0].body["destinations"][0]["loginAccount"]["accountId"] == "9876543210"
    log = router.log_path.read_text()
    for secret in (CLIENT_SECRET, REFRESH, str(fake.tokens[0].access_token)):
        assert secret not in log


def test_expired_token_is_refreshed_after_401(
    router_for: Callable[[str], RouterProcess], google: tuple[GoogleFake, FakeServer]
) -> None:
    """Google answers 401 once the token expired: the router refreshes it and delivers."""
    fake, _ = google
    router = router_for("data_manager")
    assert post(router, lead(1)).status_code == 202
    wait_until(lambda: len(fake.received) == 1)
    fake.expire_tokens()
    assert post(router, lead(2)).status_code == 202
    wait_until(lambda: len(fake.received) == 2)
    assert [r.status for r in fake.requests] == [200, 401, 200]
    assert [t.status for t in fake.tokens] == [200, 200]


def test_revoked_refresh_token_dead_letters_loudly(
    router_for: Callable[[str], RouterProcess], google: tuple[GoogleFake, FakeServer]
) -> None:
    """invalid_grant: nothing is sent, the event is a dead letter saying what to do, asked only once."""
    fake, _ = google
    fake.revoke(REFRESH)
    router = router_for("data_manager")
    assert post(router, {"events": [lead(1), lead(2)]}).status_code == 202
    wait_until(lambda: len(log_events(router, "delivery_dropped")) == 2)
    assert fake.requests == [] and [t.error for t in fake.tokens] == ["invalid_grant"]
    [refused] = log_events(router, "credentials_refused")
    assert "invalid_grant" in refused["reason"] and "refresh_token" in refused["reason"]
    letters = dead_letters(router)
    assert sorted(d["event_id"] for d in letters) == ["lead-1", "lead-2"]
    assert all("credentials refused" in d["reason"] and "revoked" in d["reason"] for d in letters)


def test_fail_fast_record_is_isolated_by_bisecting(
    router_for: Callable[[str], RouterProcess], google: tuple[GoogleFake, FakeServer]
) -> None:
    """Data Manager refuses a whole request for one record: the router splits it, the rest lands."""
    fake, _ = google
    fake.fail("lead-2", "INVALID_EVENT", "The event is not valid.")
    router = router_for("data_manager")
    assert post(router, {"events": [lead(i) for i in range(4)]}).status_code == 202
    wait_until(lambda: len(log_events(router, "delivery_dropped")) == 1)
    wait_until(lambda: len(fake.received) == 3)
    assert sorted(str(i) for i in fake.ids()) == ["lead-0", "lead-1", "lead-3"]
    [letter] = dead_letters(router)
    assert letter["event_id"] == "lead-2" and "INVALID_EVENT" in letter["reason"]


def test_ads_partial_failure_row_by_row(
    router_for: Callable[[str], RouterProcess], google: tuple[GoogleFake, FakeServer]
) -> None:
    """Good rows delivered, already-exists delivered, permanent dead-lettered with its message, transient
    retried and delivered: nothing lost, nothing double counted."""
    fake, _ = google
    fake.fail("ord-dup", "conversionUploadError.CLICK_CONVERSION_ALREADY_EXISTS", "Already uploaded.")
    fake.fail("ord-bad", "conversionUploadError.EXPIRED_EVENT", "The click occurred too long ago.")
    fake.fail("ord-flaky", "internalError.TRANSIENT_ERROR", "Please retry.", count=1)
    router = router_for("google_ads")
    names = ["ord-1", "ord-dup", "ord-bad", "ord-flaky", "ord-2"]
    events = [
        {
            "event_name": "purchase",
            "event_id": f"evt-{name}",
            "action_source": "crm",
            "user": {"email": f"{name}@example.com", "phone": "+1 650 555 1212"},
            "ids": {"gclid": f"Cj0-{name}"},
            "properties": {"value": 10, "currency": "EUR", "order_id": name},
        }
        for name in names
    ]
    assert post(router, {"events": events}).status_code == 202
    wait_until(lambda: sorted(str(i) for i in fake.ids()) == ["ord-1", "ord-2", "ord-flaky"])
    wait_until(lambda: len(log_events(router, "delivery_ok")) == 4)
    first, retry = fake.requests[0], fake.requests[1]
    assert (first.n_records, sorted(first.row_errors)) == (
        5,
        sorted(
            [
                "conversionUploadError.CLICK_CONVERSION_ALREADY_EXISTS",
                "conversionUploadError.EXPIRED_EVENT",
                "internalError.TRANSIENT_ERROR",
            ]
        ),
    )
    assert (retry.n_records, retry.row_errors) == (1, [])
    assert first.login_customer_id == "9876543210" and first.body["partialFailure"] is True
    delivered = {entry["event_id"] for entry in log_events(router, "delivery_ok")}
    assert delivered == {"evt-ord-1", "evt-ord-dup", "evt-ord-flaky", "evt-ord-2"}
    [letter] = dead_letters(router)
    assert letter["event_id"] == "evt-ord-bad"
    assert "EXPIRED_EVENT" in letter["reason"] and "too long ago" in letter["reason"]
    assert len(fake.requests) == 2
