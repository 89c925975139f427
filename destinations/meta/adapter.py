"""Meta Conversions API: one canonical event -> one server event; batches of up to 1,000 per request.

Meta has no partial success: one invalid event rejects the whole request. So `map` refuses locally
every event Meta is known to reject (older than 7 days, Purchase without value or currency, website
event without user agent or URL, no customer information at all) instead of letting it poison a
batch, and leaves out malformed optional fields (see fields.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

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
    base_fields,
    default_classify,
    secret_of,
)
from destinations.meta import fields
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

API_VERSION: Final = "v26.0"
# Checked in the installed facebook-business 26.0.3: facebook_business/apiconfig.py has
# ads_api_config["API_VERSION"] == "v26.0". Meta supports each Graph version for at least two years.
GRAPH_URL: Final = "https://graph.facebook.com"
MAX_EVENT_AGE: Final = 7 * 24 * 3600
"""Meta rejects the whole request when one event_time is older than 7 days (subcode 2804003)."""

TOO_OLD: Final = "event is older than 7 days; Meta would reject the whole batch (2804003)"

Outcome = Literal["retry", "drop"]

ERROR_CODES: Final[Mapping[int, Outcome]] = {
    1: "retry",  # unknown error, usually temporary
    2: "retry",  # service temporarily unavailable
    4: "retry",  # application request limit reached
    17: "retry",  # user request limit reached
    341: "retry",  # application limit reached
    368: "retry",  # temporarily blocked for policy violations
    613: "retry",  # calls to this API exceeded the rate limit
    5000: "retry",  # unknown error
    21009: "retry",  # the data set upload is temporarily unavailable
    80003: "retry",  # custom-audience / ads-API throttling
    3: "drop",  # application lacks the capability
    10: "drop",  # application does not have permission
    100: "drop",  # invalid parameter, any subcode: 2804003 too old, 2804001 bad fbc, 2804009 no value
    105: "drop",  # too many parameters
    190: "drop",  # access token invalid or expired: needs a new token
    200: "drop",  # permission error (200-299 are all permission errors)
    294: "drop",  # managing advertisements requires a permission
    2655: "drop",  # terms of service not accepted
}
"""Meta Graph error code -> outcome (rudder-transformer's networkHandler.js, Graph error reference).

Codes not listed: `is_transient: true` retries, otherwise the HTTP status decides (5xx retry, 4xx drop).
"""


@mypyc_attr(native_class=False)  # as BaseConfig: a Python class even when compiled
@dataclass(frozen=True, slots=True, kw_only=True)
class MetaConfig(BaseConfig):
    """A `type: meta` destination block."""

    pixel_id: str
    access_token: Secret
    test_event_code: str | None = None
    limited_data_use: ldu.Policy = "from_consent"
    ldu_country: int = 0
    ldu_state: int = 0
    send_external_id: bool = True
    app_secret: Secret | None = None


class MetaDestination(Destination[MetaConfig]):
    """Meta (Facebook/Instagram) Conversions API, JSON body, access token in the body."""

    type = "meta"
    api_version = API_VERSION
    max_batch_size = 1000
    max_event_age = float(MAX_EVENT_AGE)
    identity_variants = fields.IDENTITY_VARIANTS

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> MetaConfig:
        """The typed config from a validated YAML block."""
        return MetaConfig(
            **base_fields(block),
            pixel_id=str(block["pixel_id"]),
            access_token=secret_of(block, "access_token"),
            test_event_code=block.get("test_event_code") or None,
            limited_data_use=block.get("limited_data_use", "from_consent"),
            ldu_country=int(block.get("ldu_country", 0)),
            ldu_state=int(block.get("ldu_state", 0)),
            send_external_id=bool(block.get("send_external_id", True)),
            app_secret=secret_of(block, "app_secret") if block.get("app_secret") else None,
        )

    # -- map ---------------------------------------------------------------------------------------

    def map(self, event: Event, now: float) -> list[Payload]:
        """One Meta server event; raises SkipEvent when filtered out, EventError when Meta would reject it."""
        name = self._event_name(event)
        body: dict[str, Any] = {
            "event_name": name,
            "event_time": timing.seconds(event, now, MAX_EVENT_AGE, TOO_OLD),
            "action_source": fields.ACTION_SOURCES.get(str(event.get("action_source")), "other"),
            **rows.to_dict(event, fields.EVENT),
            "user_data": self._user_data(event),
            **rows.compact({"custom_data": _custom_data(event)}),
            **self._data_processing_options(event),
        }
        _check(body)
        return [Payload(body)]

    def _event_name(self, event: Event) -> str:
        canonical = self.canonical_name(event)
        return self.config.event_map.get(canonical) or fields.EVENT_NAMES.get(canonical, canonical)

    def _user_data(self, event: Event) -> dict[str, Any]:
        user_data = rows.to_dict(event, fields.USER_DATA)
        if not self.config.send_external_id:
            user_data.pop("external_id", None)
        return user_data

    def _data_processing_options(self, event: Event) -> dict[str, Any]:
        """LDU on: ["LDU"] + country/state (0/0 lets Meta geolocate). LDU off: the keys are left out,
        which Meta treats exactly like an explicit `[]`."""
        if not ldu.applies(self.config.limited_data_use, event):
            return {}
        return {
            "data_processing_options": ["LDU"],
            "data_processing_options_country": self.config.ldu_country,
            "data_processing_options_state": self.config.ldu_state,
        }

    # -- build_request -----------------------------------------------------------------------------

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST {graph}/{version}/{pixel}/events, JSON body; the token travels in the body, not the URL."""
        token = self.config.access_token.reveal()
        proof = self._appsecret_proof(token)
        body = rows.compact(
            {
                "data": [payload.body for payload in batch],
                "test_event_code": self.config.test_event_code,
                "access_token": token,
                "appsecret_proof": proof,
            }
        )
        return HttpRequest(
            method="POST",
            url=f"{self.api_base(GRAPH_URL)}/{API_VERSION}/{self.config.pixel_id}/events",
            headers={"Content-Type": "application/json"},
            json=body,
            secrets=tuple(s for s in (token, proof) if s),
        )

    def _appsecret_proof(self, token: str) -> str | None:
        """HMAC-SHA256(key=app secret, msg=access token) in hex, when an app secret is configured."""
        if self.config.app_secret is None:
            return None
        key = self.config.app_secret.reveal().encode()
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    # -- classify ----------------------------------------------------------------------------------

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """Meta's error codes decide (ERROR_CODES); a 2xx must acknowledge every event of the batch."""
        data = response.json()
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return self._classify_error(error, response)
        if 200 <= response.status < 300:
            return _acknowledged(data, len(batch))
        return default_classify(response)

    def _classify_error(self, error: Mapping[str, Any], response: HttpResponse) -> Decision:
        code = error.get("code")
        reason = self._reason(error)
        outcome = _outcome(code, error.get("is_transient"), response.status)
        if outcome == "retry":
            return Retry(reason, after=response.retry_after())
        return Drop(reason, isolate=code == 100)

    def _reason(self, error: Mapping[str, Any]) -> str:
        """`Meta <code>/<subcode> <title>: <message>`, short, with the access token scrubbed out."""
        code, subcode = error.get("code"), error.get("error_subcode")
        label = f"Meta {code}/{subcode}" if subcode else f"Meta {code}"
        if code == 190:
            label = f"access token invalid or expired ({label})"
        title = error.get("error_user_title")
        text = ": ".join(str(part) for part in (title, error.get("message")) if part)
        return reasons.reason(label, text, self.config.access_token.reveal())


# -- pure helpers ----------------------------------------------------------------------------------


def _custom_data(event: Event) -> dict[str, Any]:
    """Free properties passed through, then the standard rows on top (they win on a key clash)."""
    properties: Mapping[str, Any] = event.get("properties") or {}
    custom = rows.unmapped(properties, fields.STANDARD_PROPERTIES)
    custom.update(rows.to_dict(event, fields.CUSTOM_DATA))
    contents = rows.each(properties.get("contents"), fields.CONTENT)
    if contents:
        custom["contents"] = contents
        custom["content_ids"] = [str(item["id"]) for item in contents if "id" in item]
    return rows.compact(custom)


def _check(body: Mapping[str, Any]) -> None:
    """Refuse what Meta rejects for the whole batch."""
    custom, user_data = body.get("custom_data", {}), body["user_data"]
    if body["event_name"] == "Purchase" and not {"value", "currency"} <= custom.keys():
        raise EventError("Purchase needs properties.value and properties.currency (Meta 2804009)")
    website = body["action_source"] == "website"
    if website and ("client_user_agent" not in user_data or "event_source_url" not in body):
        raise EventError("website events need user.user_agent and page.url (Meta requires both)")
    if not user_data:
        raise EventError("user_data is empty: no hashed identifier, IP, user agent, fbc or fbp")


def _outcome(code: Any, is_transient: Any, status: int) -> Outcome:
    """The ERROR_CODES row, then `is_transient`, then the HTTP status."""
    if isinstance(code, int) and code in ERROR_CODES:
        return ERROR_CODES[code]
    if isinstance(code, int) and 200 <= code < 300:
        return "drop"
    if is_transient is True:
        return "retry"
    return "retry" if isinstance(default_classify(HttpResponse(status)), Retry) else "drop"


def _acknowledged(data: Any, sent: int) -> Decision:
    """2xx. Meta has no partial success, so `events_received` below the batch size is an anomaly: we
    retry the batch rather than risk a silent loss (event_id dedup, 48 h, absorbs the events that did
    land; the dispatcher's attempt limit bounds the loop). A 2xx without a count is taken as OK."""
    received = data.get("events_received") if isinstance(data, dict) else None
    if isinstance(received, int) and received < sent:
        return Retry(f"Meta acknowledged {received} of {sent} events")
    return Ok()
