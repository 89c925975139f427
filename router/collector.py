"""Collector: CPython's garbage collector set for a serving process, and the time its pauses take.

The router allocates tens of thousands of short-lived containers per second (decoded events, mapped
payloads) and keeps a working set alive across awaits (a claim's jobs, the decoded-event cache). With
the interpreter's defaults (collect the young generation every 700 net allocations) that working set
is scanned again and again and promoted until full collections walk it together with everything
start-up built: measured under load (`python -m bench.fanout --mode drain`, `router_gc_pause_seconds`),
the collector took 16% of the router's CPU while it drained a backlog, in pauses of up to 66 ms for a
full collection, and 6% during ingest.

`tune()` moves what start-up built (modules, config, compiled schemas and tables) into the permanent
generation, which no collection walks, and collects the young generation every `YOUNG` net
allocations instead. Frozen objects are still freed by reference counting; only cyclic garbage among
them would outlive the process, and start-up makes none that matters. With it, the same drain spent 6%
of its CPU collecting and ingest 1% or less; full collections are rare and short.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

YOUNG: Final = 10_000
"""Net container allocations between two collections of the youngest generation (CPython's default:
700). 10,000 measured best of 700, 2,000, 5,000, 10,000 and 20,000 on time collecting, without raising
the memory bench's peak; 20,000 made young collections pause 9 ms each."""
OLDER: Final = 10
"""Collections of a generation between two of the next (CPython's default, kept)."""
GENERATIONS: Final = 3


def tune() -> None:
    """Freeze what exists now and collect less often; call once, after start-up, in the serving
    process only (tests build many apps in one process, and each would freeze the last one's)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, OLDER, OLDER)


@dataclass(eq=False)
class PauseClock:
    """A `gc.callbacks` entry adding up, per generation, collections and the seconds they took.

    It only adds to floats: a collection can start inside any allocation, including one made while a
    metrics lock is held, so the callback takes no lock and calls nothing that could."""

    collections: list[int] = field(default_factory=lambda: [0] * GENERATIONS)
    seconds: list[float] = field(default_factory=lambda: [0.0] * GENERATIONS)
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += time.perf_counter() - self._started

    def install(self) -> None:
        """Start timing collections (once per process, however often it is called)."""
        if not any(callback is self for callback in gc.callbacks):
            gc.callbacks.append(self)


CLOCK: Final = PauseClock()
"""The process's one pause clock: every app's /metrics reads it."""


class PauseCollector(Collector):
    """`router_gc_pause_seconds_total` and `router_gc_collections_total` by generation, read from a
    PauseClock at scrape time."""

    def __init__(self, clock: PauseClock = CLOCK) -> None:
        self.clock = clock

    def collect(self) -> Iterator[CounterMetricFamily]:
        seconds = CounterMetricFamily(
            "router_gc_pause_seconds",
            "Time the garbage collector held the interpreter, by generation (2 is a full collection).",
            labels=["generation"],
        )
        counts = CounterMetricFamily(
            "router_gc_collections", "Garbage collections run, by generation.", labels=["generation"]
        )
        for generation in range(GENERATIONS):
            seconds.add_metric([str(generation)], self.clock.seconds[generation])
            counts.add_metric([str(generation)], self.clock.collections[generation])
        yield seconds
        yield counts
