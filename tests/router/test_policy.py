"""Source policy: the server-side Origin check on every browser endpoint, event lists and money events."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from router import policy
from router.app import create_app
from router.config import Config, Source
from router.secret import Secret
from tests.conftest import BACKEND_SECRET, WEB_KEY

SHOP = "https://shop.example.com"
MEASUREMENT_ID = "G-POLICY1"
WEB = {"Authorization": f"Bearer {WEB_KEY}", "Content-Type": "application/json"}
BACKEND = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}


def browser(**fields: Any) -> Source:
    """A browser source with the given policy fields."""
    return Source("web", "browser", Secret(WEB_KEY), **fields)


def event(name: str = "page_view", event_id: str = "e-1", **properties: Any) -> dict[str, Any]:
    """A minimal canonical event."""
    found: dict[str, Any] = {"event_name": name, "event_id": event_id, "page": {"url": f"{SHOP}/p"}}
    return {**found, "properties": properties} if properties else found


def stored(tmp_path: Path) -> list[str]:
    """The event names in the SQLite queue file."""
    with sqlite3.connect(tmp_path / "queue.db") as db:
        return [json.loads(row[0])["event_name"] for row in db.execute("SELECT payload FROM events")]


def with_web(config: Config, **fields: Any) -> Config:
    """The config with its browser source's policy fields replaced."""
    web = replace(config.sources[0], **fields)
    return replace(config, sources=(web, *config.sources[1:]))


@pytest.fixture
def app(make_config: Callable[..., Config]) -> Callable[..., TestClient]:
    """A factory of test clients whose browser source has the given policy fields."""

    def build(**fields: Any) -> TestClient:
        return TestClient(create_app(with_web(make_config(), **fields)), base_url="https://track.shop.test")

    return build


@pytest.fixture
def locked(app: Callable[..., TestClient]) -> Iterator[TestClient]:
    """A browser source locked to the shop's origin, money events allowed, GA4 id owned."""
    with app(
        allowed_origins=(SHOP,), ga4_measurement_ids=(MEASUREMENT_ID,), allow_money_events=True
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("source", "origin", "refused"),
    [
        (browser(), None, False),
        (browser(), "https://evil.example", False),
        (browser(allowed_origins=(SHOP,)), SHOP, False),
        (browser(allowed_origins=(SHOP,)), "https://evil.example", True),
        (browser(allowed_origins=(SHOP,)), "null", True),
        (browser(allowed_origins=(SHOP,)), None, True),
        (browser(allowed_origins=(SHOP,), allow_missing_origin=True), None, False),
        (browser(allowed_origins=(SHOP,), allow_missing_origin=True), "https://evil.example", True),
        (Source("backend", "server", Secret(BACKEND_SECRET)), None, False),
    ],
)
def test_origin_refusal_table(source: Source, origin: str | None, refused: bool) -> None:
    """Listed origins pass; others and (unless allowed) a missing Origin are refused; server sources pass."""
    assert (policy.origin_refusal(source, origin) is not None) is refused


@pytest.mark.parametrize(
    ("document", "money"),
    [
        (event("purchase"), True),
        (event("add_to_cart", value=3), True),
        (event("add_to_cart", value=0), False),
        (event("lead", value=True), False),
        (event("page_view"), False),
    ],
)
def test_money_events_are_purchases_and_positive_values(document: dict[str, Any], money: bool) -> None:
    """A purchase, or any event with a positive numeric properties.value, is a money event."""
    assert policy.is_money(document) is money


@pytest.mark.parametrize(
    ("origin", "status"),
    [(SHOP, 202), ("https://evil.example", 403), (None, 403)],
    ids=["listed", "other", "none"],
)
def test_v1_events_checks_the_origin_of_a_browser_key(
    locked: TestClient, origin: str | None, status: int
) -> None:
    """POST /v1/events with a browser key: the server-side Origin check, no Origin included."""
    headers = {**WEB, "Origin": origin} if origin else WEB
    response = locked.post("/v1/events", headers=headers, json=event())
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "forbidden_origin"
        assert "allowed_origins" in response.json()["error"]["message"]


def test_v1_events_server_source_needs_no_origin(locked: TestClient) -> None:
    """A server source is never subject to the browser Origin check."""
    assert locked.post("/v1/events", headers=BACKEND, json=event("purchase")).status_code == 202


@pytest.mark.parametrize(("origin", "status"), [(SHOP, 200), ("https://evil.example", 403), (None, 403)])
def test_collect_checks_the_origin(locked: TestClient, origin: str | None, status: int) -> None:
    """The site tag's /collect: the same check, a missing Origin refused."""
    headers = {"Content-Type": "text/plain", **({"Origin": origin} if origin else {})}
    body = json.dumps({"key": WEB_KEY, "events": [event()]})
    assert locked.post("/collect", headers=headers, content=body).status_code == status


@pytest.mark.parametrize(("origin", "status"), [(SHOP, 204), ("https://evil.example", 403), (None, 403)])
def test_ga4_collect_checks_the_origin(locked: TestClient, origin: str | None, status: int) -> None:
    """/g/collect: the same check; an image hit without Origin needs allow_missing_origin."""
    headers = {"Origin": origin} if origin else {}
    assert locked.get(f"/g/collect?tid={MEASUREMENT_ID}&en=page_view", headers=headers).status_code == status


@pytest.mark.parametrize(("origin", "status"), [(SHOP, 200), ("https://evil.example", 403), (None, 403)])
def test_segment_checks_the_origin(locked: TestClient, origin: str | None, status: int) -> None:
    """The Segment endpoints: the same check for a browser write key."""
    headers = {"Content-Type": "text/plain", **({"Origin": origin} if origin else {})}
    body = json.dumps({"writeKey": WEB_KEY, "event": "Product Viewed", "properties": {"product_id": "p"}})
    assert locked.post("/v1/t", headers=headers, content=body).status_code == status


def test_allow_missing_origin_lets_non_browser_clients_in(app: Callable[..., TestClient]) -> None:
    """With allow_missing_origin: true, no Origin passes and a wrong one is still refused."""
    with app(allowed_origins=(SHOP,), allow_missing_origin=True) as client:
        assert client.post("/v1/events", headers=WEB, json=event()).status_code == 202
        other = client.post("/v1/events", headers={**WEB, "Origin": "https://evil.example"}, json=event())
        assert other.status_code == 403


def test_event_list_rejects_other_events_one_by_one(app: Callable[..., TestClient], tmp_path: Path) -> None:
    """`events: [page_view, purchase]`: a lead is rejected with its own error; aliases fold first."""
    with app(events=("page_view", "purchase"), allow_money_events=True) as client:
        batch = {"events": [event(), event("lead", "e-2"), event("Purchase", "e-3")]}
        results = client.post("/v1/events", headers=WEB, json=batch).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["errors"][0]["path"] == "/event_name"
    assert "page_view, purchase" in results[1]["errors"][0]["message"]
    assert stored(tmp_path) == ["page_view", "purchase"]


def test_browser_money_events_are_refused_by_default(app: Callable[..., TestClient], tmp_path: Path) -> None:
    """allow_money_events false: purchases and valued events from the browser key are rejected."""
    with app(allow_money_events=False) as client:
        batch = {"events": [event(), event("purchase", "e-2"), event("add_to_cart", "e-3", value=9.5)]}
        results = client.post("/v1/events", headers=WEB, json=batch).json()["results"]
        server = client.post("/v1/events", headers=BACKEND, json=event("purchase", "e-4"))
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert "allow_money_events" in results[1]["errors"][0]["message"]
    assert server.json()["results"][0]["status"] == "accepted"
    assert stored(tmp_path) == ["page_view", "purchase"]


def test_money_policy_applies_to_the_site_tag_too(app: Callable[..., TestClient]) -> None:
    """/collect ends in the same shared policy: a purchase from the tag is rejected by default."""
    with app(allow_money_events=False) as client:
        body = json.dumps({"key": WEB_KEY, "events": [event("purchase")]})
        results = client.post("/collect", headers={"Content-Type": "text/plain"}, content=body).json()[
            "results"
        ]
    assert results[0]["status"] == "rejected"


@pytest.mark.parametrize(
    "field",
    [
        {"pixel_id": "999"},
        {"destination": "meta_other"},
        {"access_token": "EAAB-stolen"},
        {"ids": {"pixel_id": "9"}},
    ],
)
def test_routing_fields_in_a_payload_are_rejected(
    make_config: Callable[..., Config], tmp_path: Path, field: dict[str, Any]
) -> None:
    """Routing and credentials come only from config: an event naming a pixel, destination or token is
    rejected by the schema and never stored, so it can never reach a platform request."""
    with TestClient(create_app(make_config())) as client:
        response = client.post("/v1/events", headers=BACKEND, json={**event("purchase"), **field})
    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert stored(tmp_path) == []
