"""Resident memory of one router process: idle, and with 100,000 events queued (target 4).

    .venv/bin/python -m bench.memory [--queue sqlite|postgres] [--events 100000] [--check] [--json FILE]

Reads VmRSS (now) and VmHWM (peak) from /proc/<pid>/status of `router serve` (all seven destinations
configured, at a closed port with hour-long probe intervals, so nothing drains):

1. idle: 3 s after the router is ready;
2. queued: after `--events` events were posted (batches of 100, autocannon) and 3 s of rest;
3. restarted: a new router process on the same queue, 3 s after it is ready (a backlog that waits
   for an outage to end, as a freshly scheduled Cloud Run instance sees it).

A restarted router claims a first batch per destination before its breakers open (up to each
platform's batch size, decoded in memory), so its peak shows what the dispatcher holds. The verdict
uses the worst peak of stages 2 and 3. Target: <= 150 MB (read as MiB) with 100,000 queued.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import backlog, machine, platforms, routerproc

TARGET_MIB = 150.0
REST = 3.0


@dataclass(frozen=True, slots=True)
class Reading:
    """One memory reading."""

    stage: str
    queued_events: int
    rss_mib: float
    hwm_mib: float


def run(folder: Path, queue_kind: str, events: int) -> tuple[list[Reading], float]:
    """The three readings, and how long the backlog took to post."""
    readings = []
    with routerproc.fresh_queue(queue_kind, folder) as queue:
        config = folder / "router.yaml"
        config.write_text(platforms.router_yaml(queue, None))
        with routerproc.Router(config, folder / "router.log", machine.server_cpus()) as router:
            time.sleep(REST)
            readings.append(Reading("idle", 0, *_mib(router)))
            backlog.pause(router.url)
            started = time.monotonic()
            backlog.fill(router.url, events, folder)
            seconds = time.monotonic() - started
            time.sleep(REST)
            depth = router.depth()
            readings.append(Reading("queued", depth // len(platforms.PLATFORMS), *_mib(router)))
        with routerproc.Router(config, folder / "restart.log", machine.server_cpus()) as router:
            time.sleep(REST)
            readings.append(Reading("restarted", router.depth() // len(platforms.PLATFORMS), *_mib(router)))
    return readings, seconds


def _mib(router: routerproc.Router) -> tuple[float, float]:
    memory = router.memory()
    return memory.rss_mib, memory.hwm_mib


def main() -> int:
    """Print the readings and the verdict."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--queue", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=100_000, help="a multiple of 100")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    print(machine.describe())
    machine.keep_off_server_cpu()
    with routerproc.workdir("memory") as folder:
        readings, seconds = run(folder, args.queue, args.events)
    print(
        f"\nqueue={args.queue}; {args.events:,} events posted in {seconds:.1f} s "
        f"({args.events / seconds:,.0f} events/s)"
    )
    print(f"{'stage':<10} {'queued events':>13} {'VmRSS MiB':>10} {'VmHWM MiB':>10}")
    for r in readings:
        print(f"{r.stage:<10} {r.queued_events:>13,} {r.rss_mib:10.1f} {r.hwm_mib:10.1f}")
    worst = max(r.hwm_mib for r in readings if r.stage != "idle")
    met = worst <= TARGET_MIB and readings[1].queued_events >= args.events
    print(
        f"\npeak (VmHWM) with {args.events:,} queued, after ingest or a restart: {worst:.1f} MiB; "
        f"target <= {TARGET_MIB:g}: {'met' if met else 'MISSED'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in readings], indent=2))
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
