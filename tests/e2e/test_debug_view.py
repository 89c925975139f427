"""The /debug live view in real headless Chromium: token prompt, live events, payloads, outcomes, filters.

Needs Debian's `chromium` (/usr/bin/chromium) and Playwright for Python, like test_browser_tag.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from destinations.meta.adapter import API_VERSION
from tests.conftest import BACKEND_SECRET, META_TOKEN, config_text
from tests.e2e.process import RouterProcess
from tests.e2e.test_browser_tag import CHROMIUM, CHROMIUM_ARGS, PIXEL, wait_for
from tests.fakes.meta import MetaFake
from tests.fakes.server import serve

ADMIN_TOKEN = "adm-e2e-debug-token-0123456789"
EMAIL = "debug.view@example.com"
ARTIFACTS = Path(__file__).parent / "artifacts"
BACKEND = {"Authorization": f"Bearer {BACKEND_SECRET}"}


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (the same launch as the site tag test)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[tuple[RouterProcess, MetaFake]]:
    """`router serve` with an admin token, delivering to a loopback fake Meta."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id=PIXEL, version=API_VERSION)
    with serve(fake.app) as meta:
        config = tmp_path / "router.yaml"
        extra = f"admin:\n  token: {ADMIN_TOKEN}\n"
        config.write_text(config_text(tmp_path / "queue.db", meta_url=meta.url, extra=extra))
        with RouterProcess(config, tmp_path / "router.log") as process:
            yield process, fake


def post(router: RouterProcess, event: dict[str, object]) -> None:
    """Send one event to the router as the backend source."""
    answer = httpx.post(f"{router.url}/v1/events", json=event, headers=BACKEND, timeout=5)
    assert answer.status_code == 202, answer.text


def row(event_id: str) -> str:
    """CSS selector of the event's row in the page."""
    return f'tr.event[data-key="{event_id}"]'


def test_events_appear_live_with_payloads_and_outcomes(
    browser: Browser, router: tuple[RouterProcess, MetaFake]
) -> None:
    """Open /debug, give the token, post a deliverable and an undeliverable event: both show up with their
    outcome; clicking one shows the canonical event next to the hashed Meta payload; the outcome filter
    hides the other; a screenshot is saved; neither tokens nor the raw email reach the page."""
    process, fake = router
    page = browser.new_context().new_page()
    page.goto(f"{process.url}/debug")
    page.fill("#token", ADMIN_TOKEN)
    page.click("#connect")
    expect(page.locator("#state")).to_have_text("live", timeout=10_000)
    post(
        process,
        {
            "event_name": "Purchase",
            "event_id": "dv-ok",
            "action_source": "crm",
            "user": {"email": EMAIL},
            "properties": {"value": 12, "currency": "eur"},
        },
    )
    post(
        process,
        {
            "event_name": "Lead",
            "event_id": "dv-dead",
            "action_source": "website",
            "page": {"url": "https://shop.example.com/form"},
            "user": {"email": EMAIL},
        },
    )
    wait_for(lambda: fake.received, "Meta to receive the purchase")

    ok = page.locator(row("dv-ok"))
    expect(ok.locator('[data-destination="meta_main"]')).to_have_attribute(
        "data-outcome", "delivered", timeout=15_000
    )
    dead = page.locator(row("dv-dead"))
    expect(dead.locator('[data-destination="meta_main"]')).to_have_attribute(
        "data-outcome", "dead", timeout=15_000
    )

    ok.click()
    detail = page.locator("#detail")
    expect(detail.locator(".canonical")).to_contain_text('"event_id": "dv-ok"')
    payload = detail.locator('.payload[data-destination="meta_main"]')
    expect(payload).to_contain_text("HTTP 200")
    expect(payload).to_contain_text('"em"')
    expect(payload).to_contain_text("delivered")

    page.select_option("#f-outcome", "dead")
    expect(page.locator(row("dv-ok"))).to_have_count(0)
    expect(page.locator(row("dv-dead"))).to_have_count(1)
    page.select_option("#f-outcome", "")

    stats = httpx.get(f"{process.url}/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    if stats.status_code == 200:  # the stats endpoint exists: its overview shows in a panel
        expect(page.locator('#stats tr[data-destination="meta_main"]').first).to_be_visible()
    else:
        expect(page.locator("#stats")).to_be_hidden()

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "debug_view.png"
    shot.unlink(missing_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 0

    html = page.content()
    for secret in (META_TOKEN, ADMIN_TOKEN, EMAIL):
        assert secret not in html
    assert page.evaluate("sessionStorage.getItem('router.debug.token')") == ADMIN_TOKEN
