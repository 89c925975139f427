"""Consent gate: a destination's YAML `consent` policy and the event's consent -> send, strip or refuse.

Which consent state an event is in, for ad destinations:

| ad_storage | ad_user_data | state   |
|------------|--------------|---------|
| denied     | any          | denied  |
| any        | denied       | denied  |
| granted    | granted      | granted |
| otherwise (a key absent) | | unknown |

`consent.ldu: true` is not "denied": it asks for limited data use, which the adapters already flag in
each platform's own way (Meta, TikTok, Snap, Reddit, Pinterest); the event is still sent.

`ad_personalization` alone does not stop a conversion: it governs remarketing and personalized ads,
not measurement. Google passes it on as `adPersonalization` for the platform to honour; a conversion
without personalization consent may still be counted (Google Consent Mode v2, "ad_personalization:
sets consent for personalized advertising"). `analytics_storage` concerns analytics, not ads.

Policy actions: `send` the event in full; `strip` it of every user identifier (hashed PII, IP, user
agent, raw postal code, click ids and platform cookies, click ids in page URLs) and send the rest;
`drop` it (a Skipped delivery with the reason).

`when_denied` applies wherever the visitor is: a CMP's explicit "denied" is honoured everywhere.
`regions` (ISO-2 country codes, or `EEA`) limits `when_unknown` to events from those countries; an
event whose country is unknown counts as inside them, so a regional policy fails safe.

The default is safe for EEA traffic: `when_denied: drop`, and `when_unknown: strip` in the EEA, the
United Kingdom and Switzerland (and wherever the country is unknown); elsewhere an event without a
consent signal is sent in full. A top-level `consent:` block replaces the default for every
destination, a destination's own block replaces what it names. A block naming `when_unknown` without
`regions` means everywhere.

Every decision is recorded with the delivery as `<decision>:<state>` (`full:granted`,
`stripped:unknown`, `refused:denied`): in the delivery log line, on the queue row of a delivery that is
kept (retrying, dead, skipped) and in the hourly consent tallies of `router stats`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from router.clickids import URL_PARAMS

Action: TypeAlias = Literal["send", "strip", "drop"]
State: TypeAlias = Literal["granted", "denied", "unknown"]

EEA: Final = frozenset(
    {
        *("at", "be", "bg", "hr", "cy", "cz", "dk", "ee", "fi", "fr", "de", "gr", "hu", "ie", "it"),
        *("lv", "lt", "lu", "mt", "nl", "pl", "pt", "ro", "sk", "si", "es", "se", "is", "li", "no"),
    }
)
"""The European Economic Area (EU 27 plus Iceland, Liechtenstein, Norway), lower-case ISO-2."""
PRIVACY_REGIONS: Final = EEA | {"gb", "ch"}
"""Where consent is required before identifiers reach an ad platform (GDPR, UK GDPR, Swiss FADP)."""
GATING_KEYS: Final = ("ad_storage", "ad_user_data")
"""The signals whose `denied` stops identifiers from reaching an ad platform (see the table above)."""
USER_IDENTIFIERS: Final = ("ip", "user_agent", "postal_code")
"""Raw `user` keys that identify a person; `language` and `country` stay (coarse, not identifying)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A destination's consent policy: the action for each state, optionally only in some countries."""

    when_denied: Action = "drop"
    when_unknown: Action = "strip"
    regions: frozenset[str] | None = PRIVACY_REGIONS
    """Where `when_unknown` applies (None: everywhere); `when_denied` applies everywhere."""


DEFAULT: Final = Policy()


@dataclass(frozen=True, slots=True)
class Full:
    """Send the event as it is."""

    state: State


@dataclass(frozen=True, slots=True)
class Stripped:
    """Send this copy of the event, without user identifiers."""

    event: dict[str, Any]
    state: State


@dataclass(frozen=True, slots=True)
class Refused:
    """Do not send the event; `reason` says why (kept with the Skipped delivery)."""

    reason: str
    state: State


Verdict: TypeAlias = Full | Stripped | Refused


def parse_policy(block: Mapping[str, Any] | None, base: Policy = DEFAULT) -> Policy:
    """The Policy from a YAML `consent:` block already validated by the config schema; what the block
    does not name comes from `base` (the top-level block, or the default), except that a block naming
    `when_unknown` without `regions` means everywhere."""
    if not block:
        return base
    regions = block.get("regions")
    if regions is not None:
        countries: frozenset[str] | None = _countries(regions)
    else:
        countries = None if "when_unknown" in block else base.regions
    return Policy(
        when_denied=block.get("when_denied", base.when_denied),
        when_unknown=block.get("when_unknown", base.when_unknown),
        regions=countries,
    )


def _countries(regions: Sequence[str]) -> frozenset[str]:
    """ISO-2 codes in lower case, with `EEA` expanded to its countries."""
    found: set[str] = set()
    for region in regions:
        found |= EEA if region.upper() == "EEA" else {region.lower()}
    return frozenset(found)


def state(event: Mapping[str, Any]) -> State:
    """The event's consent state for ad destinations, by the table in this module's docstring."""
    consent: Mapping[str, Any] = event.get("consent") or {}
    values = [consent.get(key) for key in GATING_KEYS]
    if "denied" in values:
        return "denied"
    return "granted" if values.count("granted") == len(values) else "unknown"


def decide(event: Mapping[str, Any], policy: Policy = DEFAULT) -> Verdict:
    """What to do with the event for a destination under `policy`."""
    current = state(event)
    if current == "granted" or (current == "unknown" and not _in_regions(event, policy.regions)):
        return Full(current)
    action = policy.when_denied if current == "denied" else policy.when_unknown
    if action == "send":
        return Full(current)
    if action == "strip":
        return Stripped(strip(event), current)
    return Refused(f"consent: {_why(current)}; this destination's policy drops such events", current)


def label(verdict: Verdict) -> str:
    """How the decision is recorded with the delivery: `<decision>:<state>`, e.g. `stripped:unknown`."""
    return f"{type(verdict).__name__.lower()}:{verdict.state}"


def _why(current: State) -> str:
    if current == "denied":
        return "ad_storage or ad_user_data is denied"
    return "ad_storage and ad_user_data are not both known"


def _in_regions(event: Mapping[str, Any], regions: frozenset[str] | None) -> bool:
    """Whether `when_unknown` applies: no regions set, the country unknown, or the country listed."""
    if regions is None:
        return True
    country = (event.get("user") or {}).get("country")
    return not isinstance(country, str) or country.lower() in regions


def strip(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without user identifiers: hashed PII, IP, user agent, postal code, click ids and cookies."""
    copied = copy.deepcopy(dict(event))
    copied["hashed"] = {}
    copied["ids"] = {}
    user = dict(copied.get("user") or {})
    copied["user"] = {k: v for k, v in user.items() if k not in USER_IDENTIFIERS}
    page = dict(copied.get("page") or {})
    copied["page"] = {k: _without_click_ids(v) if k in ("url", "referrer") else v for k, v in page.items()}
    return copied


def _without_click_ids(url: Any) -> Any:
    """The URL without click-id query parameters (`gclid`, `fbclid`...), other parameters kept."""
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    pairs = [p for p in parts.query.split("&") if p and p.partition("=")[0] not in URL_PARAMS]
    return urlunsplit(parts._replace(query="&".join(pairs)))
