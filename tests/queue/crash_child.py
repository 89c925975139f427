"""Child process for the kill -9 tests of every backend: enqueues forever and prints each acknowledged key.

Usage: python crash_child.py QUEUE_URL     (sqlite:////abs/path.db or postgresql://...)

Every event goes to `kept` (never claimed) and `sent` (claimed and delivered by a second task), so
the file sees inserts, leases and deletes when the parent kills the process. A key is printed only
after `enqueue` has returned, i.e. after COMMIT: the parent treats each printed key as acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import sys

from router.queue.base import Delivered, NewEvent, Queue
from router.queue.factory import open_queue

NOW = 1e12


async def enqueue_forever(queue: Queue) -> None:
    """Enqueue batches of one to three events and print their keys once committed."""
    n = 0
    while True:
        batch = [
            NewEvent(
                "web",
                f"ev-{os.getpid()}-{n}-{i}",
                "purchase",
                float(n),
                {"n": n, "pad": "x" * 300},
                ("kept", "sent"),
            )
            for i in range(1 + n % 3)
        ]
        keys = await queue.enqueue(batch)
        sys.stdout.write("".join(f"{key}\n" for key in keys))
        sys.stdout.flush()
        n += 1


async def deliver_forever(queue: Queue) -> None:
    """Claim and deliver the `sent` rows as fast as they come."""
    while True:
        jobs = await queue.claim("sent", 10, now=NOW, lease=30.0)
        await queue.settle("sent", [Delivered(job.event_pk) for job in jobs], now=NOW)
        await asyncio.sleep(0)


async def main(url: str) -> None:
    """Run both loops until killed."""
    queue = open_queue(url)
    await queue.open()
    try:
        await asyncio.gather(enqueue_forever(queue), deliver_forever(queue))
    finally:
        await queue.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
