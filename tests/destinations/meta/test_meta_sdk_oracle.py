"""Meta's official SDK (facebook-business) as an oracle for our Meta events and identifier hashing.

Two comparisons:
- the same logical event built by our pipeline (router/identity.py hash_identifiers, then the Meta
  adapter) and by the SDK's serverside classes (Event, UserData, CustomData, Content, EventRequest);
- a corpus of awkward identifiers: our hash against `Normalize.normalize_field`.

Every place where we deliberately differ from the SDK is an explicit row with the plaintext each side
hashes and the reason; anything else must be identical.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.content import Content
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.gender import Gender
from facebook_business.adobjects.serverside.normalize import Normalize
from facebook_business.adobjects.serverside.user_data import UserData

from destinations.meta.adapter import MetaDestination
from router.identity import hash_identifiers

VARIANTS = MetaDestination.identity_variants
NOW = 1_767_225_700.0
EVENT_TIME = 1_767_225_600
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"
FBC = "fb.1.1767225500000.IwAR2xYz-_AbC"
FBP = "fb.1.1767225400000.1116446470"
HEX64 = re.compile(r"[0-9a-f]{64}")


def digest(text: str) -> str:
    """SHA-256 hex of a plaintext; a value that already is a digest stays as it is."""
    return text if HEX64.fullmatch(text) else hashlib.sha256(text.encode()).hexdigest()


def ours(field: str, raw: str, region: str | None = None) -> str | None:
    """Our hashed value for one raw identifier (the `hashed` key equals the `user` field here)."""
    hashed, _warnings = hash_identifiers({field: raw}, VARIANTS, region)
    return hashed.get(field)


def sdk(meta_key: str, raw: str) -> str | None:
    """The SDK's hashed value, or None when the SDK refuses the value."""
    try:
        value: str | None = Normalize.normalize_field(meta_key, raw)
    except (TypeError, ValueError):
        return None
    return value


# -- the hashing corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Same:
    """An input both sides hash to the same digest."""

    field: str
    meta_key: str
    raw: str
    plain: str
    region: str | None = None


@dataclass(frozen=True)
class Differs:
    """A deliberate difference: the plaintext each side hashes (sdk_plain None: the SDK refuses it)."""

    field: str
    meta_key: str
    raw: str
    our_plain: str
    sdk_plain: str | None
    why: str
    region: str | None = None


JOE_DIGEST = hashlib.sha256(b"joe@example.com").hexdigest()

SAME = [
    Same("email", "em", "  Joe.Smith@Example.COM ", "joe.smith@example.com"),
    Same("email", "em", JOE_DIGEST.upper(), JOE_DIGEST),  # already hashed: lower-cased, never re-hashed
    Same("phone", "ph", "+1 (650) 555-1212", "16505551212"),
    Same("phone", "ph", "0044 20 7946 0958", "442079460958"),  # "00" international prefix dropped
    Same("zip", "zp", "94025-1234", "94025"),  # ZIP+4: the part before the dash
    Same("zip", "zp", "SW1A 1AA", "sw1a1aa"),
    Same("city", "ct", "St. Louis", "stlouis"),
    Same("state", "st", "CA", "ca"),
    Same("country", "country", "US", "us"),
    Same("gender", "ge", "f", "f"),
    Same("date_of_birth", "db", "19900704", "19900704"),
    Same("first_name", "fn", "  Mary-Ann ", "mary-ann"),  # both keep the hyphen (Meta's docs ask less)
]

DIFFERENCES = [
    Differs(
        "phone", "ph", "+44 (0)20 7946 0958", "442079460958", "4402079460958",
        "the SDK keeps the UK trunk 0 written as (0); Meta's docs say to remove leading zeros, "
        "and libphonenumber drops it, giving the number Meta's pixel matches",
    ),
    Differs(
        "phone", "ph", "(650) 555-1212", "16505551212", "6505551212",
        "the SDK does not add a missing country code; we take it from the user's country",
        region="US",
    ),
    Differs(
        "phone", "ph", "650.555.1212", "16505551212", None,
        "the SDK rejects dots as separators; libphonenumber reads them",
        region="US",
    ),
    Differs(
        "state", "st", "California", "ca", "california",
        "we map US state names to their 2-letter code, as Meta's docs ask; the SDK only strips characters",
    ),
    Differs(
        "gender", "ge", "Male", "m", "male",
        "the SDK's raw normalizer does not map male/female to m/f (its UserData takes a Gender enum)",
    ),
    Differs(
        "date_of_birth", "db", "1990-07-04", "19900704", "1990-07-04",
        "Meta wants YYYYMMDD; the SDK leaves formatting to the caller and hashes the dashes",
    ),
    Differs(
        "first_name", "fn", "Jose\u0301", "jos\u00e9", "jose\u0301",
        "we NFC-normalize Unicode (a decomposed accent becomes one character); the SDK hashes bytes as sent",
    ),
]  # fmt: skip


@pytest.mark.parametrize("row", SAME, ids=lambda row: f"{row.field}:{row.raw.strip()[:20]}")
def test_same_hash_as_the_sdk(row: Same) -> None:
    """Where we agree with the SDK, both digests are the digest of the expected plaintext."""
    expected = digest(row.plain)
    assert ours(row.field, row.raw, row.region) == expected
    assert sdk(row.meta_key, row.raw) == expected


@pytest.mark.parametrize("row", DIFFERENCES, ids=lambda row: f"{row.field}:{row.raw[:20]}")
def test_deliberate_difference_from_the_sdk(row: Differs) -> None:
    """Each deliberate difference: we hash our plaintext, the SDK hashes its own (or refuses)."""
    assert ours(row.field, row.raw, row.region) == digest(row.our_plain), row.why
    expected_sdk = None if row.sdk_plain is None else digest(row.sdk_plain)
    assert sdk(row.meta_key, row.raw) == expected_sdk, row.why


def test_gender_words_match_the_sdk_enum() -> None:
    """The words Male and Female hash like the SDK's Gender.MALE and Gender.FEMALE."""
    for word, enum in (("Male", Gender.MALE), ("FEMALE", Gender.FEMALE)):
        assert UserData(gender=enum).normalize()["ge"] == [ours("gender", word)]


def test_external_id_is_hashed_unlike_the_sdk() -> None:
    """Deliberate: the SDK sends external_id raw; we send its SHA-256 (Meta recommends hashing it)."""
    assert UserData(external_id="cust-42").normalize()["external_id"] == ["cust-42"]
    assert ours("external_id", "cust-42") == digest("cust-42")


# -- one whole event ----------------------------------------------------------------------------------

RAW_USER = {
    "email": "Joe@Example.com",
    "phone": "+1 (650) 555-1212",
    "first_name": "Joe",
    "last_name": "Smith",
    "gender": "m",
    "date_of_birth": "19900704",
    "city": "Menlo Park",
    "state": "CA",
    "zip": "94025",
    "country": "US",
    "external_id": "cust-42",
}
CONTENTS = [
    {"id": "sku-1", "quantity": 2, "price": 5.0, "name": "Green tea", "category": "drinks", "brand": "Leafy"},
    {"id": "sku-2", "quantity": 1, "price": 2.5},
]


def our_event() -> dict[str, Any]:
    """Our pipeline: identity hashes the raw user at ingest, the adapter maps the stored event."""
    hashed, warnings = hash_identifiers(RAW_USER, VARIANTS)
    assert warnings == []
    stored = {
        "event_name": "purchase",
        "event_id": "ord-1001",
        "timestamp_ms": EVENT_TIME * 1000 + 123,
        "action_source": "website",
        "page": {"url": "https://shop.example.com/done", "referrer": "https://shop.example.com/cart"},
        "user": {"ip": "203.0.113.9", "user_agent": UA},
        "hashed": hashed,
        "ids": {"fbc": FBC, "fbp": FBP},
        "consent": {"ldu": True},
        "properties": {
            "value": 12.5, "currency": "USD", "order_id": "ord-1001", "content_type": "product",
            "num_items": 3, "status": "paid", "coupon": "SPRING", "contents": CONTENTS,
        },
    }  # fmt: skip
    block = {"id": "meta", "type": "meta", "pixel_id": "1234567890", "access_token": "T"}
    destination = MetaDestination(MetaDestination.parse_config(block))
    request = destination.build_request(destination.map(stored, NOW))
    event: dict[str, Any] = request.json["data"][0]
    return event


def sdk_event() -> dict[str, Any]:
    """The SDK: the same logical event from raw values, through EventRequest.get_params()."""
    user = UserData(
        email=RAW_USER["email"], phone=RAW_USER["phone"], first_name=RAW_USER["first_name"],
        last_name=RAW_USER["last_name"], gender=Gender.MALE, date_of_birth=RAW_USER["date_of_birth"],
        city=RAW_USER["city"], state=RAW_USER["state"], zip_code=RAW_USER["zip"],
        country_code=RAW_USER["country"], external_id=RAW_USER["external_id"],
        client_ip_address="203.0.113.9", client_user_agent=UA, fbc=FBC, fbp=FBP,
    )  # fmt: skip
    contents = [
        Content(product_id="sku-1", quantity=2, item_price=5.0, title="Green tea", category="drinks",
                brand="Leafy"),
        Content(product_id="sku-2", quantity=1, item_price=2.5),
    ]  # fmt: skip
    custom = CustomData(
        value=12.5, currency="USD", order_id="ord-1001", content_type="product", num_items=3, status="paid",
        contents=contents, content_ids=["sku-1", "sku-2"], custom_properties={"coupon": "SPRING"},
    )  # fmt: skip
    event = Event(
        event_name="Purchase", event_time=EVENT_TIME, event_id="ord-1001",
        event_source_url="https://shop.example.com/done", referrer_url="https://shop.example.com/cart",
        action_source=ActionSource.WEBSITE, user_data=user, custom_data=custom,
        data_processing_options=["LDU"], data_processing_options_country=0, data_processing_options_state=0,
    )  # fmt: skip
    params = EventRequest(pixel_id="1234567890", events=[event]).get_params()
    decoded: dict[str, Any] = json.loads(params["data"][0])
    return decoded


def test_event_fields_match_the_sdk() -> None:
    """Top-level event fields are identical."""
    ours_, sdk_ = our_event(), sdk_event()
    keys = ("event_name", "event_time", "event_id", "action_source", "event_source_url", "referrer_url")
    ldu = ("data_processing_options", "data_processing_options_country", "data_processing_options_state")
    for key in keys + ldu:
        assert ours_[key] == sdk_[key], key


def test_custom_data_matches_the_sdk_but_currency_case() -> None:
    """custom_data and contents are identical, except the deliberate currency case."""
    ours_, sdk_ = our_event()["custom_data"], sdk_event()["custom_data"]
    # Deliberate: the SDK lower-cases the ISO 4217 code ("usd"); we keep it as sent ("USD").
    # Meta accepts both; upper case is how ISO 4217 and Meta's own examples write it.
    assert (ours_.pop("currency"), sdk_.pop("currency")) == ("USD", "usd")
    assert ours_ == sdk_


def test_user_data_matches_the_sdk_but_external_id() -> None:
    """user_data is identical (lists compared as sets), except the deliberately hashed external_id."""
    ours_, sdk_ = our_event()["user_data"], sdk_event()["user_data"]
    # Deliberate: the SDK sends external_id raw; we hash it (see test_external_id_is_hashed_unlike_the_sdk).
    assert ours_.pop("external_id") == [digest("cust-42")]
    assert sdk_.pop("external_id") == ["cust-42"]
    assert ours_.keys() == sdk_.keys()
    for key, value in ours_.items():
        assert (set(value) if isinstance(value, list) else value) == (
            set(sdk_[key]) if isinstance(sdk_[key], list) else sdk_[key]
        ), key
