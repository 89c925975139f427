"""Enrich: client IP and user agent, platform cookies, click ids on the page URL, fbc, and proxy hops."""

from __future__ import annotations

from typing import Any

import pytest

from router.clickids import fbc_from_fbclid, fbclid_of, from_cookies, from_url
from router.clientip import client_ip
from router.context import RequestContext
from router.enrich import enrich
from router.identity import VARIANTS
from router.normalize import normalize

RECEIVED_MS = 1_767_225_600_000
FBCLID = "IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgE%2Fx"
OLD_FBC = "fb.1.1700000000000.IwAROLDclickid"


def context(browser: bool = True, **overrides: Any) -> RequestContext:
    """A request context received at RECEIVED_MS."""
    base: dict[str, Any] = {
        "source": "web" if browser else "backend",
        "browser": browser,
        "received_ms": RECEIVED_MS,
    }
    return RequestContext(**{**base, **overrides})


def event(
    url: str | None = None, user: dict[str, Any] | None = None, ids: dict[str, str] | None = None
) -> dict[str, Any]:
    """The part of a canonical event enrich reads and writes."""
    return {"page": {"url": url} if url else {}, "user": dict(user or {}), "ids": dict(ids or {})}


def ids_of(
    url: str | None = None, cookies: dict[str, str] | None = None, ids: dict[str, str] | None = None
) -> Any:
    """The ids after enriching an event on `url` with `cookies` and explicit `ids`."""
    return enrich(event(url, ids=ids), context(cookies=cookies or {}))["ids"]


# --- IP and user agent -------------------------------------------------------------------------


def test_browser_context_fills_ip_and_user_agent() -> None:
    """A browser event gets the request's client IP and user agent."""
    result = enrich(event(), context(client_ip="203.0.113.7", user_agent="Mozilla/5.0"))
    assert result["user"] == {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"}


def test_browser_context_keeps_explicit_ip_and_user_agent() -> None:
    """Values already in the event are not overwritten by the request's."""
    user = {"ip": "198.51.100.1", "user_agent": "App/2"}
    result = enrich(event(user=user), context(client_ip="203.0.113.7", user_agent="Mozilla/5.0"))
    assert result["user"] == user


def test_browser_context_fills_only_the_missing_one() -> None:
    """An event with its own IP still gets the request's user agent."""
    result = enrich(event(user={"ip": "198.51.100.1"}), context(client_ip="203.0.113.7", user_agent="UA"))
    assert result["user"] == {"ip": "198.51.100.1", "user_agent": "UA"}


def test_server_context_never_fills_ip_or_user_agent() -> None:
    """A backend's own address and client are not the end user's."""
    result = enrich(event(), context(browser=False, client_ip="10.1.2.3", user_agent="python-httpx/0.27"))
    assert result["user"] == {}


def test_browser_context_without_ip_leaves_user_empty() -> None:
    """Nothing is invented when the request has no usable IP or user agent."""
    assert enrich(event(), context())["user"] == {}


# --- cookies -----------------------------------------------------------------------------------


def test_platform_cookies_are_read() -> None:
    """Each platform's first-party cookie fills its canonical id, raw."""
    cookies = {
        "_fbp": "fb.1.1700000000000.123456789", "_fbc": OLD_FBC, "_ttp": "ttp-abc_1", "_scid": "scid-123",
        "_rdt_uuid": "1700000000000.abcd-ef", "_epik": "epik.value", "li_fat_id": "li-123",
        "_gcl_aw": "GCL.1700000000.Cj0KCQ-gclid_1", "_ga": "GA1.1.1.1", "session": "secret",
    }  # fmt: skip
    assert ids_of(cookies=cookies) == {
        "fbp": "fb.1.1700000000000.123456789", "fbc": OLD_FBC, "ttp": "ttp-abc_1", "scid": "scid-123",
        "rdt_uuid": "1700000000000.abcd-ef", "epik": "epik.value", "li_fat_id": "li-123",
        "gclid": "Cj0KCQ-gclid_1",
    }  # fmt: skip


@pytest.mark.parametrize("gcl_aw", ["", "GCL", "GCL.1700000000", "GCL.1700000000.", "XYZ.1.abc"])
def test_malformed_gcl_aw_is_ignored(gcl_aw: str) -> None:
    """A _gcl_aw cookie without a GCL.<time>.<gclid> shape yields no gclid."""
    assert "gclid" not in from_cookies({"_gcl_aw": gcl_aw})


@pytest.mark.parametrize("value", ["", "has space", "ctrl\x01char", "x" * 1025])
def test_unusable_cookie_values_are_ignored(value: str) -> None:
    """Empty, spaced, non-printable or oversized cookie values are not used."""
    assert from_cookies({"_fbp": value}) == {}


def test_server_context_has_no_cookies() -> None:
    """A server event gets ids only from itself and its page URL."""
    result = enrich(event("https://shop.example.com/?gclid=G1"), context(browser=False))
    assert result["ids"] == {"gclid": "G1"}


# --- click ids on the page URL -------------------------------------------------------------------


def test_click_ids_from_the_page_url() -> None:
    """Every supported click id is read from the landing URL under its canonical key."""
    url = (
        "https://shop.example.com/landing?utm_source=x&fbclid=F1&gclid=G1&gbraid=GB1&wbraid=WB1"
        "&ttclid=T1&ScCid=S1&rdt_cid=R1&epik=E1&li_fat_id=L1"
    )
    assert from_url(url) == {
        "fbclid": "F1", "gclid": "G1", "gbraid": "GB1", "wbraid": "WB1", "ttclid": "T1",
        "sccid": "S1", "rdt_cid": "R1", "epik": "E1", "li_fat_id": "L1",
    }  # fmt: skip


def test_fbclid_is_kept_byte_for_byte() -> None:
    """An fbclid with -, _ and a %2F stays exactly as in the URL: no decoding, no re-casing."""
    found = from_url(f"https://shop.example.com/p?a=1&fbclid={FBCLID}&b=2")
    assert found == {"fbclid": FBCLID}
    assert ids_of(f"https://shop.example.com/p?fbclid={FBCLID}")["fbc"] == f"fb.1.{RECEIVED_MS}.{FBCLID}"


def test_url_without_query_or_with_fragment_only() -> None:
    """A click id in the fragment, an empty value or a look-alike name is not a click id."""
    assert from_url("https://shop.example.com/") == {}
    assert from_url("https://shop.example.com/#fbclid=F1") == {}
    assert from_url("https://shop.example.com/?fbclid=&xfbclid=F1&FBCLID=F2") == {}


def test_first_occurrence_of_a_parameter_wins() -> None:
    """A repeated click id parameter keeps its first value."""
    assert from_url("https://shop.example.com/?gclid=first&gclid=second") == {"gclid": "first"}


def test_fragment_does_not_leak_into_the_value() -> None:
    """The fragment after a click id is not part of it."""
    assert from_url("https://shop.example.com/?ttclid=T1#section") == {"ttclid": "T1"}


# --- fbc -----------------------------------------------------------------------------------------


def test_fbc_built_from_fbclid_alone() -> None:
    """With only an fbclid, fbc is fb.1.<received ms>.<fbclid>."""
    assert fbc_from_fbclid("abc", 123) == "fb.1.123.abc"
    assert ids_of("https://shop.example.com/?fbclid=IwAR0abc") == {
        "fbclid": "IwAR0abc",
        "fbc": f"fb.1.{RECEIVED_MS}.IwAR0abc",
    }


def test_existing_fbc_with_the_same_fbclid_is_kept() -> None:
    """A _fbc cookie for the same click keeps its original creation time."""
    fbc = "fb.1.1767225000000.IwAR0abc"
    assert ids_of("https://shop.example.com/?fbclid=IwAR0abc", {"_fbc": fbc})["fbc"] == fbc


def test_older_fbc_cookie_is_replaced_by_a_new_click() -> None:
    """A _fbc cookie from an older click is replaced when the landing URL brings a new fbclid."""
    ids = ids_of("https://shop.example.com/?fbclid=IwARnew", {"_fbc": OLD_FBC})
    assert ids["fbc"] == f"fb.1.{RECEIVED_MS}.IwARnew"
    assert ids["fbclid"] == "IwARnew"


def test_fbc_cookie_without_a_click_is_kept() -> None:
    """Without an fbclid the cookie's fbc is kept as is."""
    assert ids_of("https://shop.example.com/", {"_fbc": OLD_FBC}) == {"fbc": OLD_FBC}


def test_five_segment_fbc_is_kept() -> None:
    """Meta's 5-part fbc (with a trailing segment) is recognised and kept for the same click."""
    fbc = "fb.1.1767225000000.IwAR0abc.AQ"
    assert fbclid_of(fbc) == "IwAR0abc"
    assert ids_of("https://shop.example.com/?fbclid=IwAR0abc", {"_fbc": fbc})["fbc"] == fbc


@pytest.mark.parametrize(
    ("fbc", "fbclid"), [("fb.1.1.abc", "abc"), ("fb.2.1.abc.x", "abc"), ("fb.1.abc", None)]
)
def test_fbclid_of(fbc: str, fbclid: str | None) -> None:
    """The fbclid is the fourth dot-separated part of a 4- or 5-part fb.* value."""
    assert fbclid_of(fbc) == fbclid
    assert fbclid_of("xx.1.1.abc") is None


def test_explicit_ids_win_over_cookies_and_url() -> None:
    """Ids sent in the event beat the Cookie header, which beats the page URL."""
    url = "https://shop.example.com/?gclid=url-gclid&ttclid=url-ttclid&fbclid=IwARurl"
    cookies = {"_gcl_aw": "GCL.1.cookie-gclid", "_fbp": "fb.1.1.cookie", "_ttp": "cookie-ttp"}
    explicit = {"gclid": "event-gclid", "fbp": "fb.1.2.event", "fbclid": "IwARevent"}
    ids = ids_of(url, cookies, explicit)
    assert ids == {
        "gclid": "event-gclid",
        "fbp": "fb.1.2.event",
        "fbclid": "IwARevent",
        "ttclid": "url-ttclid",
        "ttp": "cookie-ttp",
        "fbc": f"fb.1.{RECEIVED_MS}.IwARevent",
    }


def test_cookie_beats_url_for_the_same_key() -> None:
    """With no explicit id, a cookie's gclid beats the one on the page URL."""
    assert ids_of("https://shop.example.com/?gclid=url", {"_gcl_aw": "GCL.1.cookie"})["gclid"] == "cookie"


def test_explicit_fbc_matching_fbclid_is_kept() -> None:
    """An explicit fbc for the same click as the URL's fbclid is not rebuilt."""
    fbc = "fb.1.1767225000000.IwAR0abc"
    assert ids_of("https://shop.example.com/?fbclid=IwAR0abc", ids={"fbc": fbc})["fbc"] == fbc


def test_normalize_enriches_end_to_end() -> None:
    """normalize runs enrich: a browser event gets IP, user agent, cookies and fbc."""
    ctx = context(client_ip="203.0.113.7", user_agent="UA/1", cookies={"_fbp": "fb.1.1.2"})
    raw = {"event_name": "page_view", "page": {"url": f"https://shop.example.com/?fbclid={FBCLID}"}}
    outcome = normalize(raw, ctx, frozenset(VARIANTS))
    assert outcome.event is not None
    assert outcome.event["user"] == {"ip": "203.0.113.7", "user_agent": "UA/1"}
    assert outcome.event["ids"] == {
        "fbclid": FBCLID,
        "fbp": "fb.1.1.2",
        "fbc": f"fb.1.{RECEIVED_MS}.{FBCLID}",
    }


def test_enriched_ids_obey_the_id_schema() -> None:
    """Click ids and cookies that the event schema would reject are not picked up either."""
    assert from_url("https://shop.example.com/?gclid=abc\u00e9") == {}
    assert from_cookies({"_fbp": "fb.1.1.\u00e9"}) == {}


# --- X-Forwarded-For ----------------------------------------------------------------------------

PEER = "10.0.0.1"


@pytest.mark.parametrize(
    ("forwarded_for", "peer", "hops", "expected"),
    [
        # hops 0: the TCP peer, whatever the header says
        (None, PEER, 0, PEER),
        ("6.6.6.6", PEER, 0, PEER),
        ("6.6.6.6, 1.1.1.1", "[2001:db8::9]", 0, "2001:db8::9"),
        (None, None, 0, None),
        (None, "testclient", 0, None),
        # hops 1: the entry the one trusted proxy appended (right-most)
        ("1.1.1.1", PEER, 1, "1.1.1.1"),
        ("6.6.6.6, 1.1.1.1", PEER, 1, "1.1.1.1"),
        ("6.6.6.6,7.7.7.7 , 1.1.1.1", PEER, 1, "1.1.1.1"),
        ("1.1.1.1:5555", PEER, 1, "1.1.1.1"),
        ("2001:DB8::1", PEER, 1, "2001:db8::1"),
        ("[2001:db8::1]:443", PEER, 1, "2001:db8::1"),
        ("[2001:db8::1]", PEER, 1, "2001:db8::1"),
        ("garbage, 1.1.1.1", PEER, 1, "1.1.1.1"),
        ("6.6.6.6, unknown", PEER, 1, None),
        ("6.6.6.6, 01.2.3.4", PEER, 1, None),
        ("6.6.6.6, 300.1.1.1", PEER, 1, None),
        (" 6.6.6.6 ,, 1.1.1.1 ", PEER, 1, "1.1.1.1"),
        # hops 2: two proxies appended, the client is second from the right
        ("6.6.6.6, 1.1.1.1, 35.191.0.1", PEER, 2, "1.1.1.1"),
        ("1.1.1.1, 35.191.0.1", PEER, 2, "1.1.1.1"),
        ("6.6.6.6, 7.7.7.7, 1.1.1.1, 35.191.0.1", PEER, 2, "1.1.1.1"),
        ("6.6.6.6, [2001:db8::1]:80, 35.191.0.1", PEER, 2, "2001:db8::1"),
        # fewer entries than hops: the left-most known entry (written by a proxy, not the client)
        ("1.1.1.1", PEER, 2, "1.1.1.1"),
        ("1.1.1.1", PEER, 3, "1.1.1.1"),
        (None, PEER, 2, PEER),
    ],
)
def test_client_ip_hops(forwarded_for: str | None, peer: str | None, hops: int, expected: str | None) -> None:
    """The client is `hops` entries from the right of X-Forwarded-For plus the peer; spoofed entries lose."""
    assert client_ip(forwarded_for, peer, hops) == expected


def test_spoofed_left_most_entry_never_chosen() -> None:
    """With hops >= 1 a forged left-most entry is not chosen however many are sent."""
    forged = ", ".join(["6.6.6.6"] * 20)
    for hops in (1, 2):
        chain = f"{forged}, 1.1.1.1" + (", 35.191.0.1" if hops == 2 else "")
        assert client_ip(chain, PEER, hops) == "1.1.1.1"
