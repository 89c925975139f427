"""The dispatcher's authenticator seam: credentials added before sending, refreshed on 401, AuthError dead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from destinations.base import AuthError, BaseConfig, Destination, Event, HttpRequest, Payload, base_fields
from router.config import DispatchSettings
from router.dispatch import Dispatcher
from router.queue.base import DeadFilter, NewEvent
from router.queue.sqlite import SqliteQueue
from tests.fakes.server import FakeServer


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthConfig(BaseConfig):
    """A destination that needs a bearer token from an authenticator."""


class OAuthDestination(Destination[OAuthConfig]):
    """Posts each event id to /collect; its credentials come from `self.auth`."""

    type: ClassVar[str] = "oauth_test"
    api_version: ClassVar[str] = "v1"
    max_batch_size: ClassVar[int] = 10
    max_event_age: ClassVar[float | None] = None
    identity_variants: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: OAuthConfig, auth: Any) -> None:
        super().__init__(config)
        self.auth = auth

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> OAuthConfig:
        """Only the common keys."""
        return OAuthConfig(**base_fields(block))

    def map(self, event: Event, now: float) -> list[Payload]:
        """The event id."""
        return [Payload({"id": event["event_id"]})]

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """No auth here: the authenticator adds it."""
        return HttpRequest("POST", f"{self.config.base_url}/collect", json=[p.body for p in batch])

    def authenticator(self) -> Any:
        """The test's token source."""
        return self.auth


class TokenSource:
    """Hands out `token-<n>`; `invalidate` makes the next call fetch a new one; can be told to fail."""

    def __init__(self) -> None:
        self.fetched = 0
        self.current: str | None = None
        self.refuse = False

    async def apply(self, request: HttpRequest, client: httpx.AsyncClient) -> HttpRequest:
        """Add `Authorization: Bearer token-<n>`."""
        if self.refuse:
            raise AuthError("invalid_grant: the refresh token was revoked; create a new one")
        if self.current is None:
            self.fetched += 1
            self.current = f"token-{self.fetched}"
        headers = {**request.headers, "Authorization": f"Bearer {self.current}"}
        return HttpRequest(request.method, request.url, headers, json=request.json, secrets=(self.current,))

    def invalidate(self) -> None:
        """Forget the token."""
        self.current = None


@pytest.fixture
async def platform() -> AsyncIterator[tuple[FakeServer, list[str]]]:
    """A platform that accepts only `token-2` (so the first token always earns a 401)."""
    seen: list[str] = []

    async def collect(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "")
        seen.append(token)
        if token != "Bearer token-2":
            return JSONResponse({"error": "expired"}, 401)
        return JSONResponse({"ok": True})

    async with FakeServer(Starlette(routes=[Route("/collect", collect, methods=["POST"])])) as server:
        yield server, seen


async def run(destination: OAuthDestination, tmp_path: Path) -> SqliteQueue:
    """Queue one event and dispatch until it is settled."""
    queue = SqliteQueue(str(tmp_path / "q.db"))
    await queue.open()
    now = time.time()
    await queue.enqueue(
        [
            NewEvent(
                "web",
                "e-1",
                "lead",
                now,
                {"event_id": "e-1", "event_name": "lead", "timestamp_ms": now * 1000},
                ("o",),
            )
        ]
    )
    settings = DispatchSettings(backoff_base=0.01, backoff_cap=0.02)
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher([destination], queue, settings, client)
        for _ in range(50):
            if not await queue.depth():
                break
            await dispatcher.run_once(destination)
            await asyncio.sleep(0.02)
    return queue


async def test_a_401_refreshes_the_token_and_the_event_is_delivered(
    platform: tuple[FakeServer, list[str]], tmp_path: Path
) -> None:
    """First token refused with 401 -> invalidated, a new one fetched, the resend succeeds."""
    server, seen = platform
    tokens = TokenSource()
    queue = await run(
        OAuthDestination(OAuthConfig(id="o", type="oauth_test", base_url=server.url), tokens), tmp_path
    )
    assert seen == ["Bearer token-1", "Bearer token-2"]
    assert tokens.fetched == 2
    assert await queue.stats() == {"pending": 0, "inflight": 0, "dead": 0, "skipped": 0}
    await queue.close()


async def test_revoked_credentials_are_a_dead_letter_not_a_retry_loop(
    platform: tuple[FakeServer, list[str]], tmp_path: Path
) -> None:
    """AuthError (invalid_grant) -> dead letter with the reason after one attempt; nothing is sent."""
    server, seen = platform
    tokens = TokenSource()
    tokens.refuse = True
    queue = await run(
        OAuthDestination(OAuthConfig(id="o", type="oauth_test", base_url=server.url), tokens), tmp_path
    )
    assert seen == []
    (dead,) = await queue.dead_letters(DeadFilter(destination="o"))
    assert "invalid_grant" in dead["reason"] and dead["attempts"] == 1
    await queue.close()
