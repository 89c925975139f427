"""The ingest's JSON answers: one shape for every error, so clients always learn what to fix."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": {"code": ..., "message": ...}}` with the given status."""
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def accepted(results: list[dict[str, Any]]) -> JSONResponse:
    """202 with one result per event, in request order."""
    return JSONResponse({"results": results}, 202)
