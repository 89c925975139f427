"""Reddit's own documentation as the oracle: its hash vectors and example bodies against our pipeline.

Reddit publishes no Python SDK (none on PyPI; the fact sheet's section 1.13), so the oracle is the text
of Reddit's docs:

- "Direct Integration" and the v2->v3 migration guide (https://ads-api.reddit.com/docs/v3/), captured
  verbatim in segmentio/action-destinations
  packages/destination-actions/src/destinations/reddit-conversions-api/V3-API-REFERENCE.md: the example
  events (custom event, domain detection, match keys, metadata, LDU) and the phone and external id
  vectors;
- "Manual Advanced Matching" (Reddit's signals docs, mirrored at
  papaya-kheer-4b8a70.netlify.app/signals/conversions/reddit-pixel/manual-advanced-matching): the email
  rule and its vector `Al.ice$+Apple@Example.Com` -> `alice@example.com` -> ff8d9819...;
- rudder-transformer test/integrations/destinations/reddit (network.ts), an integrator's fixture Reddit
  answered: the trimmed-email and IP digests.

Every place where we deliberately or knowingly differ is an explicit row with the reason; anything else
must be identical.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from destinations.reddit.adapter import RedditDestination
from router.identity import hash_identifiers
from tests.fakes.reddit import validate_body

VARIANTS = RedditDestination.identity_variants
EVENT_AT = 1_735_707_600_000
NOW = EVENT_AT / 1000 + 60
BLOCK: dict[str, Any] = {
    "id": "reddit_main",
    "type": "reddit",
    "pixel_id": "a2_fakepixel01",
    "access_token": "T",
}


def sha(text: str) -> str:
    """SHA-256 hex of a plaintext."""
    return hashlib.sha256(text.encode()).hexdigest()


def ours(variant: str, field: str, raw: str) -> str | None:
    """Our stored hash of one raw `user` value in one identity variant."""
    hashed, _warnings = hash_identifiers({field: raw}, VARIANTS)
    return hashed.get(variant)


def adapter(**overrides: Any) -> RedditDestination:
    """A Reddit destination from BLOCK plus overrides."""
    return RedditDestination(RedditDestination.parse_config(BLOCK | overrides))


# -- hash vectors -----------------------------------------------------------------------------------

DOC_VECTORS = [
    # (variant, user field, raw input, Reddit's documented digest or its documented prefix)
    (
        "email_reddit",
        "email",
        "alice@example.com",
        "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976",
    ),
    (
        "email_reddit",
        "email",
        "Al.ice$+Apple@Example.Com",
        "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976",
    ),
    (
        "email_reddit",
        "email",
        "testone@gmail.com ",
        "ac144532d9e4efeab19475d9253a879173ea12a3d2238d1cb8a332a7b3a105f2",
    ),
    (
        "phone_e164",
        "phone",
        "+15554441234",
        "e5b124c58580eb16bd959b8d0cac12b12c952e2ceae0203d416cff94f10b994a",
    ),
    (
        "phone_e164",
        "phone",
        "+1 (555) 444-1234",
        "e5b124c58580eb16bd959b8d0cac12b12c952e2ceae0203d416cff94f10b994a",
    ),
    ("external_id", "external_id", "customer12345", "a4cc2fc5"),
]


@pytest.mark.parametrize(("variant", "field", "raw", "digest"), DOC_VECTORS)
def test_documented_vectors(variant: str, field: str, raw: str, digest: str) -> None:
    """Our stored hash equals Reddit's documented digest (or its documented prefix)."""
    value = ours(variant, field, raw)
    assert value is not None and value.startswith(digest)


def test_reddits_email_vector_is_what_the_adapter_sends() -> None:
    """Reddit's Manual Advanced Matching vector end to end: ingest hashing with Reddit's variants, map, body.

    `Al.ice$+Apple@Example.Com` -> `alice@example.com` (alias cut, punctuation stripped) -> ff8d9819...,
    not the digest of the merely trimmed and lower-cased address (the generic `email` variant).
    """
    reddit = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"
    assert sha("alice@example.com") == reddit != sha("al.ice$+apple@example.com")
    hashed, warnings = hash_identifiers({"email": "Al.ice$+Apple@Example.Com"}, VARIANTS)
    assert hashed == {"email_reddit": reddit} and not warnings
    event = {"event_name": "lead", "event_id": "e", "timestamp_ms": EVENT_AT, "hashed": hashed}
    destination = adapter()
    request = destination.build_request(destination.map(event, NOW))
    [sent] = validate_body(request.json, NOW)
    assert sent["user"] == {"email": reddit}


def test_ip_digest_matches_the_rudderstack_fixture() -> None:
    """With hash_ip_address (the default) the IP is SHA-256 of the address, as in RudderStack's fixture."""
    event = {
        "event_name": "lead",
        "event_id": "e",
        "timestamp_ms": EVENT_AT,
        "user": {"ip": "54.100.200.255"},
    }
    body = adapter().map(event, NOW)[0].body
    assert body["user"]["ip_address"].startswith("e80bd55a3834b7c2a34ade23c7ecb54d2a49")


# -- example bodies ---------------------------------------------------------------------------------

DOC_EVENT: dict[str, Any] = {
    "event_at": EVENT_AT,
    "event_source_url": "https://www.example.com/checkout?rdt_cid=3184742045291813272",
    "action_source": "WEBSITE",
    "type": {"tracking_type": "PURCHASE"},
    "click_id": "12345",
    "user": {
        "ip_address": "192.168.0.1",
        "user_agent": "Chrome/98.0.4758.102",
        "screen_dimensions": {"width": 1920, "height": 1080},
        "uuid": "1677712978045.b8f7eb7d-b357-437b-8bd3-e1c8166c7132",
        "email": "example@email.com",
        "phone_number": "+15554441234",
        "external_id": "customer12345",
        "idfa": "8A2E4F6D-0852-4B2A-B9D5-79334DE14B16",
        "aaid": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "data_processing_options": {"modes": ["LDU"], "country": "US", "region": "US-CA"},
    },
    "metadata": {
        "item_count": 2,
        "currency": "USD",
        "value": 100.00,
        "conversion_id": "unique-id",
        "products": [
            {
                "id": "SKU or GTIN",
                "name": "Title of the product",
                "category": "Product group",
                "quantity": 1,
                "item_price": 50.00,
            }
        ],
    },
}
"""Reddit's examples (domain detection, match keys, metadata, opt out) merged into one event."""

NOT_MAPPED = ("screen_dimensions", "idfa", "aaid")
"""Keys with no canonical source: the router has no screen size or mobile advertising ids."""


def doc_event_hashed() -> dict[str, Any]:
    """Reddit's example with its PII hashed (Reddit takes plain or hashed) and unmapped keys removed."""
    event = copy.deepcopy(DOC_EVENT)
    user = event["user"]
    for key in NOT_MAPPED:
        del user[key]
    for key in ("email", "phone_number", "external_id"):
        user[key] = sha(user[key])
    return event


def canonical_event() -> dict[str, Any]:
    """The stored canonical event that says what Reddit's example says."""
    hashed, _warnings = hash_identifiers(
        {"email": "example@email.com", "phone": "+15554441234", "external_id": "customer12345"}, VARIANTS
    )
    return {
        "event_name": "purchase",
        "event_id": "unique-id",
        "timestamp_ms": EVENT_AT,
        "action_source": "website",
        "page": {"url": "https://www.example.com/checkout?rdt_cid=3184742045291813272"},
        "user": {"ip": "192.168.0.1", "user_agent": "Chrome/98.0.4758.102", "country": "us"},
        "hashed": hashed,
        "ids": {"rdt_cid": "12345", "rdt_uuid": "1677712978045.b8f7eb7d-b357-437b-8bd3-e1c8166c7132"},
        "consent": {"ldu": True},
        "properties": {
            "value": 100.00,
            "currency": "USD",
            "num_items": 2,
            "contents": [
                {
                    "id": "SKU or GTIN",
                    "name": "Title of the product",
                    "category": "Product group",
                    "quantity": 1,
                    "price": 50.00,
                }
            ],
        },
    }


def test_adapter_reproduces_reddits_example() -> None:
    """Our event for the same facts is Reddit's example, key for key (plain IP as in the example)."""
    body = adapter(hash_ip_address=False, ldu_region="US-CA").map(canonical_event(), NOW)[0].body
    assert body == doc_event_hashed()


def test_reddits_example_passes_the_fake() -> None:
    """The fake accepts Reddit's own example (hashed), so it is not stricter than Reddit on valid input."""
    full = copy.deepcopy(doc_event_hashed())
    full["user"] |= {
        "screen_dimensions": {"width": 1920, "height": 1080},
        "idfa": sha("IDFA"),
        "aaid": sha("aaid"),
    }
    assert validate_body({"data": {"events": [full], "test_id": "t2_x"}}, NOW) == [full]


def test_reddits_custom_event_example() -> None:
    """Reddit's custom-event example: CUSTOM with custom_event_name inside `type`."""
    event = {
        "event_name": "Promotion Event",
        "event_id": "promo-1",
        "timestamp_ms": EVENT_AT,
        "action_source": "website",
        "ids": {"rdt_cid": "3184742045291813272"},
    }
    body = adapter().map(event, NOW)[0].body
    assert (body["event_at"], body["action_source"]) == (EVENT_AT, "WEBSITE")
    assert body["type"] == {"tracking_type": "CUSTOM", "custom_event_name": "Promotion Event"}
