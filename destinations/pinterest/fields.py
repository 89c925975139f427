"""Pinterest Conversions API mapping rows: event names, action sources, user_data and custom_data fields.

Each row reads `Pinterest key <- canonical path`. The adapter walks these rows; it holds no field names
itself. Hashing is done at ingest (router/identity.py): rows only place the stored `hashed.*` values.
Field names and types are those of `ConversionEventsData` in Pinterest's OpenAPI (spec 5.23.0,
`pinterest/api-description:v5/openapi.yaml`; the same names in the generated clients): every item has
`additionalProperties: false`, so nothing unlisted here may be sent. `as_list` sends a 1-element array
(Pinterest's form for every hashed key); a value that does not fully match its row's pattern is left out,
so a raw identifier can never go where a hash belongs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from destinations.rows import SHA256_HEX, Row
from destinations.table import Table

CUSTOM_EVENT: Final = "custom"
"""Pinterest has no custom-name field: every custom event is sent as `event_name: "custom"`."""

EVENT_NAMES: Final[Mapping[str, str]] = {
    "page_view": "page_visit",
    "view_content": "view_content",
    "search": "search",
    "add_to_cart": "add_to_cart",
    "add_to_wishlist": "add_to_wishlist",
    "begin_checkout": "initiate_checkout",
    "add_payment_info": "add_payment_info",
    "purchase": "checkout",
    "lead": "lead",
    "sign_up": "signup",
    "subscribe": "subscribe",
    "start_trial": CUSTOM_EVENT,  # not in the spec 5.23 enum (Segment offers `start_trial`, unconfirmed)
    "contact": CUSTOM_EVENT,  # on Pinterest's docs page, not in the spec enum: opt in via event_map
    "schedule": CUSTOM_EVENT,  # not in the spec 5.23 enum (Segment offers `schedule`, unconfirmed)
    "submit_application": CUSTOM_EVENT,  # not in the spec 5.23 enum (Segment offers it, unconfirmed)
}
"""Canonical event name -> Pinterest `event_name`. Other (custom) names are sent as CUSTOM_EVENT."""

SPEC_EVENT_NAMES: Final = frozenset(
    {"add_payment_info", "add_to_cart", "add_to_wishlist", "app_install", "checkout", "custom"}
    | {"initiate_checkout", "lead", "page_visit", "search", "signup", "subscribe", "view_category"}
    | {"view_content", "watch_video"}
)
"""The `event_name` enum of spec 5.23.0 (also in the generated clients' `ConversionEventsDataInner` docs)."""

DOCUMENTED_EVENT_NAMES: Final = SPEC_EVENT_NAMES | {"app_open", "contact"}
"""Spec names plus the two that developers.pinterest.com/docs/conversions/event/ also lists; the values
an `event_map` may use (config.schema.json repeats this list)."""

ACTION_SOURCES: Final[Mapping[str, str]] = {
    "website": "web",
    "offline": "offline",
    "crm": "offline",
    "phone_call": "offline",
    "email": "offline",
    "chat": "offline",
    "other": "offline",
}
"""Canonical action_source -> Pinterest's enum (web, app_android, app_ios, offline). `app` is resolved
from the user agent or the `app_action_source` setting, because Pinterest wants the OS."""

APP_SOURCES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"Android", re.IGNORECASE), "app_android"),
    (re.compile(r"iPhone|iPad|iPod|iOS|CFNetwork|Darwin", re.IGNORECASE), "app_ios"),
)
"""User-agent patterns that tell an `app` event's OS, first match wins."""

HTTP_URL: Final = re.compile(r"https?://\S+")
LANGUAGE: Final = re.compile(r"([A-Za-z]{2})(?:[-_].*)?")
"""A BCP 47 tag whose primary subtag is ISO 639-1 (`en`, `en-US`): Pinterest takes the 2 letters."""
CLICK_ID: Final = re.compile(r"[\x21-\x7e]{1,1024}")
"""`_epik` cookie / `epik=` value as stored by ingest: printable ASCII, sent raw."""


def hashed(key: str, name: str) -> Row:
    """A hashed identifier: a list of lower-case SHA-256 hex digests (spec `ConversionEventsUserData`)."""
    return Row(key, f"hashed.{name}", as_list=True, pattern=SHA256_HEX)


USER_DATA: Final = Table[Row](
    hashed("em", "email"),  # trimmed, lower-case
    hashed("ph", "phone"),  # digits with the country code, no "+", no leading zeros (not `phone_e164`)
    hashed("ge", "gender"),  # m or f; Pinterest's "n" (non-binary) has no canonical value yet
    hashed("db", "date_of_birth"),  # YYYYMMDD
    hashed("ln", "last_name"),  # spec: "in lowercase" (trim + lower, not the letters-only variant)
    hashed("fn", "first_name"),  # spec: "in lowercase"
    hashed("ct", "city"),  # lower-case, no spaces or punctuation
    hashed("st", "state"),  # 2-letter code, lower-case
    hashed("zp", "zip"),  # spec: "only digits"; US ZIP+4 keeps the 5 digits, see the report on letters
    hashed("country", "country"),  # ISO 3166-1 alpha-2, lower-case
    hashed("external_id", "external_id"),  # spec names no rule; trim + lower as Segment and Stape do
    Row("client_ip_address", "user.ip"),  # raw IPv4 or IPv6
    Row("client_user_agent", "user.user_agent"),  # raw
    Row("click_id", "ids.epik", pattern=CLICK_ID),  # raw: "stored in _epik cookie ... or &epik= in the URL"
)
"""`user_data` rows. Only `hashed.*` personal data is read, never a raw identifier."""

IDENTITY_VARIANTS: Final[frozenset[str]] = frozenset(
    row.path.removeprefix("hashed.") for row in USER_DATA if row.as_list
)
"""The router/identity.py variants the rows above read."""

EVENT: Final = Table[Row](
    Row("event_id", "event_id"),  # the dedup key shared with the Pinterest tag
    Row("event_source_url", "page.url", pattern=HTTP_URL),
)
"""Plain top-level event fields; event_name, action_source, event_time, opt_out and language are computed."""

CUSTOM_DATA: Final = Table[Row](
    Row("currency", "properties.currency"),  # ISO 4217, upper-case as stored
    Row("order_id", "properties.order_id"),
    Row("search_string", "properties.search_string"),
    Row("content_name", "properties.content_name"),
    Row("content_category", "properties.content_category"),
    Row("content_brand", "properties.content_brand"),
)
"""`custom_data` rows copied as strings; value, num_items, contents and content_ids are computed.
Free canonical properties are never passed through: `custom_data` rejects unknown keys."""

CONTENT: Final = Table[Row](
    Row("id", "id"),
    Row("item_name", "name"),
    Row("item_category", "category"),
    Row("item_brand", "brand"),
)
"""One `contents[]` item <- one canonical `properties.contents[]` item; item_price (a decimal string) and
quantity (an integer) are computed."""

LIMITED_DATA_PROCESSING: Final = "LDP"
"""`custom_data.opt_out_type`: the only value Pinterest processes (US state privacy laws)."""

AD_CONSENT: Final = ("ad_storage", "ad_user_data", "ad_personalization")
"""Canonical consent signals whose `denied` means the user opted out of ad tracking (`opt_out: true`)."""
