"""Click ids and platform cookies: where each comes from on a page URL or in the Cookie header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

URL_PARAMS: Final[dict[str, str]] = {
    "fbclid": "fbclid",
    "gclid": "gclid",
    "gbraid": "gbraid",
    "wbraid": "wbraid",
    "ttclid": "ttclid",
    "ScCid": "sccid",
    "sccid": "sccid",
    "rdt_cid": "rdt_cid",
    "epik": "epik",
    "li_fat_id": "li_fat_id",
}
"""Landing-page query parameter -> canonical `ids` key."""

COOKIES: Final[dict[str, str]] = {
    "_fbp": "fbp",
    "_fbc": "fbc",
    "_ttp": "ttp",
    "_scid": "scid",
    "_rdt_uuid": "rdt_uuid",
    "_epik": "epik",
    "li_fat_id": "li_fat_id",
}
"""First-party cookie set by a platform's pixel -> canonical `ids` key."""


def from_url(url: str) -> dict[str, str]:
    """Click ids in a URL's query, byte for byte: no percent-decoding, no re-casing."""
    found: dict[str, str] = {}
    for pair in urlsplit(url).query.split("&"):
        name, _, value = pair.partition("=")
        key = URL_PARAMS.get(name)
        if key and key not in found and _usable(value):
            found[key] = value
    return found


def from_cookies(cookies: Mapping[str, str]) -> dict[str, str]:
    """Platform cookies present in the request, as set by their pixels; `_gcl_aw` yields the gclid."""
    found = {key: cookies[name] for name, key in COOKIES.items() if cookies.get(name)}
    gcl = cookies.get("_gcl_aw", "").split(".")
    if len(gcl) >= 3 and gcl[0] == "GCL" and gcl[2]:
        found["gclid"] = ".".join(gcl[2:])
    return {k: v for k, v in found.items() if _usable(v)}


def _usable(value: str) -> bool:
    """What the event schema allows for ids: 1 to 1024 printable ASCII characters without spaces."""
    return 0 < len(value) <= 1024 and all("\x21" <= ch <= "\x7e" for ch in value)


def fbc_from_fbclid(fbclid: str, created_ms: int) -> str:
    """Meta's `fbc` when only the fbclid is known: `fb.1.<creation ms>.<fbclid>` (fbclid untouched)."""
    return f"fb.1.{created_ms}.{fbclid}"


def fbclid_of(fbc: str) -> str | None:
    """The fbclid inside an `fbc` value (4 or 5 dot-separated parts), if it is well formed."""
    parts = fbc.split(".")
    return parts[3] if len(parts) in (4, 5) and parts[0] == "fb" else None
