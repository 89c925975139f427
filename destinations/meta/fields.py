"""Meta Conversions API mapping rows: event names, action sources, user_data and custom_data fields.

Each row reads `Meta key <- canonical path`. The adapter walks these rows; it holds no field names itself.
Hashing is done at ingest (router/identity.py): rows only place the stored `hashed.*` values.
A value that does not fully match its row's pattern is left out (destinations/rows.py): Meta rejects the
whole batch for one malformed field (a bad fbc is 2804001), so a malformed optional signal is dropped
instead of poisoning the other events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from destinations.rows import SHA256_HEX, Row
from destinations.table import Table

EVENT_NAMES: Final[Mapping[str, str]] = {
    "page_view": "PageView",
    "view_content": "ViewContent",
    "search": "Search",
    "add_to_cart": "AddToCart",
    "add_to_wishlist": "AddToWishlist",
    "begin_checkout": "InitiateCheckout",
    "add_payment_info": "AddPaymentInfo",
    "purchase": "Purchase",
    "lead": "Lead",
    "sign_up": "CompleteRegistration",
    "subscribe": "Subscribe",
    "start_trial": "StartTrial",
    "contact": "Contact",
    "schedule": "Schedule",
    "submit_application": "SubmitApplication",
}
"""Canonical event name -> Meta standard event. Other names are custom events, sent as they came."""

ACTION_SOURCES: Final[Mapping[str, str]] = {
    "website": "website",
    "app": "app",
    "offline": "physical_store",
    "crm": "system_generated",
    "phone_call": "phone_call",
    "email": "email",
    "chat": "chat",
    "other": "other",
}
"""Canonical action_source -> Meta's `action_source` enum (SDK `action_source.py`)."""


CLICK_ID: Final = re.compile(r"fb\.\d+\.\d{13}\.[^.]+(\.[A-Za-z0-9_-]+)?")
"""`fb.<subdomain index>.<creation time, ms>.<fbclid or random>[.<Parameter Builder appendix>]`."""
HTTP_URL: Final = re.compile(r"https?://\S+")


def hashed(key: str, name: str) -> Row:
    """A hashed identifier: Meta's documented form, and the SDK's, is an array of lower-case hex digests."""
    return Row(key, f"hashed.{name}", as_list=True, pattern=SHA256_HEX)


USER_DATA: Final = Table[Row](
    hashed("em", "email"),
    hashed("ph", "phone"),  # digits with the country code, no "+" (not `phone_e164`)
    hashed("fn", "first_name"),
    hashed("ln", "last_name"),
    hashed("ge", "gender"),
    hashed("db", "date_of_birth"),
    hashed("ct", "city"),
    hashed("st", "state"),
    hashed("zp", "zip"),
    hashed("country", "country"),
    hashed("external_id", "external_id"),  # left out when `send_external_id: false`
    Row("client_ip_address", "user.ip"),  # raw: Meta never wants it hashed
    Row("client_user_agent", "user.user_agent"),  # raw; required for website events
    Row("fbc", "ids.fbc", pattern=CLICK_ID),  # raw, byte for byte (5-segment values included)
    Row("fbp", "ids.fbp", pattern=CLICK_ID),  # raw, byte for byte
)
"""`user_data` rows. Only `hashed.*` personal data is read, never a raw identifier."""

IDENTITY_VARIANTS: Final[frozenset[str]] = frozenset(
    row.path.removeprefix("hashed.") for row in USER_DATA if row.as_list
)
"""The router/identity.py variants the rows above read."""

EVENT: Final = Table[Row](
    Row("event_id", "event_id"),
    Row("event_source_url", "page.url", pattern=HTTP_URL),
    Row("referrer_url", "page.referrer", pattern=HTTP_URL),
)
"""Plain top-level event fields; event_name, event_time and action_source are computed."""

CUSTOM_DATA: Final = Table[Row](
    Row("value", "properties.value"),
    Row("currency", "properties.currency"),  # kept as sent (upper case); the SDK lower-cases, both accepted
    Row("order_id", "properties.order_id"),
    Row("content_type", "properties.content_type"),
    Row("search_string", "properties.search_string"),
    Row("num_items", "properties.num_items"),
    Row("status", "properties.status"),
)
"""`custom_data` rows copied as they are; `contents` and `content_ids` are built from CONTENT rows."""

CONTENT: Final = Table[Row](
    Row("id", "id"),
    Row("quantity", "quantity"),
    Row("item_price", "price"),
    Row("title", "name"),
    Row("category", "category"),
    Row("brand", "brand"),
)
"""One `contents[]` item <- one canonical `properties.contents[]` item."""

STANDARD_PROPERTIES: Final = frozenset(
    {"value", "currency", "order_id", "contents", "content_type", "search_string", "num_items", "status"}
)
"""Canonical properties mapped by the rows above; every other property is passed through as is."""
