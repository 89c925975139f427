"""Put N events into a router over HTTP, exactly, with autocannon: batches of 100 unique purchases.

With `platforms.router_yaml(queue, None)` (every destination at a closed port), call `pause()` first:
one event goes out, each destination's first batch fails, and its breaker stays open for an hour, so
nothing of the backlog is claimed (a claimed-and-failed delivery would wait out an hour of backoff,
even in a later router with live destinations).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from bench import events, loadgen, machine, platforms

BATCH = 100


def fill(url: str, events: int, folder: Path, connections: int = 4) -> loadgen.Result:
    """POST `events` events (a multiple of 100) as batches of 100; raises if any request failed."""
    if events % BATCH:
        raise ValueError(f"the backlog must be a multiple of {BATCH}")
    result = loadgen.autocannon(
        url,
        BATCH,
        platforms.BACKEND_SECRET,
        folder,
        connections=connections,
        amount=events // BATCH,
        cpu_list=machine.client_cpus(),
    )
    if result.errors or result.non2xx or result.requests != events // BATCH:
        raise RuntimeError(f"backlog not fully accepted: {result}")
    return result


def pause(url: str, settle: float = 2.0) -> None:
    """Send one purchase to a router whose destinations are down and let every breaker open."""
    headers = {"Authorization": f"Bearer {platforms.BACKEND_SECRET}", "Content-Type": "application/json"}
    body = events.template(1, f"pause-{uuid.uuid4().hex}")
    answer = httpx.post(f"{url}/v1/events", content=body, headers=headers, timeout=30)
    answer.raise_for_status()
    time.sleep(settle)
