"""One event fanned out by `router serve` to five loopback platforms, each in its own schema and hashing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from destinations.meta.adapter import API_VERSION
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake
from tests.fakes.pinterest import PinterestFake
from tests.fakes.reddit import RedditFake
from tests.fakes.server import FakeServer, serve
from tests.fakes.snap import SnapFake
from tests.fakes.tiktok import TikTokFake

KEY = "pk_web_fanout_key"
TOKENS = {
    name: f"canary-{name}-token-0123456789" for name in ("meta", "tiktok", "snap", "pinterest", "reddit")
}


def sha(text: str) -> str:
    """SHA-256 hex of the normalized plaintext."""
    return hashlib.sha256(text.encode()).hexdigest()


def config(queue: Path, urls: dict[str, str]) -> str:
    """A router.yaml with one destination per platform, each pointed at its fake."""
    return f"""
queue: {{url: "sqlite:///{queue}"}}
identity: {{default_phone_region: US}}
dispatch: {{poll_interval: 0.05, linger: 0, backoff_base: 0.05, backoff_cap: 0.2}}
# US test traffic without consent signals: sent in full (the EEA-safe default: test_consent*.py)
consent: {{when_unknown: send}}
sources:
  - {{id: web, kind: browser, key: {KEY}, allow_money_events: true}}
destinations:
  - {{id: meta_main, type: meta, pixel_id: "111", access_token: {TOKENS["meta"]}, base_url: "{urls["meta"]}"}}
  - {{id: tiktok_main, type: tiktok, pixel_code: C4PIXEL, access_token: {TOKENS["tiktok"]},
      base_url: "{urls["tiktok"]}"}}
  - {{id: snap_main, type: snap, pixel_id: a1b2c3d4-e5f6-7890-abcd-ef1234567890,
      access_token: {TOKENS["snap"]},
      base_url: "{urls["snap"]}"}}
  - {{id: pinterest_main, type: pinterest, ad_account_id: "549755885175", access_token: {TOKENS["pinterest"]},
      base_url: "{urls["pinterest"]}"}}
  - {{id: reddit_main, type: reddit, pixel_id: t2_pixel, access_token: {TOKENS["reddit"]},
      base_url: "{urls["reddit"]}"}}
"""


EVENT: dict[str, Any] = {
    "event_name": "purchase",
    "event_id": "order-5005",
    "page": {"url": "https://shop.example.com/thanks?ttclid=TT.1&ScCid=SC-1&rdt_cid=RD1&epik=EP1"},
    "user": {"email": " Jane.Doe@Example.com ", "phone": "+1 (650) 555-1212", "first_name": "Jane"},
    "properties": {
        "value": 42.5,
        "currency": "usd",
        "order_id": "5005",
        "contents": [{"id": "sku-1", "quantity": 2, "price": 21.25}],
    },
}


@pytest.fixture
def platforms() -> Iterator[dict[str, tuple[Any, FakeServer]]]:
    """The five fakes on loopback ports."""
    fakes: dict[str, Any] = {
        "meta": MetaFake(access_token=TOKENS["meta"], pixel_id="111", version=API_VERSION),
        "tiktok": TikTokFake(access_token=TOKENS["tiktok"], pixel_code="C4PIXEL"),
        "snap": SnapFake(access_token=TOKENS["snap"], pixel_id="a1b2c3d4-e5f6-7890-abcd-ef1234567890"),
        "pinterest": PinterestFake(access_token=TOKENS["pinterest"], ad_account_id="549755885175"),
        "reddit": RedditFake(access_token=TOKENS["reddit"], pixel_id="t2_pixel"),
    }
    with ExitStack() as stack:
        yield {name: (fake, stack.enter_context(serve(fake.app))) for name, fake in fakes.items()}


def test_one_purchase_reaches_all_five_in_their_own_shapes(
    tmp_path: Path, platforms: dict[str, tuple[Any, FakeServer]]
) -> None:
    """Each platform gets the event once, with its own time unit, phone form and dedup field."""
    path = tmp_path / "router.yaml"
    path.write_text(config(tmp_path / "q.db", {name: server.url for name, (_, server) in platforms.items()}))
    headers = {
        "Authorization": f"Bearer {KEY}",
        "User-Agent": "Mozilla/5.0 (fanout)",
        "X-Forwarded-For": "203.0.113.50",
    }
    with RouterProcess(path, tmp_path / "router.log") as router:
        answer = httpx.post(f"{router.url}/v1/events", json=EVENT, headers=headers, timeout=10)
        assert answer.json()["results"][0]["status"] == "accepted"
        deadline = time.monotonic() + 20
        while any(not fake.received for fake, _ in platforms.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    got = {name: fake.received for name, (fake, _) in platforms.items()}
    assert {name: len(events) for name, events in got.items()} == dict.fromkeys(platforms, 1)
    for name, (fake, _) in platforms.items():
        assert fake.event_ids() == ["order-5005"], name
    meta, tiktok = got["meta"][0].event, got["tiktok"][0].event
    assert meta["user_data"]["ph"] == [sha("16505551212")]  # Meta: no +
    assert tiktok["user"]["phone"] == [sha("+16505551212")]  # TikTok: E.164 with +
    assert tiktok["user"]["ttclid"] == "TT.1"
    assert meta["event_time"] == tiktok["event_time"]  # both in seconds
    reddit = got["reddit"][0].event
    assert reddit["event_at"] // 1000 == meta["event_time"]  # Reddit: milliseconds
    assert reddit["click_id"] == "RD1"
    pinterest = got["pinterest"][0].event
    assert pinterest["custom_data"]["value"] == "42.5"  # Pinterest: value as a string
    assert pinterest["user_data"]["em"] == [sha("jane.doe@example.com")]
    snap = got["snap"][0].event
    assert snap["user_data"]["sc_click_id"] == "SC-1"
    assert snap["user_data"]["fn"] in ([sha("jane")], sha("jane"))
    log = (tmp_path / "router.log").read_text()
    assert all(token not in log for token in TOKENS.values())


def test_preview_shows_all_five_with_secrets_masked(tmp_path: Path) -> None:
    """`router preview` prints one request per platform, and no token in clear."""
    urls = {name: f"http://127.0.0.1:{9000 + i}" for i, name in enumerate(TOKENS)}
    path = tmp_path / "router.yaml"
    path.write_text(config(tmp_path / "q.db", urls))
    event = {
        **EVENT,
        "action_source": "website",
        "user": {**EVENT["user"], "ip": "203.0.113.50", "user_agent": "Mozilla/5.0"},
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    result = subprocess.run(
        [sys.executable, "-m", "router", "preview", str(tmp_path / "event.json"), "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert sorted(shown) == ["meta_main", "pinterest_main", "reddit_main", "snap_main", "tiktok_main"]
    assert all(isinstance(requests, list) and len(requests) == 1 for requests in shown.values())
    assert all(token not in result.stdout for token in TOKENS.values())
    assert "access_token=***" in shown["snap_main"][0]["url"]
