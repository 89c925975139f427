"""Normalize: a raw event from a client -> the stored canonical event, or every reason it is rejected."""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from router.aliases import canonical_name
from router.context import RequestContext
from router.enrich import enrich
from router.errors import Problem
from router.identity import HASHED, PII_FIELDS, hash_identifiers
from router.pageurl import without_emails
from router.validation import event_problems

SCHEMA: Final = Path(__file__).parent / "schema" / "event.schema.json"
MS_THRESHOLD: Final = 100_000_000_000
"""Epoch values above this are milliseconds (it is 1973 in ms and 5138 in seconds)."""
MAX_FUTURE_MS: Final = 10 * 60 * 1000
MAX_AGE_MS: Final = 90 * 86_400 * 1000
"""No platform takes events older than 90 days (Google and LinkedIn's limit)."""
RAW_USER_KEYS: Final = ("ip", "user_agent", "language", "country")


@dataclass(frozen=True, slots=True)
class Normalized:
    """The outcome for one event: `event` when accepted, else `errors`; `warnings` either way."""

    event: dict[str, Any] | None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def normalize(
    raw: Any,
    context: RequestContext,
    variants: frozenset[str],
    default_region: str | None = None,
    *,
    keep_postal_code: bool = False,
) -> Normalized:
    """Validate, fold aliases, resolve time and ids, enrich from the request, and hash identifiers."""
    if not isinstance(raw, dict):
        return Normalized(None, [Problem("", "an event must be a JSON object")])
    errors = event_problems(SCHEMA, raw)
    timestamp_ms, time_errors = _timestamp(raw.get("event_time"), context.received_ms)
    if any(p.path == "/event_time" for p in errors):
        time_errors = []
    if errors or time_errors:
        return Normalized(None, sorted(errors + time_errors, key=lambda p: p.path))
    event = enrich(_canonical(raw, context, timestamp_ms), context)
    if keep_postal_code:
        _keep_postal_code(event["user"], raw.get("user", {}))
    hashed, warnings = hash_identifiers(raw.get("user", {}), variants, default_region)
    event["hashed"] = hashed
    return Normalized(event, [], warnings)


def _canonical(raw: Mapping[str, Any], context: RequestContext, timestamp_ms: int) -> dict[str, Any]:
    name = canonical_name(raw["event_name"])
    properties = json_copy(raw.get("properties", {}))
    if "currency" in properties:
        properties["currency"] = properties["currency"].upper()
    user = raw.get("user", {})
    return {
        "event_name": name,
        "event_id": raw.get("event_id") or _event_id(context.source, name, properties),
        "timestamp_ms": timestamp_ms,
        "received_ms": context.received_ms,
        "source": context.source,
        "action_source": raw.get("action_source") or _action_source(raw, context),
        "page": _page(raw.get("page", {})),
        "user": _raw_user(user),
        "ids": dict(raw.get("ids", {})),
        "consent": dict(raw.get("consent", {})),
        "properties": properties,
    }


def json_copy(value: Any) -> Any:
    """A deep copy of parsed JSON (objects, arrays, scalars), four times cheaper than copy.deepcopy;
    any other container is copied by copy.deepcopy. Depth is bounded by router/jsonlimits.py."""
    if type(value) is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if type(value) is list:
        return [json_copy(item) for item in value]
    if isinstance(value, str | int | float | bool | None):
        return value
    return copy.deepcopy(value)


def _page(page: Mapping[str, Any]) -> dict[str, Any]:
    """The page, with emails in URL query strings removed (sign-up forms often put them there)."""
    return {k: without_emails(v) if k in ("url", "referrer") else v for k, v in page.items()}


def _keep_postal_code(user: dict[str, Any], raw_user: Mapping[str, Any]) -> None:
    """Google's address match wants the postal code raw; kept only when the operator opted in."""
    value = raw_user.get("zip")
    if isinstance(value, str) and value.strip() and not HASHED.match(value.strip()):
        user["postal_code"] = " ".join(value.split()).upper()


def _raw_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """Only what may be stored raw: IP, user agent, language and the ISO-2 country (lower case)."""
    kept = {k: user[k].strip() for k in RAW_USER_KEYS if isinstance(user.get(k), str) and user[k].strip()}
    if "country" in kept:
        kept["country"] = kept["country"].lower()
        if len(kept["country"]) != 2:
            del kept["country"]  # an already-hashed country is only kept hashed
    assert not set(kept) & (set(PII_FIELDS) - {"country"})
    return kept


def _event_id(source: str, name: str, properties: Mapping[str, Any]) -> str:
    """Deterministic from the order id when there is one (so backend retries dedup), else random."""
    order_id = properties.get("order_id")
    if order_id:
        digest = hashlib.sha256(f"{source}\0{name}\0{order_id}".encode()).hexdigest()
        return f"{name}-{digest[:32]}"
    return str(uuid.uuid4())


def _action_source(raw: Mapping[str, Any], context: RequestContext) -> str:
    return "website" if context.browser or raw.get("page", {}).get("url") else "other"


def _epoch_ms(value: Any) -> int | None:
    """RFC 3339, epoch seconds or ms -> epoch ms; None when absent or malformed (the schema says why)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        return int(parsed.timestamp() * 1000) if parsed.tzinfo else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e15:
        return int(value * 1000) if value < MS_THRESHOLD else int(value)
    return None


def _timestamp(value: Any, received_ms: int) -> tuple[int, list[Problem]]:
    """Epoch ms of the event time, with problems only for a well-formed time outside the window."""
    ms = _epoch_ms(value)
    if ms is None:
        return received_ms, []
    if ms > received_ms + MAX_FUTURE_MS:
        return ms, [
            Problem(
                "/event_time", "is more than 10 minutes in the future; send UTC epoch seconds or RFC 3339"
            )
        ]
    if ms < received_ms - MAX_AGE_MS:
        return ms, [Problem("/event_time", "is older than 90 days; no platform accepts it")]
    return ms, []
