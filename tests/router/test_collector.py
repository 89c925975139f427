"""Collector: `router serve` freezes start-up and collects less often; GC pauses are timed and exported."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest

from router import collector
from router.collector import PauseClock, PauseCollector
from router.metrics import Metrics
from tests.router.test_metrics import samples

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> Iterator[PauseClock]:
    """A pause clock of its own, installed for the test and removed after; automatic collections are
    off meanwhile, so only the test's own are counted."""
    enabled = gc.isenabled()
    gc.disable()
    fresh = PauseClock()
    fresh.install()
    try:
        yield fresh
    finally:
        gc.callbacks.remove(fresh)
        if enabled:
            gc.enable()


def test_a_full_collection_is_counted_and_timed(clock: PauseClock) -> None:
    gc.collect()
    assert clock.collections == [0, 0, 1]
    assert clock.seconds[2] > 0.0
    assert clock.seconds[:2] == [0.0, 0.0]


def test_young_collections_are_counted_by_generation(clock: PauseClock) -> None:
    gc.collect(0)
    gc.collect(1)
    assert clock.collections == [1, 1, 0]
    assert all(seconds >= 0.0 for seconds in clock.seconds)


def test_install_twice_keeps_one_callback(clock: PauseClock) -> None:
    clock.install()
    assert sum(callback is clock for callback in gc.callbacks) == 1
    gc.collect()
    assert clock.collections[2] == 1


def test_metrics_export_the_process_clock(clock: PauseClock) -> None:
    metrics = Metrics()
    gc.collect()
    first = samples(generate_latest(metrics.registry).decode())
    gc.collect()
    second = samples(generate_latest(metrics.registry).decode())
    for generation in ("0", "1", "2"):
        assert ("router_gc_pause_seconds_total", (("generation", generation),)) in first
    key = ("router_gc_collections_total", (("generation", "2"),))
    assert second[key] == first[key] + 1
    pause = ("router_gc_pause_seconds_total", (("generation", "2"),))
    assert second[pause] > first[pause]


def test_many_apps_install_one_callback() -> None:
    Metrics()
    Metrics()
    assert sum(callback is collector.CLOCK for callback in gc.callbacks) == 1


def test_collector_reads_its_clock() -> None:
    fixed = PauseClock(collections=[3, 2, 1], seconds=[0.5, 0.25, 0.125])
    families = {f.name: f for f in PauseCollector(fixed).collect()}
    values = {s.labels["generation"]: s.value for s in families["router_gc_pause_seconds"].samples}
    assert values == {"0": 0.5, "1": 0.25, "2": 0.125}
    counts = {s.labels["generation"]: s.value for s in families["router_gc_collections"].samples}
    assert counts == {"0": 3, "1": 2, "2": 1}


def test_router_serve_tunes_the_collector_before_serving() -> None:
    """In a child process (freezing the test process would change every later test): `router serve`
    with uvicorn.run replaced by a probe of the collector's state."""
    probe = textwrap.dedent(
        """
        import gc, json, sys, uvicorn
        from router import cli
        def run(app, **_):
            print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
        uvicorn.run = run
        sys.exit(cli.main(["serve", "--config", "config/router.yaml"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["threshold"] == [collector.YOUNG, collector.OLDER, collector.OLDER]
    assert state["frozen"] > 10_000  # modules, config, schemas: everything start-up built
