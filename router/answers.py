"""The ingest's JSON answers: one shape for every error, so clients always learn what to fix."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from router import jsoncodec


class Answer(JSONResponse):
    """A JSON response encoded by router/jsoncodec.py: orjson, compact, UTF-8; a lone surrogate in an
    echoed id comes out as an ASCII escape instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        """The body bytes."""
        return jsoncodec.dumps(content)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": {"code": ..., "message": ...}}` with the given status."""
    return Answer({"error": {"code": code, "message": message}}, status, headers=headers)


def accepted(results: list[dict[str, Any]]) -> JSONResponse:
    """202 with one result per event, in request order."""
    return Answer({"results": results}, 202)
