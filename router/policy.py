"""Source policy shared by every ingest path: the server-side Origin check and the per-event rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from router.config import Source
from router.errors import Problem
from router.normalize import Normalized

MONEY_EVENTS: Final = frozenset({"purchase"})
"""Canonical event names that always carry money, whatever their properties say."""
MAX_ECHOED_ORIGIN: Final = 100


def origin_refusal(source: Source, origin: str | None) -> str | None:
    """Why a request with this `Origin` header may not write as this source, or None when it may.

    A browser key is public, so a script (curl) holding it is the forgery threat, not other sites'
    pages: when a browser source lists `allowed_origins`, a request without `Origin` is refused too,
    unless the source sets `allow_missing_origin: true` (for clients that cannot send one)."""
    if source.kind != "browser" or not source.allowed_origins:
        return None
    if origin is None:
        if source.allow_missing_origin:
            return None
        return (
            "the request has no Origin header; send it from a page on one of the source's allowed_origins, "
            "or set allow_missing_origin: true on the source to accept clients that send none"
        )
    if origin in source.allowed_origins:
        return None
    return f"the Origin {origin[:MAX_ECHOED_ORIGIN]!r} is not in the source's allowed_origins"


def is_money(event: Mapping[str, Any]) -> bool:
    """A purchase, or any event with a positive properties.value: what moves the platforms' bidding."""
    if event.get("event_name") in MONEY_EVENTS:
        return True
    properties = event.get("properties")
    value = properties.get("value") if isinstance(properties, Mapping) else None
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def event_problems(source: Source, event: Mapping[str, Any]) -> list[Problem]:
    """What the source's policy refuses in one normalized event (canonical `event_name`)."""
    name = str(event.get("event_name"))
    if source.events is not None and name not in source.events:
        listed = ", ".join(source.events)
        return [Problem("/event_name", f"source {source.id} accepts only these events: {listed}")]
    if source.kind == "browser" and not source.allow_money_events and is_money(event):
        return [
            Problem(
                "/event_name",
                f"source {source.id} is a browser source and may not send money events (purchase, "
                "or a positive properties.value); send them from a server source, or set "
                "allow_money_events: true on this source",
            )
        ]
    return []


def apply(source: Source | None, outcome: Normalized) -> Normalized:
    """The outcome, rejected with the policy's problems when the source may not send its event."""
    if source is None or outcome.event is None:
        return outcome
    found = event_problems(source, outcome.event)
    return Normalized(None, found, outcome.warnings) if found else outcome
