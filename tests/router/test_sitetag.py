"""The site tag: /tag.js served as cacheable JavaScript, and /collect turning beacons into stored events."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from router import sitetag
from router.app import create_app
from router.config import Config, parse
from router.context import RequestContext
from router.ingest import Ingest, Unavailable
from router.queue.factory import open_queue
from tests.conftest import BACKEND_SECRET, WEB_KEY, config_text

SHOP = "https://shop.example.com"
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}
CLICK_MS = int(time.time() * 1000) - 600_000
"""Ten minutes before the test: the landing click."""


def tag_event(**overrides: Any) -> dict[str, Any]:
    """A purchase as tag.js sends it, on a thank-you page after a landing with click ids."""
    event: dict[str, Any] = {
        "event_name": "purchase",
        "event_id": "3b1f8d2e-0c4e-4a53-9d55-6c3a0e4b9a11",
        "page": {"url": f"{SHOP}/thanks", "referrer": f"{SHOP}/cart", "title": "Thanks"},
        "user": {"email": "Jane.Doe@example.com", "language": "en-US"},
        "consent": {"ad_storage": "granted", "ad_user_data": "granted"},
        "properties": {"value": 42.5, "currency": "eur", "order_id": "1001"},
        "clicks": {"fbclid": ["IwAR-test_1", CLICK_MS], "gclid": ["Cj0-test", CLICK_MS]},
        "cookies": {"_ttp": "ttp-cookie-1", "_gcl_aw": "GCL.1767225000.Cj0-older"},
    }
    return {**event, **overrides}


def beacon(*events: Any, key: str = WEB_KEY) -> str:
    """The text/plain body tag.js sends with navigator.sendBeacon."""
    return json.dumps({"key": key, "events": list(events)})


def stored(tmp_path: Path) -> list[dict[str, Any]]:
    """The canonical events in the SQLite queue file."""
    with sqlite3.connect(tmp_path / "queue.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT payload FROM events")]


def set_cookies(response: httpx.Response) -> dict[str, Any]:
    """Set-Cookie headers of an answer, parsed: name -> morsel."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return dict(jar)


@pytest.fixture
def origin_config(tmp_path: Path) -> Callable[..., Config]:
    """A Config whose browser source allows only the shop's origin."""

    def make(cookie_domain: str | None = None) -> Config:
        text = config_text(tmp_path / "queue.db").replace(
            f"key: {WEB_KEY}\n",
            f"key: {WEB_KEY}\n    allowed_origins: [{SHOP}]\n    allow_missing_origin: true\n",
        )
        config = parse(text, {})
        return replace(config, server=replace(config.server, cookie_domain=cookie_domain))

    return make


@pytest.fixture
def shop(origin_config: Callable[..., Config]) -> Iterator[TestClient]:
    """A test client on the app whose browser source is bound to the shop's origin."""
    with TestClient(create_app(origin_config()), base_url="http://router.test") as client:
        yield client


def test_tag_js_is_served_as_cacheable_javascript(client: TestClient) -> None:
    """/tag.js: JavaScript content type, an hour of caching, an ETag, nosniff; small and self-contained."""
    response = client.get("/tag.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["etag"].startswith('"')
    assert len(response.content) < 4096
    assert b"sendBeacon" in response.content and b"import " not in response.content


def test_tag_js_revalidates_with_304(client: TestClient) -> None:
    """A matching If-None-Match is answered 304 without the body."""
    etag = client.get("/tag.js").headers["etag"]
    again = client.get("/tag.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get("/tag.js", headers={"If-None-Match": '"other"'}).status_code == 200


def test_beacon_is_stored_as_a_canonical_event(client: TestClient, tmp_path: Path) -> None:
    """A text/plain beacon -> 200 with the event id; the stored event has page, hashed user, consent,
    the session's click ids, cookies read by the tag, and fbc built from the fbclid with the click time."""
    headers = {**TEXT, "User-Agent": "Mozilla/5.0 (tag)", "X-Forwarded-For": "198.51.100.7"}
    response = client.post("/collect", headers=headers, content=beacon(tag_event()))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "results": [{"index": 0, "status": "accepted", "event_id": "3b1f8d2e-0c4e-4a53-9d55-6c3a0e4b9a11"}]
    }
    [event] = stored(tmp_path)
    assert event["action_source"] == "website"
    assert event["page"] == {"url": f"{SHOP}/thanks", "referrer": f"{SHOP}/cart", "title": "Thanks"}
    assert event["user"] == {"ip": "198.51.100.7", "user_agent": "Mozilla/5.0 (tag)", "language": "en-US"}
    assert event["hashed"]["email"] == hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert event["consent"] == {"ad_storage": "granted", "ad_user_data": "granted"}
    assert event["properties"]["currency"] == "EUR"
    ids = event["ids"]
    assert ids["fbclid"] == "IwAR-test_1"
    assert ids["fbc"] == f"fb.1.{CLICK_MS}.IwAR-test_1"
    assert ids["gclid"] == "Cj0-test"  # the session's click is newer than the _gcl_aw cookie
    assert ids["ttp"] == "ttp-cookie-1"
    assert ids["fbp"].startswith("fb.1.")
    assert "Jane" not in json.dumps(event)


def test_click_ids_on_the_page_url_win_and_a_new_fbclid_gets_now(client: TestClient, tmp_path: Path) -> None:
    """The page's own click ids override older session ones; an fbclid not in the session gets fbc now."""
    event = tag_event(page={"url": f"{SHOP}/?fbclid=IwAR-new&ttclid=TT-1"})
    client.post("/collect", headers=TEXT, content=beacon(event))
    ids = stored(tmp_path)[0]["ids"]
    assert ids["fbclid"] == "IwAR-new" and ids["ttclid"] == "TT-1"
    assert ids["fbc"].endswith(".IwAR-new") and ids["fbc"] != f"fb.1.{CLICK_MS}.IwAR-new"


def test_the_pixels_fbc_is_kept_when_it_holds_the_same_fbclid(client: TestClient, tmp_path: Path) -> None:
    """When the Meta Pixel's _fbc already carries the session's fbclid, that exact value is sent."""
    pixel_fbc = "fb.1.1767224000000.IwAR-test_1"
    event = tag_event(cookies={"_fbc": pixel_fbc, "_fbp": "fb.1.1767224000000.77"})
    response = client.post("/collect", headers=TEXT, content=beacon(event))
    ids = stored(tmp_path)[0]["ids"]
    assert ids["fbc"] == pixel_fbc and ids["fbp"] == "fb.1.1767224000000.77"
    assert "_fbc" not in set_cookies(response) and "_fbp" not in set_cookies(response)


def test_malformed_clicks_and_click_times_are_dropped_or_made_now(client: TestClient, tmp_path: Path) -> None:
    """Unknown names and bad shapes are ignored; a click time in the future becomes the receive time."""
    clicks = {
        "fbclid": ["IwAR-x", 9_999_999_999_999],
        "gclid": "not-a-pair",
        "bogus": ["x", CLICK_MS],
        "ttclid": ["has space", CLICK_MS],
        "wbraid": [7, CLICK_MS],
    }
    assert client.post("/collect", headers=TEXT, content=beacon(tag_event(clicks=clicks))).status_code == 200
    event = stored(tmp_path)[0]
    assert set(event["ids"]) == {"fbclid", "fbc", "fbp", "ttp", "gclid"}
    assert event["ids"]["gclid"] == "Cj0-older"  # from the _gcl_aw cookie, the only gclid left
    assert event["ids"]["fbc"] == f"fb.1.{event['received_ms']}.IwAR-x"


def test_beacon_sets_first_party_cookies_over_http_without_secure(client: TestClient) -> None:
    """Over plain http: _fbp, _fbc and _rt_vid are set SameSite=Lax, long-lived, not Secure (a browser
    would drop Secure cookies there); _rt_vid is HttpOnly, the pixel-readable ones are not."""
    response = client.post("/collect", headers=TEXT, content=beacon(tag_event()))
    cookies = set_cookies(response)
    assert set(cookies) == {"_fbp", "_fbc", "_rt_vid"}
    assert cookies["_fbc"].value == f"fb.1.{CLICK_MS}.IwAR-test_1"
    for morsel in cookies.values():
        assert morsel["samesite"].lower() == "lax"
        assert int(morsel["max-age"]) > 365 * 86400
        assert not morsel["secure"]
        assert morsel["domain"] == ""
    assert cookies["_rt_vid"]["httponly"] and not cookies["_fbp"]["httponly"]


def test_cookies_are_secure_behind_an_https_proxy(client: TestClient) -> None:
    """X-Forwarded-Proto: https (Cloud Run, load balancers) makes every cookie Secure."""
    headers = {**TEXT, "X-Forwarded-Proto": "https"}
    cookies = set_cookies(client.post("/collect", headers=headers, content=beacon(tag_event())))
    assert cookies and all(morsel["secure"] for morsel in cookies.values())


def test_cookies_are_secure_over_https_and_use_the_cookie_domain(
    origin_config: Callable[..., Config],
) -> None:
    """Over https the cookies are Secure, and server.cookie_domain scopes them to the shop's site."""
    config = origin_config(cookie_domain=".example.com")
    with TestClient(create_app(config), base_url="https://track.example.com") as client:
        response = client.post("/collect", headers={**TEXT, "Origin": SHOP}, content=beacon(tag_event()))
    cookies = set_cookies(response)
    assert set(cookies) == {"_fbp", "_fbc", "_rt_vid"}
    assert all(m["secure"] and m["domain"] == ".example.com" for m in cookies.values())


def test_existing_visitor_cookies_are_kept_not_reminted(client: TestClient, tmp_path: Path) -> None:
    """A returning visitor's _fbp and _rt_vid are used as they are and not set again."""
    client.cookies.set("_fbp", "fb.1.1767000000000.123")
    client.cookies.set("_rt_vid", "visitor-1")
    event = tag_event(clicks={}, cookies={})
    response = client.post("/collect", headers=TEXT, content=beacon(event))
    assert set_cookies(response) == {}
    assert stored(tmp_path)[0]["ids"]["fbp"] == "fb.1.1767000000000.123"


def test_denied_ad_storage_sets_no_cookies(client: TestClient, tmp_path: Path) -> None:
    """With ad_storage denied nothing is written to the browser, and no _fbp is minted into the event."""
    event = tag_event(consent={"ad_storage": "denied"})
    del event["clicks"], event["cookies"]
    response = client.post("/collect", headers=TEXT, content=beacon(event))
    assert response.status_code == 200
    assert set_cookies(response) == {}
    assert "fbp" not in stored(tmp_path)[0]["ids"]


def test_body_ip_and_user_agent_do_not_override_the_request(client: TestClient, tmp_path: Path) -> None:
    """For the tag, the request is the authority on the visitor's IP and user agent."""
    event = tag_event(user={"email": "a@b.co", "ip": "10.9.9.9", "user_agent": "forged"})
    headers = {**TEXT, "User-Agent": "Mozilla/5.0 real", "X-Forwarded-For": "203.0.113.4"}
    client.post("/collect", headers=headers, content=beacon(event))
    user = stored(tmp_path)[0]["user"]
    assert user["ip"] == "203.0.113.4" and user["user_agent"] == "Mozilla/5.0 real"


def test_json_content_type_is_accepted_too(client: TestClient) -> None:
    """fetch() callers may say application/json (it costs them a preflight)."""
    headers = {"Content-Type": "application/json"}
    assert client.post("/collect", headers=headers, content=beacon(tag_event())).status_code == 200


def test_events_in_one_beacon_get_results_in_order(client: TestClient) -> None:
    """Queued events go in one beacon; each gets its result, a rejected one with its paths."""
    bad = tag_event(event_id="e-2", user={"email": "not-an-email"})
    body = beacon(tag_event(event_id="e-1"), bad, "not an object", tag_event(event_id="e-1"))
    results = client.post("/collect", headers=TEXT, content=body).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "duplicate"]
    assert [e["path"] for e in results[1]["errors"]] == ["/user/email"]


def test_a_server_secret_is_refused_401(client: TestClient, tmp_path: Path) -> None:
    """/collect is for browser sources only: a backend secret in the body is 401 and nothing is stored."""
    response = client.post("/collect", headers=TEXT, content=beacon(tag_event(), key=BACKEND_SECRET))
    assert response.status_code == 401
    assert stored(tmp_path) == []
    assert BACKEND_SECRET not in response.text


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"key": "pk_unknown_key", "events": [{"event_name": "lead"}]}),
        json.dumps({"events": [{"event_name": "lead"}]}),
        json.dumps({"key": 42, "events": [{"event_name": "lead"}]}),
    ],
)
def test_a_missing_or_unknown_key_is_401(client: TestClient, body: str) -> None:
    """No key, a non-string key or a key no source has -> 401 saying where the key goes."""
    response = client.post("/collect", headers=TEXT, content=body)
    assert response.status_code == 401
    assert '"key"' in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{not json",
        "[1, 2]",
        '"text"',
        json.dumps({"key": WEB_KEY}),
        json.dumps({"key": WEB_KEY, "events": []}),
        json.dumps({"key": WEB_KEY, "events": {"event_name": "lead"}}),
        "NaN",
        json.dumps({"key": WEB_KEY, "events": [{"event_name": "purchase"}]}).replace(
            '"purchase"}', '"x", "v": NaN}'
        ),
    ],
)
def test_malformed_beacons_are_400_saying_what_to_send(client: TestClient, body: str) -> None:
    """Anything that is not {"key", "events": [...]} is 400 with a message, never a 500."""
    response = client.post("/collect", headers=TEXT, content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "event",
    [
        {"event_name": "lead", "page": "https://x"},
        {"event_name": "lead", "user": ["a"]},
        {"event_name": "lead", "clicks": [1], "cookies": "x", "consent": 5},
        {"event_name": "lead", "page": {"url": 5}, "clicks": {"fbclid": ["a", "b"]}},
        {"event_name": "lead", "cookies": {"_fbc": 1, "_fbp": "x" * 5000, "_fbp2": "x"}},
        {"event_name": ["lead"], "properties": None, "user": None, "page": None},
    ],
)
def test_odd_event_shapes_never_500(client: TestClient, event: dict[str, Any]) -> None:
    """Events of the wrong shape come back accepted or rejected per event, with a 200."""
    response = client.post("/collect", headers=TEXT, content=beacon(event))
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] in ("accepted", "rejected")


def test_wrong_content_type_is_415(client: TestClient) -> None:
    """A form post is refused with what to send instead."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/collect", headers=headers, content="key=x")
    assert response.status_code == 415


def test_oversize_beacon_is_413(client: TestClient) -> None:
    """A body over server.max_body_bytes is refused before it is parsed."""
    response = client.post("/collect", headers=TEXT, content=" " * 200_001)
    assert response.status_code == 413


def test_too_many_events_is_413(client: TestClient) -> None:
    """A beacon with more than server.max_batch_events events is 413 naming the limit."""
    body = beacon(*[{"event_name": "page_view"}] * 501)
    response = client.post("/collect", headers=TEXT, content=body)
    assert response.status_code == 413
    assert "500" in response.json()["error"]["message"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://shop.example.com", SHOP + "/"])
def test_origin_outside_allowed_origins_is_403(shop: TestClient, tmp_path: Path, origin: str) -> None:
    """With allowed_origins set, any other origin (`null` too) is 403 and nothing is stored."""
    response = shop.post("/collect", headers={**TEXT, "Origin": origin}, content=beacon(tag_event()))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_origin"
    assert stored(tmp_path) == []


def test_allowed_origin_or_no_origin_is_accepted(shop: TestClient) -> None:
    """The exact allowed origin is accepted; so is a request without Origin (not a page: curl, a relay)."""
    for headers in ({**TEXT, "Origin": SHOP}, TEXT):
        response = shop.post("/collect", headers=headers, content=beacon(tag_event()))
        assert response.status_code == 200


class DownIngest(Ingest):
    """An Ingest whose queue cannot take anything."""

    async def store(self, events: Sequence[Any], context: RequestContext) -> list[dict[str, Any]]:
        """Always unavailable."""
        raise Unavailable("queue_unavailable", "events could not be stored; retry later")


def test_queue_unavailable_is_503_with_retry_after(make_config: Callable[..., Config]) -> None:
    """When the queue cannot take the events: 503 + Retry-After, and no cookies are set."""
    config = make_config()
    ingest = DownIngest(config, open_queue(config.queue.url), lambda _ids: None)
    app = Starlette(routes=sitetag.routes(ingest, config))
    with TestClient(app) as client:
        response = client.post("/collect", headers=TEXT, content=beacon(tag_event()))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "set-cookie" not in response.headers


def test_click_ids_helper_keeps_the_pixels_fbc() -> None:
    """click_ids: no fbc is built when the _fbc cookie already holds the same fbclid."""
    context = RequestContext("web", True, CLICK_MS + 5000, cookies={"_fbc": "fb.1.1.IwAR-a"})
    assert sitetag.click_ids({"fbclid": ["IwAR-a", CLICK_MS]}, "", context) == {"fbclid": "IwAR-a"}
    other = sitetag.click_ids({"fbclid": ["IwAR-b", CLICK_MS]}, "", context)
    assert other == {"fbclid": "IwAR-b", "fbc": f"fb.1.{CLICK_MS}.IwAR-b"}
