"""Logging: the redact processor, free-text scrubbing, and stdlib loggers routed through both."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from router.logging import REDACTED, configure, redact, scrub_text

STDLIB_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")


def redacted(**event: Any) -> dict[str, Any]:
    """The event dict after the redact processor."""
    return dict(redact(None, "info", event))


# --- sensitive keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        *("email", "phone", "first_name", "zip", "ip", "user_agent", "access_token", "authorization"),
        *("Authorization", "token", "secret", "password", "key", "cookie", "fbc", "fbp", "external_id"),
        "date_of_birth",
    ],
)
def test_sensitive_keys_are_redacted(key: str) -> None:
    """A sensitive key's value is replaced whatever its type."""
    assert redacted(event="x", **{key: "jane-value"})[key] == REDACTED
    assert redacted(event="x", **{key: {"nested": 1}})[key] == REDACTED


def test_sensitive_keys_redacted_at_any_depth() -> None:
    """Nested dicts and lists of dicts are redacted too."""
    result = redacted(
        event="delivery_failed",
        request={
            "headers": {"Authorization": "Bearer EAAB123"},
            "json": {"data": [{"user_data": {"em": "abc"}}]},
        },
        users=[{"email": "a@b.co", "ip": "203.0.113.9", "country": "gb"}],
    )
    assert result["request"]["headers"]["Authorization"] == REDACTED
    assert result["request"]["json"]["data"][0]["user_data"]["em"] == REDACTED
    assert result["users"] == [{"email": REDACTED, "ip": REDACTED, "country": "gb"}]


def test_harmless_fields_are_kept() -> None:
    """Ids, counts and times are untouched, even when they are long digit runs."""
    event = {"event": "event_accepted", "event_id": "order-16505551212", "timestamp_ms": 1767225600000,
             "destinations": ["meta_main"], "status": 200}  # fmt: skip
    assert redacted(**event) == event


# --- free text -----------------------------------------------------------------------------------


def test_emails_scrubbed_in_any_string() -> None:
    """An email inside any string value is removed."""
    result = redacted(event="sent to jane.doe+ads@example.co.uk", detail="ok", other=["x bob@example.com y"])
    assert result == {"event": f"sent to {REDACTED}", "detail": "ok", "other": [f"x {REDACTED} y"]}


def test_url_query_strings_scrubbed() -> None:
    """Tokens travel in query strings: everything after ? in a URL is removed."""
    url = "https://graph.facebook.com/v26.0/123/events?access_token=EAABsecret&appsecret_proof=abc"
    result = redacted(event="request", url=url)
    assert result["url"] == "https://graph.facebook.com/v26.0/123/events?[query redacted]"
    assert "EAABsecret" not in json.dumps(result)


def test_bearer_and_access_token_in_prose() -> None:
    """Bearer credentials and access_token=... in text are removed."""
    text = scrub_text("sent Authorization: Bearer EAAB.secret-1 and access_token=EAABother, done")
    assert "EAAB.secret-1" not in text
    assert "EAABother" not in text
    assert text.startswith("sent Authorization: Bearer")


def test_phones_and_ipv4_scrubbed_in_prose_only() -> None:
    """In prose keys phone-like runs and IPv4 go; elsewhere digit runs are ids and stay."""
    result = redacted(event="call +1 (650) 555-1212 from 203.0.113.9", order_ref="16505551212")
    assert result["event"] == f"call {REDACTED} from {REDACTED}"
    assert result["order_ref"] == "16505551212"
    assert scrub_text("+44 20 7946 0958", phones=False) == "+44 20 7946 0958"


def test_exception_text_is_scrubbed() -> None:
    """The formatted exception is prose: emails, phones and query tokens are removed from it."""
    result = redacted(
        event="adapter_failed",
        exception="Traceback...\nValueError: bad jane@example.com +1 650 555 1212 https://x.test/a?token=t0k",
    )
    text = result["exception"]
    for leaked in ("jane@example.com", "555 1212", "t0k"):
        assert leaked not in text
    assert "ValueError: bad" in text


def test_ipv6_scrubbed_in_prose() -> None:
    """An IPv6 client address in prose is removed like an IPv4 one."""
    assert "2001:db8::1" not in redacted(event="rejected client 2001:db8::1 [2001:db8::1]:443")["event"]


# --- configure() ---------------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure() writing to a StringIO; the previous logging and structlog setup restored after."""
    saved = {
        name: (
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
        )
        for name in STDLIB_LOGGERS
    }
    structlog_config = structlog.get_config()
    stream = io.StringIO()
    configure("INFO", stream=stream)
    try:
        yield stream
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        structlog.reset_defaults()
        structlog.configure(**structlog_config)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every JSON line written so far."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_stdlib_logger_goes_through_the_scrubber(captured: io.StringIO) -> None:
    """A uvicorn error line with an email and a token URL comes out as scrubbed JSON."""
    logging.getLogger("uvicorn.error").error(
        "failed for jane@example.com calling %s", "https://api.test/x?access_token=EAABleak"
    )
    [line] = lines(captured)
    assert line["logger"] == "uvicorn.error"
    assert line["level"] == "error"
    assert line["event"] == f"failed for {REDACTED} calling https://api.test/x?[query redacted]"
    assert "jane@example.com" not in captured.getvalue()
    assert "EAABleak" not in captured.getvalue()


def test_structlog_logger_is_redacted(captured: io.StringIO) -> None:
    """structlog events are JSON with sensitive keys redacted and a timestamp."""
    structlog.get_logger("router.test").info("event_accepted", event_id="e-1", email="jane@example.com")
    [line] = lines(captured)
    assert line["event"] == "event_accepted"
    assert line["event_id"] == "e-1"
    assert line["email"] == REDACTED
    assert "timestamp" in line
    assert "jane@example.com" not in captured.getvalue()


def test_logged_exception_is_scrubbed(captured: io.StringIO) -> None:
    """An exception's text (message and traceback) is scrubbed before it is written."""
    log = structlog.get_logger("router.test")
    try:
        raise RuntimeError("upstream said no for jane@example.com at https://api.test/?access_token=EAABexc")
    except RuntimeError:
        log.exception("adapter_failed")
    [line] = lines(captured)
    assert "RuntimeError" in line["exception"]
    assert "jane@example.com" not in captured.getvalue()
    assert "EAABexc" not in captured.getvalue()


def test_configure_sets_level_and_quietens_http_clients(captured: io.StringIO) -> None:
    """Below-level records are dropped; httpx info lines (which carry URLs) are not written."""
    logging.getLogger("router.test").debug("debug detail")
    logging.getLogger("httpx").info("HTTP Request: POST https://graph.facebook.com/?access_token=x")
    logging.getLogger("uvicorn.access").warning("kept")
    assert [line["event"] for line in lines(captured)] == ["kept"]
