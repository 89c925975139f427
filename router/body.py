"""Request bodies read with a size limit, checked from Content-Length first and again while streaming."""

from __future__ import annotations

from starlette.requests import Request


class TooLarge(Exception):
    """The body is over the limit; nothing more is read."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or TooLarge as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
