"""Google bodies, pure: one stored event -> a Data Manager event, an Ads click conversion or an enhancement.

Consent: when `consent.ad_user_data` is denied no personal signal leaves the router (no hashed email,
phone or address, no IP); the conversion still goes out with its click id and the DENIED flag, so
Google can count it without the user's data. Without a click id there is nothing left to send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final

from destinations import amounts
from destinations.base import Event, EventError, SkipEvent
from destinations.google import fields
from destinations.rows import compact, lookup
from destinations.timing import clamped_seconds

CURRENCY_LENGTH: Final = 3


# -- signals ---------------------------------------------------------------------------------------


def row_value(event: Event, row: fields.Row) -> str | None:
    """A row's value; a `hashed` value that is not 64 lower-case hex (a raw identifier) is never sent."""
    value = lookup(event, row.path)
    if value is None or value == "":
        return None
    text = str(value).upper() if row.upper else str(value)
    if row.hashed and not fields.SHA256_HEX.fullmatch(text):
        return None
    if row.upper and not fields.REGION.fullmatch(text):
        return None
    return text


def identifiers(event: Event, rows: Iterable[fields.Row]) -> list[dict[str, Any]]:
    """One `{key: value}` entry per identifier present (the APIs take one kind per entry)."""
    found = ((row.key, row_value(event, row)) for row in rows)
    return [{key: value} for key, value in found if value is not None]


def address(event: Event, rows: Iterable[fields.Row], key: str) -> list[dict[str, Any]]:
    """`[{key: {...}}]` when every address row has a value (Google matches only full addresses), else []."""
    values = {row.key: row_value(event, row) for row in rows}
    if any(value is None for value in values.values()):
        return []
    return [{key: values}]


def click_id(event: Event) -> dict[str, str]:
    """At most one click id: gclid first, then the braid that fits the action source."""
    ids: Mapping[str, Any] = event.get("ids") or {}
    order = fields.APP_CLICK_IDS if event.get("action_source") == "app" else fields.WEB_CLICK_IDS
    for name in order:
        if isinstance(ids.get(name), str) and ids[name].strip():
            return {name: ids[name].strip()}
    return {}


def denied(event: Event) -> bool:
    """The user refused ad_user_data: no personal data may be sent to Google."""
    return (event.get("consent") or {}).get("ad_user_data") == "denied"


def consent(event: Event, table: Mapping[str, str], keys: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The API's consent object from the canonical flags that are set."""
    flags: Mapping[str, Any] = event.get("consent") or {}
    return {api_key: table[flags[ours]] for api_key, ours in keys if flags.get(ours) in table}


def transaction_id(event: Event) -> str:
    """The order id when there is one (it must match the Google tag's), else the stable event id."""
    order_id = lookup(event, "properties.order_id")
    return str(order_id) if order_id not in (None, "") else str(event["event_id"])


def value(event: Event) -> float | int | None:
    """properties.value when it is a number."""
    amount = lookup(event, "properties.value")
    return amount if amounts.is_number(amount) else None


def currency(event: Event) -> str | None:
    """properties.currency when it looks like an ISO 4217 code."""
    code = lookup(event, "properties.currency")
    return code.upper() if isinstance(code, str) and len(code.strip()) == CURRENCY_LENGTH else None


def conversion_time(event: Event, now: float) -> dt.datetime:
    """The event time in whole UTC seconds; an event from the future is clamped to `now`."""
    return dt.datetime.fromtimestamp(clamped_seconds(event, now), dt.UTC)


def nothing_to_match(event: Event) -> Exception:
    """The skip or error for an event with no click id and no identifier Google may use."""
    if denied(event):
        return SkipEvent("ad_user_data consent is denied and there is no click id: nothing Google may use")
    return EventError("no click id (gclid, gbraid, wbraid) and no hashed email, phone or full address")


# -- Data Manager ----------------------------------------------------------------------------------


def dm_event(event: Event, now: float) -> dict[str, Any]:
    """One Data Manager `events[]` item."""
    user = [] if denied(event) else dm_identifiers(event)
    click = click_id(event)
    if not user and not click:
        raise nothing_to_match(event)
    return compact(
        {
            "transactionId": transaction_id(event),
            "eventTimestamp": conversion_time(event, now).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": fields.EVENT_SOURCES.get(str(event.get("action_source")), "OTHER"),
            "adIdentifiers": compact({**click, "landingPageDeviceInfo": device(event)}),
            "userData": {"userIdentifiers": user} if user else None,
            "conversionValue": value(event),
            "currency": currency(event),
            "consent": consent(
                event,
                fields.DM_CONSENT,
                (("adUserData", "ad_user_data"), ("adPersonalization", "ad_personalization")),
            ),
        }
    )


def dm_identifiers(event: Event) -> list[dict[str, Any]]:
    """Hashed email, phone and the full address, in Data Manager's names."""
    return identifiers(event, fields.DM_IDENTIFIERS) + address(event, fields.DM_ADDRESS, "address")


def device(event: Event) -> dict[str, Any]:
    """User agent, and the IP unless ad_user_data is denied."""
    ip = None if denied(event) else lookup(event, "user.ip")
    return compact({"userAgent": lookup(event, "user.user_agent"), "ipAddress": ip})


# -- Google Ads API --------------------------------------------------------------------------------


def ads_time(moment: dt.datetime) -> str:
    """`yyyy-mm-dd hh:mm:ss+00:00`: the Ads API wants a space and an offset with a colon, never `Z`."""
    return moment.strftime("%Y-%m-%d %H:%M:%S+00:00")


def click_conversion(event: Event, now: float, action: str) -> dict[str, Any]:
    """One `UploadClickConversionsRequest.conversions[]` row (hashed email and phone only)."""
    user = [] if denied(event) else identifiers(event, fields.ADS_IDENTIFIERS)
    click = click_id(event)
    if not user and not click:
        raise nothing_to_match(event)
    return compact(
        {
            **click,
            "conversionAction": action,
            "conversionDateTime": ads_time(conversion_time(event, now)),
            "conversionValue": value(event),
            "currencyCode": currency(event),
            "orderId": transaction_id(event),
            "userIdentifiers": user[: fields.MAX_ADS_IDENTIFIERS],
            "consent": consent(event, fields.ADS_CONSENT, (("adUserData", "ad_user_data"),)),
        }
    )


def enhancement(event: Event, now: float, action: str) -> dict[str, Any]:
    """One ENHANCEMENT `conversionAdjustments[]` row: user data added to a tag conversion by order id."""
    if denied(event):
        raise SkipEvent("ad_user_data consent is denied: an enhancement carries nothing but user data")
    order_id = lookup(event, "properties.order_id")
    if order_id in (None, ""):
        raise EventError("enhancements need properties.order_id, equal to the Google tag's transaction_id")
    user = identifiers(event, fields.ADS_IDENTIFIERS) + address(event, fields.ADS_ADDRESS, "addressInfo")
    if not user:
        raise EventError("no hashed email, phone or full address to enhance the conversion with")
    return compact(
        {
            "adjustmentType": "ENHANCEMENT",
            "conversionAction": action,
            "orderId": str(order_id),
            "gclidDateTimePair": {"conversionDateTime": ads_time(conversion_time(event, now))},
            "userIdentifiers": user[: fields.MAX_ADS_IDENTIFIERS],
            "userAgent": lookup(event, "user.user_agent"),
        }
    )
