"""Group commit: waiting calls share one commit, each gets its own answer, failures stay where they belong."""

from __future__ import annotations

import asyncio

import pytest

from router.queue.groupcommit import GroupCommit


class Store:
    """A commit function that records its groups; it holds each commit open until released."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.raise_next: BaseException | None = None

    async def commit(self, calls: list[int]) -> list[int | Exception]:
        self.groups.append(calls)
        await self.gate.wait()
        if self.raise_next is not None:
            exc, self.raise_next = self.raise_next, None
            raise exc
        return [ValueError(f"{call} refused") if call < 0 else call * 10 for call in calls]


async def test_calls_arriving_during_a_commit_share_the_next_one() -> None:
    """The first call commits alone; the ones that arrive while it runs go together, in order."""
    store = Store()
    group = GroupCommit(store.commit)
    store.gate.clear()
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    others = [asyncio.create_task(group.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    store.gate.set()
    assert await first == 10
    assert await asyncio.gather(*others) == [20, 30, 40]
    assert store.groups == [[1], [2, 3, 4]]


async def test_an_exception_result_fails_only_its_own_call() -> None:
    """A refused call (QueueFull in the queues) raises for its caller; the others in its group succeed."""
    store = Store()
    group = GroupCommit(store.commit)
    answers = await asyncio.gather(group.submit(1), group.submit(-2), group.submit(3), return_exceptions=True)
    assert answers[0] == 10 and answers[2] == 30
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "-2 refused"


async def test_a_failed_commit_fails_its_whole_group_and_the_next_group_still_runs() -> None:
    """A transaction that fails answers every call of its group with that error; later calls go on."""
    store = Store()
    group = GroupCommit(store.commit)
    store.raise_next = ConnectionError("database went away")
    answers = await asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True)
    assert all(isinstance(a, ConnectionError) for a in answers)
    assert await group.submit(5) == 50


async def test_a_cancelled_caller_does_not_cancel_its_group() -> None:
    """The commit a cancelled caller was part of still runs for the others (stored, not acknowledged)."""
    store = Store()
    group = GroupCommit(store.commit)
    store.gate.clear()
    cancelled = asyncio.create_task(group.submit(1))
    kept = asyncio.create_task(group.submit(2))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    store.gate.set()
    assert await kept == 20
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert store.groups == [[1, 2]]


async def test_with_concurrency_two_a_second_commit_runs_while_the_first_is_held() -> None:
    """Two commits run at once at most; a call arriving while both run waits for a later group."""
    store = Store()
    group = GroupCommit(store.commit, concurrency=2)
    store.gate.clear()
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(group.submit(2))
    await asyncio.sleep(0.01)
    third = asyncio.create_task(group.submit(3))
    await asyncio.sleep(0.01)
    assert store.groups == [[1], [2]]  # both held open at once; 3 waits
    store.gate.set()
    assert await asyncio.gather(first, second, third) == [10, 20, 30]
    assert store.groups == [[1], [2], [3]]


async def test_a_call_arriving_as_the_last_committer_finishes_is_still_committed() -> None:
    """The committer leaves in the same step it finds nothing waiting: a call submitted right after
    (before its task's done-callbacks ran) starts a new committer instead of waiting forever."""
    store = Store()
    group = GroupCommit(store.commit)
    for n in range(50):
        assert await asyncio.wait_for(group.submit(n), timeout=5) == n * 10
