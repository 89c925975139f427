"""Logging for Cloud Logging: severity, message and the request's trace on JSON lines; console on a TTY."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

from router.app import create_app
from router.config import Config
from router.logging import REDACTED, configure
from router.tracing import trace_value
from tests.conftest import BACKEND_SECRET

BACKEND = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}
TRACE = "105445aa7843bc8bf206b12000100000"


class Terminal(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        """Always a TTY."""
        return True


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[io.StringIO], io.StringIO]]:
    """configure() onto a given stream; the root logger and structlog restored afterwards."""
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())

    def apply(stream: io.StringIO) -> io.StringIO:
        configure("DEBUG", stream=stream)
        return stream

    yield apply
    root.handlers[:], level, config = saved
    root.setLevel(level)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    structlog.reset_defaults()
    structlog.configure(**config)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every JSON line written so far."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_severity_and_message_follow_level_and_event(
    configured: Callable[[io.StringIO], io.StringIO],
) -> None:
    """Each level maps to Cloud Logging's severity name; message is the event name."""
    stream = configured(io.StringIO())
    log = structlog.get_logger("router.test")
    log.debug("a_debug")
    log.info("an_info")
    log.warning("a_warning")
    log.error("an_error")
    log.critical("a_critical")
    logging.getLogger("uvicorn.error").warning("stdlib says hi")
    got = [(line["severity"], line["message"]) for line in lines(stream)]
    assert got == [
        ("DEBUG", "a_debug"),
        ("INFO", "an_info"),
        ("WARNING", "a_warning"),
        ("ERROR", "an_error"),
        ("CRITICAL", "a_critical"),
        ("WARNING", "stdlib says hi"),
    ]


def test_redaction_still_applies_to_message_and_fields(
    configured: Callable[[io.StringIO], io.StringIO],
) -> None:
    """Sensitive keys and emails in prose are scrubbed, in `message` as much as in `event`."""
    stream = configured(io.StringIO())
    structlog.get_logger("router.test").error("mail to jane@example.com failed", email="jane@example.com")
    [line] = lines(stream)
    assert line["message"] == f"mail to {REDACTED} failed"
    assert line["event"] == f"mail to {REDACTED} failed"
    assert line["email"] == REDACTED
    assert line["severity"] == "ERROR"
    assert "jane@example.com" not in stream.getvalue()


def test_request_lines_carry_the_cloud_trace(
    configured: Callable[[io.StringIO], io.StringIO],
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With X-Cloud-Trace-Context, the ingest's lines carry projects/<project>/traces/<trace>; not after."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "shop-prod")
    stream = configured(io.StringIO())
    event = {"event_name": "lead", "event_id": "t-1", "action_source": "crm", "user": {"email": "a@b.co"}}
    with TestClient(create_app(make_config()), base_url="http://router.test") as client:
        headers = {**BACKEND, "X-Cloud-Trace-Context": f"{TRACE}/1;o=1"}
        assert client.post("/v1/events", headers=headers, json=event).status_code == 202
        assert (
            client.post("/v1/events", headers=BACKEND, json={**event, "event_id": "t-2"}).status_code == 202
        )
    accepted = {line["event_id"]: line for line in lines(stream) if line["event"] == "event_accepted"}
    assert accepted["t-1"]["logging.googleapis.com/trace"] == f"projects/shop-prod/traces/{TRACE}"
    assert "logging.googleapis.com/trace" not in accepted["t-2"]


def test_trace_value_without_project_or_with_junk() -> None:
    """No project: the bare trace id; a header without a hex trace id gives nothing."""
    assert trace_value(f"{TRACE}/42;o=1", None) == TRACE
    assert trace_value(f"{TRACE}/42;o=1", "p") == f"projects/p/traces/{TRACE}"
    assert trace_value("not-a-trace/1", "p") is None
    assert trace_value("", "p") is None


def test_console_lines_on_a_terminal(configured: Callable[[io.StringIO], io.StringIO]) -> None:
    """On a TTY the line is for people (not JSON), and still redacted."""
    stream = configured(Terminal())
    structlog.get_logger("router.test").info("event_accepted", email="jane@example.com", event_id="e-1")
    text = stream.getvalue()
    assert "event_accepted" in text and "e-1" in text
    assert "jane@example.com" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_log_format_json_wins_over_a_terminal(
    configured: Callable[[io.StringIO], io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOG_FORMAT=json gives JSON lines with severity even on a TTY."""
    monkeypatch.setenv("LOG_FORMAT", "json")
    stream = configured(Terminal())
    structlog.get_logger("router.test").warning("queue_slow")
    [line] = lines(stream)
    assert (line["severity"], line["message"], line["logger"]) == ("WARNING", "queue_slow", "router.test")
