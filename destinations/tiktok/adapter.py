"""TikTok Events API 2.0: one canonical event -> one web event; batches of up to 1,000 per request.

TikTok answers HTTP 200 to most failures and puts the outcome in the body's `code` (0 is success), so
`classify` reads the body first and the HTTP status only when there is no TikTok code. One invalid event
(40002) rejects the whole request, so that refusal asks the dispatcher to isolate the bad event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from mypy_extensions import mypyc_attr

from destinations import ldu, reasons, rows, timing
from destinations.base import (
    BaseConfig,
    BatchDecision,
    Destination,
    Event,
    HttpRequest,
    HttpResponse,
    Payload,
    base_fields,
    default_classify,
    secret_of,
)
from destinations.tiktok import fields
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

API_VERSION: Final = "v1.3"
# Events API 2.0 lives under Business API v1.3: rudder-transformer tiktok_ads/config.js `trackEndpointV2`,
# Segment tiktok-conversions/versioning-info.ts (TIKTOK_CONVERSIONS_API_VERSION = 'v1.3', Aug 2026) and the
# TikTok-authored Adobe extension (jae-rhee-tiktok/reactor-extension-tiktok-web-events-api-edgo) all post
# to /open_api/v1.3/event/track/. Keep the trailing slash.
BUSINESS_API_URL: Final = "https://business-api.tiktok.com"
TRACK_PATH: Final = f"/open_api/{API_VERSION}/event/track/"
EVENT_SOURCE: Final = "web"
# [doc] event_source is one of web (pixel code), app (TikTok app id, allow-listed, needs an `app` object),
# offline (offline event set id, standard events only) or crm (CRM event set id, custom events only)
# (TikTok Events API 2.0 reference as transcribed in bububa/tiktok-business model/event/track.go). This
# destination sends web events to one pixel: event_source_id is the pixel code.
MAX_BATCH_SIZE: Final = 1000
# Confirmed: [doc] "at most 1,000 events in one request; with more, the whole request is rejected"
# (same transcription); rudder-transformer tiktok_ads/config.js maxBatchSizeV2 = 1000 citing TikTok doc
# id 1771100779668482.
MAX_EVENT_AGE: Final = 7 * 24 * 3600
# UNCONFIRMED: no TikTok statement of a maximum event age was found (searched TikTok docs, Segment,
# RudderStack, Stape, Tealium). The one figure seen is third-party: Amperity's TikTok connector says
# events "must have occurred within the previous 28 days" and that older ones are not matched to ads
# (attribution windows: click 28 days, view 7 days). Until TikTok documents a limit we use 7 days, the
# view-through window and Meta's limit, and refuse older events locally.
TOO_OLD: Final = "event is older than 7 days, the age limit used for TikTok (see MAX_EVENT_AGE)"

Outcome = Literal["ok", "retry", "drop", "isolate"]

CODES: Final[Mapping[int, Outcome]] = {
    0: "ok",  # [sdk] tiktok_response.py / every integrator: {"code": 0, "message": "OK"}
    20001: "ok",  # [3p] RudderStack networkHandler.js treats it as success (partial success; unconfirmed)
    40100: "retry",  # [3p] "Too many requests. Please retry in some time." -> RudderStack ThrottledError
    40700: "retry",  # [3p] RudderStack maps it to a 500 (retryable); meaning undocumented
    40001: "drop",  # [3p] "No permission to operate pixel code: ..." -> RudderStack AbortedError
    40002: "isolate",  # [3p] invalid parameter, names the event ("Batch.0.properties...") -> aborted
    40105: "drop",  # [3p] access token incorrect or revoked (e.g. sent with "Bearer "): needs a new token
}
"""TikTok body `code` -> outcome. The official return-code appendix (TikTok doc id 1737172488964097) was
not reachable; the rows come from rudder-transformer tiktok_ads/networkHandler.js and its mocks. Codes not
listed follow TikTok's numbering: 4xxxx is a client error (drop), anything else retries."""

LABELS: Final[Mapping[int, str]] = {
    40001: "no permission on the pixel",
    40100: "rate limited",
    40105: "access token incorrect or revoked",
}


@mypyc_attr(native_class=False)  # as BaseConfig: a Python class even when compiled
@dataclass(frozen=True, slots=True, kw_only=True)
class TikTokConfig(BaseConfig):
    """A `type: tiktok` destination block."""

    pixel_code: str
    access_token: Secret
    test_event_code: str | None = None
    limited_data_use: ldu.Policy = "from_consent"


class TikTokDestination(Destination[TikTokConfig]):
    """TikTok Events API 2.0 for web events: JSON body, token in the `Access-Token` header."""

    type = "tiktok"
    api_version = API_VERSION
    max_batch_size = MAX_BATCH_SIZE
    max_event_age = float(MAX_EVENT_AGE)
    identity_variants = fields.IDENTITY_VARIANTS

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> TikTokConfig:
        """The typed config from a validated YAML block."""
        return TikTokConfig(
            **base_fields(block),
            pixel_code=str(block["pixel_code"]),
            access_token=secret_of(block, "access_token"),
            test_event_code=block.get("test_event_code") or None,
            limited_data_use=block.get("limited_data_use", "from_consent"),
        )

    # -- map ---------------------------------------------------------------------------------------

    def map(self, event: Event, now: float) -> list[Payload]:
        """One TikTok event; raises SkipEvent when filtered out, EventError when it is too old."""
        body: dict[str, Any] = {
            "event": self._event_name(event),
            "event_time": timing.seconds(event, now, MAX_EVENT_AGE, TOO_OLD),
            "event_id": str(event["event_id"]),
            **rows.compact(
                {
                    "user": rows.to_dict(event, fields.USER),
                    "properties": _properties(event),
                    "page": rows.to_dict(event, fields.PAGE),
                }
            ),
        }
        if ldu.applies(self.config.limited_data_use, event):
            body["limited_data_use"] = True
        return [Payload(body)]

    def _event_name(self, event: Event) -> str:
        canonical = self.canonical_name(event)
        return self.config.event_map.get(canonical) or fields.EVENT_NAMES.get(canonical, canonical)

    # -- build_request -----------------------------------------------------------------------------

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST {base}/open_api/v1.3/event/track/ with the token as `Access-Token` (no Bearer)."""
        token = self.config.access_token.reveal()
        body = rows.compact(
            {
                "event_source": EVENT_SOURCE,
                "event_source_id": self.config.pixel_code,
                "test_event_code": self.config.test_event_code,
                "data": [payload.body for payload in batch],
            }
        )
        return HttpRequest(
            method="POST",
            url=f"{self.api_base(BUSINESS_API_URL)}{TRACK_PATH}",
            headers={"Access-Token": token, "Content-Type": "application/json"},
            json=body,
            secrets=(token,),
        )

    # -- classify ----------------------------------------------------------------------------------

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """The body's `code` decides (CODES); without one, the HTTP status does (a bare 2xx retries)."""
        data = response.json()
        code = data.get("code") if isinstance(data, dict) else None
        if isinstance(code, int) and not isinstance(code, bool):
            return self._by_code(code, cast(Mapping[str, Any], data), response)
        if 200 <= response.status < 300:
            return Retry(f"HTTP {response.status} without a TikTok code in the body")
        return default_classify(response)

    def _by_code(self, code: int, data: Mapping[str, Any], response: HttpResponse) -> Decision:
        outcome = _outcome(code)
        if outcome == "ok":
            return Ok()
        reason = self._reason(code, data.get("message"))
        if outcome == "retry":
            return Retry(reason, after=response.retry_after())
        return Drop(reason, isolate=outcome == "isolate")

    def _reason(self, code: int, message: Any) -> str:
        """`TikTok <code>: <message>`, short, labelled for known codes, with the access token scrubbed."""
        label = f"TikTok {code}"
        if code in LABELS:
            label = f"{LABELS[code]} ({label})"
        return reasons.reason(label, str(message or ""), self.config.access_token.reveal())


# -- pure helpers ----------------------------------------------------------------------------------


def _properties(event: Event) -> dict[str, Any]:
    """Free properties passed through, then the standard rows on top (they win on a key clash)."""
    given: Mapping[str, Any] = event.get("properties") or {}
    properties = rows.unmapped(given, fields.STANDARD_PROPERTIES)
    properties.update(rows.to_dict(event, fields.PROPERTIES))
    contents = rows.each(given.get("contents"), fields.CONTENT)
    if contents:
        properties["contents"] = contents
        properties.setdefault("content_type", fields.DEFAULT_CONTENT_TYPE)
    return properties


def _outcome(code: int) -> Outcome:
    """The CODES row, else TikTok's numbering: 4xxxx drops, anything else retries."""
    if code in CODES:
        return CODES[code]
    return "drop" if 40000 <= code < 50000 else "retry"
