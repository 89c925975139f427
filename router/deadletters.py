"""Dead letters for operators: list them, and replay them into the queue with progress and a summary."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from typing import IO, Any

from tqdm import tqdm

from router.queue.base import DeadFilter, Queue

REPLAY_CHUNK = 500


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def list_dead(queue: Queue, where: DeadFilter, as_json: bool, out: IO[str]) -> int:
    """Print matching dead letters (a table, or JSON lines); returns how many."""
    letters = await queue.dead_letters(where)
    if as_json:
        for letter in letters:
            out.write(json.dumps(letter) + "\n")
        return len(letters)
    out.write(f"{'died (UTC)':<21} {'destination':<16} {'event':<24} {'event_id':<38} attempts  reason\n")
    for d in letters:
        out.write(
            f"{_when(d['updated_at']):<21} {d['destination']:<16} {d['event_name'][:24]:<24} "
            f"{d['event_id'][:38]:<38} {d['attempts']:>8}  {d['reason']}\n"
        )
    out.write(_summary(letters))
    return len(letters)


def _summary(letters: list[dict[str, Any]]) -> str:
    by_destination = Counter(d["destination"] for d in letters)
    parts = ", ".join(f"{dest}: {count}" for dest, count in sorted(by_destination.items()))
    return f"{len(letters)} dead letter(s)" + (f" ({parts})" if parts else "") + "\n"


async def replay(queue: Queue, where: DeadFilter, now: float, err: IO[str] | None = None) -> int:
    """Re-queue matching dead letters in chunks, with a progress bar on stderr; returns how many."""
    err = err or sys.stderr
    total = len(await queue.dead_letters(where))
    done = 0
    with tqdm(total=total, unit="event", desc="replaying", file=err, disable=total == 0) as bar:
        while done < total:
            moved = await queue.replay(where, now, min(REPLAY_CHUNK, total - done))
            if moved == 0:
                break
            done += moved
            bar.update(moved)
    err.write(f"replayed {done} of {total} dead letter(s); the running router delivers them now\n")
    return done
