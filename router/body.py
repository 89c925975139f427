"""Request bodies read with a size limit, checked from Content-Length first and again while streaming."""

from __future__ import annotations

import asyncio
import zlib
from typing import Final

from starlette.requests import Request

BODY_TIMEOUT: Final = 10.0
"""Seconds a client gets to send its whole body (a slowloris trickle gets 408)."""


class TooLarge(Exception):
    """The body is over the limit; nothing more is read."""


class Unreadable(Exception):
    """The body cannot be read: answer `status` with `code` and `message` (what to fix)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def too_slow(timeout: float) -> Unreadable:
    """408: the body did not arrive within `timeout` seconds."""
    return Unreadable(408, "body_timeout", f"the body did not arrive within {timeout:g} seconds")


def bad_encoding() -> Unreadable:
    """415: a Content-Encoding other than gzip or identity."""
    return Unreadable(415, "unsupported_encoding", "send the body plain or with Content-Encoding: gzip")


def bad_gzip(message: str) -> Unreadable:
    """400: the gzip stream is broken."""
    return Unreadable(400, "bad_request", message)


async def read_limited(request: Request, limit: int, timeout: float = BODY_TIMEOUT) -> bytes:
    """The whole body, or TooLarge as soon as it is known to exceed `limit` bytes; Unreadable (408)
    when it takes longer than `timeout` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge
                chunks.append(chunk)
    except TimeoutError as exc:
        raise too_slow(timeout) from exc
    return b"".join(chunks)


async def read_decoded(request: Request, limit: int, timeout: float = BODY_TIMEOUT) -> bytes:
    """The body as read_limited reads it, gunzipped when sent with Content-Encoding: gzip; the
    decompressed size is held to `limit` too, inflating chunk by chunk (a gzip bomb costs ~`limit`)."""
    coding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if coding == "identity":
        return await read_limited(request, limit, timeout)
    if coding != "gzip":
        raise bad_encoding()
    return decoded(await read_limited(request, limit, timeout), coding, limit)


def decoded(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body, gunzipped when `encoding` is gzip, never inflated past `limit` bytes (TooLarge)."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise bad_encoding()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while pending:
            part = inflater.decompress(pending, limit + 1 - size)
            size += len(part)
            if size > limit:
                raise TooLarge
            parts.append(part)
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise bad_gzip("the body is not valid gzip") from exc
    if not inflater.eof:
        raise bad_gzip("the gzip body is truncated")
    return b"".join(parts)
