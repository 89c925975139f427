"""First-party cookies: minted when absent, `_fbc` refreshed from a new fbclid, set with safe attributes."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

from starlette.responses import Response

from router import cookies
from router.context import RequestContext

NOW = 1_767_225_600.0


def context(browser: bool = True, **jar: str) -> RequestContext:
    """A request context carrying the given cookies."""
    return RequestContext("web" if browser else "backend", browser, int(NOW * 1000), cookies=jar)


def sent(response: Response) -> dict[str, Any]:
    """The response's Set-Cookie headers, parsed: name -> morsel."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            jar.load(value.decode())
    return dict(jar)


def test_prepare_mints_fbp_and_visitor_id_when_absent() -> None:
    """A first visit gets `_fbp` in Meta's shape (fb.1.<ms>.<random>) and an opaque `_rt_vid`."""
    prepared = cookies.prepare(context(), now=NOW)
    assert set(prepared.minted) == {"_fbp", "_rt_vid"}
    assert re.fullmatch(r"fb\.1\.1767225600000\.\d{1,10}", prepared.cookies["_fbp"])
    assert len(prepared.cookies["_rt_vid"]) >= 16
    assert cookies.prepare(context(), now=NOW).cookies["_rt_vid"] != prepared.cookies["_rt_vid"]


def test_prepare_keeps_existing_cookies() -> None:
    """A returning visitor's cookies are kept; nothing is minted, the context is unchanged."""
    before = context(_fbp="fb.1.1.2", _rt_vid="v1")
    assert cookies.prepare(before, now=NOW) is before


def test_server_sources_get_no_cookies() -> None:
    """A backend request is not a browser: nothing minted, nothing set."""
    prepared = cookies.prepare(context(browser=False), now=NOW)
    assert prepared.minted == {}
    response = cookies.attach(Response(), prepared, [{"ids": {"fbc": "fb.1.1.IwAR-x"}}], None)
    assert sent(response) == {}


def test_attach_sets_minted_cookies_with_safe_attributes() -> None:
    """Secure, SameSite=Lax, ~13 months, the cookie domain; HttpOnly except what the pixels read."""
    prepared = cookies.prepare(context(), now=NOW)
    jar = sent(cookies.attach(Response(), prepared, [], ".shop.example"))
    assert set(jar) == {"_fbp", "_rt_vid"}
    for morsel in jar.values():
        assert morsel["secure"] and morsel["samesite"].lower() == "lax"
        assert morsel["domain"] == ".shop.example" and morsel["path"] == "/"
        assert int(morsel["max-age"]) == cookies.MAX_AGE
    assert jar["_rt_vid"]["httponly"] and not jar["_fbp"]["httponly"]


def test_attach_without_secure_for_plain_http() -> None:
    """`secure=False` (a plain-http request) leaves the Secure flag off; no domain means host-only."""
    jar = sent(cookies.attach(Response(), cookies.prepare(context(), now=NOW), [], None, secure=False))
    assert jar and not any(m["secure"] or m["domain"] for m in jar.values())


def test_fbc_is_set_only_for_a_new_fbclid() -> None:
    """`_fbc` is set when an event carries an fbc with another fbclid than the cookie, not otherwise."""
    current = context(_fbc="fb.1.1700000000000.IwAR-old", _fbp="x", _rt_vid="v")
    same = [{"ids": {"fbc": "fb.1.1767225600000.IwAR-old"}}]
    new = [{"ids": {}}, {"ids": {"fbc": "fb.1.1767225600000.IwAR-new"}}]
    assert sent(cookies.attach(Response(), current, same, None)) == {}
    jar = sent(cookies.attach(Response(), current, new, None))
    assert set(jar) == {"_fbc"} and jar["_fbc"].value == "fb.1.1767225600000.IwAR-new"
    assert not jar["_fbc"]["httponly"]


def test_malformed_fbc_is_never_set() -> None:
    """An fbc that does not hold an fbclid (wrong prefix or part count) is not written back."""
    for fbc in ("IwAR-raw", "fb.1.IwAR", "xx.1.1.IwAR"):
        assert cookies.fbc_updates(context(), [{"ids": {"fbc": fbc}}]) == {}
