"""Logging: structlog JSON lines with stable event names, scrubbed of secrets and personal data.

JSON lines carry the fields Cloud Logging reads (`severity`, `message`, `logging.googleapis.com/trace`);
on a terminal (stderr a TTY and LOG_FORMAT not `json`) lines are rendered for people instead."""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any, Final

import structlog
from structlog.typing import EventDict, Processor

SENSITIVE_KEYS: Final = frozenset(
    {
        "email",
        "em",
        "phone",
        "ph",
        "first_name",
        "fn",
        "last_name",
        "ln",
        "date_of_birth",
        "db",
        "zip",
        "zp",
        "city",
        "ct",
        "state",
        "st",
        "external_id",
        "ip",
        "client_ip_address",
        "user_agent",
        "client_user_agent",
        "access_token",
        "token",
        "secret",
        "password",
        "authorization",
        "key",
        "cookie",
        "fbc",
        "fbp",
    }
)
EMAIL: Final = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
PHONE: Final = re.compile(r"\+?\d[\d ()\-.]{7,}\d")
URL_QUERY: Final = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*")
BEARER: Final = re.compile(r"(?i)(bearer|access[-_]token[=:\"' ]+)\s*[^\s,'\"&]+")
IPV4: Final = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
IPV6: Final = re.compile(r"(?i)(?<![0-9a-f:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![0-9a-f:])")
REDACTED: Final = "[redacted]"


FREE_TEXT: Final = frozenset({"event", "exception", "reason", "error", "message", "detail"})
"""Keys holding prose, where phone-like digit runs are scrubbed too (elsewhere they are ids and times)."""


def scrub_text(text: str, phones: bool = True) -> str:
    """Remove query strings (tokens travel there), bearer tokens, emails and, in prose, phone numbers."""
    text = URL_QUERY.sub(r"\1?[query redacted]", text)
    text = BEARER.sub(r"\1 " + REDACTED, text)
    text = EMAIL.sub(REDACTED, text)
    return PHONE.sub(REDACTED, IPV6.sub(REDACTED, IPV4.sub(REDACTED, text))) if phones else text


def _scrub(value: Any, phones: bool) -> Any:
    if isinstance(value, str):
        return scrub_text(value, phones)
    if isinstance(value, dict):
        return {k: _field(str(k), v, phones) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, phones) for v in value]
    return value


def _field(key: str, value: Any, phones: bool) -> Any:
    lowered = key.lower()
    if lowered in SENSITIVE_KEYS:
        return REDACTED
    return _scrub(value, phones or lowered in FREE_TEXT)


def redact(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: sensitive keys dropped to [redacted], free text scrubbed; runs last."""
    return {key: _field(key, value, False) for key, value in event_dict.items()}


SEVERITIES: Final = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "warn": "WARNING",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "CRITICAL",
    "fatal": "CRITICAL",
}
"""structlog's level names -> Cloud Logging's LogSeverity names."""


def cloud_fields(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: `severity` from the level and `message` from the event name, as Cloud
    Logging reads them (the trace field is bound per request by router.tracing)."""
    level = str(event_dict.get("level", "info")).lower()
    event_dict["severity"] = SEVERITIES.get(level, "DEFAULT")
    if "event" in event_dict:
        event_dict.setdefault("message", event_dict["event"])
    return event_dict


def wants_json(stream: Any) -> bool:
    """JSON unless the output is a terminal and LOG_FORMAT is not `json` (tests and CI are not TTYs)."""
    if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
        return True
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


SHARED: Final[list[Processor]] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on stderr (or console lines on a terminal) for structlog and for stdlib loggers
    (uvicorn, httpx), all scrubbed: `redact` always runs last on the final dict, before rendering."""
    as_json = wants_json(stream if stream is not None else sys.stderr)
    renderer: Processor = (
        structlog.processors.JSONRenderer(sort_keys=False) if as_json else structlog.dev.ConsoleRenderer()
    )
    final: list[Processor] = [
        structlog.processors.format_exc_info,
        *([cloud_fields] if as_json else []),
        redact,
        renderer,
    ]
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
