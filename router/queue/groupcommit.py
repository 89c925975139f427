"""Group commit: calls that arrive while a transaction runs wait, then share the next one.

Both queue backends store `enqueue` calls this way. Up to `concurrency` committer tasks run at once
(SQLite has one writer: 1; PostgreSQL: 2, so a group forms while another commits); each call is
answered only after the COMMIT that holds it, with its own result or its own error (a call without
room gets its QueueFull, the others in its group go on). When the transaction itself fails, every
call of the group gets that error. A caller that is cancelled does not cancel the group: its events
may be stored without being acknowledged, which at-least-once delivery allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Commit = Callable[[list[T]], Awaitable[list[R | Exception]]]
"""Stores a group of calls in one transaction: one result, or one exception to raise, per call."""


class GroupCommit(Generic[T, R]):
    """Gathers calls into groups and hands each group to `commit`."""

    def __init__(self, commit: Commit[T, R], concurrency: int = 1) -> None:
        self._commit = commit
        self._concurrency = concurrency
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._committers: set[asyncio.Task[None]] = set()

    async def submit(self, call: T) -> R:
        """The call's result, once the transaction holding it has committed."""
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((call, answer))
        if len(self._committers) < self._concurrency:
            committer = asyncio.create_task(self._run())
            self._committers.add(committer)
            committer.add_done_callback(self._committers.discard)  # if cancelled before it ran
        return await answer

    async def _run(self) -> None:
        try:
            await self._commit_all()
        finally:
            # Leave the set in the same step as the last look at `_waiting`: a call appended after
            # that look then starts a committer of its own instead of waiting for this one.
            self._committers.discard(asyncio.current_task())

    async def _commit_all(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                results = await self._commit([call for call, _ in group])
            except BaseException as exc:
                for _, answer in group:
                    fail(answer, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, answer), result in zip(group, results, strict=True):
                if isinstance(result, Exception):
                    fail(answer, result)
                elif not answer.done():
                    answer.set_result(result)


def fail(answer: asyncio.Future[Any], exc: BaseException) -> None:
    """Hand `exc` to a caller still waiting (a cancellation as a cancellation)."""
    if answer.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        answer.cancel()
    else:
        answer.set_exception(exc)
