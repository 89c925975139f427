"""Canaries at scale: 3,000 events with unique personal data and canary secrets through `router serve`,
including retried (503) and permanently failed deliveries; nothing leaks into logs or the queue's storage."""

from __future__ import annotations

import re
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from destinations.meta.adapter import API_VERSION
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake
from tests.fakes.server import serve

EVENTS = 3_000
BATCH = 100
PIXEL = "1234567890"
META_TOKEN = "EAAB-CANARY-PLATFORM-TOKEN-5f1e9c0d7a2b4e6f"
BACKEND_SECRET = "sk_canary_backend_secret_8d3f2a1c9e7b"
ADMIN_TOKEN = "canary-admin-token-4c2e8f1a9b7d"
SECRETS = (META_TOKEN, BACKEND_SECRET, ADMIN_TOKEN)
PERMANENT = 12
"""Requests the fake refuses for good: the router splits a refused batch down to single events
(log2(1000) + 1 requests), so at least one event is dropped to the dead letters."""


PHONE = re.compile(r"650(\s|\+|-|%20|%2b)+555")
"""A canary phone with separators (raw or URL-encoded). Digits-only forms are matched exactly against
PHONE_DIGITS instead: a loose `650...555` also matches timestamps' microseconds and hex digests."""
PHONE_BYTES = re.compile(PHONE.pattern.encode())
WINDOWS = (re.compile(r"(?=(\d{11}))"), re.compile(r"(?=(\d{10}))"))
"""Every 11- and 10-digit window, overlapping, so a canary inside a longer digit run is still found."""


def digit_windows(text: str) -> set[str]:
    """All 10- and 11-digit substrings of the text."""
    return {window for pattern in WINDOWS for window in pattern.findall(text)}


PHONE_DIGITS = frozenset(
    form for index in range(EVENTS) for form in (f"1650555{1000 + index:04d}", f"650555{1000 + index:04d}")
)
IP = re.compile(r"198\.18\.1\d\d\.1\d\d")
AGENT = re.compile(rb"canaryagent/\d{5}\.7 \(canary-scale\)")
"""The user agent canaries, which the queue may hold (Meta needs client_user_agent)."""


def _letters(number: int) -> str:
    """A unique lower-case letter suffix for a number (names must be letters only)."""
    text = ""
    for _ in range(4):
        number, digit = divmod(number, 26)
        text += string.ascii_lowercase[digit]
    return text


def person(index: int) -> dict[str, str]:
    """The unique canary personal data of event `index`."""
    tag = _letters(index)
    return {
        "email": f"Canary.{tag}+scale@Canary-Scale-Example.com",
        "phone": f"+1 650 555 {1000 + index:04d}"[:17],
        "first_name": f"Canaryfirst{tag}",
        "last_name": f"Canarylast{tag}",
        "external_id": f"CANARY-TOKEN-{tag}-{index:05d}",
    }


def ip(index: int) -> str:
    """A unique canary IPv4 with three-digit octets, so one canary is never a substring of another."""
    return f"198.18.{100 + index // 150}.{100 + index % 150}"


def agent(index: int) -> str:
    """A unique canary user agent."""
    return f"CanaryAgent/{index:05d}.7 (canary-scale)"


def event(index: int) -> dict[str, Any]:
    """A website purchase carrying every canary of `index`."""
    return {
        "event_name": "purchase",
        "event_id": f"scale-{index:05d}",
        "action_source": "website",
        "page": {"url": "https://shop.example/checkout"},
        "user": {**person(index), "ip": ip(index), "user_agent": agent(index)},
        "properties": {"value": 10, "currency": "USD"},
    }


def config_text(queue: Path, meta_url: str) -> str:
    """router.yaml with the canary secrets, one backend source and one Meta destination."""
    return f"""
queue:
  url: sqlite:///{queue}
identity:
  default_phone_region: US
server:
  rate_limits:
    per_ip: 100000/second
    per_key: 100000/second
dispatch:
  poll_interval: 0.05
  linger: 0
  backoff_base: 0.05
  backoff_cap: 0.2
admin:
  token: {ADMIN_TOKEN}
# US test traffic without consent signals: sent in full (the EEA-safe default: test_consent*.py)
consent: {{when_unknown: send}}
sources:
  - id: backend
    kind: server
    secret: {BACKEND_SECRET}
destinations:
  - id: meta_main
    type: meta
    pixel_id: "{PIXEL}"
    access_token: {META_TOKEN}
    base_url: {meta_url}
"""


def _batches() -> Iterator[list[dict[str, Any]]]:
    for start in range(0, EVENTS, BATCH):
        yield [event(i) for i in range(start, min(start + BATCH, EVENTS))]


def _settled(router: RouterProcess) -> bool:
    """Nothing pending and the permanent failure was dropped to the dead letters."""
    depth = httpx.get(f"{router.url}/readyz", timeout=5).json().get("queue_depth")
    return depth == 0 and '"delivery_dropped"' in router.log_path.read_text()


def test_thousands_of_canaries_stay_out_of_logs_and_queue(tmp_path: Path) -> None:
    """3,000 events, retried and dead-lettered deliveries: no canary in any log line or queue file."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id=PIXEL, version=API_VERSION)
    auth = {"Authorization": f"Bearer {BACKEND_SECRET}"}
    with serve(fake.app) as server:
        config = tmp_path / "router.yaml"
        config.write_text(config_text(tmp_path / "queue.db", server.url))
        with RouterProcess(config, tmp_path / "router.log", env={"LOG_LEVEL": "debug"}) as router:
            fake.set_mode("503", count=4)
            with httpx.Client(base_url=router.url, headers=auth, timeout=30) as client:
                for number, batch in enumerate(_batches()):
                    if number == EVENTS // BATCH // 2:
                        fake.set_mode("permanent", count=PERMANENT)
                    answer = client.post("/v1/events", json={"events": batch})
                    assert answer.status_code == 202, answer.text
                    assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
            deadline = time.monotonic() + 60
            while not _settled(router) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _settled(router), "deliveries did not settle"
            queue = {p: p.read_bytes() for p in tmp_path.glob("queue.db*")}
            router.terminate()
    log = (tmp_path / "router.log").read_text()
    lines = log.splitlines()
    assert '"delivery_ok"' in log and '"delivery_dropped"' in log and '"delivery_retry' in log
    assert 0 < len(fake.received) < EVENTS
    assert any(name.name == "queue.db-wal" for name in queue) or queue, "no queue storage to inspect"
    _assert_absent(lines, queue)
    stored = b"".join(queue.values())
    assert any(ip(i).encode() in stored for i in range(EVENTS)), "the IP canaries never reached the queue"


def _assert_absent(lines: list[str], queue: dict[Path, bytes]) -> None:
    """Personal data and secrets: in no log line, in no queue file. IPs and user agents: in no log line.

    Every email, name, external id, user agent and secret contains "canary", so one case-insensitive
    search for that fragment covers each of them in every form (raw, lower/upper-case, URL-encoded);
    phones and IPs are matched by pattern, digits-only and URL-encoded forms included."""
    for line in lines:
        lowered = line.lower()
        assert "canary" not in lowered, f"a canary in log line {line[:120]}"
        assert not PHONE.search(lowered), f"a phone canary in log line {line[:120]}"
        assert not PHONE_DIGITS.intersection(digit_windows(lowered)), f"a phone canary in {line[:120]}"
        assert not IP.search(lowered), f"an IP canary in log line {line[:120]}"
    storage = AGENT.sub(b"", b"\n".join(queue.values()).lower())
    assert b"canary" not in storage, "a canary (personal data or secret) in the queue's storage"
    assert not PHONE_BYTES.search(storage), "a phone canary in the queue's storage"
    runs = digit_windows(storage.decode("latin-1"))
    assert not PHONE_DIGITS.intersection(runs), "a digits-only phone canary in the queue's storage"
