"""Stats: the delivery overview and match quality per destination, as JSON, as text, and at /admin/stats."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router import matchquality
from router.admin import refusal
from router.config import Config
from router.queue.base import Queue
from router.queue.counts import OUTCOMES, REASONED

WINDOWS: Final[Mapping[str, float]] = {"last_hour": 3600.0, "last_day": 86_400.0}
"""Report windows; each covers the hourly buckets from the one holding `now - seconds` on."""


async def report(queue: Queue, destinations: Sequence[str], now: float) -> dict[str, Any]:
    """Every destination (configured or seen in the counts) with a summary per window."""
    windows = {name: await queue.overview(now - seconds) for name, seconds in WINDOWS.items()}
    names = list(dict.fromkeys([*destinations, *(d for counts in windows.values() for d in sorted(counts))]))
    return {
        "generated_at": now,
        "destinations": {
            name: {window: summary(counts.get(name)) for window, counts in windows.items()} for name in names
        },
    }


def summary(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """One destination's window: outcome counts, top reasons, match quality and consent decisions."""
    entry = entry or {}
    result: dict[str, Any] = {outcome: int(entry.get(outcome, 0)) for outcome in OUTCOMES}
    reasons = entry.get("reasons", {})
    result["reasons"] = {outcome: reasons.get(outcome, []) for outcome in REASONED}
    result["match"] = match(entry.get("match", {}))
    result["consent"] = dict(sorted(entry.get("consent", {}).items()))
    return result


def match(tallies: Mapping[str, Any]) -> dict[str, Any]:
    """Identifier shares (percent of counted events), malformed counts and the 0-10 score."""
    events = int(tallies.get("events", 0))
    counted = tallies.get("identifiers", {})
    shares = {name: counted.get(name, 0) / events if events else 0.0 for name in matchquality.IDENTIFIERS}
    return {
        "events": events,
        "shares": {name: round(100 * share, 1) for name, share in shares.items()},
        "malformed": {
            name.removeprefix("malformed_"): counted.get(name, 0) for name in matchquality.MALFORMED
        },
        "score": matchquality.score(shares),
    }


def text(document: Mapping[str, Any]) -> str:
    """The report for a terminal: one block per destination, one line group per window."""
    lines: list[str] = []
    for name, windows in document["destinations"].items():
        lines.append(name)
        for window, data in windows.items():
            lines.extend(_window_lines(window, data))
    return "\n".join(lines) + "\n" if lines else "no destinations\n"


def _window_lines(window: str, data: Mapping[str, Any]) -> list[str]:
    counts = "  ".join(f"{outcome} {data[outcome]}" for outcome in OUTCOMES)
    m = data["match"]
    shares = "  ".join(f"{name} {share}%" for name, share in m["shares"].items())
    malformed = "  ".join(f"{name} {count}" for name, count in m["malformed"].items())
    lines = [
        f"  {window.replace('_', ' ')}: {counts}",
        f"    match quality {m['score']}/10 over {m['events']} event(s): {shares}",
        f"    malformed: {malformed}",
    ]
    if data["consent"]:
        lines.append("    consent: " + "  ".join(f"{d} {n}" for d, n in data["consent"].items()))
    for outcome, ranked in data["reasons"].items():
        lines.extend(f"    {outcome}: {count} x {reason}" for reason, count in ranked)
    return lines


def endpoint(
    config: Config, queue: Queue, clock: Callable[[], float] = time.time
) -> Callable[[Request], Awaitable[Response]]:
    """GET /admin/stats: 404 without an admin token in the config, 401 without the right bearer."""

    async def handle(request: Request) -> Response:
        refused = refusal(request, config.admin_token)
        if refused is not None:
            return refused
        return JSONResponse(await report(queue, [d.id for d in config.destinations], clock()))

    return handle
