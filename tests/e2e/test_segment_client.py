"""Segment's Python SDK (segment-analytics-python from PyPI) pointed at `router serve`: calls reach Meta."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from segment.analytics.client import Client
from segment.analytics.request import APIError

from destinations.meta.adapter import API_VERSION
from tests.conftest import BACKEND_SECRET, META_TOKEN, config_text
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer, serve

PIXEL = "1234567890"
PAGE = {"url": "https://shop.example.com/thanks", "title": "Thanks"}
PARKED = f"""  - id: meta_parked
    type: meta
    pixel_id: "{PIXEL}"
    access_token: {META_TOKEN}
    base_url: http://127.0.0.1:9
"""
"""A second destination nobody listens for: its pending deliveries keep every event row in the queue
(delivered rows are pruned), so the test can read the canonical events after Meta has them."""


@pytest.fixture
def meta_server() -> Iterator[tuple[MetaFake, FakeServer]]:
    """A fake Meta Graph API on a loopback port, enforcing the CAPI contract."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id=PIXEL, version=API_VERSION)
    with serve(fake.app) as server:
        yield fake, server


@pytest.fixture
def meta(meta_server: tuple[MetaFake, FakeServer]) -> MetaFake:
    """The fake Meta's record of what it received."""
    return meta_server[0]


@pytest.fixture
def router(tmp_path: Path, meta_server: tuple[MetaFake, FakeServer]) -> Iterator[RouterProcess]:
    """The router as a real process, delivering to the fake Meta."""
    config = tmp_path / "router.yaml"
    config.write_text(config_text(tmp_path / "queue.db", meta_url=meta_server[1].url, extra=PARKED))
    with RouterProcess(config, tmp_path / "router.log") as process:
        yield process


def stored(tmp_path: Path) -> list[dict[str, Any]]:
    """The canonical payloads the router queued."""
    with sqlite3.connect(tmp_path / "queue.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT payload FROM events ORDER BY rowid")]


def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    """Poll until the predicate holds, failing the test on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def context(**extra: Any) -> dict[str, Any]:
    """What a shop backend forwards about the shopper: IP, user agent, page and traits."""
    return {"ip": "203.0.113.77", "userAgent": "Mozilla/5.0 (segment-e2e)", "page": PAGE, **extra}


def test_sync_track_arrives_as_a_canonical_purchase_and_at_meta(
    router: RouterProcess, meta: MetaFake, tmp_path: Path
) -> None:
    """client.track("Order Completed") in sync mode: queued as purchase, sent to Meta as Purchase."""
    client = Client(BACKEND_SECRET, host=router.url, sync_mode=True, max_retries=0)
    client.track(
        user_id="user-1001",
        event="Order Completed",
        properties={
            "order_id": "1001",
            "revenue": 42.5,
            "currency": "eur",
            "products": [{"product_id": "sku-1", "quantity": 2, "price": 21.25}],
        },
        context=context(traits={"email": " Jane.Doe@Example.com "}),
        message_id="seg-order-1001",
    )
    [event] = stored(tmp_path)
    assert (event["event_name"], event["event_id"], event["source"]) == (
        "purchase",
        "seg-order-1001",
        "backend",
    )
    assert event["properties"]["value"] == 42.5 and event["properties"]["currency"] == "EUR"
    wait_until(lambda: len(meta.received) == 1)
    sent = meta.received[0].event
    assert sent["event_name"] == "Purchase"
    assert sent["event_id"] == "seg-order-1001"
    assert sent["event_source_url"] == PAGE["url"]
    assert sent["user_data"]["em"] == [hashlib.sha256(b"jane.doe@example.com").hexdigest()]
    assert sent["user_data"]["external_id"] == [hashlib.sha256(b"user-1001").hexdigest()]
    assert sent["user_data"]["client_ip_address"] == "203.0.113.77"
    assert sent["custom_data"]["value"] == 42.5 and sent["custom_data"]["currency"] == "EUR"
    assert sent["custom_data"]["contents"] == [{"id": "sku-1", "quantity": 2, "item_price": 21.25}]
    assert meta.violations == []


def test_a_queued_gzip_batch_is_flushed_and_delivered(
    router: RouterProcess, meta: MetaFake, tmp_path: Path
) -> None:
    """The SDK's background consumer sends identify, page and track calls as a gzipped batch on flush()."""
    client = Client(BACKEND_SECRET, host=router.url, gzip=True, upload_size=50, upload_interval=0.05)
    client.identify("user-2", {"email": "sam@example.com"})
    client.page(
        "user-2",
        name="Home",
        properties={"url": "https://shop.example.com/", "title": "Home"},
        context={"userAgent": "Mozilla/5.0 (segment-e2e)", "ip": "203.0.113.78"},
    )
    for i in range(3):
        client.track(
            "user-2",
            "Product Added",
            {"product_id": f"sku-{i}", "price": 5, "quantity": 1},
            context=context(),
            message_id=f"add-{i}",
        )
    client.track(
        "user-2",
        "Signed Up",
        {"type": "organic"},
        context=context(traits={"email": "sam@example.com"}),
        message_id="signup-2",
    )
    client.flush()
    client.join()
    events = stored(tmp_path)
    assert sorted(e["event_name"] for e in events) == [
        "add_to_cart",
        "add_to_cart",
        "add_to_cart",
        "page_view",
        "sign_up",
    ]
    signup = next(e for e in events if e["event_id"] == "signup-2")
    assert signup["properties"] == {"type": "organic"}
    assert signup["hashed"]["email"] == hashlib.sha256(b"sam@example.com").hexdigest()
    wait_until(lambda: len(meta.received) == 5)
    by_id = {r.event["event_id"]: r.event["event_name"] for r in meta.received}
    assert {k: v for k, v in by_id.items() if k.startswith(("add-", "signup"))} == {
        "add-0": "AddToCart",
        "add-1": "AddToCart",
        "add-2": "AddToCart",
        "signup-2": "CompleteRegistration",
    }
    assert sorted(by_id.values()).count("PageView") == 1
    assert meta.violations == []


def test_a_resent_message_id_is_delivered_once(router: RouterProcess, meta: MetaFake, tmp_path: Path) -> None:
    """The same messageId sent twice (an SDK retry) is queued and delivered once."""
    client = Client(BACKEND_SECRET, host=router.url, sync_mode=True, max_retries=0)
    for _ in range(2):
        client.track(
            "user-3",
            "Order Completed",
            {"order_id": "3", "revenue": 9, "currency": "USD"},
            context=context(),
            message_id="once-3",
        )
    assert len(stored(tmp_path)) == 1
    wait_until(lambda: len(meta.received) == 1)
    time.sleep(0.3)
    assert meta.event_ids() == ["once-3"]


def test_a_wrong_write_key_is_an_api_error_the_sdk_reports(router: RouterProcess, tmp_path: Path) -> None:
    """An unknown write key: the SDK raises APIError 401 with the router's code and message."""
    client = Client("sk_wrong", host=router.url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as caught:
        client.track("user-4", "Order Completed", {"revenue": 1}, message_id="nope")
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert stored(tmp_path) == []
