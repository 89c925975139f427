"""The /debug live view: its page, its script and the admin-only server-sent event stream behind it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from router import answers
from router.admin import refusal
from router.debugbus import DebugBus, Record
from router.secret import Secret

STATIC: Final = Path(__file__).parent / "static"
KEEPALIVE: Final = 15.0
"""Seconds between comment lines on an idle stream, so proxies keep the connection open."""

PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def sse(record: Record) -> str:
    """One server-sent event: id, event type (the record's kind) and the record as one JSON data line."""
    data = json.dumps(record, default=str, separators=(",", ":"))
    return f"id: {record.get('id', '')}\nevent: {record.get('kind', 'message')}\ndata: {data}\n\n"


def routes(bus: DebugBus, token: Secret | None) -> list[BaseRoute]:
    """GET /debug, GET /debug/debug.js and GET /admin/events/stream (history, then live records)."""
    page = (STATIC / "debug.html").read_bytes()
    script = (STATIC / "debug.js").read_bytes()

    def static(body: bytes, media_type: str) -> Route:
        async def endpoint(_: Request) -> Response:
            if not token:
                return answers.error(
                    404, "not_found", "the debug view is off: set admin.token in router.yaml"
                )
            return Response(body, media_type=media_type, headers=PAGE_HEADERS)

        return Route("/debug" if media_type == "text/html" else "/debug/debug.js", endpoint, methods=["GET"])

    async def stream(request: Request) -> Response:
        refused = refusal(request, token)
        if refused is not None:
            return refused
        follow = request.query_params.get("follow", "1") != "0"
        limit = _positive(request.query_params.get("limit"))
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _records(bus, follow, limit), media_type="text/event-stream", headers=headers
        )

    return [
        static(page, "text/html"),
        static(script, "text/javascript"),
        Route("/admin/events/stream", stream, methods=["GET"]),
    ]


async def _records(bus: DebugBus, follow: bool, limit: int | None) -> AsyncIterator[str]:
    """The history, then (when following) every new record; ends after `limit` records when given."""
    queue = bus.subscribe() if follow else None
    history = bus.history()
    sent = 0
    try:
        yield "retry: 2000\n: debug stream\n\n"
        for record in history:
            yield sse(record)
            sent += 1
            if limit is not None and sent >= limit:
                return
        while queue is not None:
            try:
                record = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            yield sse(record)
            sent += 1
            if limit is not None and sent >= limit:
                return
    finally:
        if queue is not None:
            bus.unsubscribe(queue)


def _positive(text: str | None) -> int | None:
    try:
        value = int(text) if text else 0
    except ValueError:
        return None
    return value if value > 0 else None
