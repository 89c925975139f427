"""Snap Conversions API v3: one canonical event -> one Snap event; batches of up to 2,000 per request.

Web and offline events go to the pixel, app events to the Snap App ID (`batch_key` is the asset id, so
the two never share a request). Snap answers a request with one `{"status": "VALID" | "INVALID",
"reason", "event"}`, so like Meta one invalid event can fail a request: `map` refuses locally what Snap
documents as INVALID (Verify Set Up page: missing required field, PURCHASE without price or currency,
timestamp out of range, insufficient PII), and `classify` asks the dispatcher to split a batch that Snap
still refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import quote

from mypy_extensions import mypyc_attr

from destinations import ldu, reasons, rows, timing
from destinations.base import (
    BaseConfig,
    BatchDecision,
    Destination,
    Event,
    EventError,
    HttpRequest,
    HttpResponse,
    Payload,
    SkipEvent,
    base_fields,
    default_classify,
    secret_of,
)
from destinations.snap import fields
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

API_VERSION: Final = "v3"
# [doc] developers.snap.com/api/marketing-api/Conversions-API ("This is for Version 3"); v2
# (/v2/conversion) was deprecated in early 2025. The v3 path is /v3/{asset_id}/events (SDK openapi.yaml).
SNAP_URL: Final = "https://tr.snapchat.com"
# [doc] Using the API: POST https://tr.snapchat.com/v3/{PIXEL_ID}/events?access_token={TOKEN}; the token
# travels in the query string (openapi `in: query`, required). A Bearer-header variant is only claimed by
# weak third-party notes and is not used.
EVENTS_PATH: Final = "events"
VALIDATE_PATH: Final = "events/validate"
# [doc] Verify Set Up: POST /v3/{asset_id}/events/validate?access_token=... validates test events and
# shows them in Events Manager without recording production conversions.
MAX_BATCH_SIZE: Final = 2000
# Not stated by Snap. RudderStack config.ts MAX_BATCH_SIZE = 2000; Tealium's Snap connector batches at
# most 2,000 events / 2 MB; a third-party v3 JSON schema has maxItems 2000.
MAX_EVENT_AGE: Final = 37 * 86400
# [doc] Introduction: "events can have a date (timestamp) of maximum 37 days back". (RudderStack's v3
# transform applies 7 days; Snap's own figure is used.) Future tolerance is unconfirmed: clamped to now.
TOO_OLD: Final = "event is older than 37 days; Snap only takes events up to 37 days old"
EXTINFO_LENGTH: Final = 16
# [doc] Using the API example: app_data.extinfo is 16 strings, extinfo[0] "a2" (Android) or "i2" (iOS).

LDU: Final = ["LDU"]
# Snap's Parameters page lists an "LMU" group at the event root without values in the text seen; the
# official v3 SDK example (business-sdk-v3-java CapiEventExampleBuilder) sends
# data_processing_options ["LDU"], as Segment does. RudderStack's "['lmu']" string is not used.
AUTH_WORDS: Final = ("token", "unauthori", "authenticat", "permission")


@mypyc_attr(native_class=False)  # as BaseConfig: a Python class even when compiled
@dataclass(frozen=True, slots=True, kw_only=True)
class SnapConfig(BaseConfig):
    """A `type: snap` destination block."""

    pixel_id: str
    access_token: Secret
    test_mode: bool = False
    custom_events: Mapping[str, str] = field(default_factory=dict)
    limited_data_use: ldu.Policy = "from_consent"
    snap_app_id: str | None = None
    app_id: str | None = None


class SnapDestination(Destination[SnapConfig]):
    """Snap (Snapchat) Conversions API v3, JSON body, access token in the query string."""

    type = "snap"
    api_version = API_VERSION
    max_batch_size = MAX_BATCH_SIZE
    max_event_age = float(MAX_EVENT_AGE)
    identity_variants = fields.IDENTITY_VARIANTS

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> SnapConfig:
        """The typed config from a validated YAML block."""
        return SnapConfig(
            **base_fields(block),
            pixel_id=str(block["pixel_id"]),
            access_token=secret_of(block, "access_token"),
            test_mode=bool(block.get("test_mode", False)),
            custom_events=dict(block.get("custom_events", {})),
            limited_data_use=block.get("limited_data_use", "from_consent"),
            snap_app_id=block.get("snap_app_id") or None,
            app_id=block.get("app_id") or None,
        )

    # -- map ---------------------------------------------------------------------------------------

    def map(self, event: Event, now: float) -> list[Payload]:
        """One Snap event; raises SkipEvent when not for Snap, EventError when Snap would refuse it."""
        name = self._event_name(event)
        action_source = fields.ACTION_SOURCES.get(str(event.get("action_source")), "OFFLINE")
        asset = self._asset(action_source)
        body: dict[str, Any] = {
            "event_name": name,
            "event_time": timing.seconds(event, now, MAX_EVENT_AGE, TOO_OLD),
            "action_source": action_source,
            **rows.to_dict(event, fields.EVENT),
            "user_data": rows.to_dict(event, fields.USER_DATA),
            **rows.compact({"custom_data": _custom_data(event)}),
            **rows.compact({"app_data": self._app_data(event, action_source)}),
            **self._data_processing_options(event),
        }
        _check(body)
        return [Payload(body, batch_key=asset)]

    def _event_name(self, event: Event) -> str:
        """event_map, then custom_events, then the standard table; a custom event with no slot is skipped."""
        canonical = self.canonical_name(event)
        configured = self.config.event_map.get(canonical) or self.config.custom_events.get(canonical)
        name = configured or fields.EVENT_NAMES.get(canonical)
        if name is None:
            raise SkipEvent(
                f"event {canonical!r} has no Snap event: Snap takes no free custom names, "
                "map it to CUSTOM_EVENT_1..5 with `custom_events`"
            )
        return name

    def _asset(self, action_source: str) -> str:
        """The pixel for web and offline events, the Snap App ID for app events."""
        if action_source != "MOBILE_APP":
            return self.config.pixel_id
        if self.config.snap_app_id is None:
            raise SkipEvent("app events go to a Snap App ID: set `snap_app_id` and `app_id` to send them")
        return self.config.snap_app_id

    def _app_data(self, event: Event, action_source: str) -> dict[str, Any]:
        """`app_data` for app events: app id, ATT flag from consent.ad_storage, and the extinfo version."""
        app_id = self.config.app_id
        if action_source != "MOBILE_APP" or app_id is None:
            return {}
        consent: Mapping[str, Any] = event.get("consent") or {}
        tracking = 1 if consent.get("ad_storage") == "granted" else 0
        return {"app_id": app_id, "advertiser_tracking_enabled": tracking, "extinfo": _extinfo(app_id)}

    def _data_processing_options(self, event: Event) -> dict[str, Any]:
        """LDU on: `data_processing_options: ["LDU"]`; off: the key is left out."""
        if not ldu.applies(self.config.limited_data_use, event):
            return {}
        return {"data_processing_options": list(LDU)}

    # -- build_request -----------------------------------------------------------------------------

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST {base}/v3/{asset}/events[/validate]?access_token=...; both token forms listed as secrets."""
        token, quoted = self._secrets()
        asset = (batch[0].batch_key if batch else "") or self.config.pixel_id
        path = VALIDATE_PATH if self.config.test_mode else EVENTS_PATH
        return HttpRequest(
            method="POST",
            url=f"{self.api_base(SNAP_URL)}/{API_VERSION}/{asset}/{path}?access_token={quoted}",
            headers={"Content-Type": "application/json"},
            json={"data": [payload.body for payload in batch]},
            secrets=tuple(dict.fromkeys(s for s in (token, quoted) if s)),
        )

    def _secrets(self) -> tuple[str, str]:
        """The access token as configured and as it appears URL-encoded in the query string."""
        token = self.config.access_token.reveal()
        return token, quote(token, safe="")

    # -- classify ----------------------------------------------------------------------------------

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """VALID is OK; INVALID drops (splitting the batch); 429 and 5xx retry; validate logs per event."""
        body = _body(response)
        logs = _invalid_logs(body, len(batch))
        if logs:
            return [Drop(self._reason(logs[i], response)) if i in logs else Ok() for i in range(len(batch))]
        status, invalid = response.status, body.get("status") == "INVALID"
        if 200 <= status < 300 and not invalid:
            return Ok()
        if status in (401, 403) or (invalid and _is_auth(body) and not _transient(response)):
            return Drop(f"access token rejected: {self._reason(body, response)}")
        if invalid and (status == 400 or status < 300):
            return Drop(self._reason(body, response), isolate=True)
        return _by_status(response, self._reason(body, response))

    def _reason(self, body: Mapping[str, Any], response: HttpResponse) -> str:
        """`Snap <status> (HTTP n): <reason> [event i]`, short, with the access token scrubbed out."""
        label = f"Snap {body.get('status') or 'error'} (HTTP {response.status})"
        text = reasons.scrub("; ".join(_messages(body)), *self._secrets())
        if isinstance(body.get("event"), int):
            text = f"{text} [event {body['event']}]"
        return reasons.reason(label, text)


# -- pure helpers ----------------------------------------------------------------------------------


def _custom_data(event: Event) -> dict[str, Any]:
    """The standard rows, contents with content_ids, and other scalar properties as `custom_fields`."""
    properties: Mapping[str, Any] = event.get("properties") or {}
    custom = rows.to_dict(event, fields.CUSTOM_DATA)
    contents = rows.each(properties.get("contents"), fields.CONTENT)
    if contents:
        custom["contents"] = contents
        custom["content_ids"] = [item["id"] for item in contents if "id" in item]
    custom["custom_fields"] = _custom_fields(properties)
    return rows.compact(custom)


def _custom_fields(properties: Mapping[str, Any]) -> dict[str, str]:
    """Free properties as Snap's `custom_fields` (an object of strings); non-scalar values left out."""
    free = rows.unmapped(properties, fields.STANDARD_PROPERTIES)
    texts = ((key, fields.text(value)) for key, value in free.items())
    return {key: text for key, text in texts if text}


def _extinfo(app_id: str) -> list[str]:
    """16 extinfo strings: "i2" for a numeric App Store id, else "a2" with the Android package name."""
    ios = app_id.isdigit()
    head = ["i2", ""] if ios else ["a2", app_id]
    return head + [""] * (EXTINFO_LENGTH - len(head))


def _check(body: Mapping[str, Any]) -> None:
    """Refuse what Snap documents as INVALID, which would otherwise fail the event's whole request."""
    custom, user = body.get("custom_data", {}), body["user_data"]
    if body["event_name"] == "PURCHASE" and not {"value", "currency"} <= custom.keys():
        raise EventError("PURCHASE needs properties.value and properties.currency (Snap: INVALID)")
    if body["action_source"] == "WEB" and "event_source_url" not in body:
        raise EventError("web events need page.url (Snap requires event_source_url)")
    if not ({"em", "ph"} & user.keys() or {"client_ip_address", "client_user_agent"} <= user.keys()):
        raise EventError("insufficient PII for Snap: needs a hashed email or phone, or IP and user agent")


def _body(response: HttpResponse) -> Mapping[str, Any]:
    data = response.json()
    return cast(Mapping[str, Any], data) if isinstance(data, Mapping) else {}


def _invalid_logs(body: Mapping[str, Any], size: int) -> dict[int, Mapping[str, Any]]:
    """The validate endpoint's `event_logs` entries that are not VALID, by batch index (0-based)."""
    logs = body.get("event_logs")
    entries = [log for log in logs if isinstance(log, Mapping)] if isinstance(logs, list) else []
    return {
        log["event"]: log
        for log in entries
        if isinstance(log.get("event"), int) and 0 <= log["event"] < size and log.get("status") != "VALID"
    }


def _messages(body: Mapping[str, Any]) -> list[str]:
    """`reason` and `errors.error_msgs`, as Snap's EventResponse and EventLogs carry them."""
    errors = body.get("errors")
    listed = errors.get("error_msgs") if isinstance(errors, Mapping) else None
    texts = [body.get("reason"), *(listed if isinstance(listed, list) else [])]
    return [str(text) for text in texts if text]


def _is_auth(body: Mapping[str, Any]) -> bool:
    """An INVALID answer about the token: splitting the batch could not help."""
    text = " ".join(_messages(body)).lower()
    return any(word in text for word in AUTH_WORDS)


def _transient(response: HttpResponse) -> bool:
    """408, 429 and 5xx but 501: the shared rule would retry."""
    return isinstance(default_classify(response), Retry)


def _by_status(response: HttpResponse, reason: str) -> Decision:
    """The shared rule (429, 408 and 5xx retry honouring Retry-After; other 4xx drop), Snap's reason kept."""
    decision = default_classify(response)
    if isinstance(decision, Retry):
        return Retry(reason, after=decision.after)
    return Drop(reason) if isinstance(decision, Drop) else decision
