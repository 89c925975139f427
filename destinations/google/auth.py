"""Google OAuth2 access tokens for the dispatcher: fetched with google-auth, cached until near expiry.

Two credential sources, both from google-auth rather than hand-written token code:

- a refresh token (`google.oauth2.credentials.Credentials` with `client_id`, `client_secret`,
  `refresh_token` and a `token_uri` that tests point at a loopback fake);
- Application Default Credentials (`google.auth.default()`), e.g. the service account of a Cloud
  Run service, or `GOOGLE_APPLICATION_CREDENTIALS`.

google-auth refreshes synchronously (with `requests`), so the refresh runs in a worker thread, one
at a time (an asyncio.Lock: concurrent batches share one refresh). Outcomes:

- a token: cached until REFRESH_MARGIN before its expiry, or until `invalidate()` (HTTP 401);
- `invalid_grant` (revoked or expired refresh token), `invalid_client`, no ADC found: AuthError, a
  configuration error that is remembered, so every later batch is dead-lettered at once with the
  same loud reason instead of hammering the token endpoint; it takes new credentials and a restart;
- anything else (token endpoint down, 5xx, timeout): TokenUnavailable, a transport error the
  dispatcher retries with backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import httpx

from destinations.base import AuthError, HttpRequest
from router.secret import Secret
from router.sender import TransportError

TOKEN_URL: Final = "https://oauth2.googleapis.com/token"
SCOPES: Final = {
    "data_manager": "https://www.googleapis.com/auth/datamanager",
    "google_ads": "https://www.googleapis.com/auth/adwords",
}
"""OAuth scope per API (datamanager wheel and google-ads wheel AUTH_SCOPES)."""
REFRESH_MARGIN: Final = 300.0
"""Refresh five minutes before expiry (fact sheet A1: tokens live about an hour)."""
PERMANENT_OAUTH_ERRORS: Final = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
"""RFC 6749 token-endpoint errors that no retry can fix: new credentials are needed."""

CredentialsFactory = Callable[[], google.auth.credentials.Credentials]


class TokenUnavailable(TransportError):
    """No token this time (token endpoint down or slow): retried by the dispatcher like a timeout."""


def refresh_token_credentials(
    client_id: str, client_secret: Secret, refresh_token: Secret, scopes: Sequence[str], token_url: str
) -> CredentialsFactory:
    """A factory of google-auth user credentials that refresh at `token_url`."""
    return lambda: google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=refresh_token.reveal(),
        client_id=client_id,
        client_secret=client_secret.reveal(),
        token_uri=token_url,
        scopes=list(scopes),
    )


def default_credentials(scopes: Sequence[str]) -> CredentialsFactory:
    """A factory of Application Default Credentials (looked up on first use: it reads files, metadata)."""

    def build() -> google.auth.credentials.Credentials:
        credentials, _project = google.auth.default(scopes=list(scopes))
        return credentials

    return build


class TimedRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with our timeout instead of its 120 s default."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def __call__(
        self,
        url: Any,
        method: Any = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kw: Any,
    ) -> Any:
        """One HTTP request for google-auth, bounded by our timeout whatever google-auth asks for."""
        return super().__call__(url, method, body, headers, self.timeout, **kw)  # type: ignore[no-untyped-call]


class GoogleAuthenticator:
    """The dispatcher's Authenticator for Google: `Authorization: Bearer <access token>` on each request."""

    def __init__(
        self,
        factory: CredentialsFactory,
        *,
        timeout: float = 10.0,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory, self._margin, self._clock = factory, margin, clock
        self._transport = TimedRequest(timeout)
        self._credentials: google.auth.credentials.Credentials | None = None
        self._stale = True
        self._refused: AuthError | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def apply(self, request: HttpRequest, client: httpx.AsyncClient) -> HttpRequest:
        """The request with a bearer token; the token is listed in `secrets` so it is masked anywhere."""
        token = await self.token()
        headers = {**request.headers, "Authorization": f"Bearer {token}"}
        return dataclasses.replace(request, headers=headers, secrets=(*request.secrets, token))

    def invalidate(self) -> None:
        """Forget the cached token: the next request fetches a new one."""
        self._stale = True

    async def token(self) -> str:
        """A fresh access token, refreshing at most once at a time."""
        async with self._lock:
            if self._refused is not None:
                raise self._refused
            if not self._fresh():
                await asyncio.to_thread(self._refresh)
            assert self._credentials is not None and self._credentials.token
            return str(self._credentials.token)

    def _fresh(self) -> bool:
        credentials = self._credentials
        if self._stale or credentials is None or not credentials.token:
            return False
        expiry = credentials.expiry  # naive UTC, or None when the source gives no lifetime
        if expiry is None:
            return True
        return bool(expiry.replace(tzinfo=dt.UTC).timestamp() - self._clock() > self._margin)

    def _refresh(self) -> None:
        """Runs in a worker thread: build the credentials once, then refresh them."""
        try:
            if self._credentials is None:
                self._credentials = self._factory()
            self._credentials.refresh(self._transport)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.DefaultCredentialsError as exc:
            self._refused = AuthError(f"no Google Application Default Credentials: {exc}")
            raise self._refused from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise self._failure(exc) from None
        self.refreshes += 1
        self._stale = False

    def _failure(self, exc: google.auth.exceptions.GoogleAuthError) -> Exception:
        """AuthError (remembered) for a permanent OAuth error, TokenUnavailable for anything else."""
        code = oauth_error(exc)
        if code in PERMANENT_OAUTH_ERRORS:
            self._refused = AuthError(refusal(code, exc))
            return self._refused
        return TokenUnavailable(f"Google token endpoint: {type(exc).__name__}: {str(exc)[:160]}")


def oauth_error(exc: Exception) -> str | None:
    """The RFC 6749 `error` code a token endpoint answered, when google-auth kept the response."""
    for arg in exc.args[1:]:
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return str(arg["error"])
    return None


def refusal(code: str, exc: Exception) -> str:
    """The loud, actionable message of a permanent credential error."""
    detail = str(exc.args[0])[:160] if exc.args else code
    if code == "invalid_grant":
        return (
            f"Google refused the refresh token ({detail}): it was revoked or expired. Create a new "
            "refresh token (OAuth apps in 'Testing' status issue 7-day tokens), update the "
            "destination's refresh_token and restart; then `router replay` the dead letters"
        )
    return f"Google refused the OAuth client ({detail}): check client_id and client_secret, then restart"
