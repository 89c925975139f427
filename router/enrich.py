"""Enrich: fill what the request knows (IP, user agent, cookies, click ids) into a canonical event."""

from __future__ import annotations

from typing import Any

from router.clickids import fbc_from_fbclid, fbclid_of, from_cookies, from_url
from router.context import RequestContext
from router.pageurl import without_emails


def enrich(event: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """Explicit values in the event win; then cookies; then click ids from the page URL."""
    if context.browser:
        _user_from_request(event["user"], context)
        _page_from_request(event["page"], context)
    ids = {**from_url(event["page"].get("url", "")), **from_cookies(context.cookies), **event["ids"]}
    event["ids"] = _with_fbc(ids, context.received_ms)
    return event


def _user_from_request(user: dict[str, Any], context: RequestContext) -> None:
    if context.client_ip and "ip" not in user:
        user["ip"] = context.client_ip
    if context.user_agent and "user_agent" not in user:
        user["user_agent"] = context.user_agent
    if context.country and "country" not in user:
        user["country"] = context.country


def _page_from_request(page: dict[str, Any], context: RequestContext) -> None:
    """A browser request's Referer is the page that sent it, when the event names none."""
    referer = context.referer or ""
    if "url" not in page and referer.startswith(("https://", "http://")) and len(referer) <= 4096:
        page["url"] = without_emails(referer)


def _with_fbc(ids: dict[str, str], received_ms: int) -> dict[str, str]:
    """Build `fbc` from an fbclid when there is none, or when the landing URL brought a newer fbclid."""
    fbclid = ids.get("fbclid")
    if fbclid and (not ids.get("fbc") or fbclid_of(ids["fbc"]) != fbclid):
        ids["fbc"] = fbc_from_fbclid(fbclid, received_ms)
    return ids
