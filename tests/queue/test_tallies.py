"""Match tallies kept in memory between writes: written when due, kept when a transaction fails."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from router.queue import counts, sqlite
from router.queue.base import NewEvent
from router.queue.counts import MatchTallies
from router.queue.depth import DepthBound
from tests.router.test_tokenbucket import Clock

EMAIL = frozenset({"email"})
BOTH = frozenset({"email", "ip_ua"})


def test_take_waits_for_the_interval_unless_forced() -> None:
    clock = Clock()
    tallies = MatchTallies(interval=1.0, clock=clock)
    assert tallies.take() == Counter()  # nothing written yet: due at once
    tallies.keep(Counter({("a", 0, EMAIL): 2}))
    clock.now += 0.5
    assert tallies.take() is None
    assert tallies.pending == Counter({("a", 0, EMAIL): 2})
    assert tallies.take(force=True) == Counter({("a", 0, EMAIL): 2})
    assert tallies.pending == Counter()
    tallies.keep(Counter({("a", 0, BOTH): 1}))
    clock.now += 1.0
    assert tallies.take() == Counter({("a", 0, BOTH): 1})


def test_rows_spread_each_set_over_its_identifiers_and_the_total() -> None:
    sets = Counter({("a", 0, EMAIL): 2, ("a", 0, BOTH): 3, ("b", 3600, frozenset()): 1})
    assert counts.match_rows(sets) == [
        ("a", 0, "*", 5),
        ("a", 0, "email", 5),
        ("a", 0, "ip_ua", 3),
        ("b", 3600, "*", 1),
    ]


def event(event_id: str) -> NewEvent:
    return NewEvent("web", event_id, "purchase", 3600.0, {}, ("a",), {"a": frozenset({"email"})})


def test_a_failed_transaction_keeps_the_tallies_it_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waiting tallies of committed events survive a rolled-back enqueue, which adds none of its own."""
    clock = Clock()
    tallies = MatchTallies(interval=1.0, clock=clock)
    conn = sqlite._connect(str(tmp_path / "queue.db"))
    bound = DepthBound()
    sqlite._enqueue_group(conn, [[event("f-1")]], None, bound, tallies)  # written
    sqlite._enqueue_group(conn, [[event("f-2")]], None, bound, tallies)  # waits
    clock.now += 2.0

    def broken(*_: object) -> int:
        raise OSError("disk gone")

    with monkeypatch.context() as patch:
        patch.setattr(sqlite, "_insert", broken)
        with pytest.raises(OSError):
            sqlite._enqueue_group(conn, [[event("f-3")]], None, bound, tallies)
    assert tallies.pending == Counter({("a", 3600, frozenset({"email"})): 1})  # f-2's, not f-3's
    clock.now += 2.0
    sqlite._enqueue_group(conn, [[event("f-4")]], None, bound, tallies)
    overview = sqlite._overview(conn, 0.0, tallies)
    assert overview["a"]["match"] == {"events": 3, "identifiers": {"email": 3}}  # f-1, f-2, f-4
    assert overview["a"]["accepted"] == 3
    conn.close()
