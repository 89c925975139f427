"""Canary personal data through the whole path: it must appear in no log line and nowhere on disk."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import httpx

from destinations.meta.adapter import API_VERSION
from tests.conftest import BACKEND_SECRET, META_TOKEN, WEB_KEY, config_text
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake
from tests.fakes.server import serve

CANARIES = {
    "email": "Canary.Person+e2e@Example-Canary.com",
    "phone": "+1 650 555 0147",
    "first_name": "Canaryfirstname",
    "last_name": "Canarylastname",
    "date_of_birth": "1971-03-29",
    "city": "Canarycityville",
    "state": "Canarystate",
    "zip": "94025-8811",
    "external_id": "CANARY-CUSTOMER-77102",
}


def forms(value: str) -> set[str]:
    """The raw canary and the forms a leak could take: case, URL-encoding, normalized digits."""
    digits = "".join(ch for ch in value if ch.isdigit())
    found = {value, value.lower(), value.upper(), urllib.parse.quote(value), urllib.parse.quote_plus(value)}
    if len(digits) >= 8:
        found.add(digits)
    return found


def _settled(fake: MetaFake, log: Path) -> bool:
    text = log.read_text()
    return len(fake.received) >= 1 and '"delivery_dropped"' in text and '"delivery_ok"' in text


def test_canary_personal_data_is_never_logged_or_stored(tmp_path: Path) -> None:
    """Accepted, rejected and failed-delivery paths all run; logs and every file stay free of canaries."""
    fake = MetaFake(access_token=META_TOKEN, pixel_id="1234567890", version=API_VERSION)
    user = dict(CANARIES)
    with serve(fake.app) as server:
        config = tmp_path / "router.yaml"
        config.write_text(config_text(tmp_path / "queue.db", meta_url=server.url))
        with RouterProcess(config, tmp_path / "router.log", env={"LOG_LEVEL": "debug"}) as router:
            good = {
                "event_name": "purchase",
                "event_id": "canary-ok",
                "page": {"url": "https://s.example/"},
                "user": user,
                "properties": {"value": 1, "currency": "USD"},
            }
            rejected = {"event_name": "lead", "user": {**user, "email": f"not-an-email {CANARIES['email']}"}}
            bad_phone = {"event_name": "lead", "user": {"phone": "555 0147", "email": CANARIES["email"]}}
            auth = {"Authorization": f"Bearer {WEB_KEY}", "User-Agent": "canary-agent/1.0"}
            answer = httpx.post(
                f"{router.url}/v1/events",
                headers=auth,
                json={"events": [good, rejected, bad_phone]},
                timeout=10,
            )
            assert [r["status"] for r in answer.json()["results"]] == ["accepted", "rejected", "accepted"]
            fake.set_mode("permanent", count=1)
            server_event = {
                "event_name": "lead",
                "event_id": "canary-server",
                "action_source": "crm",
                "user": user,
            }
            httpx.post(
                f"{router.url}/v1/events",
                json=server_event,
                timeout=10,
                headers={"Authorization": f"Bearer {BACKEND_SECRET}"},
            )
            deadline = time.monotonic() + 15
            while not _settled(fake, router.log_path) and time.monotonic() < deadline:
                time.sleep(0.05)
            router.terminate()
    log = (tmp_path / "router.log").read_text()
    assert '"event_accepted"' in log and '"event_rejected"' in log
    assert len(log.splitlines()) >= 8
    files = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file() and path != config}
    assert any(p.name.startswith("queue.db") for p in files)
    for field, value in CANARIES.items():
        for form in forms(value):
            for line in log.splitlines():
                assert form not in line, f"{field} canary in log line: {json.loads(line).get('event')}"
            for path, content in files.items():
                assert form.encode() not in content, f"{field} canary in {path.name}"
