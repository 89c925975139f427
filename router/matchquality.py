"""Match quality: which identifiers one stored event carries for one destination, and a 0-10 score."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from destinations.meta.fields import CLICK_ID

WEIGHTS: Final[Mapping[str, float]] = {
    "email": 3.0,  # hashed email: the strongest single key on every platform
    "phone": 2.5,  # hashed phone: nearly as strong, when normalized to the platform's format
    "click_id": 2.0,  # the ad click itself (fbclid/fbc, gclid, ttclid...): ties the event to one click
    "ip_ua": 1.5,  # IP address and user agent together: a probabilistic browser match
    "cookie": 0.5,  # the platform's first-party browser cookie (fbp, ttp...): same browser, no person
    "external_id": 0.5,  # the site's own user id: joins events of one user, matches only with the above
}
"""Points per identifier, in the spirit of Meta's Event Match Quality; they add up to MAX_SCORE."""
MAX_SCORE: Final = 10.0
IDENTIFIERS: Final = tuple(WEIGHTS)
MALFORMED: Final = ("malformed_fbc", "malformed_phone")
"""Markers for values that were sent but cannot match: counted next to the identifiers."""


@dataclass(frozen=True, slots=True)
class PlatformIds:
    """The canonical `ids` keys one platform reads: click ids and its own cookie."""

    click_ids: tuple[str, ...]
    cookies: tuple[str, ...]


PLATFORM_IDS: Final[Mapping[str, PlatformIds]] = {
    "meta": PlatformIds(click_ids=("fbc", "fbclid"), cookies=("fbp",)),
    "tiktok": PlatformIds(click_ids=("ttclid",), cookies=("ttp",)),
    "snap": PlatformIds(click_ids=("sccid",), cookies=("scid",)),
    "pinterest": PlatformIds(click_ids=("epik",), cookies=()),
    "reddit": PlatformIds(click_ids=("rdt_cid",), cookies=("rdt_uuid",)),
    "google": PlatformIds(click_ids=("gclid", "gbraid", "wbraid"), cookies=()),
    "linkedin": PlatformIds(click_ids=("li_fat_id",), cookies=()),
}
"""Per destination type, which click ids and cookies count (router/clickids.py names)."""

FBC: Final = CLICK_ID
"""Meta's click cookie: fb.<subdomain index>.<creation time, 13-digit epoch ms>.<fbclid>; the Meta
adapter drops any other shape (Meta refuses it with subcode 2804001)."""
PHONE_WARNING: Final = "/user/phone"
"""The ingest warns on this path when a phone could not be normalized (and so was not hashed)."""


def identifiers(
    event: Mapping[str, Any], platform: str, variants: frozenset[str], warned: frozenset[str] = frozenset()
) -> frozenset[str]:
    """The identifiers (and malformed markers) `event` carries for a destination of type `platform`
    reading the hashed `variants`; `warned` holds the ingest's warning paths for this event."""
    hashed = event.get("hashed") or {}
    reads = _reads(variants)
    found = {name for name, keys in reads.hashed if any(key in hashed for key in keys)}
    user = event.get("user") or {}
    if user.get("ip") and user.get("user_agent"):
        found.add("ip_ua")
    ids = event.get("ids") or {}
    wanted = PLATFORM_IDS.get(platform, NO_IDS)
    if any(_usable(key, ids) for key in wanted.click_ids):
        found.add("click_id")
    if any(ids.get(key) for key in wanted.cookies):
        found.add("cookie")
    if platform == "meta" and ids.get("fbc") and not FBC.fullmatch(str(ids["fbc"])):
        found.add("malformed_fbc")
    if reads.phone and PHONE_WARNING in warned:
        found.add("malformed_phone")
    return frozenset(found)


NO_IDS: Final = PlatformIds((), ())


@dataclass(frozen=True, slots=True)
class _Reads:
    """What a destination's hashed variants can show: per identifier, the variants that are its forms."""

    hashed: tuple[tuple[str, tuple[str, ...]], ...]
    phone: bool


@functools.cache
def _reads(variants: frozenset[str]) -> _Reads:
    """`email` <- email, email_google, email_reddit; `phone` <- phone, phone_e164; `external_id`."""
    forms = tuple(
        (name, tuple(sorted(v for v in variants if _stem(v) == _stem(name))))
        for name in ("email", "phone", "external_id")
    )
    return _Reads(tuple(form for form in forms if form[1]), any(v.startswith("phone") for v in variants))


@functools.cache
def _stem(key: str) -> str:
    """`email_google` -> `email`: the identifier a hashed variant is a form of."""
    return key.partition("_")[0]


def _usable(key: str, ids: Mapping[str, Any]) -> bool:
    """Present and not empty, and for `fbc` well formed."""
    return bool(ids.get(key)) and (key != "fbc" or FBC.fullmatch(str(ids[key])) is not None)


def score(shares: Mapping[str, float]) -> float:
    """The 0-10 score of identifier shares (0..1 each; 1 for a single event's present identifiers)."""
    total = sum(weight * shares.get(name, 0.0) for name, weight in WEIGHTS.items())
    return round(min(total, MAX_SCORE), 1)


def event_score(found: frozenset[str]) -> float:
    """The score of one event's identifiers."""
    return score(dict.fromkeys(found & set(WEIGHTS), 1.0))
