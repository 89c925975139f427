"""GoogleAuthenticator on google-auth against the loopback fake token endpoint: cache, refresh, refusals."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from destinations.base import AuthError, HttpRequest
from destinations.google import auth
from destinations.google.adapter import GoogleDestination
from router.secret import Secret
from router.sender import TransportError
from tests.fakes.google import ADS_SCOPE, DM_SCOPE, GoogleFake, create_google_fake
from tests.fakes.server import FakeServer, serve

CLIENT_ID, CLIENT_SECRET, REFRESH = "client-1.apps.googleusercontent.com", "GOCSPX-secret", "1//refresh"
SERVICE_ACCOUNT = "router@adrouter-test.iam.gserviceaccount.com"
REQUEST = HttpRequest("POST", "https://datamanager.googleapis.com/v1/events:ingest", {"X-Keep": "1"}, json={})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[GoogleFake, FakeServer]]:
    """One fake token endpoint for the module."""
    fake = create_google_fake(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_tokens=[REFRESH],
        service_accounts=[SERVICE_ACCOUNT],
    )
    with serve(fake.app) as running:
        yield fake, running


@pytest.fixture
def fake(served: tuple[GoogleFake, FakeServer]) -> GoogleFake:
    """The fake, with no tokens issued yet and the refresh token valid."""
    served[0].clear()
    return served[0]


@pytest.fixture
def token_url(served: tuple[GoogleFake, FakeServer], fake: GoogleFake) -> str:
    """The fake's token endpoint."""
    return f"{served[1].url}/token"


def authenticator(token_url: str, refresh: str = REFRESH, secret: str = CLIENT_SECRET, **options: Any) -> Any:
    """A GoogleAuthenticator on refresh-token credentials at `token_url`."""
    factory = auth.refresh_token_credentials(
        CLIENT_ID, Secret(secret), Secret(refresh), [DM_SCOPE], token_url
    )
    return auth.GoogleAuthenticator(factory, **options)


async def bearer(authenticator: auth.GoogleAuthenticator) -> str:
    """The Authorization header the authenticator adds."""
    async with httpx.AsyncClient() as client:
        request = await authenticator.apply(REQUEST, client)
    return request.headers["Authorization"]


async def test_apply_adds_the_bearer_token_as_a_secret(token_url: str, fake: GoogleFake) -> None:
    """The token goes into Authorization and `secrets`; other headers and the original request stay."""
    async with httpx.AsyncClient() as client:
        signed = await authenticator(token_url).apply(REQUEST, client)
    token = fake.tokens[0].access_token
    assert token and signed.headers == {"X-Keep": "1", "Authorization": f"Bearer {token}"}
    assert signed.secrets == (token,) and token not in json.dumps(signed.masked())
    assert "Authorization" not in REQUEST.headers
    assert fake.tokens[0].scope == DM_SCOPE


async def test_token_is_cached_until_shortly_before_expiry(token_url: str, fake: GoogleFake) -> None:
    """Many requests, one token; past expiry minus the margin, one refresh."""
    now = [time.time()]
    source = authenticator(token_url, clock=lambda: now[0])
    first = [await bearer(source) for _ in range(5)]
    assert len(set(first)) == 1 and len(fake.tokens) == 1
    now[0] += 3600 - auth.REFRESH_MARGIN - 5
    assert await bearer(source) == first[0]
    now[0] += 10
    assert await bearer(source) != first[0]
    assert len(fake.tokens) == 2 and source.refreshes == 2


async def test_invalidate_forces_a_new_token(token_url: str, fake: GoogleFake) -> None:
    """After invalidate() (the API said 401) the next request carries a new token."""
    source = authenticator(token_url)
    old = await bearer(source)
    source.invalidate()
    assert await bearer(source) != old
    assert len(fake.tokens) == 2


async def test_concurrent_callers_share_one_refresh(token_url: str, fake: GoogleFake) -> None:
    """Ten batches at once while the token endpoint is slow: one token request, one token for all."""
    fake.token_delay = 0.2
    source = authenticator(token_url)
    headers = await asyncio.gather(*(bearer(source) for _ in range(10)))
    assert len(set(headers)) == 1
    assert len(fake.tokens) == 1


async def test_invalid_grant_is_a_loud_permanent_auth_error(token_url: str, fake: GoogleFake) -> None:
    """A revoked refresh token: AuthError saying what to do; remembered, so no further token requests."""
    fake.revoke(REFRESH)
    source = authenticator(token_url)
    with pytest.raises(AuthError, match="invalid_grant") as refused:
        await bearer(source)
    assert "revoked or expired" in str(refused.value) and "refresh_token" in str(refused.value)
    assert REFRESH not in str(refused.value) and CLIENT_SECRET not in str(refused.value)
    with pytest.raises(AuthError):
        await bearer(source)
    assert [t.error for t in fake.tokens] == ["invalid_grant"]


async def test_invalid_client_is_permanent(token_url: str) -> None:
    """A wrong client secret: AuthError naming the client."""
    with pytest.raises(AuthError, match="OAuth client"):
        await bearer(authenticator(token_url, secret="wrong"))


async def test_unreachable_token_endpoint_is_transient(fake: GoogleFake) -> None:
    """Nothing listens: TokenUnavailable, a TransportError the dispatcher retries; not remembered."""
    source = authenticator("http://127.0.0.1:9/token")
    for _ in range(2):
        with pytest.raises(auth.TokenUnavailable) as failed:
            await bearer(source)
        assert isinstance(failed.value, TransportError)
    assert source.refreshes == 0


async def test_slow_token_endpoint_times_out(token_url: str, fake: GoogleFake) -> None:
    """The token request is bounded by the destination's timeout, not google-auth's 120 s."""
    fake.token_delay = 1.0
    started = time.monotonic()
    with pytest.raises(auth.TokenUnavailable):
        await bearer(authenticator(token_url, timeout=0.2))
    assert time.monotonic() - started < 0.9


async def test_application_default_credentials(
    token_url: str, fake: GoogleFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADC from GOOGLE_APPLICATION_CREDENTIALS (a service account key): JWT-bearer grant, scoped."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account", "project_id": "adrouter-test", "private_key_id": "k1", "private_key": pem,
        "client_email": SERVICE_ACCOUNT, "client_id": "1", "token_uri": token_url,
    }  # fmt: skip
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    source = auth.GoogleAuthenticator(auth.default_credentials([ADS_SCOPE]))
    assert (await bearer(source)).startswith("Bearer ya29.fake-")
    assert fake.tokens[0].scope is None and fake.tokens[0].status == 200


async def test_missing_adc_is_a_permanent_auth_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ADC to be found: AuthError, not an endless retry."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(AuthError, match="Application Default Credentials"):
        await bearer(auth.GoogleAuthenticator(auth.default_credentials([DM_SCOPE])))


@pytest.mark.parametrize(("api", "scope"), [("data_manager", DM_SCOPE), ("google_ads", ADS_SCOPE)])
async def test_destination_builds_its_authenticator(
    token_url: str, fake: GoogleFake, api: str, scope: str
) -> None:
    """The destination asks for its API's scope at its token_url, and hands out one authenticator."""
    block = {
        "id": "g", "type": "google", "api": api, "customer_id": "1234567890", "conversions": {"purchase": 1},
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH,
        "token_url": token_url,
    }  # fmt: skip
    destination = GoogleDestination(GoogleDestination.parse_config(block))
    source = destination.authenticator()
    assert destination.authenticator() is source
    await bearer(source)
    assert fake.tokens[0].scope == scope
