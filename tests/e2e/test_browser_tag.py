"""The site tag in a real browser: headless Chromium on a shop page, `router serve` and a fake Meta.

Needs Debian's `chromium` (/usr/bin/chromium) and Playwright for Python; Playwright's own browser
download is not used. A missing Chromium fails the test: it is part of the suite, not optional.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from destinations.meta.adapter import API_VERSION
from tests.conftest import META_TOKEN, WEB_KEY, config_text
from tests.e2e.process import RouterProcess
from tests.e2e.tag_page import shop_app
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PIXEL = "1234567890"
LANDING_QUERY = "?fbclid=IwAR-test_1&gclid=Cj0-test&ttclid=TT-test"
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll until `probe` returns something, failing with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def queued(queue: Path, column: str, value: str) -> dict[str, Any] | None:
    """The first canonical event in the router's SQLite queue whose event_name or event_id is `value`."""
    assert column in ("event_name", "event_id")
    with sqlite3.connect(queue) as db:
        rows = db.execute(f"SELECT payload FROM events WHERE {column} = ? ORDER BY pk", (value,)).fetchall()
    return json.loads(rows[0][0]) if rows else None


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def meta() -> Iterator[tuple[MetaFake, FakeServer]]:
    """A fake Meta Conversions API on a loopback port."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id=PIXEL, version=API_VERSION)
    with serve(fake.app) as server:
        yield fake, server


@pytest.fixture
def site(tmp_path: Path, meta: tuple[MetaFake, FakeServer]) -> Iterator[tuple[FakeServer, RouterProcess]]:
    """The shop on one loopback port and the router on another, whose browser source allows only the shop."""
    config = tmp_path / "router.yaml"
    router = RouterProcess(config, tmp_path / "router.log")
    with serve(shop_app(router.url, WEB_KEY)) as shop:
        text = config_text(tmp_path / "queue.db", meta_url=meta[1].url)
        config.write_text(
            text.replace(f"key: {WEB_KEY}\n", f"key: {WEB_KEY}\n    allowed_origins: [{shop.url}]\n")
        )
        with router:
            yield shop, router


def has_cookie(context: BrowserContext, name: str) -> bool:
    """Whether the browser holds that cookie (any host, any path)."""
    return any(cookie["name"] == name for cookie in context.cookies())


def loaded(page: Page) -> None:
    """Wait until tag.js ran and handled the queued page view."""
    page.wait_for_function("window.rt && window.rt.loaded && window.pageViewId", timeout=15_000)


def test_purchase_from_a_real_browser_reaches_the_queue_meta_and_sets_cookies(
    browser: Browser,
    site: tuple[FakeServer, RouterProcess],
    meta: tuple[MetaFake, FakeServer],
    tmp_path: Path,
) -> None:
    """Land with click ids, buy on a later page: the queued purchase carries the session's click ids and an
    fbc built from the fbclid at the click time; Meta (down at first, so the event waits in the queue)
    then gets the event id track() returned; the router set _fbp, _fbc and _rt_vid on the shop (not
    Secure over http, SameSite=Lax, _rt_vid HttpOnly)."""
    shop, _ = site
    fake, _ = meta
    fake.set_mode("503")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{shop.url}/{LANDING_QUERY}")
    loaded(page)
    landing_view_id = page.evaluate("window.pageViewId")
    clicked_ms = page.evaluate("JSON.parse(sessionStorage.getItem('_rt_clicks')).fbclid[1]")
    wait_for(lambda: has_cookie(context, "_rt_vid"), "the landing page view's cookies")

    page.goto(f"{shop.url}/thanks")
    loaded(page)
    event_id = page.evaluate(
        """() => {
            rt('identify', {email: 'Jane.Doe@example.com', phone: '+1 650 555 1212'});
            return rt('track', 'purchase', {value: 42.5, currency: 'EUR', order_id: '1001',
                                            contents: [{id: 'sku-1', quantity: 2, price: 21.25}]});
        }"""
    )
    assert isinstance(event_id, str) and len(event_id) == 36

    queue = tmp_path / "queue.db"
    purchase = wait_for(lambda: queued(queue, "event_id", event_id), "the purchase in the queue")
    assert purchase["event_id"] == event_id
    assert purchase["page"]["url"] == f"{shop.url}/thanks"
    ids = purchase["ids"]
    assert (ids["fbclid"], ids["gclid"], ids["ttclid"]) == ("IwAR-test_1", "Cj0-test", "TT-test")
    assert ids["fbc"] == f"fb.1.{clicked_ms}.IwAR-test_1"
    assert purchase["hashed"]["email"] and "Jane" not in json.dumps(purchase)
    assert purchase["user"]["user_agent"].startswith("Mozilla/5.0")
    landing = wait_for(lambda: queued(queue, "event_id", landing_view_id), "the landing page view")
    assert landing["page"]["url"] == f"{shop.url}/{LANDING_QUERY}"  # the pre-load queue's callback id

    fake.set_mode("ok")
    sent = wait_for(
        lambda: [r.event for r in fake.received if r.event_id == event_id], "the purchase at Meta"
    )[0]
    assert sent["event_name"] == "Purchase"
    assert sent["user_data"]["fbc"] == ids["fbc"]
    assert sent["user_data"]["fbp"] == ids["fbp"]
    assert sent["custom_data"]["value"] == 42.5 and sent["custom_data"]["currency"] == "EUR"
    assert fake.violations == []

    jar = {c["name"]: c for c in context.cookies()}
    assert {"_fbp", "_fbc", "_rt_vid"} <= set(jar)
    assert jar["_fbc"]["value"] == ids["fbc"]
    assert jar["_fbp"]["value"] == ids["fbp"]
    assert jar["_rt_vid"]["httpOnly"] and not jar["_fbp"]["httpOnly"]
    for name in ("_fbp", "_fbc", "_rt_vid"):
        assert jar[name]["secure"] is False and jar[name]["sameSite"] == "Lax"
        assert jar[name]["expires"] > time.time() + 365 * 86400
    assert "_fbp=" in page.evaluate("document.cookie") and "_rt_vid" not in page.evaluate("document.cookie")
    context.close()


READ_ANSWER = """async ([url, key]) => {
    try {
        const answer = await fetch(url + '/collect', {
            method: 'POST', credentials: 'include', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({key, events: [{event_name: 'lead', event_id: 'lead-' + location.port}]}),
        });
        return {status: answer.status, body: await answer.json()};
    } catch (error) {
        return {error: String(error)};
    }
}"""


def test_fetch_fallback_and_cors_let_only_the_allowed_origin_in(
    browser: Browser,
    site: tuple[FakeServer, RouterProcess],
    meta: tuple[MetaFake, FakeServer],
    tmp_path: Path,
) -> None:
    """Without sendBeacon the tag falls back to fetch and the event still arrives; the shop's page may read
    a credentialed, preflighted answer; a page on another origin is refused by CORS and by /collect."""
    shop, router = site
    meta[0].set_mode("503")
    context = browser.new_context()
    context.add_init_script("Object.defineProperty(navigator, 'sendBeacon', {value: undefined})")
    page = context.new_page()
    page.goto(f"{shop.url}/thanks")
    loaded(page)
    queue = tmp_path / "queue.db"
    view_id = page.evaluate("window.pageViewId")
    wait_for(lambda: queued(queue, "event_id", view_id), "the page view sent with fetch")
    wait_for(lambda: has_cookie(context, "_rt_vid"), "the cookies set in the answer to fetch")

    answer = page.evaluate(READ_ANSWER, [router.url, WEB_KEY])
    assert answer["status"] == 200
    assert answer["body"]["results"][0]["event_id"] == f"lead-{shop.port}"

    with serve(shop_app(router.url, WEB_KEY)) as stranger:
        other = context.new_page()
        other.goto(f"{stranger.url}/thanks")
        refused = other.evaluate(READ_ANSWER, [router.url, WEB_KEY])
        assert "error" in refused and "TypeError" in refused["error"]
        other.wait_for_function("window.rt && window.rt.loaded")
        time.sleep(0.5)
    with sqlite3.connect(queue) as db:
        ids = {row[0] for row in db.execute("SELECT event_id FROM events")}
    assert f"lead-{stranger.port}" not in ids and f"lead-{shop.port}" in ids
    assert len(ids) == 2  # the shop's page view and lead; nothing from the stranger
    context.close()
