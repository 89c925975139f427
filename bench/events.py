"""The realistic purchase the benches send: email, phone, names, an fbclid page URL, value, currency.

One definition serves every bench: `purchase(n)` builds event n for Python callers, and `template()`
renders the same event as JSON text with a placeholder where the unique part goes, for the load
generators (wrk's Lua script substitutes `WRK_ID`; autocannon substitutes `[<id>]`). Unique event ids
matter: the queue deduplicates by (source, event_name, event_id), so a repeated id is not stored.
"""

from __future__ import annotations

import json
from typing import Any, Final

WRK_ID: Final = "@@ID@@"
"""The placeholder bench/ingest/body.lua replaces with a unique id per request."""
AUTOCANNON_ID: Final = "[<id>]"
"""The placeholder autocannon's -I (--idReplacement) replaces with a unique id per request."""


def purchase(unique: str) -> dict[str, Any]:
    """A website purchase from a backend, unique by `unique` (event id, order id, email, fbclid)."""
    return {
        "event_name": "purchase",
        "event_id": f"bench-{unique}",
        "action_source": "website",
        "page": {
            "url": f"https://shop.example.com/checkout/thanks?order={unique}&fbclid=IwAR2bench{unique}",
            "referrer": "https://shop.example.com/cart",
        },
        "user": {
            "email": f" Jane.Doe+{unique}@Example.com ",
            "phone": "+1 (650) 555-1212",
            "first_name": "Jane",
            "last_name": "Doe-Smith",
            "city": "Menlo Park",
            "state": "CA",
            "zip": "94025",
            "country": "US",
            "external_id": f"customer-{unique}",
            "ip": "203.0.113.50",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15",
        },
        "ids": {"fbp": "fb.1.1767225600000.1234567890", "ttp": "bench-ttp-cookie"},
        "consent": {"ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "granted"},
        "properties": {
            "value": 142.5,
            "currency": "usd",
            "order_id": f"order-{unique}",
            "contents": [
                {"id": "sku-1", "quantity": 2, "price": 50.0, "name": "Mug"},
                {"id": "sku-2", "quantity": 1, "price": 42.5, "name": "Tea"},
            ],
            "num_items": 3,
        },
    }


def batch(unique: str, size: int) -> dict[str, Any]:
    """`{"events": [...]}` with `size` purchases, each unique by `unique` and its index."""
    return {"events": [purchase(f"{unique}-{index}") for index in range(size)]}


def template(size: int, placeholder: str) -> str:
    """The JSON body of one event (size 1) or a batch of `size`, with `placeholder` as the unique part."""
    document = purchase(placeholder) if size == 1 else batch(placeholder, size)
    return json.dumps(document, separators=(",", ":"))
