"""What the ingest knows about the request an event came in: source, client IP, user agent, cookies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Request facts used to enrich events; browser-only facts are empty for server sources."""

    source: str
    browser: bool
    received_ms: int
    client_ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    country: str | None = None
    """The visitor's ISO-2 country (lower case) from `server.country_header`, when set and well-formed."""
    cookies: Mapping[str, str] = field(default_factory=dict)
    minted: Mapping[str, str] = field(default_factory=dict)
    """First-party cookies the router created for this request (sent back with Set-Cookie)."""
