"""Preview: what each enabled destination would send for given events, with secrets masked; sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.config import Config
from router.context import RequestContext
from router.delivery import plan
from router.errors import Problem
from router.normalize import normalize
from router.queue.base import Dead, Job, Skipped


class PreviewError(Exception):
    """An input event was rejected; `problems` say why, with the event's index in the path."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems


def preview(config: Config, raw_events: Sequence[Any], now: float) -> dict[str, Any]:
    """`{destination id: [masked requests]}` or `{destination id: {"skipped": reason}}`."""
    events = _normalized(config, raw_events, now)
    shown: dict[str, Any] = {}
    for destination in config.destinations:
        wanted = destination.config.events
        jobs = [
            Job(pk, destination.id, event, 0, None)
            for pk, event in enumerate(events)
            if wanted is None or event["event_name"] in wanted
        ]
        result = plan(destination, jobs, now, config.consent_policy(destination.id))
        if result.shipments:
            shown[destination.id] = [s.request.masked() for s in result.shipments]
        else:
            shown[destination.id] = {
                "skipped": _reason(result.settled) or "no event is sent to this destination"
            }
    return shown


def _normalized(config: Config, raw_events: Sequence[Any], now: float) -> list[dict[str, Any]]:
    context = RequestContext(source="preview", browser=False, received_ms=int(now * 1000))
    events: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for index, raw in enumerate(raw_events):
        outcome = normalize(
            raw,
            context,
            config.identity_variants(),
            config.default_phone_region,
            keep_postal_code=config.keep_postal_code,
        )
        problems += [Problem(f"[{index}]{p.path}", p.message) for p in outcome.errors]
        if outcome.event is not None:
            events.append(outcome.event)
    if problems:
        raise PreviewError(problems)
    return events


def _reason(settled: Sequence[Any]) -> str | None:
    reasons = [o.reason for o in settled if isinstance(o, Skipped | Dead)]
    return "; ".join(dict.fromkeys(reasons)) or None
