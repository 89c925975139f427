"""Tracing: binds Cloud Trace's request trace to every log line written while the request is handled.

Cloud Run (and Google's load balancers) send `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`; Cloud
Logging groups log entries under the request when they carry `logging.googleapis.com/trace` set to
`projects/PROJECT_ID/traces/TRACE_ID`.
"""

from __future__ import annotations

import os
import re
from typing import Final

import structlog
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

TRACE_KEY: Final = "logging.googleapis.com/trace"
HEADER: Final = b"x-cloud-trace-context"
TRACE_ID: Final = re.compile(r"[0-9a-fA-F]{1,32}")
"""A trace id is 32 hex characters; anything else in the header is ignored (it is client input)."""


def trace_value(header: str, project: str | None) -> str | None:
    """The log field for an `X-Cloud-Trace-Context` header; None when it holds no usable trace id."""
    trace = header.split("/", 1)[0].strip()
    if not TRACE_ID.fullmatch(trace):
        return None
    return f"projects/{project}/traces/{trace}" if project else trace


class TraceContext:
    """ASGI middleware: the request's trace bound as a structlog context variable while it is handled."""

    def __init__(self, app: ASGIApp, project: str | None = None) -> None:
        self.app, self.project = app, project

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = _header(scope) if scope["type"] == "http" else None
        value = trace_value(header, self.project) if header else None
        if value is None:
            await self.app(scope, receive, send)
            return
        with structlog.contextvars.bound_contextvars(**{TRACE_KEY: value}):
            await self.app(scope, receive, send)


def _header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return bytes(value).decode("latin-1")
    return None


def middleware(project: str | None = None) -> list[Middleware]:
    """The trace middleware; the project defaults to $GOOGLE_CLOUD_PROJECT (Cloud Run sets none by
    itself: put it in the service's environment)."""
    return [Middleware(TraceContext, project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None)]
