"""Admin access: every admin endpoint is off without `admin.token` and needs it as a Bearer token."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from router import answers
from router.secret import Secret
from router.sources import bearer


def refusal(request: Request, token: Secret | None) -> Response | None:
    """404 when no admin token is configured, 401 without the right bearer token, else None."""
    if not token:
        return answers.error(404, "not_found", "the admin endpoints are off: set admin.token in router.yaml")
    given = (bearer(request.headers.get("authorization")) or "").encode()
    if not hmac.compare_digest(given, token.reveal().encode()):
        return answers.error(
            401, "unauthorized", "send 'Authorization: Bearer <admin token>'", {"WWW-Authenticate": "Bearer"}
        )
    return None
