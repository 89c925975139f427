"""Match quality: which identifiers one stored event carries for one destination, and a 0-10 score."""

from __future__ import annotations

import functools
from collections.abc import Iterable, KeysView, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

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
    return _reader(platform, variants).read(_Facts.of(event, warned))


def per_destination(
    event: Mapping[str, Any], targets: Iterable[Target], warned: frozenset[str] = frozenset()
) -> dict[str, frozenset[str]]:
    """`identifiers` for each `(destination id, platform, variants)`, reading the event once."""
    facts = _Facts.of(event, warned)
    return {target: _reader(platform, variants).read(facts) for target, platform, variants in targets}


Target: TypeAlias = tuple[str, str, frozenset[str]]
"""A destination as match quality sees it: its id, its type and the hashed variants it reads."""
NO_IDS: Final = PlatformIds((), ())


@dataclass(frozen=True, slots=True)
class _Facts:
    """What one event shows, whatever the destination: computed once per event."""

    hashed: KeysView[str]
    ip_ua: bool
    ids: Mapping[str, Any]
    fbc_usable: bool
    fbc_malformed: bool
    phone_warned: bool

    @classmethod
    def of(cls, event: Mapping[str, Any], warned: frozenset[str]) -> _Facts:
        user = event.get("user") or {}
        ids = event.get("ids") or {}
        fbc = ids.get("fbc")
        well_formed = bool(fbc) and FBC.fullmatch(str(fbc)) is not None
        return cls(
            hashed=(event.get("hashed") or {}).keys(),
            ip_ua=bool(user.get("ip") and user.get("user_agent")),
            ids=ids,
            fbc_usable=well_formed,
            fbc_malformed=bool(fbc) and not well_formed,
            phone_warned=PHONE_WARNING in warned,
        )


@dataclass(frozen=True, slots=True)
class _Reader:
    """What one destination type with its hashed variants counts, planned once."""

    hashed: tuple[tuple[str, tuple[str, ...]], ...]
    """Per identifier, the hashed variants that are its forms (only those the destination reads)."""
    reads_phone: bool
    click_ids: tuple[str, ...]
    cookies: tuple[str, ...]
    meta: bool

    def read(self, facts: _Facts) -> frozenset[str]:
        """The identifiers and malformed markers of `facts` this destination counts."""
        present = facts.hashed
        found = [name for name, keys in self.hashed if not present.isdisjoint(keys)]
        if facts.ip_ua:
            found.append("ip_ua")
        ids = facts.ids
        if any(ids.get(key) and (key != "fbc" or facts.fbc_usable) for key in self.click_ids):
            found.append("click_id")
        if any(ids.get(key) for key in self.cookies):
            found.append("cookie")
        if self.meta and facts.fbc_malformed:
            found.append("malformed_fbc")
        if self.reads_phone and facts.phone_warned:
            found.append("malformed_phone")
        return frozenset(found)


@functools.cache
def _reader(platform: str, variants: frozenset[str]) -> _Reader:
    """`email` <- email, email_google, email_reddit; `phone` <- phone, phone_e164; `external_id`; and
    the platform's click ids and cookies."""
    forms = tuple(
        (name, tuple(sorted(v for v in variants if _stem(v) == _stem(name))))
        for name in ("email", "phone", "external_id")
    )
    wanted = PLATFORM_IDS.get(platform, NO_IDS)
    return _Reader(
        hashed=tuple(form for form in forms if form[1]),
        reads_phone=any(v.startswith("phone") for v in variants),
        click_ids=wanted.click_ids,
        cookies=wanted.cookies,
        meta=platform == "meta",
    )


@functools.cache
def _stem(key: str) -> str:
    """`email_google` -> `email`: the identifier a hashed variant is a form of."""
    return key.partition("_")[0]


def score(shares: Mapping[str, float]) -> float:
    """The 0-10 score of identifier shares (0..1 each; 1 for a single event's present identifiers)."""
    total = sum(weight * shares.get(name, 0.0) for name, weight in WEIGHTS.items())
    return round(min(total, MAX_SCORE), 1)


def event_score(found: frozenset[str]) -> float:
    """The score of one event's identifiers."""
    return score(dict.fromkeys(found & set(WEIGHTS), 1.0))
