"""End-to-end fan-out: events per second from ingest to all seven loopback platforms (target 3).

    .venv/bin/python -m bench.fanout [--queue sqlite|postgres] [--events 20000] [--mode live|drain|both]
        [--check] [--json FILE]

The router (`router serve`, first CPU) delivers to the seven fakes of tests/fakes, served by
bench/platforms.py in their own process on the second CPU, which enforce each platform's contract
(a violation or a lost event fails the run). Two measures:

- live: N events are posted as batches of 100 (autocannon, exactly N/100 requests, second CPU) while
  the router delivers; events/s = N / (time from the first request until every fake holds all N).
  Ingest and delivery share the router's CPU, as in production. This is the target's figure.
- drain: N events are queued first by a router whose destinations are down, which is then stopped;
  a router with the same queue and live destinations starts, and events/s = N / (time from its
  spawn, start-up included, until every fake holds all N): delivery alone, from a backlog.

The router uses its production dispatch settings (poll 1 s, linger 50 ms, batches at each
platform's maximum). Reported with the router's CPU seconds per event and its peak memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import backlog, machine, platforms, routerproc

TARGET = 2_000.0


@dataclass(frozen=True, slots=True)
class Fanout:
    """One fan-out measure."""

    mode: str
    queue: str
    events: int
    seconds: float
    ingest_seconds: float | None
    router_cpu_seconds: float
    router_gc_seconds: float
    fakes_cpu_seconds: float
    router_hwm_mib: float
    delivered: dict[str, int]
    violations: int

    @property
    def rate(self) -> float:
        """Events per second reaching all seven."""
        return self.events / self.seconds if self.seconds else 0.0


def wait_delivered(
    fleet: platforms.Fleet, events: int, timeout: float
) -> tuple[float, dict[str, dict[str, int]]]:
    """Poll the fakes until each holds `events` unique events; returns when (monotonic) and the counts."""
    deadline = time.monotonic() + timeout
    while True:
        counts = fleet.counts()
        now = time.monotonic()
        if all(c["unique"] >= events for c in counts.values()):
            return now, counts
        if now > deadline:
            raise TimeoutError(
                f"not delivered in {timeout:g} s: { {k: v['unique'] for k, v in counts.items()} }"
            )
        time.sleep(0.2)


def live(folder: Path, queue_kind: str, events: int, timeout: float) -> Fanout:
    """Ingest and delivery at once."""
    with platforms.fleet(machine.client_cpus()) as fleet, routerproc.fresh_queue(queue_kind, folder) as queue:
        config = folder / "live.yaml"
        config.write_text(platforms.router_yaml(queue, fleet.urls))
        with routerproc.Router(config, folder / "live.log", machine.server_cpus()) as router:
            cpu, fakes_cpu, gc = router.cpu_seconds(), fleet.cpu_seconds(), router.gc_seconds()
            started = time.monotonic()
            ingest: dict[str, float] = {}

            def post() -> None:
                backlog.fill(router.url, events, folder)
                ingest["seconds"] = time.monotonic() - started

            poster = threading.Thread(target=post)
            poster.start()
            done, counts = wait_delivered(fleet, events, timeout)
            poster.join()
            return Fanout(
                "live",
                queue_kind,
                events,
                done - started,
                ingest.get("seconds"),
                router.cpu_seconds() - cpu,
                router.gc_seconds() - gc,
                fleet.cpu_seconds() - fakes_cpu,
                router.memory().hwm_mib,
                {k: v["unique"] for k, v in counts.items()},
                sum(v["violations"] for v in counts.values()),
            )


def queued(folder: Path, queue: str, events: int) -> None:
    """Queue `events` events with a router whose destinations are down, then stop it."""
    config = folder / "fill.yaml"
    config.write_text(platforms.router_yaml(queue, None))
    with routerproc.Router(config, folder / "fill.log", machine.server_cpus()) as router:
        backlog.pause(router.url)
        backlog.fill(router.url, events, folder)
        depth = router.depth()
    if depth < events * len(platforms.PLATFORMS):
        raise RuntimeError(f"only {depth} deliveries queued for {events} events")


def drain(
    folder: Path, queue_kind: str, events: int, timeout: float, during: Callable[[int], None] | None = None
) -> Fanout:
    """Delivery alone, from a backlog queued before the router started."""
    with routerproc.fresh_queue(queue_kind, folder) as queue:
        queued(folder, queue, events)
        with platforms.fleet(machine.client_cpus()) as fleet:
            config = folder / "drain.yaml"
            config.write_text(platforms.router_yaml(queue, fleet.urls))
            router = routerproc.Router(config, folder / "drain.log", machine.server_cpus())
            started, fakes_cpu = time.monotonic(), fleet.cpu_seconds()
            with router:  # it delivers from its lifespan on, maybe before /readyz answers: clock from spawn
                cpu = 0.0
                if during is not None:
                    threading.Thread(target=during, args=(router.pid,), daemon=True).start()
                done, counts = wait_delivered(fleet, events, timeout)
                return Fanout(
                    "drain",
                    queue_kind,
                    events,
                    done - started,
                    None,
                    router.cpu_seconds() - cpu,
                    router.gc_seconds(),
                    fleet.cpu_seconds() - fakes_cpu,
                    router.memory().hwm_mib,
                    {k: v["unique"] for k, v in counts.items()},
                    sum(v["violations"] for v in counts.values()),
                )


def drain_profile(folder: Path, queue_kind: str, events: int, record: Callable[[int], None]) -> None:
    """For bench.profile: drain a backlog while `record(pid)` samples the router."""
    drain(folder, queue_kind, events, 3600, record)


def row(f: Fanout) -> str:
    """One table row."""
    ingest = f"{f.ingest_seconds:8.1f}" if f.ingest_seconds is not None else f"{'-':>8}"
    return (
        f"{f.mode:<6} {f.queue:<8} {f.events:>7,} {f.seconds:8.1f} {ingest} {f.rate:9,.0f} "
        f"{f.router_cpu_seconds / f.events * 1e6:10.0f} {f.router_cpu_seconds / f.seconds:8.2f} "
        f"{100 * f.router_gc_seconds / f.router_cpu_seconds if f.router_cpu_seconds else 0.0:6.1f} "
        f"{f.fakes_cpu_seconds / f.seconds:8.2f} {f.router_hwm_mib:8.1f} {min(f.delivered.values()):>9,} "
        f"{f.violations:>5}"
    )


def main() -> int:
    """Run the measures, print the table and the verdict."""
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--queue", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=20_000, help="a multiple of 100")
    parser.add_argument("--mode", choices=("live", "drain", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    print(machine.describe())
    machine.keep_off_server_cpu()
    results = []
    with routerproc.workdir("fanout") as folder:
        if args.mode in ("live", "both"):
            (folder / "live").mkdir()
            results.append(live(folder / "live", args.queue, args.events, args.timeout))
        if args.mode in ("drain", "both"):
            (folder / "drain").mkdir()
            results.append(drain(folder / "drain", args.queue, args.events, args.timeout))
    print(
        f"\n{'mode':<6} {'queue':<8} {'events':>7} {'seconds':>8} {'ingest s':>8} {'events/s':>9} "
        f"{'cpu us/ev':>10} {'router':>8} {'gc %':>6} {'fakes':>8} {'HWM MiB':>8} {'delivered':>9} "
        f"{'viol.':>5}"
    )
    print(
        f"{'':<49}{'(router CPU)':>10} {'cpu/wall':>8} {'of cpu':>6} {'cpu/wall':>8} {'(router)':>8} "
        f"{'(min of 7)':>9}"
    )
    for result in results:
        print(row(result))
    ok = all(r.violations == 0 and min(r.delivered.values()) >= r.events for r in results)
    headline = next((r for r in results if r.mode == "live"), results[0])
    met = headline.rate >= TARGET and ok
    print(
        f"\nend-to-end fan-out ({headline.mode}, {headline.queue}): {headline.rate:,.0f} events/s to all "
        f"seven; target >= {TARGET:,.0f}: {'met' if met else 'MISSED'}"
    )
    print(f"load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in results], indent=2))
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
