"""Snap Conversions API v3 mapping rows: event names, action sources, user_data and custom_data fields.

Each row reads `Snap key <- canonical path`. The adapter walks these rows; it holds no field names itself.
Hashing is done at ingest (router/identity.py): rows only place the stored `hashed.*` values. `as_list`
sends a 1-element array (Snap: "string or list of strings"; its v3 SDK models lists). A value that does
not fully match its row's pattern is left out rather than letting it fail the whole request.
Sources: Snap's Parameters and Using-the-API pages (developers.snap.com/api/marketing-api/Conversions-API),
the v3 OpenAPI schema in Snapchat/business-sdk-v3-java (api/openapi.yaml), Segment's snap-capi-v3.ts and
RudderStack's snapchat_conversion (config.ts, util.ts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from destinations.rows import SHA256_HEX, Row, empty
from destinations.table import Table

CUSTOM_SLOTS: Final = tuple(f"CUSTOM_EVENT_{n}" for n in range(1, 6))
"""Snap takes no free custom event names: a custom event goes to one of five numbered slots."""

SNAP_EVENT_NAMES: Final = frozenset(
    {"PAGE_VIEW", "VIEW_CONTENT", "ADD_CART", "ADD_TO_WISHLIST", "SIGN_UP", "SEARCH", "PURCHASE"}
    | {"ADD_BILLING", "START_CHECKOUT", "SUBSCRIBE", "AD_CLICK", "AD_VIEW", "COMPLETE_TUTORIAL"}
    | {"LEVEL_COMPLETE", "ACHIEVEMENT_UNLOCKED", "INVITE", "LOGIN", "SHARE", "RESERVE", "SAVE", "RATE"}
    | {"START_TRIAL", "LIST_VIEW", "SPENT_CREDITS", "APP_OPEN", "APP_INSTALL"}
    | set(CUSTOM_SLOTS)
)
"""Every event name Snap accepts, upper case (RudderStack config.ts `eventNameMapping`; Segment's and
LiveRamp's lists agree). A third-party schema spells SPENT_CREDITS as SPEND_CREDITS: unconfirmed, unused."""

EVENT_NAMES: Final[Mapping[str, str | None]] = {
    "page_view": "PAGE_VIEW",
    "view_content": "VIEW_CONTENT",
    "search": "SEARCH",
    "add_to_cart": "ADD_CART",
    "add_to_wishlist": "ADD_TO_WISHLIST",
    "begin_checkout": "START_CHECKOUT",
    "add_payment_info": "ADD_BILLING",
    "purchase": "PURCHASE",
    "lead": "SIGN_UP",  # Snap has no LEAD event; SIGN_UP is its lead-generation event
    "sign_up": "SIGN_UP",
    "subscribe": "SUBSCRIBE",
    "start_trial": "START_TRIAL",
    "contact": None,  # no Snap equivalent: a CUSTOM_EVENT_n slot via `custom_events` or `event_map`
    "schedule": "RESERVE",  # Snap's booking / reservation event
    "submit_application": None,  # no Snap equivalent: as `contact`
}
"""Canonical event name -> Snap event. None, and every custom event, needs a slot from the config."""

ACTION_SOURCES: Final[Mapping[str, str]] = {
    "website": "WEB",
    "app": "MOBILE_APP",
    "offline": "OFFLINE",
    "crm": "OFFLINE",
    "phone_call": "OFFLINE",
    "email": "OFFLINE",
    "chat": "OFFLINE",
    "other": "OFFLINE",
}
"""Canonical action_source -> Snap's three values (Snap example `MOBILE_APP`; RudderStack and Freshpaint
send WEB / MOBILE_APP / OFFLINE; Segment, too, sends every non-web, non-app source as OFFLINE)."""

HTTP_URL: Final = re.compile(r"https?://\S+")


def text(value: Any) -> str | None:
    """A scalar as Snap's string fields want it (`2`, `5.0`, `true`); objects and lists are None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class TextRow:
    """One Snap field sent as a string (`text`), as Snap's schema types `contents[]` members."""

    key: str
    path: str
    as_list: bool = False

    def value(self, found: Any) -> str | None:
        """The text of a scalar, or None."""
        return None if empty(found) else text(found)


def hashed(key: str, variant: str) -> Row:
    """A hashed identifier: a list of lower-case SHA-256 hex digests of the router/identity.py variant."""
    return Row(key, f"hashed.{variant}", as_list=True, pattern=SHA256_HEX)


USER_DATA: Final = Table[Row](
    hashed("em", "email"),  # trim + lower-case [doc Parameters]
    hashed("ph", "phone"),  # digits with the country code, no "+", no leading 00 or trunk 0 [doc]
    hashed("fn", "first_name_letters"),  # lower-case letters only, no punctuation, UTF-8 kept [doc]
    hashed("ln", "last_name_letters"),  # as fn [doc]
    hashed("ge", "gender"),  # m / f (Segment maps male/female)
    hashed("db", "date_of_birth"),  # YYYYMMDD (unconfirmed in Snap's docs; Segment and 3p schemas)
    hashed("ct", "city"),  # lower-case, no spaces or punctuation (Segment strips whitespace)
    hashed("st", "state"),  # 2-letter code, lower-case (Segment maps US state names)
    hashed("zp", "zip"),  # lower-case, no spaces
    hashed("country", "country"),  # ISO 3166-1 alpha-2, lower-case
    hashed("external_id", "external_id"),  # trim + lower-case, then SHA-256 (Segment sends a list)
    Row("client_ip_address", "user.ip"),  # raw: v3 does not hash the IP (SDK openapi, Segment, RudderStack)
    Row("client_user_agent", "user.user_agent"),  # raw
    Row("sc_click_id", "ids.sccid"),  # raw: the ScCid landing-page parameter, byte for byte
    Row("sc_cookie1", "ids.scid"),  # raw: the Snap Pixel first-party cookie _scid
)
"""`user_data` rows. Only `hashed.*` personal data is read, never a raw identifier."""

IDENTITY_VARIANTS: Final[frozenset[str]] = frozenset(
    row.path.removeprefix("hashed.") for row in USER_DATA if row.as_list
)
"""The router/identity.py variants the rows above read."""

EVENT: Final = Table[Row](
    Row("event_id", "event_id"),  # dedup with the Pixel's client_dedup_id (48 h per Stape, unconfirmed)
    Row("event_source_url", "page.url", pattern=HTTP_URL),
)
"""Plain top-level event fields; event_name, event_time, action_source and the LDU flag are computed."""

CUSTOM_DATA: Final = Table[Row](
    Row("value", "properties.value"),  # number (openapi `CustomData.value`)
    Row("currency", "properties.currency"),  # ISO 4217, upper case as stored
    Row("order_id", "properties.order_id"),
    Row("content_type", "properties.content_type"),
    Row("search_string", "properties.search_string"),
    Row("num_items", "properties.num_items"),
    Row("status", "properties.status"),
)
"""`custom_data` rows copied as they are; `contents` and `content_ids` are built from CONTENT rows."""

CONTENT: Final = Table[TextRow](
    TextRow("id", "id"),
    TextRow("quantity", "quantity"),
    TextRow("item_price", "price"),
    TextRow("brand", "brand"),
)
"""One `contents[]` item <- one canonical item. Snap's schema and example send these as strings."""

STANDARD_PROPERTIES: Final = frozenset(
    {"value", "currency", "order_id", "contents", "content_type", "search_string", "num_items", "status"}
)
"""Canonical properties mapped by the rows above; other scalar properties go to `custom_fields`."""
