"""Server-source request signatures: HMAC-SHA256 over `timestamp + "." + body`, skew window, replay cache."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Final

from router.config import Source

TIMESTAMP_HEADER: Final = "x-router-timestamp"
SIGNATURE_HEADER: Final = "x-router-signature"
WINDOW_SECONDS: Final = 300.0
"""How far the signed timestamp may be from the router's clock, either way."""
PREFIX: Final = "sha256="
TIMESTAMP: Final = re.compile(r"^[0-9]{1,12}$")
SIGNATURE: Final = re.compile(r"^sha256=[0-9a-f]{64}$")
MAX_REMEMBERED: Final = 1_000_000
"""A bound on the replay cache; past it the oldest signatures are forgotten first."""


def is_signed(headers: Mapping[str, str]) -> bool:
    """Whether the request carries a signature header (then the signature alone authenticates it)."""
    return SIGNATURE_HEADER in headers or TIMESTAMP_HEADER in headers


class Refused(Exception):
    """The signature does not authenticate the request; `code` and `message` say why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Router-Signature` value for a body sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def verify(
    sources: Sequence[Source],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    window: float = WINDOW_SECONDS,
) -> Source:
    """The server source whose secret signed `timestamp.body`; raises Refused. Every server source is
    compared, in constant time, so the time taken does not tell which secret came close."""
    if timestamp is None or not TIMESTAMP.match(timestamp):
        raise Refused("bad_timestamp", f"send {TIMESTAMP_HEADER} as the signing time in Unix seconds")
    if abs(now - int(timestamp)) > window:
        raise Refused(
            "expired_signature",
            f"the signed timestamp is more than {int(window)} seconds from the router's clock; "
            "sign again with the current time (and check the sender's clock)",
        )
    if signature is None or not SIGNATURE.match(signature.strip().lower()):
        raise Refused("bad_signature", f"send {SIGNATURE_HEADER} as sha256=<64 hex digits>")
    sent = signature.strip().lower().encode()
    found = None
    for source in sources:
        if source.kind != "server":
            continue
        expected = sign(source.credential.reveal(), int(timestamp), body).encode()
        if hmac.compare_digest(expected, sent):
            found = source
    if found is None:
        raise Refused(
            "unauthorized",
            'the signature matches no server source: sign "<timestamp>.<raw body>" with HMAC-SHA256 '
            "and the source's secret",
        )
    return found


class ReplayCache:
    """Signatures seen in the last window, per process: a second use of one is a replay.

    Each entry lives as long as its signature could still pass the skew check (timestamp + window).
    Several router instances do not share it: there the queue's event_id idempotency is the second
    line, so a replay sent to another instance stores nothing new."""

    def __init__(self, window: float = WINDOW_SECONDS, limit: int = MAX_REMEMBERED) -> None:
        self.window, self.limit = window, limit
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []

    def seen(self, signature: str, timestamp: int, now: float) -> bool:
        """Whether the signature was already used; records it otherwise."""
        self._forget(now)
        key = signature.strip().lower()
        if key in self._seen:
            return True
        while len(self._seen) >= self.limit:
            self._seen.discard(heapq.heappop(self._expiry)[1])
        self._seen.add(key)
        heapq.heappush(self._expiry, (max(timestamp + self.window, now), key))
        return False

    def _forget(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] < now:
            self._seen.discard(heapq.heappop(self._expiry)[1])

    def __len__(self) -> int:
        return len(self._seen)


def authenticate(
    sources: Sequence[Source],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    replays: ReplayCache,
) -> Source:
    """The server source that signed this request, once: verify, then refuse a signature seen before."""
    source = verify(sources, timestamp, signature, body, now=now, window=replays.window)
    assert timestamp is not None and signature is not None  # verify refused them otherwise
    if replays.seen(signature, int(timestamp), now):
        raise Refused(
            "replayed_signature",
            "this signature was already used; sign every request anew with the current time",
        )
    return source
