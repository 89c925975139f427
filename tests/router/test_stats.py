"""Stats: events ingested over HTTP show up in `router stats --json` and GET /admin/stats."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from destinations.meta.adapter import API_VERSION
from router.app import create_app
from router.cli import main
from router.config import Config, load
from tests.conftest import BACKEND_SECRET, META_TOKEN, WEB_KEY, config_text
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer

ADMIN_TOKEN = "admin-test-token-0123456789"
ADMIN = f"admin:\n  token: {ADMIN_TOKEN}\n"
WEB = {
    "Authorization": f"Bearer {WEB_KEY}",
    "Content-Type": "application/json",
    "User-Agent": "Mozilla/5.0 (test)",
    "X-Forwarded-For": "203.0.113.7",
}
BACKEND = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}
FBC = "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgE"
FBP = "fb.1.1554763741205.1098115397"


def purchase(event_id: str, user: dict[str, str], ids: dict[str, str] | None = None) -> dict[str, Any]:
    """A purchase with the given user fields and ids."""
    return {
        "event_name": "purchase",
        "event_id": event_id,
        "user": user,
        "ids": ids or {},
        "properties": {"value": 10, "currency": "USD"},
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, TestClient]]:
    """A config file with an admin token and Meta on a loopback fake, and a client on its app."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id="1234567890", version=API_VERSION)
    with FakeServer(fake.app) as server:
        path = tmp_path / "router.yaml"
        path.write_text(config_text(tmp_path / "queue.db", meta_url=server.url, extra=ADMIN))
        with TestClient(create_app(load(path)), base_url="http://router.test") as client:
            yield path, client


def ingest(client: TestClient) -> None:
    """Four events (one sent twice): full browser identity, malformed values, external id + IP/UA, and
    a browser event without page URL that Meta cannot take (dead)."""
    full = purchase("s-1", {"email": "jane@example.com"}, {"fbc": FBC, "fbp": FBP})
    full["page"] = {"url": "https://shop.example.com/thanks"}
    assert client.post("/v1/events", json=full, headers=WEB).status_code == 202
    assert client.post("/v1/events", json=full, headers=WEB).json()["results"][0]["status"] == "duplicate"
    broken = purchase("s-2", {"email": "joe@example.com", "phone": "12345"}, {"fbc": "fb.1.123.abc"})
    assert client.post("/v1/events", json=broken, headers=BACKEND).status_code == 202
    server = purchase("s-3", {"external_id": "user-9", "ip": "198.51.100.4", "user_agent": "curl/8"})
    assert client.post("/v1/events", json=server, headers=BACKEND).status_code == 202
    pageless = purchase("s-4", {"email": "ann@example.com"})
    assert client.post("/v1/events", json=pageless, headers=WEB).status_code == 202


def settled(client: TestClient, timeout: float = 10.0) -> dict[str, Any]:
    """/admin/stats once every accepted Meta delivery was delivered, dead or skipped."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert answer.status_code == 200
        hour = answer.json()["destinations"]["meta_main"]["last_hour"]
        if hour["delivered"] + hour["dead"] + hour["skipped"] >= 4 or time.monotonic() > deadline:
            return dict(answer.json())
        time.sleep(0.05)


DEAD_REASON = "website events need user.user_agent and page.url (Meta requires both)"
EXPECTED_WINDOW = {
    "accepted": 4,
    "delivered": 3,
    "retrying": 0,
    "dead": 1,
    "skipped": 0,
    "reasons": {"retrying": [], "dead": [[DEAD_REASON, 1]], "skipped": []},
    "match": {
        "events": 4,
        "shares": {
            "email": 75.0,
            "phone": 0.0,
            "click_id": 25.0,
            "ip_ua": 75.0,
            "cookie": 25.0,
            "external_id": 25.0,
        },
        "malformed": {"fbc": 1, "phone": 1},
        "score": 4.1,  # 3 * 0.75 + 2 * 0.25 + 1.5 * 0.75 + 0.5 * 0.25 + 0.5 * 0.25 = 4.125
    },
    "consent": {"full:unknown": 4},  # no consent sent; the fixture's config sends such events in full
}


def test_admin_stats_and_the_cli_report_the_same_exact_numbers(
    served: tuple[Path, TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    """Accepted, delivered and match quality per window, over HTTP and from `router stats --json`."""
    path, client = served
    ingest(client)
    document = settled(client)
    meta = document["destinations"]["meta_main"]
    assert meta == {"last_hour": EXPECTED_WINDOW, "last_day": EXPECTED_WINDOW}
    capsys.readouterr()
    assert main(["stats", "--json", "--config", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["destinations"] == document["destinations"]


def test_the_text_report_shows_counts_match_quality_and_no_raw_identifiers(
    served: tuple[Path, TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    """`router stats` prints each window's counts and score; no email or phone appears."""
    path, client = served
    ingest(client)
    settled(client)
    capsys.readouterr()
    assert main(["stats", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "meta_main" in out and "last hour: accepted 4  delivered 3  retrying 0  dead 1" in out
    assert "match quality 4.1/10 over 4 event(s)" in out and "malformed: fbc 1  phone 1" in out
    assert "@example.com" not in out and "user-9" not in out and "12345" not in out


def test_admin_stats_needs_the_admin_token(served: tuple[Path, TestClient]) -> None:
    """No or a wrong bearer token: 401."""
    _, client = served
    assert client.get("/admin/stats").status_code == 401
    wrong = client.get("/admin/stats", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"


def test_admin_stats_is_disabled_without_an_admin_token(client: TestClient) -> None:
    """A config with no admin token serves no admin endpoint: 404 even with a bearer."""
    answer = client.get("/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 404


def test_make_config_builds_the_admin_token(make_config: Callable[..., Config]) -> None:
    """The `admin.token` appended to the shared test config is the one /admin/stats checks."""
    config = make_config(extra=ADMIN)
    assert config.admin_token is not None and config.admin_token.reveal() == ADMIN_TOKEN
