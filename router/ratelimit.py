"""Per-IP and per-key rate limits on every inbound endpoint: 429 with Retry-After, counted as rate_limited."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

from limits import parse_many
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from router import answers, cors
from router.clientip import client_ip
from router.config import Config
from router.metrics import Metrics
from router.segment import basic_user
from router.sources import bearer
from router.tokenbucket import Buckets, Rate, seconds

DEFAULTS: Final = {"per_ip": "200/second", "per_key": "1000/second"}
"""Generous enough for a busy site behind one NAT and for the test suite's bursts from one address."""
INBOUND: Final = cors.BROWSER_PATHS
"""The ingest endpoints; health, metrics, admin and the tag script are never limited."""
UNKNOWN_IP: Final = "unknown"
"""The one bucket shared by requests whose client IP cannot be read."""


class Limiter:
    """Token buckets per client IP and per credential, in this process's memory (router/tokenbucket.py);
    each rate in `server.rate_limits` ("200/second; 5000/minute") is a bucket of its own."""

    def __init__(self, rates: Mapping[str, str], trusted_hops: int) -> None:
        merged = {**DEFAULTS, **rates}
        self.per_ip = [Buckets(Rate.of(item)) for item in parse_many(merged["per_ip"])]
        self.per_key = [Buckets(Rate.of(item)) for item in parse_many(merged["per_key"])]
        self.trusted_hops = trusted_hops

    def retry_after(self, headers: Headers, peer: str | None) -> int | None:
        """None when the request may pass (and is counted); else the seconds until it may be retried."""
        ip = client_ip(headers.get("x-forwarded-for"), peer, self.trusted_hops) or UNKNOWN_IP
        wait = _take(self.per_ip, ip)
        key = credential(headers.get("authorization"))
        if wait is None and key is not None:
            wait = _take(self.per_key, key)
        return wait


def _take(buckets: list[Buckets], who: str) -> int | None:
    for bucket in buckets:
        wait = bucket.take(who)
        if wait is not None:
            return seconds(wait)
    return None


def credential(authorization: str | None) -> str | None:
    """A digest of the Bearer or Basic credential, so buckets never hold a secret in clear."""
    key = bearer(authorization) or basic_user(authorization)
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else None


def middleware(config: Config, metrics: Metrics) -> list[Middleware]:
    """The rate-limit middleware for the app, configured by `server.rate_limits`."""
    limiter = Limiter(config.server.rate_limits, config.server.trusted_proxy_hops)
    return [Middleware(RateLimits, limiter=limiter, metrics=metrics)]


class RateLimits:
    """ASGI middleware: refuses an inbound request over its IP's or key's limit before the body is read."""

    def __init__(self, app: ASGIApp, limiter: Limiter, metrics: Metrics) -> None:
        self.app, self.limiter, self.metrics = app, limiter, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _limited(scope):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.limiter.retry_after(Headers(scope=scope), client[0] if client else None)
        if wait is None:
            await self.app(scope, receive, send)
            return
        self.metrics.refused("rate_limited")
        message = f"too many requests from this address or key; retry in {wait} s"
        answer = answers.error(429, "rate_limited", message, {"Retry-After": str(wait)})
        await answer(scope, receive, send)


def _limited(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] == "OPTIONS":
        return False
    path: str = scope["path"]
    return path in INBOUND or path.rstrip("/") in INBOUND
