"""R1 destination outage, in real time: two Meta destinations under steady load, one down for a while.

    python -m bench.reliability.outage --minutes 15 --outage-start 2 --outage-minutes 10   # nightly
    python -m bench.reliability.outage --minutes 3 --outage-start 0.5 --outage-minutes 1  # short

`meta_down` answers 503 from --outage-start for --outage-minutes, then recovers; `meta_up` stays
healthy. The router runs with its real dispatch timings (backoff 10 s -> 300 s) unless --scaled.
After the load ends the bench waits (up to --drain-timeout) until both fakes hold every
acknowledged event, then prints the R1 line of section 5.7 of the reliability doc:

    R1 outage-1m 9000 acked, 0 lost, 0 foreign-dup, 12 same-id redeliveries, drain 180.2 s, iso p99 x1.1

- lost / foreign-dup / same-id redeliveries: tests.e2e.load.oracle, summed over both destinations;
- drain: from recovery until meta_down holds every event acknowledged before recovery;
- iso: p99 delivery latency (ack -> arrival) at meta_up during the outage over the p99 outside it;
- first-attempt success vs final deliverability at meta_down (Segment's framing).

Exit status 0 when nothing acknowledged was lost, nothing foreign arrived and no request came
before a Retry-After; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.reliability.harness import (
    REAL_TIMINGS,
    SCALED_TIMINGS,
    first_attempt_success,
    meta_fakes,
    pin,
    router_process,
    say,
)
from tests.e2e.load import LoadReport, MetaTarget, first_arrivals, oracle, p99, round_robin, send_load
from tests.fakes.meta import MetaFake

PIXEL_DOWN, PIXEL_UP = "1111111111", "2222222222"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.reliability.outage", description=__doc__)
    parser.add_argument("--minutes", type=float, default=15.0, help="length of the load (default 15)")
    parser.add_argument("--outage-start", type=float, default=2.0, help="minute the outage begins")
    parser.add_argument("--outage-minutes", type=float, default=10.0, help="length of the outage")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second (default 50)")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds to wait after the load")
    parser.add_argument("--scaled", action="store_true", help="test timings: backoff 0.05 s -> 0.2 s")
    parser.add_argument("--pin", action="store_true", help="router on CPU 0, fakes and load on CPU 1")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, workdir: Path) -> int:
    """Drive one outage and print its figures; returns the exit status."""
    with meta_fakes(PIXEL_DOWN, PIXEL_UP) as [(down, down_srv), (up, up_srv)]:
        targets = [
            MetaTarget("meta_down", PIXEL_DOWN, down_srv.url),
            MetaTarget("meta_up", PIXEL_UP, up_srv.url),
        ]
        timings = SCALED_TIMINGS if args.scaled else REAL_TIMINGS
        router = router_process(workdir, f"sqlite:///{workdir / 'queue.db'}", targets, timings)
        await asyncio.to_thread(router.start)
        pin(router, args.pin)
        say(f"router on {router.url}, log {router.log_path}; {args.rate:g} ev/s for {args.minutes:g} min")
        try:
            load = asyncio.create_task(
                send_load(round_robin([router.url]), rate=args.rate, seconds=args.minutes * 60, prefix="r1")
            )
            outage, recovered = await outage_window(down, args)
            report = await load
            say(f"load done: {len(report.acked)} acked; waiting for the backlog")
            await wait_for_all(report, [down, up], args.drain_timeout)
        finally:
            router.kill()
        return verdict(args, report, down, up, window=(outage, recovered))


async def outage_window(down: MetaFake, args: argparse.Namespace) -> tuple[float, float]:
    """Put meta_down in 503 for the configured window; returns (start, end) in wall-clock time."""
    await asyncio.sleep(args.outage_start * 60)
    down.set_mode("503")
    outage = time.time()
    say("meta_down: 503")
    await asyncio.sleep(args.outage_minutes * 60)
    down.set_mode("ok")
    say("meta_down: recovered")
    return outage, time.time()


async def wait_for_all(report: LoadReport, fakes: Sequence[MetaFake], timeout: float) -> None:
    """Until every fake holds every acknowledged id, or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(set(report.acked) <= set(fake.event_ids()) for fake in fakes):
            return
        await asyncio.sleep(0.5)


def verdict(
    args: argparse.Namespace,
    report: LoadReport,
    down: MetaFake,
    up: MetaFake,
    *,
    window: tuple[float, float],
) -> int:
    """Print the figures; 0 when the pass figures hold."""
    outage, recovered = window
    a, b = oracle(report, down.received), oracle(report, up.received)
    arrived_down, arrived_up = first_arrivals(down.received), first_arrivals(up.received)
    before = report.acked_between(0, recovered)
    drain = max((arrived_down.get(i, float("inf")) for i in before), default=recovered) - recovered
    during = report.acked_between(outage, recovered)
    latency = {i: arrived_up[i] - at for i, at in report.acked.items() if i in arrived_up}
    inside = [v for i, v in latency.items() if i in during] or [0.0]
    outside = [v for i, v in latency.items() if i not in during] or [1.0]
    lost = len(a.lost) + len(b.lost)
    foreign = len(a.foreign_duplicates) + len(b.foreign_duplicates) + len(a.foreign_ids) + len(b.foreign_ids)
    violations = len(down.violations) + len(up.violations)
    delivered = len(set(report.acked) & set(arrived_down)) / max(1, len(report.acked))
    answered = dict(Counter(str(r.status) for r in down.requests))
    print(f"meta_down: {a.line()}")
    print(f"meta_up:   {b.line()}")
    print(
        f"meta_down first-attempt success {first_attempt_success(down, set(report.acked)):.2%} -> "
        f"final deliverability {delivered:.2%}; {len(down.requests)} requests {answered}; "
        f"{violations} requests before Retry-After"
    )
    print(
        f"R1 outage-{duration(args.outage_minutes)} {len(report.acked)} acked, {lost} lost, "
        f"{foreign} foreign-dup, "
        f"{a.redeliveries + b.redeliveries} same-id redeliveries, drain {drain:.1f} s, "
        f"iso p99 x{p99(inside) / p99(outside):.2f} ({p99(inside):.3f} s vs {p99(outside):.3f} s)"
    )
    return 0 if lost == 0 and foreign == 0 and violations == 0 else 1


def duration(minutes: float) -> str:
    """10m, or 30s for less than a minute."""
    return f"{minutes:g}m" if minutes >= 1 else f"{minutes * 60:g}s"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="r1-outage-") as workdir:
        return asyncio.run(run(args, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
