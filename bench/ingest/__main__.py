"""Ingest throughput and latency against a bare Starlette app, in one run (targets 1, 2 and 5).

    .venv/bin/python -m bench.ingest [--queue sqlite|postgres] [--dispatch paused|live]
        [--seconds 15] [--rounds 2] [--rate 500] [--check] [--json FILE]

Per round, and for each load, the bare app (bench/ingest/bare_app.py, one process, kept running) is
measured, then a router started for that load alone on a fresh durable queue:

- single: wrk, one event per request, `--connections` (32) open connections, `--seconds`;
- batch: wrk, `{"events": [100 events]}` per request, `--batch-connections` (8);
- rate: wrk on a fixed schedule (bench/ingest/paced.lua), `--rate` (500) single-event requests/s
  for `--rate-seconds` (30), 64 connections: latency.

Both servers run on the first CPU (taskset), the load generators on the second. `--dispatch paused`
(default) points the seven destinations at a closed port with hour-long probe intervals, so ingest
is measured alone and every accepted event stays queued (the queue depth is checked: 7 deliveries
per event). `--dispatch live` points them at the seven loopback fakes (bench/platforms.py, on the
second CPU), so delivery competes with ingest for the router's CPU, as in production.

Targets: router single-event requests/s >= 60% of the bare app's; batch >= 20,000 events/s;
p99 <= 15 ms at 500 events/s. Ratios are within one run; absolute figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import loadgen, machine, platforms, routerproc

RATIO_TARGET = 0.60
BATCH_TARGET = 20_000.0
P99_TARGET_MS = 15.0
BATCH = 100
RATE_CONNECTIONS = 64
LOADS: tuple[str, ...] = ("single", "batch", "rate")
"""The loads, in the order they run: one event per request, batches of 100, and a fixed rate."""


@dataclass(frozen=True, slots=True)
class Measure:
    """One load against one server: the load generator's result plus the server's CPU use."""

    server: str
    load: str
    round: int
    events_per_request: int
    result: loadgen.Result
    cpu_seconds: float
    queued: int | None

    @property
    def events_per_second(self) -> float:
        """Events per second (requests/s times events per request)."""
        return self.result.rate * self.events_per_request

    @property
    def cpu_us_per_event(self) -> float:
        """Server CPU microseconds per answered event."""
        events = self.result.requests * self.events_per_request
        return self.cpu_seconds / events * 1e6 if events else 0.0

    @property
    def cpu_share(self) -> float:
        """Server CPU seconds per wall second (1.0 = one core busy)."""
        return self.cpu_seconds / self.result.seconds if self.result.seconds else 0.0


@dataclass(frozen=True, slots=True)
class Load:
    """One load of one round: its name, events per request, and how to run it (url, id prefix)."""

    name: str
    size: int
    round: int
    run: Callable[[str, str], loadgen.Result]


@dataclass(frozen=True, slots=True)
class Options:
    """What to run."""

    queue: str
    dispatch: str
    seconds: float
    connections: int
    batch_connections: int
    rate: float
    rate_seconds: float
    pin: bool
    loads: tuple[str, ...] = LOADS


class Bench:
    """Runs the loads against the bare app and against fresh routers."""

    def __init__(self, options: Options, stack: ExitStack, folder: Path) -> None:
        self.options, self.folder = options, folder
        self.server_cpus = machine.server_cpus() if options.pin else None
        self.client_cpus = machine.client_cpus() if options.pin else None
        self.bare = stack.enter_context(routerproc.BareApp(folder / "bare.log", self.server_cpus))
        self.fleet = (
            stack.enter_context(platforms.fleet(self.client_cpus)) if options.dispatch == "live" else None
        )
        self.routers = 0

    @contextmanager
    def router(self) -> Iterator[routerproc.Router]:
        """A router on a fresh queue, warmed up (and, when paused, with every breaker open)."""
        self.routers += 1
        folder = self.folder / f"router-{self.routers}"
        folder.mkdir()
        with routerproc.fresh_queue(self.options.queue, folder) as queue:
            config = folder / "router.yaml"
            config.write_text(platforms.router_yaml(queue, self.fleet.urls if self.fleet else None))
            with routerproc.Router(config, folder / "router.log", self.server_cpus) as router:
                self.single(router.url, 2.0, f"warm{self.routers}")
                time.sleep(1.0)  # paused: the first failed batches opened the breakers
                yield router

    def single(self, url: str, seconds: float, prefix: str) -> loadgen.Result:
        """wrk with one event per request."""
        return loadgen.wrk(
            url,
            1,
            platforms.BACKEND_SECRET,
            self.folder,
            prefix,
            seconds=seconds,
            connections=self.options.connections,
            cpu_list=self.client_cpus,
        )

    def batch(self, url: str, prefix: str) -> loadgen.Result:
        """wrk with 100 events per request."""
        return loadgen.wrk(
            url,
            BATCH,
            platforms.BACKEND_SECRET,
            self.folder,
            prefix,
            seconds=self.options.seconds,
            connections=self.options.batch_connections,
            cpu_list=self.client_cpus,
        )

    def fixed_rate(self, url: str, prefix: str) -> loadgen.Result:
        """wrk on a fixed schedule (bench/ingest/paced.lua), one event per request."""
        return loadgen.wrk(
            url,
            1,
            platforms.BACKEND_SECRET,
            self.folder,
            prefix,
            seconds=self.options.rate_seconds,
            connections=RATE_CONNECTIONS,
            cpu_list=self.client_cpus,
            rate=self.options.rate,
        )

    def loads(self) -> list[tuple[str, int, Callable[[str, str], loadgen.Result]]]:
        """(name, events per request, run(url, prefix)) for each load."""
        every = {
            "single": ("single", 1, lambda url, prefix: self.single(url, self.options.seconds, prefix)),
            "batch": (f"batch{BATCH}", BATCH, self.batch),
            "rate": (f"rate{self.options.rate:g}", 1, self.fixed_rate),
        }
        return [every[name] for name in self.options.loads]

    def round(self, number: int) -> list[Measure]:
        """Every load against the bare app, then against a fresh router."""
        measures = []
        for name, size, run in self.loads():
            load = Load(name, size, number, run)
            measures.append(self.measure("bare", self.bare, load, None))
            with self.router() as router:
                measures.append(self.measure("router", router, load, router))
            say(f"round {number} {name}: {line(measures[-2])} | {line(measures[-1])}")
        return measures

    def measure(
        self, server: str, process: routerproc.Served, load: Load, router: routerproc.Router | None
    ) -> Measure:
        """Run one load, with the server's CPU seconds around it (and the queue depth after it)."""
        before = process.cpu_seconds()
        result = load.run(process.url, f"r{load.round}{load.name}{server}")
        used = process.cpu_seconds() - before
        queued = router.depth() if router is not None and self.options.dispatch == "paused" else None
        return Measure(server, load.name, load.round, load.size, result, used, queued)


def line(m: Measure) -> str:
    """A short progress line for one measure."""
    return f"{m.server} {m.events_per_second:,.0f} ev/s p99 {m.result.p99_ms:.1f} ms"


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(measures: list[Measure]) -> str:
    """Every measure, one row each."""
    head = (
        f"{'round':>5} {'load':<9} {'server':<7} {'req/s':>9} {'events/s':>9} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'errors':>6} {'non2xx':>6} {'late':>5} {'cpu/wall':>8} "
        f"{'cpu us/ev':>9} {'queued':>9}"
    )
    rows = [head]
    for m in measures:
        r = m.result
        queued = f"{m.queued:,}" if m.queued is not None else "-"
        rows.append(
            f"{m.round:>5} {m.load:<9} {m.server:<7} {r.rate:9,.0f} {m.events_per_second:9,.0f} "
            f"{r.p50_ms:7.2f} {r.p90_ms:7.2f} {r.p99_ms:7.2f} {r.max_ms:7.1f} {r.errors:6d} {r.non2xx:6d} "
            f"{r.late:5d} {m.cpu_share:8.2f} {m.cpu_us_per_event:9.0f} {queued:>9}"
        )
    return "\n".join(rows)


def verdicts(measures: list[Measure], rate_name: str) -> tuple[list[str], bool]:
    """The targets of the loads that ran, from the medians over rounds (ratios per round, then median)."""

    def pick(load: str, server: str) -> list[Measure]:
        return [m for m in measures if m.load == load and m.server == server]

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    lines, met = [], []
    if pick("single", "router"):
        pairs = zip(pick("single", "bare"), pick("single", "router"), strict=True)
        ratios = [r.result.rate / b.result.rate for b, r in pairs if b.result.rate]
        ratio = median(ratios)
        single = median([m.result.rate for m in pick("single", "router")])
        single_bare = median([m.result.rate for m in pick("single", "bare")])
        met.append(ratio >= RATIO_TARGET)
        lines.append(
            f"single-event ingest: router {single:,.0f} req/s vs bare {single_bare:,.0f} req/s = ratio "
            f"{ratio:.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)}); "
            f"target >= {RATIO_TARGET:.2f}: "
            f"{'met' if met[-1] else 'MISSED'}"
        )
    if pick(f"batch{BATCH}", "router"):
        batch = median([m.events_per_second for m in pick(f"batch{BATCH}", "router")])
        batch_bare = median([m.events_per_second for m in pick(f"batch{BATCH}", "bare")])
        met.append(batch >= BATCH_TARGET)
        lines.append(
            f"batch ingest: router {batch:,.0f} events/s (bare {batch_bare:,.0f}, ratio "
            f"{batch / batch_bare:.2f}); target >= {BATCH_TARGET:,.0f}: {'met' if met[-1] else 'MISSED'}"
        )
    if pick(rate_name, "router"):
        p99 = median([m.result.p99_ms for m in pick(rate_name, "router")])
        p99_bare = median([m.result.p99_ms for m in pick(rate_name, "bare")])
        held = median([m.result.rate for m in pick(rate_name, "router")])
        met.append(p99 <= P99_TARGET_MS)
        lines.append(
            f"latency at {rate_name.removeprefix('rate')} ev/s offered ({held:,.0f} held): router p99 "
            f"{p99:.2f} ms (bare {p99_bare:.2f} ms); target <= {P99_TARGET_MS:g} ms at 500/s: "
            f"{'met' if met[-1] else 'MISSED'}"
        )
    return lines, all(met)


def main() -> int:
    """Run the rounds, print the table and the verdicts."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--queue", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dispatch", choices=("paused", "live"), default="paused")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections, single events")
    parser.add_argument("--batch-connections", type=int, default=8, help="wrk connections, batches")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed rate, requests/s")
    parser.add_argument("--rate-seconds", type=float, default=30.0)
    parser.add_argument("--loads", default=",".join(LOADS), help="which loads, comma-separated")
    parser.add_argument("--no-pin", action="store_true", help="do not pin (server CPU 0, clients CPU 1)")
    parser.add_argument("--json", metavar="FILE", help="also write every measure as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    unknown = set(args.loads.split(",")) - set(LOADS)
    if unknown:
        parser.error(f"--loads: unknown {', '.join(sorted(unknown))} (known: {','.join(LOADS)})")
    options = Options(
        args.queue,
        args.dispatch,
        args.seconds,
        args.connections,
        args.batch_connections,
        args.rate,
        args.rate_seconds,
        not args.no_pin,
        tuple(args.loads.split(",")),
    )
    print(machine.describe())
    machine.keep_off_server_cpu(options.pin)
    print(
        f"queue={options.queue} dispatch={options.dispatch} seconds={options.seconds:g} rounds={args.rounds}"
    )
    measures: list[Measure] = []
    with routerproc.workdir("ingest") as folder, ExitStack() as stack:
        bench = Bench(options, stack, folder)
        for number in range(1, args.rounds + 1):
            measures += bench.round(number)
    print("\n" + table(measures))
    lines, met = verdicts(measures, f"rate{options.rate:g}")
    print("\n" + "\n".join(lines))
    print(f"load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if args.json:
        rows = [
            asdict(m) | {"events_per_second": m.events_per_second, "cpu_us_per_event": m.cpu_us_per_event}
            for m in measures
        ]
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
