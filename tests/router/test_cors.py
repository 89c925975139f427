"""CORS: exact allowed origins with credentials on the browser endpoints; nothing for anyone else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from router import cors, segment
from router.app import create_app
from router.config import parse
from tests.conftest import WEB_KEY, config_text

SHOP = "https://shop.example.com"
BLOG = "https://blog.example.com"
EVIL = "https://evil.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The full app with two browser sources: the shop's and a second one allowing the blog."""
    text = config_text(tmp_path / "queue.db").replace(
        f"key: {WEB_KEY}\n",
        f"key: {WEB_KEY}\n    allowed_origins: [{SHOP}]\n"
        f"  - id: blog\n    kind: browser\n    key: pk_blog_key_1\n    allowed_origins: [{BLOG}]\n",
    )
    with TestClient(create_app(parse(text, {})), base_url="https://router.test") as test_client:
        yield test_client


def cors_headers(headers: httpx.Headers) -> dict[str, str]:
    """The Access-Control-* headers of an answer."""
    return {k: v for k, v in headers.items() if k.startswith("access-control-")}


@pytest.mark.parametrize("path", sorted(cors.BROWSER_PATHS))
def test_preflight_from_an_allowed_origin_is_answered_on_every_browser_endpoint(
    client: TestClient, path: str
) -> None:
    """OPTIONS from an allowed origin: 204, that exact origin, credentials, methods, headers, Vary."""
    response = client.options(path, headers={**PREFLIGHT, "Origin": SHOP})
    assert response.status_code == 204
    assert cors_headers(response.headers) == {
        "access-control-allow-origin": SHOP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "7200",
    }
    assert response.headers["vary"] == "Origin"


def test_every_browser_sources_origins_are_allowed(client: TestClient) -> None:
    """The union of the browser sources' allowed_origins passes the CORS layer."""
    response = client.options("/collect", headers={**PREFLIGHT, "Origin": BLOG})
    assert response.headers["access-control-allow-origin"] == BLOG


@pytest.mark.parametrize("origin", [EVIL, "null", SHOP + "/", "http://shop.example.com", SHOP.upper()])
def test_preflight_from_any_other_origin_gets_no_cors_headers(client: TestClient, origin: str) -> None:
    """Only an exact match counts: another scheme, case, a trailing slash or `null` gets no CORS."""
    response = client.options("/collect", headers={**PREFLIGHT, "Origin": origin})
    assert response.status_code == 403
    assert cors_headers(response.headers) == {}
    assert response.json()["error"]["code"] == "forbidden_origin"


def test_unasked_or_unknown_request_headers_are_not_allowed(client: TestClient) -> None:
    """Only Content-Type and Authorization may be requested; others are not echoed."""
    headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-Evil, Authorization",
    }
    response = client.options("/v1/events", headers={**headers, "Origin": SHOP})
    assert response.headers["access-control-allow-headers"] == "authorization"
    bare = client.options("/v1/events", headers={"Access-Control-Request-Method": "POST", "Origin": SHOP})
    assert "access-control-allow-headers" not in bare.headers


def test_actual_request_from_an_allowed_origin_carries_cors_and_cookies(client: TestClient) -> None:
    """A POST to /collect from the allowed origin: the answer names that origin, allows credentials,
    says Vary: Origin, and still sets the first-party cookies."""
    body = json.dumps({"key": WEB_KEY, "events": [{"event_name": "page_view"}]})
    response = client.post("/collect", headers={"Origin": SHOP, "Content-Type": "text/plain"}, content=body)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["vary"] == "Origin"
    assert "_rt_vid=" in response.headers["set-cookie"]


def test_actual_request_from_another_origin_has_no_cors_headers(client: TestClient) -> None:
    """A POST from an unlisted origin gets no Access-Control-* header (and /collect refuses it)."""
    body = json.dumps({"key": WEB_KEY, "events": [{"event_name": "page_view"}]})
    response = client.post("/collect", headers={"Origin": EVIL, "Content-Type": "text/plain"}, content=body)
    assert response.status_code == 403
    assert cors_headers(response.headers) == {}
    assert response.headers["vary"] == "Origin"


def test_an_origin_of_another_source_is_refused_by_collect(client: TestClient) -> None:
    """CORS allows the union; /collect still holds each key to its own source's origins."""
    body = json.dumps({"key": WEB_KEY, "events": [{"event_name": "page_view"}]})
    response = client.post("/collect", headers={"Origin": BLOG, "Content-Type": "text/plain"}, content=body)
    assert response.status_code == 403


def test_other_paths_never_answer_cors(client: TestClient) -> None:
    """Health, readiness and the tag script get no CORS headers, even for an allowed origin."""
    for path in ("/healthz", "/readyz", "/tag.js"):
        response = client.get(path, headers={"Origin": SHOP})
        assert cors_headers(response.headers) == {}
    preflight = client.options("/healthz", headers={**PREFLIGHT, "Origin": SHOP})
    assert cors_headers(preflight.headers) == {}


def test_wildcard_is_never_sent_even_without_configured_origins(tmp_path: Path) -> None:
    """With no allowed_origins anywhere, nobody gets CORS, and `*` is never answered."""
    config = parse(config_text(tmp_path / "queue.db"), {})
    with TestClient(create_app(config)) as client:
        for origin in (SHOP, "*", "null"):
            response = client.options("/collect", headers={**PREFLIGHT, "Origin": origin})
            assert cors_headers(response.headers) == {}


def test_an_options_without_preflight_headers_goes_to_the_app() -> None:
    """A plain OPTIONS (no Access-Control-Request-Method) is the app's to answer; CORS only adds headers."""

    async def endpoint(_: Request) -> PlainTextResponse:
        return PlainTextResponse("app", headers={"Vary": "Accept-Encoding"})

    app = Starlette(routes=[Route("/collect", endpoint, methods=["OPTIONS"])])
    wrapped = cors.BrowserCors(app, frozenset({SHOP}))
    with TestClient(wrapped) as client:
        response = client.options("/collect", headers={"Origin": SHOP})
    assert response.text == "app"
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["vary"] == "Accept-Encoding, Origin"


def test_every_segment_path_and_the_settings_fetch_answer_cors() -> None:
    """analytics.js short paths (/v1/p, /v1/b ...) and /v1/projects/<key>/settings are browser endpoints."""
    assert set(segment.PATHS) <= cors.BROWSER_PATHS
    assert cors._browser_path("/v1/projects/pk_abc/settings", cors.BROWSER_PATHS)
    assert not cors._browser_path("/readyz", cors.BROWSER_PATHS)
