"""Delivery decisions: the closed set of outcomes a destination response can have for an event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Ok:
    """The platform accepted the event."""


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: send the same event again, not before `after` seconds when given."""

    reason: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """A permanent failure: sending the event again cannot succeed.

    `isolate` marks a whole-batch refusal caused by some event in it (Meta rejects a whole request
    for one invalid event): the dispatcher then splits the batch to deliver the valid events.
    """

    reason: str
    isolate: bool = False


Decision: TypeAlias = Ok | Retry | Drop

OK = Ok()
