"""Sources: who is sending, found from the request's bearer credential in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from router.config import Source


def bearer(authorization: str | None) -> str | None:
    """The credential in `Authorization: Bearer <credential>`, if that is the header's shape."""
    scheme, _, credential = (authorization or "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def authenticate(sources: Sequence[Source], credential: str | None) -> Source | None:
    """The source whose key or secret equals the credential; every source is compared, in constant time.
    A source with `require_signature` is never found this way: only a signature authenticates it."""
    found = _matching(sources, credential)
    return None if found is None or found.require_signature else found


def signature_only(sources: Sequence[Source], credential: str | None) -> bool:
    """Whether the credential is the secret of a source that accepts only signed requests."""
    found = _matching(sources, credential)
    return found is not None and found.require_signature


def _matching(sources: Sequence[Source], credential: str | None) -> Source | None:
    if not credential:
        return None
    found = None
    for source in sources:
        if hmac.compare_digest(source.credential.reveal().encode(), credential.encode()):
            found = source
    return found
