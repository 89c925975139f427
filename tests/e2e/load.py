"""Load generator and delivery oracle for the reliability tests and the bench scripts.

``send_load`` posts one event per request at a fixed arrival rate (open loop: a slow or dead router
does not slow the schedule down) and records which event ids were acknowledged (202 + "accepted").
``oracle`` compares that set with a fake platform's ledger:

- lost: acknowledged ids the platform never received (must be 0);
- foreign ids: ids the platform received that the generator never sent (must be 0);
- foreign duplicates: one logical event (its ``order_id``) delivered under two different event ids;
- redeliveries: extra deliveries of an id already received (same id, absorbed by platform dedup).

``router_yaml`` writes a router config with any number of Meta destinations, each with its own fake.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import BACKEND_SECRET, META_TOKEN, WEB_KEY
from tests.fakes.meta import ReceivedEvent

Urls = Callable[[int], str]
"""Event number -> base URL of the router instance that gets it."""


@dataclass
class LoadReport:
    """What the generator sent and which ids the router acknowledged, with wall-clock times."""

    sent: dict[str, float] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)

    def acked_between(self, start: float, end: float) -> set[str]:
        """Ids acknowledged in [start, end) (wall clock)."""
        return {event_id for event_id, at in self.acked.items() if start <= at < end}


def lead(event_id: str) -> dict[str, Any]:
    """A server-side lead whose order_id is its logical identity (for the foreign-duplicate check)."""
    return {
        "event_name": "lead",
        "event_id": event_id,
        "action_source": "crm",
        "user": {"email": f"{event_id}@load.example.com", "ip": "198.51.100.7"},
        "properties": {"order_id": event_id},
    }


def round_robin(urls: Sequence[str]) -> Urls:
    """Spread events over several router instances in turn."""
    return lambda n: urls[n % len(urls)]


async def send_load(
    urls: Urls,
    *,
    rate: float,
    seconds: float,
    prefix: str,
    timeout: float = 5.0,
    stop: asyncio.Event | None = None,
) -> LoadReport:
    """Post `rate` events per second for `seconds` (or until `stop` is set); returns the report."""
    report = LoadReport()
    headers = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits) as client:
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            if stop is not None and stop.is_set():
                break
            tasks.append(asyncio.create_task(_post(client, urls(n), f"{prefix}-{n}", report)))
        await asyncio.gather(*tasks)
    return report


async def _post(client: httpx.AsyncClient, url: str, event_id: str, report: LoadReport) -> None:
    report.sent[event_id] = time.time()
    try:
        answer = await client.post(f"{url}/v1/events", content=json.dumps(lead(event_id)))
    except httpx.HTTPError as exc:
        report.answers[type(exc).__name__] += 1
        return
    report.answers[str(answer.status_code)] += 1
    if answer.status_code == 202 and answer.json()["results"][0]["status"] == "accepted":
        report.acked[event_id] = time.time()


@dataclass(frozen=True)
class Figures:
    """The oracle's verdict for one destination."""

    sent: int
    acked: int
    lost: list[str]
    foreign_ids: list[str]
    foreign_duplicates: list[str]
    redeliveries: int
    delivered_unacked: int
    answers: dict[str, int]

    def line(self) -> str:
        """One report line in the style of section 5.7 of the reliability doc."""
        return (
            f"{self.acked} acked, {len(self.lost)} lost, {len(self.foreign_duplicates)} foreign-dup, "
            f"{len(self.foreign_ids)} foreign-id, {self.redeliveries} same-id redeliveries, "
            f"{self.delivered_unacked} delivered-unacked (of {self.sent} sent; answers {self.answers})"
        )


def oracle(report: LoadReport, received: Sequence[ReceivedEvent]) -> Figures:
    """Compare what was acknowledged with what the platform received."""
    ids = Counter(r.event_id for r in received)
    logical: dict[str, set[str | None]] = {}
    for r in received:
        logical.setdefault(str(r.event.get("custom_data", {}).get("order_id")), set()).add(r.event_id)
    return Figures(
        sent=len(report.sent),
        acked=len(report.acked),
        lost=sorted(set(report.acked) - set(ids)),
        foreign_ids=sorted(str(i) for i in ids if i not in report.sent),
        foreign_duplicates=sorted(k for k, v in logical.items() if len(v) > 1),
        redeliveries=sum(ids.values()) - len(ids),
        delivered_unacked=len([i for i in ids if i in report.sent and i not in report.acked]),
        answers=dict(report.answers),
    )


def first_arrivals(received: Sequence[ReceivedEvent]) -> dict[str, float]:
    """Event id -> when the platform first received it (wall clock)."""
    first: dict[str, float] = {}
    for r in received:
        if r.event_id is not None and r.event_id not in first:
            first[r.event_id] = r.received_at
    return first


def max_gap(times: Sequence[float], start: float, end: float) -> float:
    """The longest stretch inside [start, end] without an arrival (both window edges count)."""
    inside = sorted([start, *(t for t in times if start <= t <= end), end])
    return max(b - a for a, b in itertools.pairwise(inside))


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (the largest value for fewer than 100 samples)."""
    if len(values) < 100:
        return max(values)
    return statistics.quantiles(values, n=100)[98]


@dataclass(frozen=True)
class MetaTarget:
    """One `type: meta` destination block: its id, pixel and the fake's base URL."""

    id: str
    pixel_id: str
    url: str


SCALED_DISPATCH = {"poll_interval": 0.05, "linger": 0, "backoff_base": 0.05, "backoff_cap": 0.2}
"""The dispatch timings of tests/conftest.py: retries within tenths of a second."""


def router_yaml(
    queue_url: str, targets: Sequence[MetaTarget], dispatch: dict[str, float] | None = None
) -> str:
    """A router.yaml with the test sources, SCALED_DISPATCH (plus `dispatch`) and one block per target."""
    timings = SCALED_DISPATCH | (dispatch or {})
    lines = [
        "server:",
        "  max_body_bytes: 200000",
        "queue:",
        f"  url: {queue_url}",
        "identity:",
        "  default_phone_region: US",
        "consent: {when_unknown: send}  # US traffic without consent signals (EEA default: test_consent*.py)",
        "dispatch:",
        *(f"  {key}: {value}" for key, value in timings.items()),
        "sources:",
        "  - {id: web, kind: browser, key: " + WEB_KEY + "}",
        "  - {id: backend, kind: server, secret: " + BACKEND_SECRET + "}",
        "destinations:",
    ]
    for t in targets:
        lines += [
            f"  - id: {t.id}",
            "    type: meta",
            f'    pixel_id: "{t.pixel_id}"',
            f"    access_token: {META_TOKEN}",
            f"    base_url: {t.url}",
        ]
    return "\n".join(lines) + "\n"
