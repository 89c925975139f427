"""Debug bus: an in-process, bounded pub/sub of ingest and delivery records for the /debug live view."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

from destinations.base import HttpRequest, HttpResponse, Payload
from router.decisions import Decision, Drop, Ok
from router.logging import scrub_text
from router.queue.base import Dead, Delivered, NewEvent, Outcome, Retrying, Skipped

Record = dict[str, Any]

HISTORY: Final = 200
"""Records a newly opened page gets as recent history."""

SUBSCRIBER_QUEUE: Final = 500
"""Records a subscriber may lag behind before new ones are dropped for it."""

ANSWER_LIMIT: Final = 4096
"""Characters of a platform's (redacted) answer kept in a record."""

REQUEST_LIMIT: Final = 32_768
"""Characters of a masked request body kept in a record; larger bodies are replaced by a note."""


class DebugBus:
    """Fan-out of records to live subscribers (bounded queues, dropping for slow ones) plus a history ring.

    A disabled bus (no admin token configured) ignores everything; callers check `enabled` before
    building a record, so publishing costs nothing when the view is off."""

    def __init__(
        self, enabled: bool = True, history: int = HISTORY, queue_size: int = SUBSCRIBER_QUEUE
    ) -> None:
        self.enabled = enabled
        self.queue_size = queue_size
        self.dropped = 0
        self._history: deque[Record] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Record]] = set()
        self._ids = itertools.count(1)

    def publish(self, record: Record) -> None:
        """Stamp the record (id, time), keep it as history, offer it to every subscriber; never blocks."""
        if not self.enabled:
            return
        stamped = {"id": next(self._ids), "at": round(time.time(), 3), **record}
        self._history.append(stamped)
        for subscriber in self._subscribers:
            try:
                subscriber.put_nowait(stamped)
            except asyncio.QueueFull:
                self.dropped += 1

    def publish_all(self, records: Sequence[Record]) -> None:
        """Publish several records in order."""
        for record in records:
            self.publish(record)

    def subscribe(self) -> asyncio.Queue[Record]:
        """A new bounded queue that receives every record published from now on."""
        queue: asyncio.Queue[Record] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Record]) -> None:
        """Stop feeding that queue."""
        self._subscribers.discard(queue)

    def history(self) -> list[Record]:
        """The last records, oldest first."""
        return list(self._history)

    @property
    def subscribers(self) -> int:
        """How many live subscribers there are."""
        return len(self._subscribers)


def incoming(source: str, new: Sequence[NewEvent], results: Sequence[Record]) -> list[Record]:
    """One record per ingested event: the stored canonical event with its result; rejected events carry
    only their problem paths (their raw body is never shown)."""
    by_id = {e.event_id: e for e in new}
    records: list[Record] = []
    for result in results:
        event = by_id.get(result.get("event_id", "")) if result["status"] != "rejected" else None
        if event is None:
            paths = [e["path"] for e in result.get("errors", [])]
            records.append({"kind": "rejected", "source": source, "index": result["index"], "paths": paths})
            continue
        records.append(
            {
                "kind": "event",
                "source": source,
                "status": result["status"],
                "event_id": event.event_id,
                "event_name": event.event_name,
                "destinations": list(event.destinations),
                "event": event.payload,
                "warnings": [w["path"] for w in result.get("warnings", [])],
            }
        )
    return records


def shipment(
    destination: str,
    request: HttpRequest,
    *,
    payloads: Sequence[Payload],
    event_ids: Sequence[str],
    response: HttpResponse | None,
    decisions: Sequence[Decision],
    note: str | None = None,
) -> Record:
    """One request to a platform: the masked request, each event's mapped payload and decision, the status
    and the redacted, truncated answer."""
    items = [
        {"event_id": event_id, "payload": payload.body, **_decision(decision)}
        for event_id, payload, decision in zip(event_ids, payloads, decisions, strict=False)
    ]
    return {
        "kind": "shipment",
        "destination": destination,
        "request": _request(request),
        "status": response.status if response is not None else None,
        "answer": answer(response, request.secrets) if response is not None else None,
        "items": items,
        "note": note,
    }


def settled(
    destination: str, outcomes: Sequence[Outcome], events: dict[int, dict[str, Any]], attempts: dict[int, int]
) -> Record:
    """The final outcome of each claimed event for one destination after a dispatch round."""
    rows = []
    for outcome in outcomes:
        event = events[outcome.event_pk]
        rows.append(
            {
                "event_id": event["event_id"],
                "event_name": event["event_name"],
                "attempt": attempts[outcome.event_pk] + 1,
                **_outcome(outcome),
            }
        )
    return {"kind": "settled", "destination": destination, "outcomes": rows}


def answer(response: HttpResponse, secrets: Sequence[str] = ()) -> str:
    """The platform's answer as text with the request's secrets, tokens, emails and phone numbers
    redacted, cut to a few KB."""
    text = response.body.decode("utf-8", "replace")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = scrub_text(text)
    return text if len(text) <= ANSWER_LIMIT else text[:ANSWER_LIMIT] + " [truncated]"


def _request(request: HttpRequest) -> Record:
    masked = request.masked()
    masked["url"] = scrub_text(masked["url"], phones=False)
    for key in ("json", "form"):
        if key in masked and len(json.dumps(masked[key])) > REQUEST_LIMIT:
            masked[key] = f"[{key} body over {REQUEST_LIMIT} characters omitted; see the payloads]"
    return masked


def _decision(decision: Decision) -> Record:
    if isinstance(decision, Ok):
        return {"decision": "delivered", "reason": None}
    if isinstance(decision, Drop):
        return {"decision": "dead", "reason": decision.reason}
    return {"decision": "retry", "reason": decision.reason}


def _outcome(outcome: Outcome) -> Record:
    if isinstance(outcome, Delivered):
        return {"outcome": "delivered", "reason": None}
    if isinstance(outcome, Retrying):
        return {"outcome": "retry", "reason": outcome.error, "next_attempt_at": outcome.next_attempt_at}
    if isinstance(outcome, Dead):
        return {"outcome": "dead", "reason": outcome.reason}
    if isinstance(outcome, Skipped):
        return {"outcome": "skipped", "reason": outcome.reason}
    return {"outcome": "unknown", "reason": None}
