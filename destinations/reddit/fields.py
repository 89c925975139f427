"""Reddit Conversions API v3 mapping rows: event types, action sources, user, event and product fields.

Each row reads `Reddit key <- canonical path`. The adapter walks these rows; it holds no field names itself.
Hashing is done at ingest (router/identity.py): rows only place the stored `hashed.*` values. Sources
for every rule: shared/platforms/reddit-pinterest.md section 1 and the comments below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from destinations.rows import SHA256_HEX, Row
from destinations.table import Table

CUSTOM: Final = "CUSTOM"
TRACKING_TYPES: Final = frozenset(
    {"PAGE_VISIT", "VIEW_CONTENT", "SEARCH", "ADD_TO_CART", "ADD_TO_WISHLIST", "PURCHASE", "LEAD", "SIGN_UP"}
)
"""v3 standard `type.tracking_type` values, UPPER_SNAKE and case-sensitive (Reddit's v2->v3 migration
guide, captured in segmentio/action-destinations reddit-conversions-api/V3-API-REFERENCE.md)."""

CUSTOM_NAME_LIMIT: Final = 64
"""`custom_event_name`: free text, case-sensitive, UTF-8, at most 64 characters (same capture, section 3)."""


@dataclass(frozen=True, slots=True)
class EventType:
    """A v3 `type` object: a standard tracking type, or CUSTOM with a custom event name."""

    tracking_type: str
    custom_event_name: str | None = None

    def body(self) -> dict[str, str]:
        """The JSON `type` object; `custom_event_name` only with CUSTOM (Reddit rejects it otherwise)."""
        if self.custom_event_name is None:
            return {"tracking_type": self.tracking_type}
        return {"tracking_type": self.tracking_type, "custom_event_name": self.custom_event_name}


def standard(tracking_type: str) -> EventType:
    """A Reddit standard event."""
    assert tracking_type in TRACKING_TYPES, tracking_type
    return EventType(tracking_type)


def custom(name: str) -> EventType:
    """A Reddit custom event: tracking_type CUSTOM with its name."""
    return EventType(CUSTOM, name)


EVENT_TYPES: Final[Mapping[str, EventType]] = {
    "page_view": standard("PAGE_VISIT"),
    "view_content": standard("VIEW_CONTENT"),
    "search": standard("SEARCH"),
    "add_to_cart": standard("ADD_TO_CART"),
    "add_to_wishlist": standard("ADD_TO_WISHLIST"),
    "purchase": standard("PURCHASE"),
    "lead": standard("LEAD"),
    "sign_up": standard("SIGN_UP"),
    # No Reddit standard event: sent as custom events under their canonical name, so they never inflate
    # the standard counts Reddit optimizes for. `event_map` can fold one into a standard type instead
    # (e.g. `contact: LEAD`, as Stape's sGTM tag does).
    "begin_checkout": custom("begin_checkout"),
    "add_payment_info": custom("add_payment_info"),
    "subscribe": custom("subscribe"),
    "start_trial": custom("start_trial"),
    "contact": custom("contact"),
    "schedule": custom("schedule"),
    "submit_application": custom("submit_application"),
}
"""Canonical event name -> Reddit `type`. Any other (custom) canonical event is CUSTOM under its own name."""

V2_NAMES: Final[Mapping[str, str]] = {
    "PAGEVISIT": "PAGE_VISIT",
    "VIEWCONTENT": "VIEW_CONTENT",
    "SEARCH": "SEARCH",
    "ADDTOCART": "ADD_TO_CART",
    "ADDTOWISHLIST": "ADD_TO_WISHLIST",
    "PURCHASE": "PURCHASE",
    "LEAD": "LEAD",
    "SIGNUP": "SIGN_UP",
}
"""An `event_map` value spelled the v2 way (`SignUp`, `AddToCart`) or in any case still means the v3
standard type; folded by upper-casing and dropping underscores."""


def event_type_named(name: str, canonical: str) -> EventType:
    """The `type` for an `event_map` value: a standard type in any spelling, `CUSTOM` (a custom event
    under the canonical name), or any other text as the custom event name."""
    if name.upper() == CUSTOM:
        return custom(canonical)
    folded = V2_NAMES.get(name.upper().replace("_", ""))
    return standard(folded) if folded is not None else custom(name)


ACTION_SOURCES: Final[Mapping[str, str]] = {
    "website": "WEBSITE",
    "app": "APP",
    # PHYSICAL_STORE: in Reddit's v3 changelog ("Offline (physical store)") and the ConversionEvent enum
    # of the v3 OpenAPI (blog.devnt.app/data-contracts/platforms/reddit-ads, reviewed 2026-03-31);
    # segmentio/action-destinations v3/constants.ts sends the same value.
    "offline": "PHYSICAL_STORE",
    "crm": "OTHER",
    "phone_call": "OTHER",
    "email": "OTHER",
    "chat": "OTHER",
    "other": "OTHER",
}
"""Canonical action_source -> v3 `action_source` (required in v3, upper case: `website` -> 400)."""

WEBSITE: Final = "WEBSITE"
OFFLINE: Final = "PHYSICAL_STORE"
OFFLINE_LEFT_OUT: Final = frozenset({"click_id", "uuid", "ip_address", "user_agent"})
"""Reddit: offline events "should send hashed email/phone but no device identifiers, click ID, UUID, or
MAIDs" (V3-API-REFERENCE.md section 3); a store's IP and user agent are the till's, not the buyer's."""

VALUE_TYPES: Final = frozenset({"PURCHASE", "ADD_TO_CART", "ADD_TO_WISHLIST", "LEAD", "SIGN_UP", CUSTOM})
"""Types that accept `metadata.value` and `currency` (Reddit help "about event metadata", as encoded in
rudder-transformer reddit/utils.js and Segment v3/constants.ts SUPPORTS_VALUE_METADATA)."""
ITEM_COUNT_TYPES: Final = frozenset({"PURCHASE", "ADD_TO_CART", "ADD_TO_WISHLIST", CUSTOM})
"""Types that accept `metadata.item_count` (same sources, SUPPORTS_ITEM_COUNT)."""

HTTP_URL: Final = re.compile(r"https?://\S+")
RDT_UUID: Final = re.compile(
    r"(\d+\.)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
"""The `_rdt_uuid` cookie, `<creation ms>.<uuid>`, sent whole as in Reddit's own example
(`1677712978045.b8f7eb7d-b357-437b-8bd3-e1c8166c7132`). Reddit rejects the whole batch for a uuid that is
not RFC-4122 ("user.UUID: invalid UUID", observed in segmentio V3-TEST-SCENARIOS.md), so a malformed one
is left out instead."""


def hashed(key: str, variant: str) -> Row:
    """A hashed identifier: one lower-case SHA-256 hex string (Reddit takes single strings, not lists)."""
    return Row(key, f"hashed.{variant}", pattern=SHA256_HEX)


USER: Final = Table[Row](
    # Reddit: trim, lower-case, cut the local part at its first "+", drop every non-alphanumeric character
    # of the local part, then SHA-256 (Reddit's "Manual Advanced Matching" page: `Al.ice$+Apple@Example.Com`
    # -> `alice@example.com` -> ff8d9819...): the `email_reddit` variant, not the generic `email`.
    hashed("email", "email_reddit"),
    # Reddit: country and area code, no extension, digits with a leading "+" (`+15554441234` ->
    # e5b124c5...): exactly E.164, so `phone_e164`, not the no-plus `phone`.
    hashed("phone_number", "phone_e164"),
    hashed("external_id", "external_id"),  # advertiser id; Reddit takes it plain or hashed
    Row("ip_address", "user.ip"),  # raw here; the adapter hashes it unless `hash_ip_address: false`
    Row("user_agent", "user.user_agent"),  # raw, never hashed
    Row("uuid", "ids.rdt_uuid", pattern=RDT_UUID),  # raw `_rdt_uuid` cookie, never hashed
)
"""`user` rows (match keys). Only `hashed.*` personal data is read, never a raw identifier."""

MATCH_KEYS: Final = frozenset({"email", "phone_number", "external_id", "ip_address", "user_agent", "uuid"})
"""User keys that identify someone; data_processing_options alone does not (Segment v3 MATCH_KEYS)."""

IDENTITY_VARIANTS: Final[frozenset[str]] = frozenset(
    row.path.removeprefix("hashed.") for row in USER if row.path.startswith("hashed.")
)
"""The router/identity.py variants the rows above read."""

EVENT: Final = Table[Row](
    Row("event_source_url", "page.url", pattern=HTTP_URL),  # WEBSITE events only (v3)
    Row("click_id", "ids.rdt_cid"),  # the `rdt_cid` URL parameter / `_rdt_cid` cookie, raw
)
"""Plain top-level event fields; event_at, action_source, type, metadata and user are computed."""

PRODUCT: Final = Table[Row](
    Row("id", "id"),
    Row("name", "name"),
    Row("category", "category"),
    Row("quantity", "quantity"),  # new in v3
    Row("item_price", "price"),  # new in v3, base currency units
)
"""One `metadata.products[]` item <- one canonical `properties.contents[]` item (brand has no field)."""
