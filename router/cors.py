"""CORS for browser sources: only each browser source's allowed_origins may call the browser endpoints."""

from __future__ import annotations

from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router import answers, segment
from router.config import Config

BROWSER_PATHS: Final = frozenset({"/collect", "/g/collect", "/v1/events", *segment.PATHS})
"""The endpoints a page may call; every other path (health, admin) never answers CORS."""
ALLOW_METHODS: Final = "GET, POST, OPTIONS"
ALLOW_HEADERS: Final = frozenset({"content-type", "authorization"})
"""The request headers a page may send: its body's type and a Bearer/Basic public key."""
MAX_AGE: Final = "7200"
"""Seconds a browser may cache a preflight (Chromium's own cap)."""


def middleware(config: Config) -> list[Middleware]:
    """The CORS middleware for the app, allowing the union of the browser sources' allowed_origins
    (the endpoints then check the origin against the one source the key names)."""
    origins = frozenset(o for s in config.sources if s.kind == "browser" for o in s.allowed_origins)
    return [Middleware(BrowserCors, origins=origins)]


class BrowserCors:
    """Exact-origin CORS with credentials on the browser endpoints; never `*`, and nothing for other
    origins. `Vary: Origin` is on every browser-endpoint answer so caches keep origins apart."""

    def __init__(self, app: ASGIApp, origins: frozenset[str], paths: frozenset[str] = BROWSER_PATHS) -> None:
        self.app, self.origins, self.paths = app, origins, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _browser_path(scope["path"], self.paths):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin if allowed else None, headers)(scope, receive, send)
            return
        await self.app(scope, receive, self._sender(send, origin if allowed else None))

    def _preflight(self, origin: str | None, headers: Headers) -> Response:
        if origin is None:
            message = "this origin is not in the allowed_origins of any browser source"
            return answers.error(403, "forbidden_origin", message, _vary())
        requested = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")}
        answer = {
            **allow(origin),
            **_vary(),
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Max-Age": MAX_AGE,
        }
        if requested & ALLOW_HEADERS:
            answer["Access-Control-Allow-Headers"] = ", ".join(sorted(requested & ALLOW_HEADERS))
        return Response(status_code=204, headers=answer)

    def _sender(self, send: Send, origin: str | None) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.add_vary_header("Origin")
                if origin is not None:
                    headers.update(allow(origin))
            await send(message)

        return wrapped


def allow(origin: str) -> dict[str, str]:
    """The headers that let one exact origin read the answer, cookies included."""
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}


def _vary() -> dict[str, str]:
    return {"Vary": "Origin"}


def _browser_path(path: str, paths: frozenset[str]) -> bool:
    """An exact browser endpoint, or analytics.js's settings fetch (/v1/projects/<key>/settings)."""
    return path in paths or (path.startswith("/v1/projects/") and path.endswith("/settings"))
