"""R3 kill -9 mid-flight, in real time: SIGKILL the router at random intervals under load, restart it.

    python -m bench.reliability.chaos --cycles 20 --min-interval 5 --max-interval 20 --rate 100   # nightly
    python -m bench.reliability.chaos --cycles 5 --min-interval 2 --max-interval 5                # short

Each cycle waits a random interval (seeded: --seed replays a run), SIGKILLs `router serve`, runs
`PRAGMA integrity_check` on the SQLite file while no router holds it, and starts a new router on
the same file. With --flap the fake Meta answers 503 during every other cycle, so kills also land
on retrying deliveries. --queue-url runs the same loop on a PostgreSQL queue (no integrity check;
killed leases come back after `dispatch.lease`). After the last cycle the bench waits until the
fake holds every acknowledged event and prints the R3 line:

    R3 kill-9 x20 31000 acked, 0 lost, 0 foreign-dup, 0 foreign-id, 45 same-id redeliveries (max 9 per kill,
    largest request 12 events), 20/20 integrity checks ok

Exit status 0 when nothing acknowledged was lost, nothing foreign arrived and every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.reliability.harness import REAL_TIMINGS, SCALED_TIMINGS, meta_fakes, pin, router_process, say
from tests.e2e.load import LoadReport, MetaTarget, oracle, round_robin, send_load
from tests.e2e.process import RouterProcess
from tests.fakes.meta import MetaFake

PIXEL = "1111111111"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.reliability.chaos", description=__doc__)
    parser.add_argument("--cycles", type=int, default=20, help="SIGKILL/restart cycles (default 20)")
    parser.add_argument("--min-interval", type=float, default=5.0, help="shortest seconds between kills")
    parser.add_argument("--max-interval", type=float, default=20.0, help="longest seconds between kills")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="replay the kill schedule of a run")
    parser.add_argument("--flap", action="store_true", help="fake Meta in 503 every other cycle")
    parser.add_argument("--queue-url", default=None, help="postgresql://... (default: a temp SQLite file)")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds to wait after the load")
    parser.add_argument("--scaled", action="store_true", help="test timings: backoff 0.05 s -> 0.2 s")
    parser.add_argument("--pin", action="store_true", help="router on CPU 0, fakes and load on CPU 1")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, workdir: Path) -> int:
    """Run the kill cycles and print the figures; returns the exit status."""
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    db = workdir / "queue.db"
    with meta_fakes(PIXEL) as [(fake, server)]:
        timings = SCALED_TIMINGS if args.scaled else REAL_TIMINGS
        queue_url = args.queue_url or f"sqlite:///{db}"
        router = router_process(workdir, queue_url, [MetaTarget("meta", PIXEL, server.url)], timings)
        await asyncio.to_thread(router.start)
        pin(router, args.pin)
        say(f"seed {seed}; router on {router.url}, log {router.log_path}; {args.rate:g} ev/s")
        stop = asyncio.Event()
        hours = 24 * 3600.0
        load = asyncio.create_task(
            send_load(round_robin([router.url]), rate=args.rate, seconds=hours, prefix="r3", stop=stop)
        )
        kills: list[float] = []
        checks: list[str] = []
        try:
            for cycle in range(args.cycles):
                fake.set_mode("503" if args.flap and cycle % 2 else "ok")
                await asyncio.sleep(rng.uniform(args.min_interval, args.max_interval))
                kills.append(time.time())
                router.kill()
                if args.queue_url is None:
                    checks.append(integrity(db))
                await asyncio.to_thread(restart, router, args.pin)
                say(f"cycle {cycle + 1}/{args.cycles}: killed and restarted {checks[-1:]}")
            await asyncio.sleep(args.min_interval)
        finally:
            stop.set()
            report = await load
        fake.set_mode("ok")
        say(f"load done: {len(report.acked)} acked; waiting for the backlog")
        await wait_for_all(report, fake, args.drain_timeout)
        router.kill()
    return verdict(args, report, fake, kills, checks)


def restart(router: RouterProcess, pinned: bool) -> None:
    """Start the router again (same port, same queue) and re-pin it."""
    router.start()
    pin(router, pinned)


def integrity(db: Path) -> str:
    """SQLite's own verdict on the queue file ("ok" when sound)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        result: str = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return result


async def wait_for_all(report: LoadReport, fake: MetaFake, timeout: float) -> None:
    """Until the fake holds every acknowledged id, or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not set(report.acked) <= set(fake.event_ids()):
        await asyncio.sleep(0.5)


def verdict(
    args: argparse.Namespace, report: LoadReport, fake: MetaFake, kills: list[float], checks: list[str]
) -> int:
    """Print the figures; 0 when the pass figures hold."""
    figures = oracle(report, fake.received)
    seen: set[str | None] = set()
    per_kill: Counter[int] = Counter()
    for event in fake.received:
        if event.event_id in seen:
            per_kill[bisect.bisect(kills, event.received_at)] += 1
        seen.add(event.event_id)
    largest = max((r.n_events for r in fake.requests), default=0)
    passed = sum(check == "ok" for check in checks)
    integrity_figure = (
        f"{passed}/{len(checks)} integrity checks ok" if args.queue_url is None else "PostgreSQL"
    )
    print(figures.line())
    print(
        f"R3 kill-9 x{len(kills)} {figures.acked} acked, {len(figures.lost)} lost, "
        f"{len(figures.foreign_duplicates)} foreign-dup, {len(figures.foreign_ids)} foreign-id, "
        f"{figures.redeliveries} same-id redeliveries (max {max(per_kill.values(), default=0)} per kill, "
        f"largest request {largest} events), {integrity_figure}"
    )
    bad = figures.lost or figures.foreign_ids or figures.foreign_duplicates or passed != len(checks)
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="r3-chaos-") as workdir:
        return asyncio.run(run(args, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
