"""Google responses, pure: Data Manager fail-fast errors and Ads API partial failures -> decisions.

Ads API (partial failure, fact sheet A8): HTTP 200 with `partialFailureError`, a google.rpc.Status
whose `details[]` hold GoogleAdsFailure objects; each error names its row in
`location.fieldPathElements[0].index`. A row is delivered when it has no error or only "already
exists" duplicates, retried when one of its errors is transient, and dropped with Google's message
otherwise. Rows are independent, so one bad row never costs its neighbours.

Data Manager (fail-fast, fact sheet A9): one invalid record rejects the whole request, so a
record-level INVALID_ARGUMENT is `Drop(isolate=True)` and the dispatcher bisects the batch.

Both answer request-level errors with the standard Google envelope `{"error": {code, message,
status, details}}`; 401 is retried (the dispatcher refreshes the token first), 429 and 5xx are
retried after `Retry-After` or google.rpc.RetryInfo, the rest is permanent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from destinations.base import BatchDecision, HttpResponse, default_classify
from destinations.google import fields
from router.decisions import Decision, Drop, Ok, Retry

MESSAGE_LIMIT: Final = 160
REASON_LIMIT: Final = 240
"""Reasons end up in logs and the dead-letter table: a summary, never a whole response body."""
Json = Mapping[str, Any]


def short(text: Any) -> str:
    """A message cut to MESSAGE_LIMIT characters, on one line."""
    line = " ".join(str(text).split())
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def envelope(response: HttpResponse) -> Json:
    """The `error` object of a Google error answer, or {}."""
    data = response.json()
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def details(error: Json, suffix: str) -> list[Json]:
    """The `details[]` entries whose `@type` ends with `suffix`."""
    found = error.get("details")
    items = found if isinstance(found, list) else []
    return [d for d in items if isinstance(d, dict) and str(d.get("@type", "")).endswith(suffix)]


def retry_delay(error: Json, response: HttpResponse) -> float | None:
    """Retry-After, else google.rpc.RetryInfo `retryDelay` ("30s")."""
    after = response.retry_after()
    if after is not None:
        return after
    for info in details(error, "google.rpc.RetryInfo"):
        text = str(info.get("retryDelay", "")).removesuffix("s")
        try:
            return max(0.0, float(text))
        except ValueError:
            continue
    return None


def transient_http(response: HttpResponse) -> bool:
    """408, 429 and 5xx but 501: the shared rule's retryable statuses."""
    return isinstance(default_classify(response), Retry)


def request_level(error: Json, response: HttpResponse, reason: str) -> Decision:
    """The decision for a non-2xx Google error that is not about a single record."""
    if response.status == 401:
        return Retry(f"{reason} (the access token is refreshed before the retry)", after=0.0)
    if transient_http(response) or error.get("status") in fields.DM_RETRY_STATUSES:
        return Retry(reason, after=retry_delay(error, response))
    return Drop(reason)


def label(error: Json, response: HttpResponse, api: str, codes: Sequence[str]) -> str:
    """`<API> HTTP <status> <STATUS> [<CODE>, ...]: <message>`, at most REASON_LIMIT characters."""
    head = f"{api} HTTP {response.status} {error.get('status') or ''}".rstrip()
    if codes:
        head = f"{head} [{', '.join(codes[:3])}]"
    message = error.get("message")
    text = f"{head}: {short(message)}" if message else head
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


# -- Data Manager ----------------------------------------------------------------------------------


def classify_data_manager(response: HttpResponse) -> Decision:
    """2xx OK; record-level INVALID_ARGUMENT drops with isolate (fail-fast); else request_level."""
    if 200 <= response.status < 300:
        return Ok()
    error = envelope(response)
    reasons = dm_reasons(error)
    reason = label(error, response, "Data Manager", reasons)
    if response.status == 400 and error.get("status", "INVALID_ARGUMENT") == "INVALID_ARGUMENT":
        return Drop(reason, isolate=not fields.DM_REQUEST_REASONS.intersection(reasons))
    return request_level(error, response, reason)


def dm_reasons(error: Json) -> list[str]:
    """ErrorInfo reasons, then BadRequest field-violation reasons, without repeats."""
    found = [str(info["reason"]) for info in details(error, "google.rpc.ErrorInfo") if info.get("reason")]
    for bad in details(error, "google.rpc.BadRequest"):
        violations = bad.get("fieldViolations")
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict) and violation.get("reason"):
                found.append(str(violation["reason"]))
    return list(dict.fromkeys(found))


# -- Google Ads API --------------------------------------------------------------------------------


def classify_ads(response: HttpResponse, batch: Sequence[object]) -> BatchDecision:
    """Per-row decisions from a partial failure; request errors decide for the whole batch."""
    data = response.json()
    if 200 <= response.status < 300:
        failure = data.get("partialFailureError") if isinstance(data, dict) else None
        if not isinstance(failure, dict) or not failure.get("code"):
            return Ok()
        return per_row(failure, data.get("results"), len(batch))
    error = envelope(response)
    codes = [code for code, _ in ads_errors(error)]
    reason = label(error, response, "Google Ads", codes)
    if fields.SPLIT.intersection(codes):
        return Drop(reason, isolate=True)
    return request_level(error, response, reason)


def ads_errors(status: Json) -> list[tuple[str, Json]]:
    """(`family.CODE`, error) for every GoogleAdsError in a google.rpc.Status's details."""
    found: list[tuple[str, Json]] = []
    for failure in details(status, "GoogleAdsFailure"):
        errors = failure.get("errors")
        for error in errors if isinstance(errors, list) else []:
            if isinstance(error, dict):
                found.append((error_code(error), error))
    return found


def error_code(error: Json) -> str:
    """`conversionUploadError.UNPARSEABLE_GCLID` from `{"errorCode": {"conversionUploadError": ...}}`."""
    code = error.get("errorCode")
    if isinstance(code, dict) and code:
        family, name = next(iter(code.items()))
        return f"{family}.{name}"
    return "unknown"


def row_index(error: Json) -> int | None:
    """`location.fieldPathElements[0].index`: the row the error is about, when it names one."""
    location = error.get("location")
    elements = location.get("fieldPathElements") if isinstance(location, dict) else None
    first = elements[0] if isinstance(elements, list) and elements else None
    index = first.get("index") if isinstance(first, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def per_row(failure: Json, results: Any, size: int) -> list[Decision]:
    """One decision per row: its located errors decide; errors naming no row concern the failed rows."""
    by_row: dict[int, list[tuple[str, Json]]] = {}
    unlocated: list[tuple[str, Json]] = []
    for code, error in ads_errors(failure):
        index = row_index(error)
        if index is not None and 0 <= index < size:
            by_row.setdefault(index, []).append((code, error))
        else:
            unlocated.append((code, error))
    failed = failed_rows(results, size)
    return [
        row_decision(by_row[index]) if index in by_row else unnamed(index, unlocated, failed, failure)
        for index in range(size)
    ]


def unnamed(
    index: int, unlocated: list[tuple[str, Json]], failed: set[int] | None, failure: Json
) -> Decision:
    """A row no error names: OK when its result is there; else the errors naming no row decide."""
    if failed is not None and index not in failed:
        return Ok()
    if unlocated or failed is None:
        return row_decision(unlocated)
    return Retry(f"Google Ads row {index} failed, no error names it: {short(failure.get('message'))}")


def failed_rows(results: Any, size: int) -> set[int] | None:
    """The rows whose positional result is `{}`, or None when the response has no result per row
    (validateOnly answers none): then errors that name no row concern every row."""
    if not isinstance(results, list) or len(results) != size:
        return None
    return {index for index, result in enumerate(results) if not result}


def row_decision(errors: Iterable[tuple[str, Json]]) -> Decision:
    """No error or a duplicate: OK. A transient error: retry. Otherwise drop with Google's message."""
    errors = list(errors)
    if not errors or any(code in fields.DUPLICATES for code, _ in errors):
        return Ok()
    transient = [(code, e) for code, e in errors if code in fields.TRANSIENT]
    if transient:
        code, error = transient[0]
        return Retry(row_reason(code, error), after=fields.TRANSIENT[code])
    code, error = errors[0]
    return Drop(row_reason(code, error))


def row_reason(code: str, error: Json) -> str:
    """`Google Ads <family.CODE>: <message>`."""
    message = error.get("message")
    return f"Google Ads {code}: {short(message)}" if message else f"Google Ads {code}"
