"""GA4 hits: a gtag.js /g/collect request (query string and body lines) read into canonical events, no I/O."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from router.aliases import canonical_name
from router.pageurl import EMAIL

# Parameters, as gtag.js sends them (references: thyngster.com's GA4 measurement protocol cheatsheet, the
# reverse-engineered parameter tables of d8a-tech/d8a and foomo/sesamy-go, and captured hits in Tag
# Assistant exports):
#
#     tid  measurement id (G-XXXX)       en   event name              cid  client id
#     dl   page location                 dr   page referrer           dt   page title     ul  language
#     cu   currency                      epn.value  value             ep.transaction_id  order id
#     ep.<name>  string parameter        epn.<name> number parameter  ep.event_id  dedup id
#     pr<n>  item n: `~`-separated fields, each a 2-letter code and its value (id, nm, br, ca, pr, qt...)
#     em   user-provided data: `tv.1~em.<hash>~pn.<hash>~fn0.<hash>~ln0.<hash>~ct0.<city>~pc0.<zip>~co0.<cc>`
#     ep.user_data.*  user-provided data sent raw to a server container (email, address.first_name...)
#     gcs  consent `G1xy` (x: ad_storage, y: analytics_storage)  gcd  consent mode v2 (all four signals)
#
# A GET hit carries everything in its query string. A POST carries the parameters shared by its hits in
# the query string and one hit per body line, each line its own query string that overrides the shared
# ones (d8a-tech/d8a pkg/protocol/ga4/protocol.go reads batches the same way).

MAX_HITS: Final = 50
"""gtag.js batches up to about 20 hits per request; more than 50 is not a browser."""
MAX_FIELDS: Final = 500
"""Parameters per hit; a real hit has well under 100."""
MAX_ITEMS: Final = 200
"""GA4 takes up to 200 items (`pr1` ... `pr200`) per event."""
MAX_PROPERTIES: Final = 100
"""The canonical event's `properties` hold at most 100 keys."""
IGNORED_EVENTS: Final = frozenset({"user_engagement"})
"""GA4's engagement-time beacon (sent when a page is hidden): telemetry, never a conversion."""
RESERVED_PARAMETERS: Final = frozenset({"event_id", "transaction_id", "value", "currency", "search_term"})
"""`ep.` / `epn.` names mapped to canonical fields rather than copied as custom properties."""

EVENT_ID: Final = re.compile(r"[\x21-\x7e]{1,200}")
"""What the event schema accepts as event_id: printable ASCII without spaces."""
PROPERTY_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
CURRENCY: Final = re.compile(r"[A-Za-z]{3}")
NUMBER: Final = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")
ITEM_KEY: Final = re.compile(r"pr([1-9][0-9]{0,2})")
HEX_HASH: Final = re.compile(r"[0-9A-Fa-f]{64}")
WEB_HASH: Final = re.compile(r"[A-Za-z0-9_-]{43}=?")
GCS: Final = re.compile(r"G1([01-])([01-])")

ITEM_FIELDS: Final[Mapping[str, str]] = {"id": "id", "nm": "name", "ca": "category", "br": "brand"}
"""Item codes copied as text into canonical `contents`; `pr` (price) and `qt` (quantity) are numbers."""

USER_PROVIDED: Final[Mapping[str, str]] = {
    "em": "email",
    "pn": "phone",
    "fn0": "first_name",
    "ln0": "last_name",
    "ct0": "city",
    "rg0": "state",
    "pc0": "zip",
    "co0": "country",
}
"""`em` parameter keys -> canonical `user` keys; only the first address (index 0) is read. The street
(`sa0`) has no canonical field. Source: google-ads-confidential-computing/confidential-match,
EnhancedMatchMapper.java (`tv.1~em.<hash>~pn.<hash>~fn0.<hash>~ln0.<hash>~pc0.<zip>~co0.<cc>`, hashes
as unpadded URL-safe base64 or hex of SHA-256), and captured gtag hits carrying `ct0` and `rg0`."""
HASHED_USER_PROVIDED: Final = frozenset({"em", "pn", "fn0", "ln0"})

USER_DATA: Final[Mapping[str, str]] = {
    "email": "email",
    "email_address": "email",
    "phone": "phone",
    "phone_number": "phone",
    "first_name": "first_name",
    "last_name": "last_name",
    "city": "city",
    "region": "state",
    "postal_code": "zip",
    "country": "country",
}
"""`ep.user_data.[address.][sha256_]<name>` -> canonical `user` keys (gtag's `user_data` object as a
server container receives it); raw values win over `sha256_` ones, and over the hashed `em` parameter."""

GCD_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
GCD_SIGNALS: Final = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")
GCD_STATES: Final[Mapping[int, str]] = {2: "denied", 3: "granted"}
"""The `gcd` consent string (consent mode v2), e.g. `11p1p1p1p5` or `13t3t3Z2t5l1`: a leading digit,
then for ad_storage, analytics_storage, ad_user_data and ad_personalization in that order one digit
and one letter each (the letters at positions 2, 4, 6 and 8), then trailing flags. A letter's index
in the URL-safe base64 alphabet holds two 2-bit states: bits 2-3 the default (`gtag('consent',
'default')`), bits 0-1 the update (`gtag('consent', 'update')`); 1 = not set, 2 = denied, 3 = granted.
The update wins over the default. Source of the decoding: analytics-debugger/gtm-template-server-side-
google-consent-parser template.tpl (David Vallejo, Analytics Debugger, 2025; its tests use
`13r3r3r3r5`); layout as described in giancampo.com "Understanding the gcd parameter in GA4 network
requests" (2024), after Markus Baersch's consent mode v2 guide on simoahava.com. Letters this yields:

    l  not set                       p  denied (default)             t  granted (default)
    m  denied (update)               n  granted (update)             q  denied, then denied
    r  denied, then granted          u  granted, then denied         v  granted, then granted
    Z  granted (default; the upper-case letters set an extra flag bit that does not change the state)
"""


class ParseError(ValueError):
    """The request is not a readable GA4 hit; the message says what is wrong, without echoing values."""


class TooManyHits(ParseError):
    """More hits in one request than MAX_HITS."""


@dataclass(frozen=True, slots=True)
class Collected:
    """What one /g/collect request carried: its measurement id and one canonical event per kept hit."""

    measurement_id: str
    events: tuple[dict[str, Any], ...]


def parse(query: bytes, body: bytes, max_hits: int = MAX_HITS) -> Collected:
    """Canonical events from a /g/collect request; raises ParseError (and nothing else) when unreadable."""
    shared = _pairs(_text(query, "the query string"), "the query string")
    lines = _lines(_text(body, "the body"))
    if len(lines) > max_hits:
        raise TooManyHits(f"a request may carry at most {max_hits} hits; this one has {len(lines)}")
    hits = [{**shared, **_pairs(line, f"hit {n}")} for n, line in enumerate(lines, 1)] or [shared]
    measurement_id = _measurement_id(hits)
    events = tuple(_event(hit, n) for n, hit in enumerate(hits, 1) if hit.get("en") not in IGNORED_EVENTS)
    return Collected(measurement_id, events)


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{where} is not valid UTF-8") from exc


def _lines(body: str) -> list[str]:
    """The body's hits: one per non-blank line (`\\n` or `\\r\\n`)."""
    return [line.strip() for line in body.split("\n") if line.strip()]


def _pairs(text: str, where: str) -> dict[str, str]:
    """A query string's parameters, percent-decoded once; a repeated name keeps its last value."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as exc:
        raise ParseError(f"{where} has percent-escapes that are not UTF-8") from exc
    except ValueError as exc:
        raise ParseError(f"{where} has more than {MAX_FIELDS} parameters") from exc
    return dict(pairs)


def _measurement_id(hits: list[dict[str, str]]) -> str:
    found = {hit.get("tid", "").strip() for hit in hits}
    if "" in found:
        raise ParseError("a hit has no measurement id: send tid=G-XXXXXXX")
    if len(found) > 1:
        raise ParseError("the hits name different measurement ids (tid); send one per request")
    return found.pop()


def _event(hit: Mapping[str, str], number: int) -> dict[str, Any]:
    """One hit as a raw canonical event (validated and enriched later by the ingest)."""
    name = hit.get("en", "").strip()
    if not name:
        raise ParseError(f"hit {number} has no event name (en)")
    event: dict[str, Any] = {"event_name": name, "action_source": "website"}
    event_id = _event_id(hit, name)
    if event_id:
        event["event_id"] = event_id
    parts = {"page": _page(hit), "user": _user(hit), "consent": _consent(hit), "properties": _properties(hit)}
    event.update({key: value for key, value in parts.items() if value})
    return event


def _event_id(hit: Mapping[str, str], name: str) -> str | None:
    """`ep.event_id` when usable, else a purchase's transaction id (what the Meta pixel sends as eventID)."""
    explicit = hit.get("ep.event_id", "")
    if EVENT_ID.fullmatch(explicit):
        return explicit
    transaction = hit.get("ep.transaction_id", "")
    if canonical_name(name) == "purchase" and EVENT_ID.fullmatch(transaction):
        return transaction
    return None


def _page(hit: Mapping[str, str]) -> dict[str, str]:
    page = {"url": hit.get("dl", ""), "referrer": hit.get("dr", ""), "title": hit.get("dt", "").strip()}
    if not page["url"].startswith(("https://", "http://")):
        del page["url"]
    return {key: value for key, value in page.items() if value}


def _user(hit: Mapping[str, str]) -> dict[str, str]:
    user = {**user_provided(hit.get("em", "")), **_user_data(hit)}
    language = hit.get("ul", "").strip()
    if language:
        user["language"] = language
    return user


def user_provided(value: str) -> dict[str, str]:
    """The `em` parameter (`tv.1~em.<hash>~...`) as canonical `user` fields; hashes as 64 lower-case hex."""
    parts = value.split("~")
    if parts[0] != "tv.1":
        return {}
    found: dict[str, str] = {}
    for part in parts[1:]:
        code, dot, raw = part.partition(".")
        field = USER_PROVIDED.get(code)
        if not dot or field is None or field in found:
            continue
        usable = _hex_hash(raw) if code in HASHED_USER_PROVIDED else unquote(raw).strip()
        if usable:
            found[field] = usable
    return found


def _hex_hash(value: str) -> str | None:
    """A SHA-256 as gtag sends it (unpadded URL-safe base64, or hex) in hex; None for error codes (`e2`)."""
    if HEX_HASH.fullmatch(value):
        return value.lower()
    if not WEB_HASH.fullmatch(value):
        return None
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=").hex()
    except (binascii.Error, ValueError):
        return None


def _user_data(hit: Mapping[str, str]) -> dict[str, str]:
    """`ep.user_data.*` as canonical `user` fields; raw values are preferred to `sha256_` ones."""
    keys = sorted((k for k in hit if k.startswith("ep.user_data.")), key=lambda k: "sha256_" in k)
    found: dict[str, str] = {}
    for key in keys:
        name = key.removeprefix("ep.user_data.").removeprefix("address.").removeprefix("sha256_")
        field, value = USER_DATA.get(name), hit[key].strip()
        if field and value and field not in found:
            found[field] = value
    return found


def _consent(hit: Mapping[str, str]) -> dict[str, str]:
    return decode_consent(hit.get("gcs", ""), hit.get("gcd", ""))


def decode_consent(gcs: str, gcd: str) -> dict[str, str]:
    """Consent signals from `gcd` (all four) and `gcs` (the current ad and analytics storage, which wins)."""
    found = {signal: state for signal, state in zip(GCD_SIGNALS, _gcd_states(gcd), strict=True) if state}
    match = GCS.fullmatch(gcs)
    if match:
        for signal, flag in zip(GCD_SIGNALS[:2], match.groups(), strict=True):
            if flag != "-":
                found[signal] = "granted" if flag == "1" else "denied"
    return found


def _gcd_states(gcd: str) -> list[str | None]:
    return [_gcd_state(gcd[position : position + 1]) for position in (2, 4, 6, 8)]


def _gcd_state(letter: str) -> str | None:
    code = GCD_ALPHABET.find(letter) if letter else -1
    if code < 0:
        return None
    return GCD_STATES.get(code & 3) or GCD_STATES.get((code >> 2) & 3)


def _properties(hit: Mapping[str, str]) -> dict[str, Any]:
    properties = _standard_properties(hit)
    contents = [item for item in map(_item, _item_texts(hit)) if item]
    if contents:
        properties["contents"] = contents
    if hit.get("cid"):
        properties["ga_client_id"] = hit["cid"]
    room = MAX_PROPERTIES - len(properties)
    properties.update(list(_custom(hit, properties))[: max(room, 0)])
    return properties


def _standard_properties(hit: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    value = _number(hit.get("epn.value"))
    found["value"] = value if value is not None else _number(hit.get("ep.value"))
    if CURRENCY.fullmatch(hit.get("cu", "")):
        found["currency"] = hit["cu"]
    found["order_id"] = hit.get("ep.transaction_id", "").strip()
    found["search_string"] = hit.get("ep.search_term", "").strip()
    return {key: value for key, value in found.items() if value is not None and value != ""}


def _custom(hit: Mapping[str, str], taken: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """`ep.*` (text) and `epn.*` (numbers) not mapped elsewhere; text holding an email address is dropped."""
    for key, raw in hit.items():
        prefix, _, name = key.partition(".")
        value: Any = raw if prefix == "ep" else _number(raw) if prefix == "epn" else None
        usable = PROPERTY_NAME.fullmatch(name) and name not in RESERVED_PARAMETERS and name not in taken
        if value is None or not usable or name.startswith("user_data"):
            continue
        if isinstance(value, str) and EMAIL.search(value):
            continue
        yield name, value


def _item_texts(hit: Mapping[str, str]) -> list[str]:
    """The `pr<n>` values in item order."""
    indexed = [(int(m.group(1)), text) for key, text in hit.items() if (m := ITEM_KEY.fullmatch(key))]
    return [text for index, text in sorted(indexed) if index <= MAX_ITEMS]


def _item(text: str) -> dict[str, Any] | None:
    """One `pr<n>` value (`idSKU~nmName~pr9.99~qt2...`) as a canonical content; None without an id."""
    fields: dict[str, str] = {}
    for part in text.split("~"):
        code, value = part[:2], part[2:]
        if value and code not in fields:
            fields[code] = value
    if "id" not in fields:
        return None
    item: dict[str, Any] = {name: fields[code] for code, name in ITEM_FIELDS.items() if code in fields}
    quantity, price = _number(fields.get("qt")), _number(fields.get("pr"))
    if quantity is not None and float(quantity).is_integer():
        item["quantity"] = int(quantity)
    if price is not None:
        item["price"] = price
    return item


def _number(text: str | None) -> int | float | None:
    """A decimal as gtag writes numbers (`30.03`, `3`); None for anything else."""
    if text is None or not NUMBER.fullmatch(text):
        return None
    return float(text) if "." in text else int(text)
