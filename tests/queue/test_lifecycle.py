"""Queue behaviour every backend shares: idempotency, crash recovery, dead letters, replay, purge."""

from __future__ import annotations

import time

from router.queue.base import DEDUP_WINDOW, Dead, DeadFilter, Delivered, NewEvent, Queue, Retrying, Skipped
from tests.queue.conftest import Store


def event(event_id: str, received_at: float = 1000.0, destinations: tuple[str, ...] = ("a",)) -> NewEvent:
    """A small event from the `web` source."""
    return NewEvent("web", event_id, "purchase", received_at, {"event_id": event_id}, destinations)


async def kill(queue: Queue, destination: str, reasons: dict[int, str], now: float) -> None:
    """Claim everything due for the destination and settle the given keys as dead."""
    await queue.claim(destination, 100, now=now, lease=30)
    await queue.settle(destination, [Dead(pk, reason) for pk, reason in reasons.items()], now=now)


async def test_a_repeated_event_is_a_duplicate_within_48_hours(any_queue: Queue) -> None:
    """Same (source, event_name, event_id) again: not stored, key None; after 48 h it is new again."""
    [first] = await any_queue.enqueue([event("o-1")])
    assert first is not None
    assert await any_queue.enqueue([event("o-1", 1000.0 + 3600)]) == [None]
    assert await any_queue.depth() == 1
    [later] = await any_queue.enqueue([event("o-1", 1000.0 + DEDUP_WINDOW + 1)])
    assert later is not None and later != first
    assert await any_queue.depth() == 2


async def test_duplicates_inside_one_batch_are_caught(any_queue: Queue) -> None:
    """A batch holding the same event twice stores it once."""
    keys = await any_queue.enqueue([event("o-2"), event("o-2"), event("o-3")])
    assert keys[1] is None and keys[0] is not None and keys[2] is not None


async def test_other_source_or_name_is_not_a_duplicate(any_queue: Queue) -> None:
    """The key is the triple: another source or event name with the same id is a new event."""
    await any_queue.enqueue([event("o-4")])
    other_source = NewEvent("backend", "o-4", "purchase", 1000.0, {}, ("a",))
    other_name = NewEvent("web", "o-4", "lead", 1000.0, {}, ("a",))
    assert None not in await any_queue.enqueue([other_source, other_name])


async def test_recover_hands_back_what_a_dead_process_had_claimed(any_queue: Queue) -> None:
    """After a crash the in-flight rows are claimable at once, not only when the lease runs out."""
    await any_queue.enqueue([event("r-1"), event("r-2")])
    assert len(await any_queue.claim("a", 10, now=2000.0, lease=600)) == 2
    assert await any_queue.claim("a", 10, now=2001.0, lease=600) == []
    assert await any_queue.recover() == 2
    assert len(await any_queue.claim("a", 10, now=2001.0, lease=600)) == 2


async def test_dead_letters_filter_by_destination_time_and_event_id(any_queue: Queue) -> None:
    """Listing filters combine; the reason, attempts and time of death are kept."""
    keys = await any_queue.enqueue([event("d-1", destinations=("a", "b")), event("d-2")])
    pk1, pk2 = keys[0], keys[1]
    assert pk1 is not None and pk2 is not None
    await kill(any_queue, "a", {pk1: "Meta 100: invalid", pk2: "expired"}, now=5000.0)
    await kill(any_queue, "b", {pk1: "HTTP 400"}, now=9000.0)
    assert len(await any_queue.dead_letters()) == 3
    assert [d["event_id"] for d in await any_queue.dead_letters(DeadFilter(destination="a"))] == [
        "d-1",
        "d-2",
    ]
    recent = await any_queue.dead_letters(DeadFilter(since=8000.0))
    assert [(d["destination"], d["reason"], d["attempts"]) for d in recent] == [("b", "HTTP 400", 1)]
    assert len(await any_queue.dead_letters(DeadFilter(event_id="d-2"))) == 1
    assert len(await any_queue.dead_letters(limit=2)) == 2


async def test_replay_makes_dead_letters_fresh_deliveries(any_queue: Queue) -> None:
    """Replayed rows are pending at once with attempts reset, and can be delivered."""
    keys = [k for k in await any_queue.enqueue([event(f"p-{i}") for i in range(5)]) if k is not None]
    await kill(any_queue, "a", dict.fromkeys(keys, "HTTP 503 for 4 h"), now=5000.0)
    assert await any_queue.depth() == 0
    assert await any_queue.replay(DeadFilter(destination="a"), now=6000.0, limit=3) == 3
    assert await any_queue.replay(DeadFilter(destination="a"), now=6000.0, limit=3) == 2
    assert await any_queue.replay(DeadFilter(destination="a"), now=6000.0, limit=3) == 0
    jobs = await any_queue.claim("a", 10, now=6000.0, lease=30)
    assert sorted(j.event_pk for j in jobs) == sorted(keys)
    assert all(j.attempts == 0 and j.first_attempt_at is None for j in jobs)
    await any_queue.settle("a", [Delivered(j.event_pk) for j in jobs], now=6001.0)
    assert await any_queue.stats() == {"pending": 0, "inflight": 0, "dead": 0, "skipped": 0}


async def test_purge_removes_old_dead_letters_and_dedup_keys(any_queue: Queue) -> None:
    """Rows that died before the cut-off go with their events; newer ones and pending work stay."""
    keys = await any_queue.enqueue([event("u-1"), event("u-2"), event("u-3")])
    old, new, pending = keys
    assert old is not None and new is not None and pending is not None
    await any_queue.claim("a", 2, now=1500.0, lease=30)
    await any_queue.settle("a", [Dead(old, "x"), Skipped(new, "not mapped")], now=1500.0)
    purged = await any_queue.purge(dead_before=1600.0, seen_before=500.0)
    assert purged == {"dead_or_skipped": 2, "events": 2, "dedup_keys": 0}
    assert await any_queue.depth() == 1
    assert await any_queue.purge(dead_before=0.0, seen_before=2000.0) == {
        "dead_or_skipped": 0,
        "events": 0,
        "dedup_keys": 3,
    }
    assert await any_queue.enqueue([event("u-1", 1700.0)]) != [None]


async def test_expedite_makes_the_waiting_backlog_due_now(any_queue: Queue) -> None:
    """After an outage, pending deliveries scheduled far ahead become due at once; others stay."""
    keys = await any_queue.enqueue([event("x-1"), event("x-2", destinations=("b",))])
    await any_queue.claim("a", 10, now=1000.0, lease=30)
    await any_queue.settle("a", [Retrying(keys[0] or 0, next_attempt_at=9000.0, error="503")], now=1000.0)
    assert await any_queue.claim("a", 10, now=1001.0, lease=30) == []
    assert await any_queue.expedite("a", now=1001.0) == 1
    assert [j.event["event_id"] for j in await any_queue.claim("a", 10, now=1001.0, lease=30)] == ["x-1"]


async def test_oldest_waiting_is_the_receive_time_of_the_oldest_undelivered_event(any_queue: Queue) -> None:
    """None when empty; the oldest pending or in-flight event's received_at; moves on once delivered."""
    assert await any_queue.oldest_waiting() is None
    keys = await any_queue.enqueue([event("w-1", 1000.0), event("w-2", 1500.0, destinations=("b",))])
    assert await any_queue.oldest_waiting() == 1000.0
    await any_queue.claim("a", 10, now=2000.0, lease=30)
    assert await any_queue.oldest_waiting() == 1000.0
    await any_queue.settle("a", [Delivered(keys[0] or 0)], now=2001.0)
    assert await any_queue.oldest_waiting() == 1500.0
    await any_queue.claim("b", 10, now=2002.0, lease=30)
    await any_queue.settle("b", [Dead(keys[1] or 0, "HTTP 400")], now=2003.0)
    assert await any_queue.oldest_waiting() is None


async def test_overview_counts_accepted_and_settled_outcomes_per_hour(any_queue: Queue) -> None:
    """Accepted per destination at enqueue, each applied outcome with its reason at settle; top
    reasons ranked by count; consent decisions of final outcomes tallied; an outcome for a row not in
    flight is not counted."""
    keys = [k or 0 for k in await any_queue.enqueue([event(f"v-{i}", 7200.0, ("a", "b")) for i in range(4)])]
    assert await any_queue.enqueue([event("v-0", 7300.0)]) == [None]
    await any_queue.claim("a", 10, now=7300.0, lease=30)
    await any_queue.settle(
        "a",
        [
            Delivered(keys[0], consent="full:granted"),
            Dead(keys[1], "HTTP 400", consent="full:unknown"),
            Dead(keys[2], "HTTP 400"),
            Skipped(keys[3], "consent", consent="refused:denied"),
        ],
        now=7300.0,
    )
    await any_queue.settle(
        "a", [Delivered(keys[0]), Dead(keys[1], "again", consent="full:granted")], now=7300.0
    )
    await any_queue.claim("b", 1, now=10_900.0, lease=30)
    retry = Retrying(keys[0], next_attempt_at=11_000.0, error="HTTP 503", consent="stripped:unknown")
    await any_queue.settle("b", [retry], now=10_900.0)
    overview = await any_queue.overview(since=7200.0)
    assert overview["a"] == {
        "accepted": 4,
        "delivered": 1,
        "retrying": 0,
        "dead": 2,
        "skipped": 1,
        "reasons": {"retrying": [], "dead": [["HTTP 400", 2]], "skipped": [["consent", 1]]},
        "match": {"events": 0, "identifiers": {}},
        "consent": {"full:granted": 1, "full:unknown": 1, "refused:denied": 1},
    }
    assert (overview["b"]["accepted"], overview["b"]["retrying"]) == (4, 1)
    assert overview["b"]["consent"] == {}  # a retry is not a final decision
    assert overview["b"]["reasons"]["retrying"] == [["HTTP 503", 1]]
    later = await any_queue.overview(since=10_800.0)
    assert set(later) == {"b"} and later["b"]["accepted"] == 0 and later["b"]["retrying"] == 1


async def test_overview_sums_match_tallies_and_counts_add_up_across_instances(store: Store) -> None:
    """Match identifiers per destination with a total; two queue objects on one store add up."""
    tagged = NewEvent("web", "m-1", "purchase", 3600.0, {}, ("a", "b"), {"a": frozenset({"email", "ip_ua"})})
    plain = NewEvent("web", "m-2", "purchase", 3700.0, {}, ("a",), {"a": frozenset({"email"})})
    async with store.opened() as first, store.opened() as second:
        await first.enqueue([tagged])
        await second.enqueue([plain])
        overview = await first.overview(since=0.0)
    assert overview["a"]["match"] == {"events": 2, "identifiers": {"email": 2, "ip_ua": 1}}
    assert overview["a"]["accepted"] == 2
    assert overview["b"]["match"] == {"events": 0, "identifiers": {}}


async def test_purge_drops_count_buckets_older_than_a_week(any_queue: Queue) -> None:
    """Buckets more than 7 days old go; the recent ones stay."""
    now = time.time()
    await any_queue.enqueue([event("q-1", now - 8 * 86_400), event("q-2", now)])
    assert (await any_queue.overview(since=0.0))["a"]["accepted"] == 2
    await any_queue.purge(dead_before=0.0, seen_before=0.0)
    assert (await any_queue.overview(since=0.0))["a"]["accepted"] == 1


def tagged(event_id: str) -> NewEvent:
    """An event for destination `a` carrying an email."""
    return NewEvent("web", event_id, "purchase", 3600.0, {}, ("a",), {"a": frozenset({"email"})})


async def test_match_tallies_wait_in_memory_until_read_or_due(store: Store) -> None:
    """An enqueue right after another leaves its match tallies in memory (counts.MatchTallies): another
    queue object does not see them yet; the writer's own overview writes them first, so it is exact."""
    async with store.opened() as writer, store.opened() as reader:
        await writer.enqueue([tagged("t-1")])  # the first write is due at once
        await writer.enqueue([tagged("t-2")])  # within MATCH_FLUSH of it: waits
        assert (await reader.overview(since=0.0))["a"]["match"]["events"] == 1
        assert (await reader.overview(since=0.0))["a"]["accepted"] == 2  # delivery counts: every commit
        assert (await writer.overview(since=0.0))["a"]["match"] == {"events": 2, "identifiers": {"email": 2}}
        assert (await reader.overview(since=0.0))["a"]["match"]["events"] == 2


async def test_closing_a_queue_writes_the_tallies_still_waiting(store: Store) -> None:
    async with store.opened() as reader:
        async with store.opened() as writer:
            await writer.enqueue([tagged("c-1")])
            await writer.enqueue([tagged("c-2")])
        assert (await reader.overview(since=0.0))["a"]["match"]["events"] == 2
