"""Sender: puts an adapter's HttpRequest on the wire with httpx and reads a capped response."""

from __future__ import annotations

import httpx

from destinations.base import HttpRequest, HttpResponse
from router import jsoncodec

MAX_RESPONSE_BYTES = 256 * 1024


class TransportError(Exception):
    """No usable answer (timeout, reset, refused); always retried. The message holds no secrets."""


async def send(client: httpx.AsyncClient, request: HttpRequest, timeout: float) -> HttpResponse:
    """Send once; never follows redirects; the body is read up to MAX_RESPONSE_BYTES."""
    content = None
    headers = dict(request.headers)
    if request.form is not None:
        content = httpx.QueryParams(request.form).__str__().encode()
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    elif request.json is not None:
        content = jsoncodec.dumps(request.json)
        headers.setdefault("content-type", "application/json")
    try:
        async with client.stream(
            request.method,
            request.url,
            content=content,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
        ) as response:
            body = await _capped(response)
    except httpx.TimeoutException as exc:
        raise TransportError(f"timeout after {timeout:g}s ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise TransportError(f"transport error ({type(exc).__name__})") from None
    return HttpResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()}, body)


async def _capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: MAX_RESPONSE_BYTES - size])
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)
