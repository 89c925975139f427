"""First-party cookies for browser sources: minted when absent, refreshed from new click ids, sent back."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from starlette.responses import Response

from router.clickids import fbclid_of
from router.context import RequestContext

MAX_AGE: Final = 390 * 86_400
"""About 13 months: under the 400-day cap browsers put on cookie lifetimes."""
VISITOR: Final = "_rt_vid"
"""The router's own stable visitor id."""
READABLE_BY_PIXELS: Final = frozenset({"_fbp", "_fbc"})
"""Cookies the platforms' browser pixels read: not HttpOnly."""


def prepare(context: RequestContext, now: float | None = None) -> RequestContext:
    """For a browser request, mint `_fbp` and the visitor id when absent, so the events carry them."""
    if not context.browser:
        return context
    ms = int((now if now is not None else time.time()) * 1000)
    minted: dict[str, str] = {}
    if not context.cookies.get("_fbp"):
        minted["_fbp"] = f"fb.1.{ms}.{secrets.randbelow(10**10)}"
    if not context.cookies.get(VISITOR):
        minted[VISITOR] = secrets.token_urlsafe(16)
    if not minted:
        return context
    return replace(context, cookies={**context.cookies, **minted}, minted=minted)


def fbc_updates(context: RequestContext, events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """`_fbc` to set when an event brought a newer fbclid than the cookie holds."""
    current = context.cookies.get("_fbc", "")
    for event in events:
        fbc = event.get("ids", {}).get("fbc")
        if fbc and fbclid_of(fbc) and fbclid_of(fbc) != fbclid_of(current):
            return {"_fbc": fbc}
    return {}


def attach(
    response: Response,
    context: RequestContext,
    events: Iterable[Mapping[str, Any]],
    domain: str | None,
    secure: bool = True,
) -> Response:
    """Add Set-Cookie headers for minted cookies and a refreshed `_fbc`; Secure, SameSite=Lax, long-lived."""
    if not context.browser:
        return response
    for name, value in {**context.minted, **fbc_updates(context, events)}.items():
        response.set_cookie(
            name,
            value,
            max_age=MAX_AGE,
            domain=domain,
            secure=secure,
            httponly=name not in READABLE_BY_PIXELS,
            samesite="lax",
        )
    return response
