"""TikTok Events API 2.0 mapping rows: event names, `user`, `properties`, `contents[]` and `page` fields.

Each row reads `TikTok key <- canonical path`. The adapter walks these rows; it holds no field names itself.
Personal data is hashed at ingest (router/identity.py): rows only place the stored `hashed.*` values, and
never read a raw identifier. IP, user agent, locale, country, ttclid and ttp stay raw, as TikTok wants them.

Sources (see also shared/platforms/meta-tiktok-snap.md section 2):
- [doc] TikTok's Events API 2.0 reference, as transcribed field by field (Chinese edition) in the Go SDK
  bububa/tiktok-business, model/event/track.go: user.email / phone / external_id are lists of SHA-256
  digests ("single or multiple"), ip / user_agent / ttclid / ttp unhashed, properties.contents[] items
  {price, content_id, content_category, content_name, brand}, content_type `product` | `product_group`.
- [3p] Segment action-destinations tiktok-conversions (reportWebEvent/utils.ts, formatter.ts): first_name,
  last_name and zip_code hashed; city, state and country sent unhashed; quantity in contents[].
- [3p] RudderStack rudder-transformer tiktok_ads (docs/businesslogic.md, data/TikTokTrackV2.json).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from destinations.rows import SHA256_HEX, empty
from destinations.table import Table
from router.ipv4 import is_dotted_quad

EVENT_NAMES: Final[Mapping[str, str]] = {
    "page_view": "Pageview",  # the name the TikTok Pixel's ttq.page() reports; not in the 2.0 standard list
    "view_content": "ViewContent",
    "search": "Search",
    "add_to_cart": "AddToCart",
    "add_to_wishlist": "AddToWishlist",
    "begin_checkout": "InitiateCheckout",
    "add_payment_info": "AddPaymentInfo",
    "purchase": "Purchase",  # 2024 standard event, preferred to CompletePayment (event_map keeps the old)
    "lead": "Lead",  # 2024 standard event; preferred to SubmitForm
    "sign_up": "CompleteRegistration",
    "subscribe": "Subscribe",
    "start_trial": "StartTrial",
    "contact": "Contact",
    "schedule": "Schedule",
    "submit_application": "SubmitApplication",
}
"""Canonical event name -> TikTok event name. Other names are custom events, sent exactly as they came
(TikTok's custom way: any other string in `event`; RudderStack keeps custom names unchanged too)."""

STANDARD_EVENTS: Final = frozenset(
    {"ViewContent", "ClickButton", "Search", "AddToWishlist", "AddToCart", "InitiateCheckout"}
    | {"AddPaymentInfo", "CompletePayment", "PlaceAnOrder", "Contact", "Download", "SubmitForm"}
    | {"CompleteRegistration", "Subscribe", "Purchase", "Lead", "ApplicationApproval", "SubmitApplication"}
    | {"CustomizeProduct", "FindLocation", "Schedule", "StartTrial", "Pageview"}
)
"""TikTok's standard web events (case-sensitive): the 2.0 list as used by RudderStack's eventNameMapping,
Stape's TikTok tag and TikTok's help page "standard events & parameters", plus the Pixel's Pageview."""

CONTENT_TYPES: Final = frozenset({"product", "product_group"})
"""[doc] `properties.content_type` enum, lower case."""

DEFAULT_CONTENT_TYPE: Final = "product"
"""Sent with `contents` when the event names no content type, as Segment, RudderStack and TikTok's own
Adobe extension do: TikTok's diagnostics flag product events without one."""


# -- value checks: a value that fails its row's check is left out ------------------------------------

LOOKS_HASHED: Final = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
HTTP_URL: Final = re.compile(r"https?://\S+")
CURRENCY: Final = re.compile(r"[A-Z]{3}")
COUNTRY: Final = re.compile(r"[a-z]{2}")
LOCALE: Final = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
"""BCP 47, as TikTok asks for `user.locale` ("en-US"); TikTok's own Adobe extension sends "en_US"."""


def is_sha256(value: Any) -> bool:
    """A lower-case hex SHA-256 digest: a raw value that slipped under `hashed` never matches."""
    return isinstance(value, str) and SHA256_HEX.fullmatch(value) is not None


def is_raw_text(value: Any) -> bool:
    """A non-empty string that is not a digest: ids TikTok wants exactly as the browser had them."""
    return isinstance(value, str) and bool(value.strip()) and LOOKS_HASHED.fullmatch(value) is None


def is_ip(value: Any) -> bool:
    """A raw IPv4 or IPv6 address as text (TikTok takes both, IPv6 full or compressed)."""
    if not isinstance(value, str):
        return False
    if is_dotted_quad(value):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    """A check that the value is a string fully matching `pattern`."""
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def one_of(values: frozenset[str]) -> Callable[[Any], bool]:
    """A check that the value is one of `values`, exactly (enums are case-sensitive)."""
    return lambda value: isinstance(value, str) and value in values


def is_number(value: Any) -> bool:
    """An int or float, not a bool (TikTok: "integer or decimal, no currency symbols or commas")."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_count(value: Any) -> bool:
    """A non-negative int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_id(value: Any) -> bool:
    """A non-empty string id (TikTok rejects numbers: "content_id: Not a valid string", code 40002)."""
    return isinstance(value, str) and bool(value)


def as_id(value: Any) -> Any:
    """Whole numbers and strings become string ids; anything else is kept, to fail `is_id`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def lower(value: Any) -> Any:
    """Lower-case a string (digests given in upper-case hex); other values pass unchanged."""
    return value.lower() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class Row:
    """One TikTok field filled from one canonical path (a destinations/rows.py `Field`).

    `cast` adjusts the value first; a value failing `check` is left out, so a malformed optional field
    can never make TikTok refuse the batch (40002 names one event but rejects the whole request).
    `as_list` sends a 1-element array.
    """

    key: str
    path: str
    check: Callable[[Any], bool]
    cast: Callable[[Any], Any] | None = None
    as_list: bool = False
    INLINE: ClassVar[str] = "cast-check"
    """destinations/table.py writes `value` out inline in a compiled table (same result)."""

    def value(self, found: Any) -> Any:
        """The value this row sends, or None."""
        if empty(found):
            return None
        if self.cast is not None:
            found = self.cast(found)
        return found if self.check(found) else None


def hashed(key: str, variant: str, *, as_list: bool = False) -> Row:
    """A hashed identifier: the stored digest of one router/identity.py variant, lower-case hex."""
    return Row(key, f"hashed.{variant}", is_sha256, cast=lower, as_list=as_list)


USER: Final = Table[Row](
    hashed("email", "email", as_list=True),  # [doc] trim + lower-case, then SHA-256
    hashed("phone", "phone_e164", as_list=True),  # [doc] E.164 WITH the "+": "+12133734253"
    hashed("external_id", "external_id", as_list=True),  # [doc] SHA-256 of your user id
    hashed("first_name", "first_name_letters"),  # [3p] "lowercase without any punctuation"
    hashed("last_name", "last_name_letters"),  # [3p] same rule as first_name
    hashed("zip_code", "zip"),  # [3p] lower-case, no spaces (Segment keeps a ZIP+4 suffix; we cut it)
    Row("country", "user.country", matches(COUNTRY)),  # [3p] unhashed; ISO-2 lower-case as stored
    Row("ip", "user.ip", is_ip),  # [doc] unhashed public IP
    Row("user_agent", "user.user_agent", is_raw_text),  # [doc] unhashed
    Row("locale", "user.language", matches(LOCALE)),  # [doc] BCP 47
    Row("ttclid", "ids.ttclid", is_raw_text),  # [doc] click id from the landing URL, byte for byte
    Row("ttp", "ids.ttp", is_raw_text),  # [doc] the _ttp cookie, byte for byte
)
"""`user` rows. city and state are left out: TikTok wants them unhashed (Segment, RudderStack) and the
router keeps them only hashed. date_of_birth and gender are not TikTok fields."""

IDENTITY_VARIANTS: Final[frozenset[str]] = frozenset(
    r.path.removeprefix("hashed.") for r in USER if r.check is is_sha256
)
"""The router/identity.py variants the rows above read."""

PAGE: Final = Table[Row](
    Row("url", "page.url", matches(HTTP_URL)),
    Row("referrer", "page.referrer", matches(HTTP_URL)),
)
"""`page` rows: where the event happened (recommended for web events)."""

PROPERTIES: Final = Table[Row](
    Row("value", "properties.value", is_number),
    Row("currency", "properties.currency", matches(CURRENCY)),  # ISO 4217, upper case
    Row("content_type", "properties.content_type", one_of(CONTENT_TYPES)),
    Row("order_id", "properties.order_id", is_id, cast=as_id),
    Row("search_string", "properties.search_string", is_id),
    Row("num_items", "properties.num_items", is_count),
)
"""`properties` rows; `contents` is built from CONTENT rows. No `content_ids`: Segment notes it must not
be sent together with `contents`."""

CONTENT: Final = Table[Row](
    Row("content_id", "id", is_id, cast=as_id),
    Row("content_name", "name", is_id),
    Row("content_category", "category", is_id),
    Row("brand", "brand", is_id),
    Row("price", "price", is_number),  # the unit price; `value` is the order total
    Row("quantity", "quantity", is_count),
)
"""One `properties.contents[]` item <- one canonical `properties.contents[]` item."""

STANDARD_PROPERTIES: Final = frozenset(
    {"value", "currency", "order_id", "contents", "content_type", "search_string", "num_items"}
)
"""Canonical properties mapped by the rows above; every other property is passed through as is."""
