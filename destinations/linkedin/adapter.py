"""LinkedIn Conversions API: one canonical event -> one conversion event; BATCH_CREATE of up to 5,000.

Every request is a Rest.li BATCH_CREATE (`{"elements": [...]}`), even for one event, so one answer shape
is read: 200 with one `{"status": 201}` per element, in request order. LinkedIn validates the batch as a
whole: one invalid element rejects it (422, `Index: N, ERROR :: /path :: message`; or 400 naming
`indices [N]`). `classify` then drops the named elements with LinkedIn's message and retries the others
at once, so they are resent without them. A sunset `LinkedIn-Version` (426) is a configuration error:
it is dropped with a message telling the operator to raise `version` in YAML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mypy_extensions import mypyc_attr

from destinations import amounts, reasons, rows, timing
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
from destinations.linkedin import fields
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

API_VERSION: Final = "202608"
"""The default `LinkedIn-Version` (YYYYMM), overridable with `version` in YAML. 202608 is the newest
version in the docs snapshot of the fact sheet (learn.microsoft.com .../integrations/recent-changes);
LinkedIn supports each monthly version for at least 12 months (202511 was sunset on 2026-11-16)."""
API_URL: Final = "https://api.linkedin.com"
PATH: Final = "/rest/conversionEvents"
RESTLI_PROTOCOL: Final = "2.0.0"
"""`X-Restli-Protocol-Version`, required on every request (LinkedIn docs, linkedin-api-client)."""
MAX_BATCH_SIZE: Final = 5000
"""Elements per BATCH_CREATE: Salesforce's LinkedIn CAPI connector doc; RudderStack `MAX_BATCH_SIZE`."""
MAX_EVENT_AGE: Final = 90 * 24 * 3600
"""`conversionHappenedAt` must be within the past 90 days (Salesforce connector doc; RudderStack and
Segment enforce 90 days)."""
TOO_OLD: Final = "event is older than 90 days; LinkedIn rejects older conversions"
INDEXED_STATUSES: Final = frozenset({400, 422})
"""Statuses whose message may name the bad elements (`Index: N` for 422, `indices [N]` for 400)."""
INDEX_BLOCK: Final = re.compile(r"Index: (\d+), (.*?)(?=Index: \d+, |\Z)", re.DOTALL)
"""422 message: `Index: 0, ERROR :: /conversionValue/amount :: field is required ...\\nERROR :: ...\\n`,
one block per bad element (RudderStack networkHandler.js + fixture `linkedin_ads_v1_scenario_2`)."""
INDICES: Final = re.compile(r"indices \[([\d,\s]+)\]")
"""400 message: `... Conversion's method should be CONVERSIONS_API, indices [0] (0-indexed)`."""
STATUS_HINTS: Final[Mapping[int, str]] = {
    401: "access token invalid, expired or revoked: create a new token with rw_conversions",
    403: "permission denied: the token's member needs rw_conversions and a role on the ad account",
}


@mypyc_attr(native_class=False)  # as BaseConfig: a Python class even when compiled
@dataclass(frozen=True, slots=True, kw_only=True)
class LinkedInConfig(BaseConfig):
    """A `type: linkedin` destination block."""

    access_token: Secret
    conversions: Mapping[str, str]
    """Canonical event name -> conversion rule id (digits)."""
    version: str = API_VERSION


class LinkedInDestination(Destination[LinkedInConfig]):
    """LinkedIn Conversions API, Rest.li BATCH_CREATE, member access token as a bearer token."""

    type = "linkedin"
    api_version = API_VERSION
    max_batch_size = MAX_BATCH_SIZE
    max_event_age = float(MAX_EVENT_AGE)
    identity_variants = fields.IDENTITY_VARIANTS

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> LinkedInConfig:
        """The typed config from a validated YAML block (rule ids may be YAML integers)."""
        return LinkedInConfig(
            **base_fields(block),
            access_token=secret_of(block, "access_token"),
            conversions={str(name): str(rule) for name, rule in block["conversions"].items()},
            version=str(block.get("version", API_VERSION)),
        )

    # -- map ---------------------------------------------------------------------------------------

    def map(self, event: Event, now: float) -> list[Payload]:
        """One conversion event; SkipEvent when the event has no rule, EventError when it cannot be sent."""
        body: dict[str, Any] = {
            "conversion": fields.CONVERSION_URN.format(rule_id=self._rule_id(event)),
            "conversionHappenedAt": timing.milliseconds(event, now, MAX_EVENT_AGE, TOO_OLD),
        }
        value = _conversion_value(event.get("properties") or {})
        if value is not None:
            body["conversionValue"] = value
        body["eventId"] = str(event["event_id"])
        body["user"] = {"userIds": _user_ids(event)}
        return [Payload(body)]

    def _rule_id(self, event: Event) -> str:
        name = self.canonical_name(event)
        rule = self.config.conversions.get(name)
        if rule is None:
            raise SkipEvent(f"event {name!r} has no LinkedIn conversion rule in `conversions`")
        return rule

    # -- build_request -----------------------------------------------------------------------------

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST {api}/rest/conversionEvents as BATCH_CREATE; the token travels in the Authorization header."""
        token = self.config.access_token.reveal()
        return HttpRequest(
            method="POST",
            url=f"{self.api_base(API_URL)}{PATH}",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "LinkedIn-Version": self.config.version,
                "X-Restli-Protocol-Version": RESTLI_PROTOCOL,
                "X-RestLi-Method": "BATCH_CREATE",
            },
            json={"elements": [payload.body for payload in batch]},
            secrets=(token,),
        )

    # -- classify ----------------------------------------------------------------------------------

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """Per-element statuses on 2xx; named bad elements dropped and the rest retried on 400/422."""
        status, data = response.status, response.json()
        if 200 <= status < 300:
            return self._acknowledged(data, len(batch))
        reason = self._reason(status, data)
        if status in INDEXED_STATUSES:
            named = _named_elements(_message(data), len(batch))
            if named:
                return self._split(status, named, len(batch))
            return Drop(reason, isolate=status == 422)
        if status == 426:
            return Drop(self._version_reason(data))
        if status in STATUS_HINTS:
            return Drop(f"{STATUS_HINTS[status]} ({reason})")
        if isinstance(default_classify(response), Retry):
            return Retry(reason, after=response.retry_after())
        return Drop(reason)

    def _acknowledged(self, data: Any, sent: int) -> BatchDecision:
        """200: one status per element, in order. A count that does not match is an anomaly: retry the
        batch (eventId dedup absorbs the elements that did land). A 2xx without `elements` is OK."""
        elements = data.get("elements") if isinstance(data, dict) else None
        if not isinstance(elements, list):
            return Ok()
        if len(elements) != sent:
            return Retry(f"LinkedIn answered {len(elements)} element statuses for {sent} events")
        return [self._element(element) for element in elements]

    def _element(self, element: Any) -> Decision:
        """One BATCH_CREATE result: `{"status": 201}` or `{"status": 4xx, "error": {...}}`."""
        status = element.get("status") if isinstance(element, dict) else None
        if not isinstance(status, int) or 200 <= status < 300:
            return Ok()
        reason = self._reason(status, element.get("error") or element)
        if isinstance(default_classify(HttpResponse(status)), Retry):
            return Retry(reason)
        return Drop(reason)

    def _split(self, status: int, named: Mapping[int, str], size: int) -> list[Decision]:
        """Drop the named elements with LinkedIn's words; resend the others now, without them."""
        shown = ", ".join(str(index) for index in sorted(named)[:10])
        text = f"LinkedIn {status} refused the batch for element(s) {shown}; resent without them"
        retry = Retry(text, after=0.0)
        return [
            Drop(self._short(f"LinkedIn {status}: {named[i]}")) if i in named else retry for i in range(size)
        ]

    def _reason(self, status: int, data: Any) -> str:
        """`LinkedIn <status> <code>: <message>`, short, with the access token scrubbed out."""
        code = data.get("code") if isinstance(data, dict) else None
        label = f"LinkedIn {status} {code}" if isinstance(code, str) and code else f"LinkedIn {status}"
        return reasons.reason(label, " ".join(_message(data).split()), self.config.access_token.reveal())

    def _version_reason(self, data: Any) -> str:
        """A 426 is the operator's to fix: say which version and what to change."""
        text = self._short(" ".join(_message(data).split())) or "NONEXISTENT_VERSION"
        return (
            f"LinkedIn-Version {self.config.version} is not active (426: {text}); raise `version` in this "
            "destination's YAML block to a current YYYYMM, then replay the dead letters"
        )

    def _short(self, text: str) -> str:
        """The text with the access token scrubbed out, cut to reasons.LIMIT."""
        return reasons.short(text, self.config.access_token.reveal())


# -- pure helpers ----------------------------------------------------------------------------------


def _conversion_value(properties: Mapping[str, Any]) -> dict[str, str] | None:
    """`{currencyCode, amount}` with the amount as a decimal string; left out unless both are usable
    (LinkedIn refuses the object with either key missing or empty)."""
    amount, currency = _amount(properties.get("value")), properties.get("currency")
    if amount is None or not isinstance(currency, str) or not fields.CURRENCY.fullmatch(currency):
        return None
    return {"currencyCode": currency, "amount": amount}


def _amount(value: Any) -> str | None:
    """`12.5` -> `"12.5"`, `400` -> `"400"`, `1e-07` -> `"0.0000001"`; None unless a finite number."""
    amount = amounts.decimal(value)
    return amount if amount is not None and math.isfinite(value) else None


def _user_ids(event: Event) -> list[dict[str, str]]:
    """`user.userIds[]` from the rows; an event with none cannot be matched, so it is an EventError."""
    user_ids = []
    for row in fields.USER_IDS:
        value = _id_value(rows.lookup(event, row.path))
        if value is not None and row.pattern.fullmatch(value):
            user_ids.append({"idType": row.id_type, "idValue": value})
    if not user_ids:
        raise EventError(
            "no LinkedIn user id: send user.email, ids.li_fat_id, properties.acxiom_id or "
            "properties.oracle_moat_id (names are hashed at ingest, so userInfo cannot be sent)"
        )
    return user_ids


def _id_value(value: Any) -> str | None:
    """A string or integer id as text; anything else (lists, booleans, None) is not an id."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _message(data: Any) -> str:
    """LinkedIn's `message`, or an empty string."""
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else ""


def _named_elements(message: str, size: int) -> dict[int, str]:
    """Element index -> LinkedIn's message for it, for indices inside the batch."""
    named: dict[int, str] = {}
    for match in INDEX_BLOCK.finditer(message):
        lines = (line.strip() for line in match.group(2).splitlines())
        named[int(match.group(1))] = "; ".join(line for line in lines if line)
    for match in INDICES.finditer(message):
        for index in re.findall(r"\d+", match.group(1)):
            named.setdefault(int(index), message.strip())
    return {index: text for index, text in named.items() if 0 <= index < size}
