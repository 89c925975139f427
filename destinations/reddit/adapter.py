"""Reddit Conversions API v3: one canonical event -> one conversion event; up to 1,000 per request.

Reddit has no partial success: one invalid event rejects the whole request with HTTP 400 ("There were N
invalid conversion events. None were processed."). So `map` refuses locally what Reddit is known to
reject (older than 7 days, a custom name over 64 characters, no match key at all), leaves out malformed
optional fields (a non-RFC-4122 uuid, a URL that is not http(s)), and `classify` marks any remaining
whole-batch 400 `isolate=True` so the dispatcher splits the batch and the valid events still go out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mypy_extensions import mypyc_attr

from destinations import amounts, ldu, reasons, rows, timing
from destinations.base import (
    BaseConfig,
    BatchDecision,
    Destination,
    Event,
    EventError,
    HttpRequest,
    HttpResponse,
    Payload,
    base_fields,
    default_classify,
    secret_of,
)
from destinations.reddit import fields
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

API_VERSION: Final = "v3"
# v3 is current; v2.0 is deprecated but not sunset, and the same event must never go to both (Reddit's
# migration guide https://ads-api.reddit.com/docs/v3/capi-migration, captured verbatim in
# segmentio/action-destinations reddit-conversions-api/V3-API-REFERENCE.md).
ADS_API_URL: Final = "https://ads-api.reddit.com"
ENDPOINT: Final = "/api/v3/pixels/{pixel_id}/conversion_events"
# Same capture, section 1: POST .../api/v3/pixels/{pixel_id}/conversion_events, `Authorization: Bearer`.
MAX_BATCH_SIZE: Final = 1000
# Reddit docs (same capture, "Limits"): 1,000 events per request, more -> 400 "Bad Request". Rate limits:
# 1,000 requests/s and 10,000 events/s per those docs (RudderStack's README says otherwise; 429 is retried).
MAX_EVENT_AGE: Final = 7 * 24 * 3600
# "Events must be sent within 7 days after they occur" (same capture); v2 answers "event_at timestamp must
# be less than 168h0m0s old" (rudder-transformer test/integrations/destinations/reddit/network.ts), and
# Segment's v3 constants.ts has EVENT_AT_MAX_AGE_MS = 168 h. Unchanged in v3.
TOO_OLD: Final = "event is older than 7 days; Reddit would reject the whole batch (168h limit)"
USER_AGENT: Final = "adrouter/0.1 (server-side conversions; reddit-capi-v3)"
# Reddit throttles default HTTP-client user agents: 429 "Your user agent was automatically ratelimited."
# (V3-API-REFERENCE.md section 6), so every request names itself.
ISOLATE_STATUSES: Final = frozenset({400, 413})
"""Whole-batch refusals an event in the batch can cause (invalid event, more than 1,000 events, too
large): the dispatcher splits the batch and resends the halves."""
PROCESSED: Final = re.compile(r"Successfully processed (\d+) conversion events")


@mypyc_attr(native_class=False)  # as BaseConfig: a Python class even when compiled
@dataclass(frozen=True, slots=True, kw_only=True)
class RedditConfig(BaseConfig):
    """A `type: reddit` destination block."""

    pixel_id: str
    access_token: Secret
    test_id: str | None = None
    limited_data_use: ldu.Policy = "from_consent"
    ldu_country: str | None = None
    ldu_region: str | None = None
    hash_ip_address: bool = True


class RedditDestination(Destination[RedditConfig]):
    """Reddit Conversions API v3, JSON body, conversion access token as a Bearer header."""

    type = "reddit"
    api_version = API_VERSION
    max_batch_size = MAX_BATCH_SIZE
    max_event_age = float(MAX_EVENT_AGE)
    identity_variants = fields.IDENTITY_VARIANTS

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> RedditConfig:
        """The typed config from a validated YAML block."""
        return RedditConfig(
            **base_fields(block),
            pixel_id=str(block["pixel_id"]),
            access_token=secret_of(block, "access_token"),
            test_id=block.get("test_id") or None,
            limited_data_use=block.get("limited_data_use", "from_consent"),
            ldu_country=_upper(block.get("ldu_country")),
            ldu_region=_upper(block.get("ldu_region")),
            hash_ip_address=bool(block.get("hash_ip_address", True)),
        )

    # -- map ---------------------------------------------------------------------------------------

    def map(self, event: Event, now: float) -> list[Payload]:
        """One Reddit conversion event; SkipEvent when filtered out, EventError when Reddit would refuse."""
        kind = self._event_type(event)
        source = fields.ACTION_SOURCES.get(str(event.get("action_source")), "OTHER")
        body: dict[str, Any] = {
            "event_at": timing.milliseconds(event, now, MAX_EVENT_AGE, TOO_OLD),  # ms: seconds land in 1970
            "action_source": source,
            **_event_fields(event, source),
            "type": kind.body(),
            "metadata": _metadata(event, kind.tracking_type),
            **rows.compact({"user": self._user(event, source)}),
        }
        _check(body)
        return [Payload(body, batch_key=self._batch_key(event))]

    def _event_type(self, event: Event) -> fields.EventType:
        canonical = self.canonical_name(event)
        override = self.config.event_map.get(canonical)
        if override:
            return fields.event_type_named(override, canonical)
        return fields.EVENT_TYPES.get(canonical) or fields.custom(canonical)

    def _user(self, event: Event, source: str) -> dict[str, Any]:
        user = rows.to_dict(event, fields.USER)
        ip = str(user.get("ip_address", ""))
        if ip and self.config.hash_ip_address and not rows.SHA256_HEX.fullmatch(ip):
            user["ip_address"] = hashlib.sha256(ip.encode()).hexdigest()
        if source == fields.OFFLINE:
            user = {key: value for key, value in user.items() if key not in fields.OFFLINE_LEFT_OUT}
        return user | self._data_processing_options(event)

    def _data_processing_options(self, event: Event) -> dict[str, Any]:
        """LDU on: `{"modes": ["LDU"], "country", "region"}` (country from config, else the event's);
        LDU off: the key is left out."""
        if not ldu.applies(self.config.limited_data_use, event):
            return {}
        country = self.config.ldu_country or _upper(rows.lookup(event, "user.country"))
        options = rows.compact({"modes": ["LDU"], "country": country, "region": self.config.ldu_region})
        return {"data_processing_options": options}

    def _batch_key(self, event: Event) -> str:
        """Event Testing shows no batches, so in test mode every event travels alone."""
        return f"test:{event['event_id']}" if self.config.test_id else ""

    # -- build_request -----------------------------------------------------------------------------

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST {base}/api/v3/pixels/{pixel}/conversion_events; the token travels only in a header."""
        token = self.config.access_token.reveal()
        events = [payload.body for payload in batch]
        return HttpRequest(
            method="POST",
            url=self.api_base(ADS_API_URL) + ENDPOINT.format(pixel_id=self.config.pixel_id),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            json={"data": rows.compact({"events": events, "test_id": self.config.test_id})},
            secrets=(token,) if token else (),
        )

    # -- classify ----------------------------------------------------------------------------------

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """All or nothing: 2xx OK (every event acknowledged), 400 drops and isolates, the rest by status."""
        data = response.json()
        error = _error_of(data)
        status = _effective_status(response.status, error)
        if 200 <= status < 300:
            return _acknowledged(data, len(batch))
        reason = self._reason(status, error)
        if status in ISOLATE_STATUSES:
            return Drop(reason, isolate=True)
        decided = default_classify(HttpResponse(status, response.headers))
        if isinstance(decided, Retry):
            return Retry(reason, after=decided.after)
        return Drop(reason)

    def _reason(self, status: int, error: Mapping[str, Any] | None) -> str:
        """`Reddit HTTP <status>: <message>; <first field>: <its message>`, short, token scrubbed."""
        label = f"Reddit HTTP {status}"
        if status == 401:
            label += " (access token missing or invalid)"
        text = _error_text(error) if error is not None else ""
        return reasons.reason(label, text, self.config.access_token.reveal())


# -- pure helpers ----------------------------------------------------------------------------------


def _upper(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def _event_fields(event: Event, source: str) -> dict[str, Any]:
    """event_source_url for WEBSITE events only, click_id except for offline events."""
    found = rows.to_dict(event, fields.EVENT)
    if source != fields.WEBSITE:
        found.pop("event_source_url", None)
    if source == fields.OFFLINE:
        found.pop("click_id", None)
    return found


def _metadata(event: Event, tracking_type: str) -> dict[str, Any]:
    """conversion_id (the dedup key) always; value and currency as a pair and item_count only on the
    types that accept them; products from contents."""
    properties: Mapping[str, Any] = event.get("properties") or {}
    products = _products(properties.get("contents"))
    metadata: dict[str, Any] = {"conversion_id": str(event["event_id"])}
    value, currency = properties.get("value"), properties.get("currency")
    if (
        tracking_type in fields.VALUE_TYPES
        and amounts.is_number(value)
        and isinstance(currency, str)
        and currency
    ):
        metadata |= {"currency": currency.upper(), "value": value}
    count = _item_count(properties.get("num_items"), products)
    if tracking_type in fields.ITEM_COUNT_TYPES and count is not None:
        metadata["item_count"] = count
    return metadata | rows.compact({"products": products})


def _products(items: Any) -> list[dict[str, Any]]:
    """`products[]` from canonical contents; items without an id are left out (Reddit needs one)."""
    return [item for item in rows.each(items, fields.PRODUCT) if "id" in item]


def _item_count(num_items: Any, products: Sequence[Mapping[str, Any]]) -> int | None:
    """properties.num_items, else the products' quantities summed (1 for an item without one)."""
    if isinstance(num_items, int) and not isinstance(num_items, bool):
        return num_items
    if not products:
        return None
    return sum(int(item.get("quantity", 1)) for item in products)


def _check(body: Mapping[str, Any]) -> None:
    """Refuse what Reddit would reject for the whole batch, or could never attribute."""
    name = body["type"].get("custom_event_name")
    if name is not None and len(name) > fields.CUSTOM_NAME_LIMIT:
        raise EventError(f"custom event name is longer than {fields.CUSTOM_NAME_LIMIT} characters")
    user = body.get("user", {})
    if "click_id" not in body and not fields.MATCH_KEYS & user.keys():
        raise EventError("no match key: no rdt_cid click id, hashed email/phone/external_id, IP, UA or uuid")


def _error_of(data: Any) -> Mapping[str, Any] | None:
    """The error object of an answer: v3 `{"error": {...}}`, or a v2-style body with `invalid_events`."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        return error
    if "invalid_events" in data or data.get("success") is False:
        return data
    return None


def _effective_status(status: int, error: Mapping[str, Any] | None) -> int:
    """An error object inside a 2xx wins: its `code` when it is an HTTP status, else 400."""
    if not 200 <= status < 300 or error is None:
        return status
    code = error.get("code")
    return code if isinstance(code, int) and 400 <= code < 600 else 400


def _error_text(error: Mapping[str, Any]) -> str:
    """The message, then the first field-scoped detail (v3 `fields`, v2 `invalid_events`)."""
    message = error.get("message") or error.get("explanation") or error.get("reason") or ""
    detail = _first_detail(error)
    return "; ".join(str(part) for part in (message, detail) if part)


def _first_detail(error: Mapping[str, Any]) -> str:
    """`<field>: <message>` of the first v3 `fields` entry, or the first v2 `invalid_events` message."""
    first = _first_item(error.get("fields"))
    if first:
        return f"{first.get('field', '')}: {first.get('message', '')}"
    first = _first_item(error.get("invalid_events"))
    return str(first.get("error_message", "")) if first else ""


def _first_item(items: Any) -> Mapping[str, Any]:
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _acknowledged(data: Any, sent: int) -> Decision:
    """2xx. Reddit has no partial success, so "Successfully processed N" below the batch size is an
    anomaly: retry the batch rather than risk a silent loss (conversion_id dedup absorbs the events that
    did land). A 2xx without the message (a proxy, say) is taken as OK."""
    inner = data.get("data") if isinstance(data, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    match = PROCESSED.search(message) if isinstance(message, str) else None
    if match is not None and int(match.group(1)) < sent:
        return Retry(f"Reddit processed {match.group(1)} of {sent} events")
    return Ok()
