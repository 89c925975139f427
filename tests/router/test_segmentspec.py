"""The pure Segment-spec mapping: each spec call -> the exact raw canonical event handed to the ingest."""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import Problem
from router.segmentspec import (
    Malformed,
    Mapped,
    epoch_ms,
    event_time,
    message_event_id,
    messages,
    to_canonical,
)

RECEIVED = 1_767_225_600_000
"""2026-01-01T00:00:00Z in ms: the router's clock in these tests."""
SENT = "2026-01-01T00:00:00.000Z"


def track(event: str, properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A server-SDK track call sent at RECEIVED by a correct clock, 2 s after it happened."""
    return {
        "type": "track",
        "event": event,
        "messageId": "msg-1",
        "timestamp": "2025-12-31T23:59:58.000Z",
        "sentAt": SENT,
        "properties": properties,
        **fields,
    }


def mapped(message: Any, trust_ip: bool = True) -> dict[str, Any]:
    """The canonical event of a message that must map without problems."""
    outcome = to_canonical(message, RECEIVED, trust_ip=trust_ip)
    assert outcome.errors == [] and outcome.warnings == [] and outcome.event is not None
    return outcome.event


BASE = {"event_id": "msg-1", "event_time": RECEIVED - 2000}
ORDER_PRODUCTS = [
    {
        "product_id": "507f1f77",
        "sku": "45790-32",
        "name": "Monopoly",
        "price": 19,
        "quantity": 1,
        "category": "Games",
        "brand": "Hasbro",
        "url": "https://shop.example.com/monopoly",
    },
    {"sku": "46493-32", "name": "Uno", "price": "3.5", "quantity": "2", "category": "Games"},
]


def test_order_completed_is_a_purchase_with_value_currency_order_and_contents() -> None:
    """Order Completed -> purchase: revenue wins over total, products -> contents, custom keys kept."""
    properties = {
        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
        "order_id": "50314b8e9bcf000000000000",
        "affiliation": "Google Store",
        "total": 27.5,
        "revenue": 25.0,
        "shipping": 3,
        "tax": 2,
        "discount": 2.5,
        "coupon": "hasbros",
        "currency": "usd",
        "products": ORDER_PRODUCTS,
    }
    assert mapped(track("Order Completed", properties)) == {
        **BASE,
        "event_name": "purchase",
        "properties": {
            "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
            "affiliation": "Google Store",
            "shipping": 3,
            "tax": 2,
            "discount": 2.5,
            "coupon": "hasbros",
            "value": 25.0,
            "order_id": "50314b8e9bcf000000000000",
            "contents": [
                {
                    "id": "507f1f77",
                    "quantity": 1,
                    "price": 19,
                    "name": "Monopoly",
                    "category": "Games",
                    "brand": "Hasbro",
                },
                {"id": "46493-32", "quantity": 2, "price": 3.5, "name": "Uno", "category": "Games"},
            ],
            "content_type": "product",
            "currency": "usd",
        },
    }


def test_product_added_maps_the_single_product_at_the_top_level() -> None:
    """Product Added -> add_to_cart; its own fields are one contents item; value = price x qty."""
    properties = {
        "cart_id": "skdjsidjsdkdj29j",
        "product_id": "507f1f77",
        "sku": "G-32",
        "name": "Monopoly",
        "price": 18.99,
        "quantity": 2,
        "category": "Games",
        "brand": "Hasbro",
        "url": "https://shop.example.com/monopoly",
        "image_url": "https://cdn.example.com/m.jpg",
    }
    assert mapped(track("Product Added", properties)) == {
        **BASE,
        "event_name": "add_to_cart",
        "properties": {
            "cart_id": "skdjsidjsdkdj29j",
            "image_url": "https://cdn.example.com/m.jpg",
            "value": 37.98,
            "contents": [
                {
                    "id": "507f1f77",
                    "quantity": 2,
                    "price": 18.99,
                    "name": "Monopoly",
                    "category": "Games",
                    "brand": "Hasbro",
                }
            ],
            "content_type": "product",
            "currency": "USD",
        },
    }


def test_product_viewed_uses_its_value_and_currency() -> None:
    """Product Viewed -> view_content with the event's own value and currency."""
    properties = {"product_id": "p-1", "price": 5, "value": 5, "currency": "EUR"}
    assert mapped(track("Product Viewed", properties))["properties"] == {
        "value": 5,
        "contents": [{"id": "p-1", "price": 5}],
        "content_type": "product",
        "currency": "EUR",
    }
    assert mapped(track("Product Viewed", properties))["event_name"] == "view_content"


def test_product_added_to_wishlist_is_add_to_wishlist() -> None:
    """Product Added to Wishlist -> add_to_wishlist; the wishlist name stays as a custom property."""
    properties = {"wishlist_id": "w-1", "wishlist_name": "Loved", "product_id": "p-2"}
    assert mapped(track("Product Added to Wishlist", properties)) == {
        **BASE,
        "event_name": "add_to_wishlist",
        "properties": {
            "wishlist_id": "w-1",
            "wishlist_name": "Loved",
            "contents": [{"id": "p-2"}],
            "content_type": "product",
        },
    }


def test_checkout_started_is_begin_checkout() -> None:
    """Checkout Started -> begin_checkout; `value` is used when neither revenue nor total is sent."""
    properties = {
        "order_id": 1001,
        "value": 30,
        "currency": "GBP",
        "products": [{"id": "p-3", "quantity": 3}],
    }
    assert mapped(track("Checkout Started", properties)) == {
        **BASE,
        "event_name": "begin_checkout",
        "properties": {
            "value": 30,
            "order_id": "1001",
            "contents": [{"id": "p-3", "quantity": 3}],
            "content_type": "product",
            "currency": "GBP",
        },
    }


def test_products_searched_is_search_with_the_query() -> None:
    """Products Searched -> search with query -> search_string."""
    assert mapped(track("Products Searched", {"query": "blue hotpants"})) == {
        **BASE,
        "event_name": "search",
        "properties": {"search_string": "blue hotpants"},
    }


def test_payment_info_entered_is_add_payment_info() -> None:
    """Payment Info Entered -> add_payment_info; checkout step details stay custom."""
    properties = {"checkout_id": "c-1", "order_id": "o-1", "step": 2, "payment_method": "Visa"}
    assert mapped(track("Payment Info Entered", properties)) == {
        **BASE,
        "event_name": "add_payment_info",
        "properties": {"checkout_id": "c-1", "step": 2, "payment_method": "Visa", "order_id": "o-1"},
    }


def test_signed_up_is_sign_up_with_identity_from_traits_and_no_personal_properties() -> None:
    """Signed Up -> sign_up; traits give the identity; personal data in properties is never passed on."""
    message = track(
        "Signed Up",
        {
            "type": "organic",
            "first_name": "Peter",
            "email": "peter@example.com",
            "username": "pgibbons",
            "note": "write to peter@example.com",
        },
        userId="user-42",
        context={
            "traits": {
                "email": "Peter@Example.com",
                "firstName": "Peter",
                "last_name": "Gibbons",
                "phone": "+1 650 555 1212",
                "gender": "Male",
                "birthday": "1970-02-13T00:00:00Z",
                "address": {"city": "Austin", "state": "TX", "postalCode": "78701", "country": "US"},
            }
        },
    )
    assert mapped(message) == {
        **BASE,
        "event_name": "sign_up",
        "user": {
            "email": "Peter@Example.com",
            "phone": "+1 650 555 1212",
            "first_name": "Peter",
            "last_name": "Gibbons",
            "gender": "Male",
            "date_of_birth": "1970-02-13",
            "city": "Austin",
            "state": "TX",
            "zip": "78701",
            "country": "US",
            "external_id": "user-42",
        },
        "properties": {"type": "organic"},
    }


def test_email_in_properties_is_the_fallback_identity() -> None:
    """Without traits, properties.email and properties.phone identify the user (and are not custom data)."""
    event = mapped(track("Signed Up", {"email": "ann@example.com", "phone": "+44 20 7946 0958"}))
    assert event["user"] == {"email": "ann@example.com", "phone": "+44 20 7946 0958"}
    assert "properties" not in event


def test_trial_started_and_canonical_names_fold() -> None:
    """Trial Started (B2B SaaS spec) -> start_trial; Meta/GA4/canonical names work as `event` too."""
    assert mapped(track("Trial Started", {}))["event_name"] == "start_trial"
    assert mapped(track("Lead", {}))["event_name"] == "lead"
    assert mapped(track("generate_lead", {}))["event_name"] == "lead"
    assert mapped(track("Video Played", {}))["event_name"] == "Video Played"


def test_page_call_is_a_page_view_from_its_properties_then_context_page() -> None:
    """analytics.js page(): properties url/title win, context.page fills the referrer; campaign -> utm_*."""
    message = {
        "type": "page",
        "name": "Home",
        "messageId": "ajs-next-1",
        "timestamp": "2025-12-31T23:59:58.000Z",
        "sentAt": SENT,
        "properties": {
            "url": "https://shop.example.com/?utm_source=news",
            "title": "Home",
            "path": "/",
            "search": "?utm_source=news",
            "referrer": "",
        },
        "context": {
            "page": {"url": "https://shop.example.com/old", "referrer": "https://news.example.org/"},
            "userAgent": "Mozilla/5.0 (X11)",
            "locale": "en-US",
            "campaign": {"source": "news", "medium": "email", "name": "spring"},
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
        },
    }
    assert mapped(message) == {
        "event_name": "page_view",
        "event_id": "ajs-next-1",
        "event_time": RECEIVED - 2000,
        "page": {
            "url": "https://shop.example.com/?utm_source=news",
            "referrer": "https://news.example.org/",
            "title": "Home",
        },
        "user": {"user_agent": "Mozilla/5.0 (X11)", "language": "en-US"},
        "properties": {"utm_campaign": "spring", "utm_source": "news", "utm_medium": "email"},
    }


@pytest.mark.parametrize("kind", ["identify", "screen", "group", "alias"])
def test_calls_without_a_conversion_store_nothing(kind: str) -> None:
    """identify (traits alone), screen, group and alias are skipped, not rejected."""
    outcome = to_canonical(
        {"type": kind, "userId": "u", "traits": {"email": "a@b.co"}}, RECEIVED, trust_ip=True
    )
    assert outcome == Mapped(skipped=f"{kind} calls store no event")


def test_context_ip_is_used_only_when_trusted() -> None:
    """context.ip becomes user.ip for server sources; browser sources get the request's IP instead."""
    message = track("Order Completed", {}, context={"ip": "203.0.113.7", "userAgent": "UA/1"})
    assert mapped(message, trust_ip=True)["user"] == {"ip": "203.0.113.7", "user_agent": "UA/1"}
    assert mapped(message, trust_ip=False)["user"] == {"user_agent": "UA/1"}


def test_event_id_prefers_properties_then_context_then_message_id() -> None:
    """properties.event_id (or eventId) wins, then context.event_id, then messageId."""
    assert (
        mapped(track("Lead", {"event_id": "pixel-1"}, context={"event_id": "ctx-1"}))["event_id"] == "pixel-1"
    )
    assert mapped(track("Lead", {"eventId": "pixel-2"}))["event_id"] == "pixel-2"
    assert mapped(track("Lead", {}, context={"event_id": "ctx-1"}))["event_id"] == "ctx-1"
    assert mapped(track("Lead", {}))["event_id"] == "msg-1"
    without = track("Lead", {})
    del without["messageId"]
    assert "event_id" not in mapped(without)


def test_a_message_id_the_schema_refuses_becomes_a_stable_digest() -> None:
    """A messageId with spaces (or too long) still dedups: the same digest every time it is resent."""
    assert message_event_id("abc-123") == "abc-123"
    assert message_event_id(42) == "42"
    digest = message_event_id("has spaces in it")
    assert digest is not None and digest.startswith("seg-") and len(digest) == 36
    assert digest == message_event_id("has spaces in it")
    assert message_event_id(None) is None and message_event_id(True) is None


def test_event_time_corrects_the_senders_clock_with_sent_at() -> None:
    """A device clock 1 h fast: event_time = received - (sentAt - timestamp), as Segment computes it."""
    message = {"timestamp": "2026-01-01T00:59:50Z", "sentAt": "2026-01-01T01:00:00Z"}
    assert event_time(message, RECEIVED) == RECEIVED - 10_000
    assert event_time({"originalTimestamp": "2026-01-01T00:59:50Z"}, RECEIVED, "2026-01-01T01:00:00Z") == (
        RECEIVED - 10_000
    )
    assert event_time({"timestamp": "2025-12-31T23:00:00+00:00"}, RECEIVED) == RECEIVED - 3_600_000
    assert event_time({"timestamp": "yesterday"}, RECEIVED) is None


def test_epoch_ms_reads_iso_and_epoch_values() -> None:
    """ISO with Z, offsets or no zone (UTC), epoch seconds and ms; anything else is None."""
    assert epoch_ms("2026-01-01T00:00:00Z") == RECEIVED
    assert epoch_ms("2026-01-01T01:00:00+01:00") == RECEIVED
    assert epoch_ms("2026-01-01T00:00:00") == RECEIVED
    assert epoch_ms(1_767_225_600) == RECEIVED
    assert epoch_ms(RECEIVED) == RECEIVED
    assert epoch_ms(True) is None and epoch_ms(None) is None and epoch_ms("") is None


def test_refused_context_values_are_dropped_with_warnings() -> None:
    """A trait or context value the canonical schema refuses is dropped, the conversion kept."""
    message = track(
        "Order Completed",
        {"revenue": 10, "currency": "USD"},
        context={
            "traits": {"email": "not-an-email", "gender": "other", "address": {"country": "Germany"}},
            "page": {"url": "file:///tmp/x.html"},
            "ip": "not-an-ip",
        },
    )
    outcome = to_canonical(message, RECEIVED, trust_ip=True)
    assert outcome.event is not None
    assert "user" not in outcome.event and "page" not in outcome.event
    assert outcome.event["properties"] == {"value": 10, "currency": "USD"}
    assert [w.path for w in outcome.warnings] == [
        "/page/url",
        "/user/country",
        "/user/email",
        "/user/gender",
        "/user/ip",
    ]
    assert all(w.message.startswith("dropped: ") for w in outcome.warnings)


def test_unusable_custom_properties_are_left_out() -> None:
    """Nested objects, names with spaces and over-long strings are left out; lists of scalars are kept."""
    properties = {
        "Order Type": "web",
        "meta": {"a": 1},
        "tags": ["a", "b"],
        "long": "x" * 1001,
        "ok": None,
        "flag": True,
        "rows": [{"a": 1}],
    }
    assert mapped(track("Custom Thing", properties))["properties"] == {"tags": ["a", "b"], "flag": True}


def test_click_ids_and_consent_come_from_context() -> None:
    """context.fbc / context.clientIds.fbp (RudderStack, Jitsu) -> ids; canonical consent keys pass."""
    context = {
        "fbc": "fb.1.1700000000000.abc",
        "clientIds": {"fbp": "fb.1.1700000000000.123"},
        "consent": {"ad_storage": "granted", "categoryPreferences": {"Advertising": True}},
    }
    event = mapped(track("Lead", {}, context=context))
    assert event["ids"] == {"fbp": "fb.1.1700000000000.123", "fbc": "fb.1.1700000000000.abc"}
    assert event["consent"] == {"ad_storage": "granted"}


def test_mobile_context_makes_an_app_event() -> None:
    """Mobile SDKs' context.app marks the event as happening in an app."""
    assert mapped(track("Order Completed", {}, context={"app": {"name": "Shop"}}))["action_source"] == "app"


def test_track_without_a_name_and_unknown_types_are_rejected() -> None:
    """A track call needs `event`; a message must be an object with a known type."""
    assert to_canonical({"type": "track"}, RECEIVED, trust_ip=True).errors == [
        Problem("/event", "a track call needs an event name")
    ]
    unknown = to_canonical({"type": "launch"}, RECEIVED, trust_ip=True)
    assert [p.path for p in unknown.errors] == ["/type"]
    assert to_canonical([1], RECEIVED, trust_ip=True).errors[0].path == ""


def test_batch_context_applies_to_each_message_and_the_path_sets_the_type() -> None:
    """Batch-level context merges under each message's own; a single call takes its type from the path."""
    document = {
        "batch": [{"type": "track", "context": {"ip": "203.0.113.1"}}, 7],
        "context": {"ip": "x", "a": 1},
    }
    assert messages(document, "batch") == [{"type": "track", "context": {"ip": "203.0.113.1", "a": 1}}, 7]
    assert messages({"type": "page", "event": "E"}, "track") == [{"type": "track", "event": "E"}]


@pytest.mark.parametrize("document", [[], {"batch": {}}, {"batch": []}, {"events": [1]}, "x"])
def test_malformed_batches_are_refused_whole(document: Any) -> None:
    """A batch body must be an object with a non-empty `batch` list."""
    with pytest.raises(Malformed):
        messages(document, "batch")
