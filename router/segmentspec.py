"""Segment spec: one Segment call (track, page, identify ...) -> one raw canonical event, or why not."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from router.aliases import canonical_name, fold_key
from router.errors import Problem
from router.normalize import MS_THRESHOLD, SCHEMA
from router.validation import problems, validator_for

STORED: Final = frozenset({"track", "page"})
"""Calls that become canonical events."""
SKIPPED: Final = frozenset({"identify", "screen", "group", "alias"})
"""Calls that are answered as taken but store nothing."""

SPEC_NAMES: Final[dict[str, str]] = {
    fold_key("Trial Started"): "start_trial",
    fold_key("Wishlist Product Added to Cart"): "add_to_cart",
}
"""Segment spec events router/aliases.py does not fold (it holds the e-commerce ones)."""

CAMPAIGN: Final[dict[str, str]] = {
    "name": "utm_campaign",
    "source": "utm_source",
    "medium": "utm_medium",
    "term": "utm_term",
    "content": "utm_content",
}
"""`context.campaign` key -> custom property (analytics.js fills it from the landing page's utm_*)."""

ID_KEYS: Final = (
    "fbp",
    "fbc",
    "fbclid",
    "gclid",
    "gbraid",
    "wbraid",
    "ttclid",
    "ttp",
    "sccid",
    "scid",
    "rdt_cid",
    "rdt_uuid",
    "epik",
    "li_fat_id",
)
"""Canonical `ids` keys, read from `context.<key>` (RudderStack's `context.fbc`) and `context.clientIds`."""

CONSENT_KEYS: Final = ("ad_storage", "ad_user_data", "ad_personalization", "analytics_storage", "ldu")

CONSUMED: Final = frozenset(
    fold_key(key)
    for key in (
        "revenue",
        "total",
        "value",
        "currency",
        "order_id",
        "products",
        "product_id",
        "sku",
        "price",
        "quantity",
        "name",
        "category",
        "brand",
        "query",
        "event_id",
        "eventid",
        "url",
        "referrer",
        "title",
        "path",
        "search",
        "contents",
        "content_type",
        "search_string",
        "num_items",
        "status",
    )
)
"""Property keys the mapping reads, and canonical standard keys with a stricter type than Segment's:
none of them is passed on again as a custom property."""

PERSONAL: Final = frozenset(
    fold_key(key)
    for key in (
        "first_name",
        "last_name",
        "full_name",
        "username",
        "user_id",
        "gender",
        "birthday",
        "date_of_birth",
        "dob",
        "age",
        "street",
        "city",
        "state",
        "zip",
        "zip_code",
        "postal_code",
        "country",
        "ip",
        "user_agent",
        "password",
        "ssn",
        "external_id",
    )
)
"""Folded custom property keys never passed on: platforms receive custom properties unhashed."""
PERSONAL_PARTS: Final = ("email", "phone", "address", "mobile")

PROPERTY_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
EMAIL_LIKE: Final = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
PRINTABLE_ID: Final = re.compile(r"^[\x21-\x7e]{1,200}$")
MAX_PROPERTIES: Final = 100
MAX_CONTENTS: Final = 200
MAX_STRING: Final = 1000
SOFT_SECTIONS: Final = ("user", "page", "ids", "consent")
"""Canonical sections filled from context and traits: a refused value there is dropped, not fatal."""


@dataclass(frozen=True, slots=True)
class Mapped:
    """One message's outcome: `event` to store, or `skipped` (why nothing is stored), or `errors`."""

    event: dict[str, Any] | None = None
    skipped: str | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class Malformed(Exception):
    """The request body is not a Segment call or batch; the message says what to send instead."""


def messages(document: Any, kind: str) -> list[Any]:
    """The messages of a request body: `{"batch": [...]}` for batch, else the one call itself."""
    if not isinstance(document, dict):
        raise Malformed('the body must be a JSON object: one Segment call, or {"batch": [...]}')
    if kind != "batch":
        return [{**document, "type": kind}]
    batch = document.get("batch")
    if not isinstance(batch, list):
        raise Malformed('a batch must be {"batch": [<message>, ...]}')
    if not batch:
        raise Malformed("the batch has no messages")
    shared = document.get("context")
    if not isinstance(shared, dict):
        return batch
    return [_with_context(m, shared) for m in batch]


def _with_context(message: Any, shared: Mapping[str, Any]) -> Any:
    """A batch-level `context` applies to every message; the message's own keys win."""
    if not isinstance(message, dict):
        return message
    own = message.get("context")
    return {**message, "context": {**shared, **(own if isinstance(own, dict) else {})}}


def to_canonical(message: Any, received_ms: int, *, trust_ip: bool, sent_at: Any = None) -> Mapped:
    """Map one message; `trust_ip` says whether `context.ip` may be used (server sources only)."""
    if not isinstance(message, dict):
        return Mapped(errors=[Problem("", "each message must be a JSON object")])
    kind = message.get("type")
    if kind in SKIPPED:
        return Mapped(skipped=f"{kind} calls store no event")
    if kind not in STORED:
        allowed = ", ".join(sorted(STORED | SKIPPED))
        return Mapped(errors=[Problem("/type", f"must be one of {allowed}")])
    name = _event_name(message)
    if name is None:
        return Mapped(errors=[Problem("/event", "a track call needs an event name")])
    event = _event(message, name, received_ms, trust_ip, sent_at)
    return _pruned(event)


def _event_name(message: Mapping[str, Any]) -> str | None:
    if message["type"] == "page":
        return "page_view"
    name = message.get("event")
    if not isinstance(name, str) or not name.strip():
        return None
    return SPEC_NAMES.get(fold_key(name)) or canonical_name(name)


def _event(
    message: Mapping[str, Any], name: str, received_ms: int, trust_ip: bool, sent_at: Any
) -> dict[str, Any]:
    context = _object(message.get("context"))
    properties = _object(message.get("properties"))
    event: dict[str, Any] = {"event_name": name}
    optional = {
        "event_id": _event_id(message, context, properties),
        "event_time": event_time(message, received_ms, sent_at),
        "action_source": "app" if _is_app(context) else None,
        "page": _page(message["type"], context, properties),
        "user": _user(message, context, properties, trust_ip),
        "ids": _ids(context),
        "consent": _consent(context),
        "properties": canonical_properties(properties, context),
    }
    event.update({k: v for k, v in optional.items() if v not in (None, {})})
    return event


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _event_id(message: Mapping[str, Any], context: Mapping[str, Any], props: Mapping[str, Any]) -> Any:
    """An explicit id (kept as sent, so a bad one is reported), else the messageId made safe."""
    for value in (props.get("event_id"), props.get("eventId"), context.get("event_id")):
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return message_event_id(message.get("messageId"))


def message_event_id(message_id: Any) -> str | None:
    """`messageId` as the event id; one the canonical schema refuses becomes a stable digest of it."""
    if not isinstance(message_id, str | int) or isinstance(message_id, bool) or not str(message_id):
        return None
    text = str(message_id)
    if PRINTABLE_ID.match(text):
        return text
    return "seg-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def event_time(message: Mapping[str, Any], received_ms: int, sent_at: Any = None) -> int | None:
    """Epoch ms of the call: its timestamp shifted by how far the sender's clock is off (`sentAt`, the
    message's own or else the batch's)."""
    happened = epoch_ms(message.get("timestamp"))
    if happened is None:
        happened = epoch_ms(message.get("originalTimestamp"))
    sent = epoch_ms(message.get("sentAt") or sent_at)
    if happened is None or sent is None:
        return happened
    return received_ms - (sent - happened)


def epoch_ms(value: Any) -> int | None:
    """ISO 8601 (UTC when no offset is given), or epoch seconds or ms -> epoch ms; None otherwise."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e15:
        return int(value * 1000) if value < MS_THRESHOLD else int(value)
    return None


def _is_app(context: Mapping[str, Any]) -> bool:
    """Mobile SDKs send `context.app` and `channel: mobile`; their events happened in an app."""
    return context.get("channel") == "mobile" or isinstance(context.get("app"), dict)


def _page(kind: str, context: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """A page call's own properties first, then `context.page` (analytics.js fills it on every call)."""
    sources = [properties, _object(context.get("page"))] if kind == "page" else [_object(context.get("page"))]
    page: dict[str, Any] = {}
    for key in ("url", "referrer", "title"):
        value = next((s[key] for s in sources if isinstance(s.get(key), str) and s[key]), None)
        if value is not None:
            page[key] = value
    return page


def _user(
    message: Mapping[str, Any], context: Mapping[str, Any], properties: Mapping[str, Any], trust_ip: bool
) -> dict[str, Any]:
    traits = _folded(_object(context.get("traits")))
    fallback = _folded(properties)
    address = _folded(_object(traits.get("address")))
    user = {
        "email": traits.get("email") or fallback.get("email"),
        "phone": traits.get("phone") or fallback.get("phone"),
        "first_name": traits.get("firstname"),
        "last_name": traits.get("lastname"),
        "gender": traits.get("gender"),
        "date_of_birth": _date(traits.get("birthday")),
        "city": address.get("city"),
        "state": address.get("state"),
        "zip": address.get("postalcode") or address.get("zip"),
        "country": address.get("country"),
        "external_id": _text(message.get("userId")),
        "ip": context.get("ip") if trust_ip else None,
        "user_agent": context.get("userAgent"),
        "language": context.get("locale"),
    }
    return {k: v.strip() for k, v in user.items() if isinstance(v, str) and v.strip()}


def _folded(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keys compared without case, `_` or `-`: traits come as `firstName` or `first_name`."""
    return {fold_key(k): v for k, v in values.items()}


def _date(value: Any) -> str | None:
    """Segment's `birthday` is an ISO date or date-time; the canonical date is its first 10 characters."""
    return value[:10] if isinstance(value, str) and len(value) >= 10 else None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _ids(context: Mapping[str, Any]) -> dict[str, str]:
    found = {**_object(context.get("clientIds")), **context}
    return {k: found[k] for k in ID_KEYS if isinstance(found.get(k), str) and found[k]}


def _consent(context: Mapping[str, Any]) -> dict[str, Any]:
    """`context.consent` keys that already use the canonical names and values."""
    consent = _object(context.get("consent"))
    return {k: consent[k] for k in CONSENT_KEYS if k in consent}


def canonical_properties(properties: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Value, currency, order id, contents and search string, then the usable custom properties."""
    folded = _folded(properties)
    contents = _contents(properties)
    standard = {
        "value": _value(folded, contents),
        "order_id": _text(folded.get("orderid")),
        "contents": contents or None,
        "content_type": "product" if contents else None,
        "search_string": folded.get("query") if isinstance(folded.get("query"), str) else None,
    }
    mapped = {k: v for k, v in standard.items() if v is not None}
    currency = folded.get("currency")
    if isinstance(currency, str) and currency.strip():
        mapped["currency"] = currency.strip()
    elif "value" in mapped:
        mapped["currency"] = "USD"  # the Segment spec: revenue without a currency is in US dollars
    return {**_custom(properties, _campaign(context), MAX_PROPERTIES - len(mapped)), **mapped}


def _value(folded: Mapping[str, Any], contents: list[dict[str, Any]]) -> float | None:
    """`revenue`, else `total`, else `value`; else the sum of the products' price x quantity."""
    for key in ("revenue", "total", "value"):
        amount = _number(folded.get(key))
        if amount is not None:
            return amount
    priced = [c["price"] * c.get("quantity", 1) for c in contents if "price" in c]
    return round(sum(priced), 6) if priced else None


def _contents(properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`products[]`, or the one product a single-product event (Product Viewed, Added ...) describes."""
    products = properties.get("products")
    if isinstance(products, list):
        items = [_content(p) for p in products if isinstance(p, dict)]
    elif any(k in properties for k in ("product_id", "productId", "sku")):
        items = [_content(properties, ids=("product_id", "productId", "sku"))]
    else:
        items = []
    return [c for c in items if c is not None][:MAX_CONTENTS]


def _content(
    product: Mapping[str, Any], ids: tuple[str, ...] = ("product_id", "productId", "sku", "id")
) -> dict[str, Any] | None:
    product_id = next((_text(product.get(k)) for k in ids if _text(product.get(k))), None)
    if not product_id:
        return None
    item: dict[str, Any] = {"id": product_id[:200]}
    quantity, price = _number(product.get("quantity")), _number(product.get("price"))
    if quantity is not None and quantity == int(quantity) and 0 <= quantity <= 1_000_000:
        item["quantity"] = int(quantity)
    if price is not None and price >= 0:
        item["price"] = price
    for key, limit in (("name", 500), ("category", 500), ("brand", 200)):
        if isinstance(product.get(key), str) and product[key]:
            item[key] = product[key][:limit]
    return item


def _number(value: Any) -> float | None:
    """A JSON number, or a numeric string such as "29.99" (server SDKs often send strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _campaign(context: Mapping[str, Any]) -> dict[str, Any]:
    campaign = _object(context.get("campaign"))
    return {utm: campaign[key] for key, utm in CAMPAIGN.items() if isinstance(campaign.get(key), str)}


def _custom(properties: Mapping[str, Any], campaign: Mapping[str, Any], room: int) -> dict[str, Any]:
    """Custom properties the canonical schema takes and that carry no personal data; at most `room`."""
    kept: dict[str, Any] = {}
    for key, value in [*properties.items(), *campaign.items()]:
        if len(kept) >= room:
            break
        if key not in kept and _usable_custom(key, value):
            kept[key] = value
    return kept


def _usable_custom(key: str, value: Any) -> bool:
    folded = fold_key(key)
    if not PROPERTY_NAME.match(key) or folded in CONSUMED or folded in PERSONAL:
        return False
    if any(part in folded for part in PERSONAL_PARTS) or key in ID_KEYS:
        return False
    values = value if isinstance(value, list) and len(value) <= 100 else [value]
    return value is not None and all(_scalar(v) for v in values)


def _scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_STRING and not EMAIL_LIKE.search(value)
    return value is None or isinstance(value, bool | int | float)


def _pruned(event: dict[str, Any]) -> Mapped:
    """Drop context- and trait-derived values the canonical schema refuses; keep the rest for ingest."""
    refused = [p for p in problems(validator_for(SCHEMA), event) if _soft(p.path)]
    for problem in refused:
        _, section, key = problem.path.split("/")[:3]
        event[section].pop(key, None)
    for section in SOFT_SECTIONS:
        if event.get(section) == {}:
            del event[section]
    return Mapped(event=event, warnings=[_dropped(p) for p in _unique(refused)])


def _soft(path: str) -> bool:
    parts = path.split("/")
    return len(parts) >= 3 and parts[1] in SOFT_SECTIONS


def _unique(found: Iterable[Problem]) -> list[Problem]:
    return list({"/".join(p.path.split("/")[:3]): p for p in found}.values())


def _dropped(problem: Problem) -> Problem:
    path = "/".join(problem.path.split("/")[:3])
    return Problem(path, f"dropped: {problem.message}")
