"""Shared pieces of the reliability benches: fake Metas, the router config, pinning and figures.

The benches reuse the test harness: `tests.fakes.meta.MetaFake` served on loopback ports,
`tests.e2e.process.RouterProcess` for `router serve`, and `tests.e2e.load` for the fixed-rate
load and the lost / duplicate oracle. Run them from the repository root with `python -m`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench import machine
from destinations.meta.adapter import API_VERSION
from router.config import DispatchSettings
from tests.conftest import META_TOKEN
from tests.e2e.load import MetaTarget, router_yaml
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake
from tests.fakes.server import FakeServer, serve

REAL_TIMINGS: dict[str, float] = {
    k: v for k, v in dataclasses.asdict(DispatchSettings()).items() if isinstance(v, int | float)
}
"""The router's own dispatch defaults (backoff 10 s -> 300 s, lease 60 s): the nightly setting."""
SCALED_TIMINGS: dict[str, float] = {}
"""Nothing on top of tests.e2e.load.SCALED_DISPATCH (backoff 0.05 s -> 0.2 s): the CI setting."""


@contextmanager
def meta_fakes(*pixels: str) -> Iterator[list[tuple[MetaFake, FakeServer]]]:
    """One fake Meta per pixel, each on its own loopback port."""
    with ExitStack() as stack:
        fakes = []
        for pixel in pixels:
            fake = MetaFake(access_token=META_TOKEN, pixel_id=pixel, version=API_VERSION)
            fakes.append((fake, stack.enter_context(serve(fake.app))))
        yield fakes


def router_process(
    workdir: Path, queue_url: str, targets: Sequence[MetaTarget], timings: dict[str, float]
) -> RouterProcess:
    """A router process (not started) whose config and log live in workdir."""
    config = workdir / "router.yaml"
    config.write_text(router_yaml(queue_url, targets, timings))
    return RouterProcess(config, workdir / "router.log")


def pin(router: RouterProcess, enabled: bool) -> None:
    """Pin the router to CPU 0 and this process (fakes, load) to CPU 1, as section 5.1 asks."""
    if not enabled or router.proc is None or not hasattr(os, "sched_setaffinity"):
        return
    cpus = machine.cpus()  # as at start: a second call (a restarted router) must not see only CPU 1
    if len(cpus) < 2:
        return
    os.sched_setaffinity(router.proc.pid, {cpus[0]})
    os.sched_setaffinity(0, set(cpus[1:]))


def first_attempt_success(fake: MetaFake, event_ids: set[str]) -> float:
    """Share of the events whose first request to the platform was answered 200."""
    first: dict[str, int | None] = {}
    for request in fake.requests:
        data = request.body.get("data") if isinstance(request.body, dict) else None
        for event in data or []:
            first.setdefault(str(event.get("event_id")), request.status)
    tried = [first[i] for i in event_ids if i in first]
    return sum(status == 200 for status in tried) / len(tried) if tried else 0.0


def say(message: str) -> None:
    """A progress line on stderr, stamped with the wall-clock time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
