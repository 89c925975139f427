"""The queue contract, run on every backend: keys, claims, leases, outcomes, depth and durability."""

from __future__ import annotations

import asyncio

import pytest

from router.queue.base import (
    Dead,
    DeadFilter,
    Delivered,
    Job,
    NewEvent,
    Outcome,
    Queue,
    QueueFull,
    Retrying,
    Skipped,
)
from tests.queue.conftest import Store


def event(n: int, destinations: tuple[str, ...] = ("a",), received_at: float = 100.0) -> NewEvent:
    """A small event whose payload carries `n`."""
    return NewEvent("web", f"ev-{n}", "purchase", received_at, {"n": n, "note": "é"}, destinations)


def pks(jobs: list[Job]) -> list[int]:
    """The event keys of claimed jobs, in order."""
    return [job.event_pk for job in jobs]


async def test_enqueue_returns_keys_and_depth_counts_delivery_rows(any_queue: Queue) -> None:
    """Each event gets a key; depth counts one row per (event, destination)."""
    keys = await any_queue.enqueue([event(1, ("a", "b")), event(2, ("a",)), event(3, ("a", "b", "c"))])
    assert len(keys) == 3 and keys == sorted(set(keys))
    assert await any_queue.depth() == 6
    assert await any_queue.stats() == {"pending": 6, "inflight": 0, "dead": 0, "skipped": 0}


async def test_empty_batch_stores_nothing(any_queue: Queue) -> None:
    """Enqueueing no events returns no keys."""
    assert await any_queue.enqueue([]) == []
    assert await any_queue.depth() == 0


async def test_payload_round_trips_as_json(any_queue: Queue) -> None:
    """Claimed jobs carry the decoded payload and start with no attempts."""
    [pk] = await any_queue.enqueue([event(7)])
    [job] = await any_queue.claim("a", 10, now=100.0, lease=30.0)
    assert job == Job(pk, "a", {"n": 7, "note": "é"}, 0, None)


async def test_payload_numbers_and_text_come_back_exactly(any_queue: Queue) -> None:
    """Huge floats stay floats, key order and NUL characters survive, as JSON text would keep them."""
    payload = {"z": 1e300, "a": -0.0, "text": "nul\u0000 ☃", "n": [1, 2.5, None, True]}
    await any_queue.enqueue([NewEvent("web", "x", "purchase", 100.0, payload, ("a",))])
    [job] = await any_queue.claim("a", 10, now=100.0, lease=30.0)
    assert job.event == payload and list(job.event) == ["z", "a", "text", "n"]
    assert isinstance(job.event["z"], float) and str(job.event["a"]) == "-0.0"


async def test_claim_waits_for_next_attempt_at(any_queue: Queue) -> None:
    """A delivery is not due before its event's receive time."""
    await any_queue.enqueue([event(1, received_at=200.0)])
    assert await any_queue.claim("a", 10, now=199.9, lease=30.0) == []
    assert len(await any_queue.claim("a", 10, now=200.0, lease=30.0)) == 1


async def test_claim_respects_limit_and_orders_by_due_time_then_key(any_queue: Queue) -> None:
    """Oldest due first, ties broken by key, never more than `limit`."""
    events = [event(1, received_at=30.0), event(2, received_at=10.0), event(3, received_at=10.0)]
    k = await any_queue.enqueue(events)
    assert pks(await any_queue.claim("a", 2, now=100.0, lease=30.0)) == [k[1], k[2]]
    assert pks(await any_queue.claim("a", 2, now=100.0, lease=30.0)) == [k[0]]
    assert await any_queue.claim("a", 0, now=100.0, lease=30.0) == []


async def test_claim_only_takes_its_destination(any_queue: Queue) -> None:
    """Claiming for one destination leaves the other destinations' rows alone."""
    [pk] = await any_queue.enqueue([event(1, ("a", "b"))])
    assert pks(await any_queue.claim("a", 10, now=100.0, lease=30.0)) == [pk]
    assert await any_queue.claim("c", 10, now=100.0, lease=30.0) == []
    assert pks(await any_queue.claim("b", 10, now=100.0, lease=30.0)) == [pk]


async def test_live_lease_is_not_claimed_but_expired_lease_is(any_queue: Queue) -> None:
    """An in-flight row comes back only once its lease has run out."""
    [pk] = await any_queue.enqueue([event(1)])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    assert await any_queue.claim("a", 10, now=129.9, lease=30.0) == []
    assert pks(await any_queue.claim("a", 10, now=130.0, lease=30.0)) == [pk]
    assert await any_queue.stats() == {"pending": 0, "inflight": 1, "dead": 0, "skipped": 0}


async def test_expired_leases_and_pending_rows_are_claimed_in_due_order(any_queue: Queue) -> None:
    """An expired lease competes with pending rows by its due time, then its key."""
    first, second, third = await any_queue.enqueue([event(n, received_at=10.0 * n) for n in (1, 2, 3)])
    assert pks(await any_queue.claim("a", 1, now=100.0, lease=30.0)) == [first]
    assert pks(await any_queue.claim("a", 3, now=130.0, lease=30.0)) == [first, second, third]


async def drain(queue: Queue, destination: str) -> list[int]:
    """Claim small batches until nothing is left; the keys this claimer got."""
    got: list[int] = []
    while jobs := await queue.claim(destination, 5, now=100.0, lease=600.0):
        got += pks(jobs)
        await asyncio.sleep(0)
    return got


async def test_two_instances_on_one_store_never_claim_the_same_row(store: Store) -> None:
    """Two queues (two connections) split the rows without overlap."""
    async with store.opened() as first, store.opened() as second:
        keys = await first.enqueue([event(n) for n in range(300)])
        results = await asyncio.gather(*(drain(q, "a") for q in (first, second, first, second)))
    assert sorted(pk for result in results for pk in result) == sorted(keys)


async def test_concurrent_tasks_on_one_queue_never_claim_the_same_row(any_queue: Queue) -> None:
    """Tasks sharing one queue instance split the rows without overlap."""
    keys = await any_queue.enqueue([event(n) for n in range(200)])
    results = await asyncio.gather(*(drain(any_queue, "a") for _ in range(6)))
    assert sorted(pk for result in results for pk in result) == sorted(keys)


async def test_delivered_removes_row_and_event_after_last_destination(any_queue: Queue, store: Store) -> None:
    """The event row goes once every destination has delivered it."""
    [pk] = await any_queue.enqueue([event(1, ("a", "b"))])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Delivered(pk)], now=101.0)
    assert store.rows("SELECT pk FROM events") == [(pk,)]
    assert await any_queue.depth() == 1
    await any_queue.claim("b", 10, now=100.0, lease=30.0)
    await any_queue.settle("b", [Delivered(pk)], now=101.0)
    assert store.rows("SELECT COUNT(*) FROM events") == [(0,)]
    assert await any_queue.depth() == 0


async def test_retrying_counts_attempt_and_reschedules(any_queue: Queue) -> None:
    """Retrying goes back to pending at `next_attempt_at`, keeping the first attempt's time."""
    [pk] = await any_queue.enqueue([event(1)])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Retrying(pk, next_attempt_at=150.0, error="503")], now=101.0)
    assert await any_queue.claim("a", 10, now=149.0, lease=30.0) == []
    [job] = await any_queue.claim("a", 10, now=150.0, lease=30.0)
    assert (job.attempts, job.first_attempt_at) == (1, 101.0)
    await any_queue.settle("a", [Retrying(pk, next_attempt_at=160.0, error="503")], now=151.0)
    [job] = await any_queue.claim("a", 10, now=160.0, lease=30.0)
    assert (job.attempts, job.first_attempt_at) == (2, 101.0)


async def test_dead_is_kept_as_dead_letter(any_queue: Queue) -> None:
    """Dead rows leave the depth but stay listed with their reason."""
    [pk, other] = await any_queue.enqueue([event(1, ("a", "b")), event(2, ("b",))])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Dead(pk, reason="400 invalid pixel", consent="full:granted")], now=105.0)
    assert await any_queue.claim("a", 10, now=1e9, lease=30.0) == []
    assert await any_queue.stats() == {"pending": 2, "inflight": 0, "dead": 1, "skipped": 0}
    expected = {
        "event_pk": pk,
        "destination": "a",
        "reason": "400 invalid pixel",
        "attempts": 1,
        "first_attempt_at": 105.0,
        "updated_at": 105.0,
        "source": "web",
        "event_id": "ev-1",
        "event_name": "purchase",
        "consent": "full:granted",
    }
    assert await any_queue.dead_letters() == [expected]
    assert await any_queue.dead_letters(DeadFilter(destination="b")) == []
    assert other != pk


async def test_skipped_keeps_reason_without_counting_an_attempt(any_queue: Queue, store: Store) -> None:
    """Skipped rows keep their reason and attempt count and are not claimed again."""
    [pk] = await any_queue.enqueue([event(1)])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Skipped(pk, reason="consent denied", consent="refused:denied")], now=101.0)
    assert await any_queue.claim("a", 10, now=1e9, lease=30.0) == []
    assert store.rows("SELECT state, attempts, last_error, first_attempt_at, consent FROM deliveries") == [
        ("skipped", 0, "consent denied", None, "refused:denied")
    ]
    assert await any_queue.depth() == 0


async def test_settle_mixes_outcomes_in_one_call(any_queue: Queue) -> None:
    """One settle call records a different outcome per row."""
    keys = await any_queue.enqueue([event(n) for n in range(4)])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    outcomes: list[Outcome] = [
        Delivered(keys[0]),
        Retrying(keys[1], 200.0, "429"),
        Dead(keys[2], "400"),
        Skipped(keys[3], "x"),
    ]
    await any_queue.settle("a", outcomes, now=101.0)
    assert await any_queue.stats() == {"pending": 1, "inflight": 0, "dead": 1, "skipped": 1}


async def test_settle_ignores_rows_that_are_not_in_flight(any_queue: Queue) -> None:
    """An outcome for an unclaimed or already settled row changes nothing."""
    [pk] = await any_queue.enqueue([event(1)])
    await any_queue.settle("a", [Dead(pk, reason="stale")], now=101.0)
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Skipped(pk, reason="first")], now=101.0)
    await any_queue.settle("a", [Delivered(pk)], now=102.0)
    await any_queue.settle("a", [], now=103.0)
    assert await any_queue.stats() == {"pending": 0, "inflight": 0, "dead": 0, "skipped": 1}


async def test_release_ignores_rows_that_are_not_in_flight(any_queue: Queue) -> None:
    """Releasing a dead row does not bring it back."""
    [pk] = await any_queue.enqueue([event(1)])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Dead(pk, reason="400")], now=101.0)
    await any_queue.release("a", [pk])
    await any_queue.release("a", [])
    assert await any_queue.stats() == {"pending": 0, "inflight": 0, "dead": 1, "skipped": 0}


async def test_release_makes_rows_claimable_at_once(any_queue: Queue) -> None:
    """Released rows are pending again with the same attempt count."""
    [pk] = await any_queue.enqueue([event(1)])
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Retrying(pk, next_attempt_at=110.0, error="timeout")], now=101.0)
    await any_queue.claim("a", 10, now=110.0, lease=300.0)
    await any_queue.release("a", [pk])
    [job] = await any_queue.claim("a", 10, now=111.0, lease=30.0)
    assert (job.event_pk, job.attempts) == (pk, 1)


async def test_queue_full_writes_nothing(store: Store) -> None:
    """Over `max_depth`, enqueue raises QueueFull and stores no event or delivery."""
    async with store.opened(max_depth=5) as queue:
        await queue.enqueue([event(1, ("a", "b")), event(2, ("a", "b"))])
        with pytest.raises(QueueFull):
            await queue.enqueue([event(3, ("a",)), event(4, ("a",))])
        assert await queue.depth() == 4
        assert store.rows("SELECT COUNT(*) FROM events") == [(2,)]
        await queue.enqueue([event(5, ("a",))])
        assert await queue.depth() == 5


async def test_a_call_without_room_fails_alone_inside_its_group(store: Store) -> None:
    """Group commit: with max_depth 3, concurrent calls of 2 events each: the first fits, the next ones
    get QueueFull and store nothing, while a later call that fits still goes in."""
    async with store.opened(max_depth=3) as queue:
        calls = [queue.enqueue([event(2 * n), event(2 * n + 1)]) for n in range(3)]
        answers = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(answers[0], list) and len(answers[0]) == 2
        assert all(isinstance(a, QueueFull) for a in answers[1:])
        assert await queue.depth() == 2
        assert len(await queue.enqueue([event(100)])) == 1
        with pytest.raises(QueueFull):
            await queue.enqueue([event(101)])
        assert await queue.depth() == 3


async def test_settled_rows_free_room_under_max_depth(store: Store) -> None:
    """Dead and skipped rows do not count against `max_depth`."""
    async with store.opened(max_depth=1) as queue:
        [pk] = await queue.enqueue([event(1)])
        await queue.claim("a", 10, now=100.0, lease=30.0)
        await queue.settle("a", [Dead(pk, reason="400")], now=101.0)
        await queue.enqueue([event(2)])


async def test_data_survives_close_and_reopen(store: Store) -> None:
    """Pending rows, leases and attempts are all there after a reopen."""
    async with store.opened() as queue:
        first, second = await queue.enqueue([event(1), event(2)])
        await queue.claim("a", 1, now=100.0, lease=30.0)
    async with store.opened() as queue:
        assert await queue.depth() == 2
        assert pks(await queue.claim("a", 10, now=100.0, lease=60.0)) == [second]
        assert pks(await queue.claim("a", 10, now=130.0, lease=30.0)) == [first]


async def test_event_without_destinations_gets_a_key_but_is_not_kept(any_queue: Queue, store: Store) -> None:
    """Nothing to deliver means nothing stored, yet keys stay unique and in input order."""
    first, empty, last = await any_queue.enqueue([event(1), event(2, ()), event(3)])
    assert first is not None and empty is not None and last is not None
    assert first < empty < last
    assert store.rows("SELECT pk FROM events ORDER BY pk") == [(first,), (last,)]
    assert await any_queue.enqueue([event(2, ("a",))]) == [None]


async def test_duplicate_destinations_are_stored_once(any_queue: Queue) -> None:
    """A destination listed twice gives one delivery row."""
    await any_queue.enqueue([event(1, ("a", "a", "b"))])
    assert await any_queue.depth() == 2


async def test_keys_are_never_reused(any_queue: Queue) -> None:
    """Deleting the newest event does not hand its key to the next one."""
    [pk] = await any_queue.enqueue([event(1)])
    assert pk is not None
    await any_queue.claim("a", 10, now=100.0, lease=30.0)
    await any_queue.settle("a", [Delivered(pk)], now=101.0)
    [nxt] = await any_queue.enqueue([event(2)])
    assert nxt is not None and nxt > pk


async def test_close_is_idempotent_and_use_after_close_fails(store: Store) -> None:
    """Closing twice is fine; using a closed queue says so."""
    queue = store.queue()
    await queue.open()
    await queue.close()
    await queue.close()
    with pytest.raises(RuntimeError, match="not open"):
        await queue.depth()


async def test_unserializable_payload_writes_nothing(any_queue: Queue) -> None:
    """A payload that is not JSON fails before the transaction starts."""
    bad = NewEvent("web", "x", "purchase", 1.0, {"value": float("nan")}, ("a",))
    with pytest.raises(ValueError):
        await any_queue.enqueue([event(1), bad])
    assert await any_queue.depth() == 0
