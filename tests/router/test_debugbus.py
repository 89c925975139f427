"""The debug bus: bounded fan-out that drops for slow subscribers, history ring, no-op when disabled."""

from __future__ import annotations

import asyncio

from destinations.base import HttpRequest, HttpResponse, Payload
from router import debugbus
from router.debugbus import DebugBus
from router.decisions import OK, Drop, Retry
from router.queue.base import Dead, Delivered, NewEvent, Outcome, Retrying, Skipped


async def test_a_subscriber_gets_every_record_in_order_with_ids() -> None:
    """Records reach a live subscriber in publish order, stamped with increasing ids."""
    bus = DebugBus()
    queue = bus.subscribe()
    bus.publish_all([{"kind": "event", "n": 1}, {"kind": "event", "n": 2}])
    first, second = queue.get_nowait(), queue.get_nowait()
    assert (first["n"], second["n"]) == (1, 2)
    assert first["id"] < second["id"]


async def test_a_slow_subscriber_loses_records_without_blocking_anyone() -> None:
    """A full subscriber queue drops new records (counted); a second subscriber still gets them all."""
    bus = DebugBus(queue_size=3)
    slow, fast = bus.subscribe(), bus.subscribe()
    for n in range(10):
        bus.publish({"kind": "event", "n": n})
        fast.get_nowait()
    assert slow.qsize() == 3
    assert [slow.get_nowait()["n"] for _ in range(3)] == [0, 1, 2]
    assert bus.dropped == 7
    assert fast.empty()


async def test_the_history_keeps_only_the_last_records() -> None:
    """The ring buffer keeps the newest `history` records, oldest first, even with nobody listening."""
    bus = DebugBus(history=5)
    for n in range(12):
        bus.publish({"kind": "event", "n": n})
    assert [r["n"] for r in bus.history()] == [7, 8, 9, 10, 11]


async def test_unsubscribed_queues_get_nothing_more() -> None:
    """After unsubscribe a queue is no longer fed."""
    bus = DebugBus()
    queue = bus.subscribe()
    bus.unsubscribe(queue)
    bus.publish({"kind": "event"})
    assert queue.empty()
    assert bus.subscribers == 0


async def test_a_disabled_bus_ignores_everything() -> None:
    """With the view off, publishing stores and sends nothing."""
    bus = DebugBus(enabled=False)
    queue = bus.subscribe()
    bus.publish({"kind": "event"})
    assert bus.history() == []
    assert queue.empty()


async def test_a_consumer_waiting_on_the_queue_is_woken() -> None:
    """A subscriber awaiting get() wakes up when a record is published."""
    bus = DebugBus()
    queue = bus.subscribe()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    bus.publish({"kind": "settled"})
    record = await asyncio.wait_for(waiter, 1)
    assert record["kind"] == "settled"


def test_shipment_records_mask_tokens_and_redact_the_answer() -> None:
    """A shipment record masks the request's secrets and scrubs emails and tokens from the answer."""
    request = HttpRequest(
        "POST",
        "https://graph.example/v1/events?access_token=tok-secret-1",
        json={"access_token": "tok-secret-1", "data": [{"em": ["a" * 64]}]},
        secrets=("tok-secret-1",),
    )
    answer = b'{"error": "bad user someone@example.com", "echo": "tok-secret-1"}'
    record = debugbus.shipment(
        "meta_main",
        request,
        payloads=[Payload({"em": ["a" * 64]})],
        event_ids=["e-1"],
        response=HttpResponse(400, body=answer),
        decisions=[Drop("invalid")],
    )
    text = str(record)
    assert "tok-secret-1" not in text
    assert "someone@example.com" not in text
    assert record["status"] == 400
    assert record["items"] == [
        {"event_id": "e-1", "payload": {"em": ["a" * 64]}, "decision": "dead", "reason": "invalid"}
    ]


def test_long_answers_are_cut() -> None:
    """An answer longer than the limit is truncated."""
    text = debugbus.answer(HttpResponse(500, body=b"x" * 20_000))
    assert len(text) < debugbus.ANSWER_LIMIT + 20
    assert text.endswith("[truncated]")


def test_incoming_and_settled_records() -> None:
    """Ingest records carry the canonical event and result; settled records one outcome per event."""
    event = NewEvent("web", "e-1", "lead", 1.0, {"event_id": "e-1", "event_name": "lead"}, ("meta_main",))
    results = [
        {"index": 0, "status": "accepted", "event_id": "e-1"},
        {"index": 1, "status": "rejected", "errors": [{"path": "/event_name", "message": "missing"}]},
    ]
    accepted, rejected = debugbus.incoming("web", [event], results)
    assert accepted["event"] == event.payload
    assert accepted["destinations"] == ["meta_main"]
    assert rejected == {"kind": "rejected", "source": "web", "index": 1, "paths": ["/event_name"]}
    events = {n: {"event_id": f"e-{n}", "event_name": "lead"} for n in range(4)}
    outcomes: list[Outcome] = [
        Delivered(0),
        Retrying(1, 9.0, "HTTP 503"),
        Dead(2, "invalid"),
        Skipped(3, "consent"),
    ]
    record = debugbus.settled("meta_main", outcomes, events, dict.fromkeys(range(4), 0))
    assert [r["outcome"] for r in record["outcomes"]] == ["delivered", "retry", "dead", "skipped"]
    assert (
        debugbus.shipment(
            "d",
            HttpRequest("POST", "https://x.test/"),
            payloads=[],
            event_ids=[],
            response=None,
            decisions=[OK, Retry("x")],
        )["status"]
        is None
    )
