"""Pinterest Conversions API v5: one canonical event -> one conversion event; up to 1,000 per request.

Pinterest validates a request in two stages. A schema problem (an unknown key, a wrong type, a bad
enum value, no usable identifier) rejects the whole request with HTTP 400, so `map` refuses such events
locally and `classify` asks the dispatcher to isolate the culprit. A semantic problem (a stale
timestamp, say) fails only that event: the answer lists one status per event, in request order, either
in a 200 `ConversionApiResponse` or in the `details` of a 422 `DetailedError`, and `classify` returns
one decision per event: processed events are delivered, failed ones dropped with Pinterest's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard

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
from destinations.pinterest import fields
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

API_VERSION: Final = "v5"
"""The path version (`https://api.pinterest.com/v5`, the `servers` entry of every v5 spec). Bodies follow
spec 5.23.0 (`pinterest/api-description:v5/openapi.yaml`); the generated clients of that spec
(oapicf/pinterest-sdk `ConversionEventsDataInner`, `ConversionEventsUserData`, `...CustomData` docs)
list the same fields and the 15-name `event_name` enum."""
API_URL: Final = "https://api.pinterest.com"
MAX_BATCH_SIZE: Final = 1000
"""`ConversionEvents.data`: `minItems: 1`, `maxItems: 1000` (spec 5.23.0)."""
MAX_EVENT_AGE: Final = 7 * 24 * 3600
"""Unconfirmed in our fact sheet, checked: Amperity's Pinterest docs (amperity/amperity-docs:
amperity_operator/source/events_pinterest.rst) say "Only events that occurred within the previous seven
days may be sent" to `events/create`, and Pinterest fails an old event with "Invalid event_timestamp
parameter. Given timestamp is in the past" (HTTP 422 body quoted in segmentio/action-destinations#2465)."""
TOO_OLD: Final = "event is older than 7 days; Pinterest fails it (timestamp in the past)"
UNPROCESSABLE: Final = 422
"""Pinterest's `DetailedError` answer when some or all events failed; `details` holds the per-event
statuses (422 code 953 in segmentio/action-destinations#2465). Whether a partial failure comes back as
200 or 422 is not settled by the sources, so both are read the same way."""

AppActionSource = Literal["app_android", "app_ios"]


@mypyc_attr(native_class=False)  # as BaseConfig: a Python class even when compiled
@dataclass(frozen=True, slots=True, kw_only=True)
class PinterestConfig(BaseConfig):
    """A `type: pinterest` destination block."""

    ad_account_id: str
    access_token: Secret
    test: bool = False
    limited_data_processing: ldu.Policy = "from_consent"  # Pinterest's name for limited data use
    app_action_source: AppActionSource | None = None


class PinterestDestination(Destination[PinterestConfig]):
    """Pinterest Conversions API (v5), JSON body, conversion token as a Bearer header."""

    type = "pinterest"
    api_version = API_VERSION
    max_batch_size = MAX_BATCH_SIZE
    max_event_age = float(MAX_EVENT_AGE)
    identity_variants = fields.IDENTITY_VARIANTS

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> PinterestConfig:
        """The typed config from a validated YAML block."""
        return PinterestConfig(
            **base_fields(block),
            ad_account_id=str(block["ad_account_id"]),
            access_token=secret_of(block, "access_token"),
            test=bool(block.get("test", False)),
            limited_data_processing=block.get("limited_data_processing", "from_consent"),
            app_action_source=block.get("app_action_source"),
        )

    # -- map ---------------------------------------------------------------------------------------

    def map(self, event: Event, now: float) -> list[Payload]:
        """One Pinterest event; SkipEvent when filtered out, EventError when Pinterest would reject it."""
        body: dict[str, Any] = {
            "event_name": self._event_name(event),
            "action_source": self._action_source(event),
            "event_time": timing.seconds(event, now, MAX_EVENT_AGE, TOO_OLD),
            **rows.to_dict(event, fields.EVENT),
            "user_data": _user_data(event),
            **rows.compact(
                {
                    "custom_data": self._custom_data(event),
                    "opt_out": _opt_out(event),
                    "language": _language(event),
                }
            ),
        }
        return [Payload(body)]

    def _event_name(self, event: Event) -> str:
        """The `event_map` override, else the table, else `custom`; SkipEvent when filtered out."""
        canonical = self.canonical_name(event)
        override = self.config.event_map.get(canonical)
        return override or fields.EVENT_NAMES.get(canonical, fields.CUSTOM_EVENT)

    def _action_source(self, event: Event) -> str:
        """web / offline from the table; `app` needs the OS, from the user agent or the config."""
        source = str(event.get("action_source"))
        if source != "app":
            return fields.ACTION_SOURCES.get(source, "offline")
        agent = str(rows.lookup(event, "user.user_agent") or "")
        fallback = self.config.app_action_source
        found = next((name for pattern, name in fields.APP_SOURCES if pattern.search(agent)), fallback)
        if found is None:
            raise EventError("app event: Pinterest needs app_android or app_ios; set `app_action_source`")
        return found

    def _custom_data(self, event: Event) -> dict[str, Any]:
        """The mapped properties, as the types Pinterest's schema wants (value is a decimal string)."""
        properties: Mapping[str, Any] = event.get("properties") or {}
        items = [item for item in properties.get("contents") or [] if isinstance(item, Mapping)]
        custom = _strings(rows.to_dict(event, fields.CUSTOM_DATA))
        contents = [_content(item) for item in items]
        custom |= rows.compact(
            {
                "value": amounts.decimal(properties.get("value")),
                "contents": contents,
                "content_ids": [item["id"] for item in contents if "id" in item],
                "num_items": _num_items(properties, items),
            }
        )
        if ldu.applies(self.config.limited_data_processing, event):
            custom["opt_out_type"] = fields.LIMITED_DATA_PROCESSING
        return custom

    # -- build_request -----------------------------------------------------------------------------

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST {api}/v5/ad_accounts/{id}/events[?test=true] with `Authorization: Bearer <token>`."""
        token = self.config.access_token.reveal()
        base = self.api_base(API_URL)
        query = "?test=true" if self.config.test else ""
        return HttpRequest(
            method="POST",
            url=f"{base}/{API_VERSION}/ad_accounts/{self.config.ad_account_id}/events{query}",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            json={"data": [payload.body for payload in batch]},
            secrets=(token,) if token else (),
        )

    # -- classify ----------------------------------------------------------------------------------

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """Per-event statuses decide when present; else the HTTP status, with Pinterest's code and message."""
        data = response.json()
        statuses = _statuses(data, response.status, len(batch))
        if statuses is not None:
            return [self._event_decision(item) for item in statuses]
        if 200 <= response.status < 300:
            return _acknowledged(data, len(batch))
        reason = self._reason(data, response.status)
        if response.status in (400, UNPROCESSABLE):
            return Drop(reason, isolate=True)
        decided = default_classify(response)
        if isinstance(decided, Retry):
            return Retry(reason, after=decided.after)
        return Drop(reason)

    def _event_decision(self, item: Mapping[str, Any]) -> Decision:
        """processed -> Ok; failed -> Drop with Pinterest's message; anything else is retried."""
        status = item.get("status")
        if status == "processed":
            return Ok()
        token = self.config.access_token.reveal()
        message = reasons.short(str(item.get("error_message") or "no error_message"), token)
        if status == "failed":
            return Drop(f"Pinterest failed the event: {message}")
        return Retry(f"Pinterest answered an unknown event status {str(status)[:40]!r}")

    def _reason(self, data: Any, status: int) -> str:
        """`HTTP <status>, Pinterest <code>: <message>`, short, with the token scrubbed out."""
        error = data if isinstance(data, Mapping) else {}
        code, message = error.get("code"), error.get("message")
        label = f"HTTP {status}, Pinterest {code}" if code is not None else f"HTTP {status}"
        if status == 401:
            label = f"access token rejected ({label})"
        return reasons.reason(label, str(message) if message else "", self.config.access_token.reveal())


# -- pure helpers ----------------------------------------------------------------------------------


def _strings(values: Mapping[str, Any]) -> dict[str, str]:
    """Values as the strings Pinterest's schema wants: numbers formatted, anything else left out."""
    out: dict[str, str] = {}
    for key, value in values.items():
        text = value if isinstance(value, str) else amounts.decimal(value)
        if text:
            out[key] = text
    return out


def _is_int(value: Any) -> TypeGuard[int]:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _user_data(event: Event) -> dict[str, Any]:
    """The user_data rows; refuses what fails the spec's anyOf (em, hashed_maids, or IP + user agent)."""
    user_data = rows.to_dict(event, fields.USER_DATA)
    pair = {"client_ip_address", "client_user_agent"} <= user_data.keys()
    if "em" not in user_data and not pair:
        raise EventError("Pinterest needs a hashed email, or both the IP address and the user agent")
    return user_data


def _content(item: Mapping[str, Any]) -> dict[str, Any]:
    """One `contents[]` item: names as strings, item_price a decimal string, quantity an integer."""
    content: dict[str, Any] = _strings(rows.to_dict(item, fields.CONTENT))
    price, quantity = amounts.decimal(item.get("price")), item.get("quantity")
    if price is not None:
        content["item_price"] = price
    if _is_int(quantity):
        content["quantity"] = quantity
    return content


def _num_items(properties: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> int | None:
    """`properties.num_items`, else the sum of the contents' quantities when any is given."""
    explicit = properties.get("num_items")
    if _is_int(explicit):
        return explicit
    quantities = [item["quantity"] for item in items if _is_int(item.get("quantity"))]
    return sum(quantities) if quantities else None


def _opt_out(event: Event) -> bool | None:
    """True when an ad consent signal is denied, False when they are all granted, None when unknown."""
    consent: Mapping[str, Any] = event.get("consent") or {}
    signals = [consent.get(key) for key in fields.AD_CONSENT if consent.get(key) is not None]
    if not signals:
        return None
    return "denied" in signals


def _language(event: Event) -> str | None:
    """The ISO 639-1 code of `user.language` (`en-US` -> `en`), or None."""
    match = fields.LANGUAGE.fullmatch(str(rows.lookup(event, "user.language") or ""))
    return match.group(1).lower() if match else None


def _statuses(data: Any, status: int, sent: int) -> list[Mapping[str, Any]] | None:
    """The per-event statuses of a 2xx (`events`) or 422 (`details.events`), when there is one per event."""
    if 200 <= status < 300:
        holder = data
    elif status == UNPROCESSABLE and isinstance(data, Mapping):
        holder = data.get("details")
    else:
        return None
    events = holder.get("events") if isinstance(holder, Mapping) else None
    if not isinstance(events, list) or len(events) != sent:
        return None
    if not all(isinstance(item, Mapping) for item in events):
        return None
    return events


def _acknowledged(data: Any, sent: int) -> Decision:
    """2xx without usable per-event statuses: fewer processed than sent is retried (event_id dedup absorbs
    the ones that landed); a 2xx without a count (a proxy, say) is taken as OK."""
    processed = data.get("num_events_processed") if isinstance(data, Mapping) else None
    if _is_int(processed) and processed < sent:
        return Retry(f"Pinterest processed {processed} of {sent} events without per-event statuses")
    return Ok()
