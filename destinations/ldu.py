"""Limited data use (US state privacy laws): the per-destination policy Meta, TikTok, Snap, Reddit and
Pinterest share; each platform spells the flag its own way."""

from __future__ import annotations

from typing import Literal, TypeAlias

from destinations.base import Event
from destinations.rows import lookup

Policy: TypeAlias = Literal["from_consent", "always", "never"]
"""`always` and `never` decide for every event; `from_consent` follows the event's `consent.ldu`."""


def applies(policy: Policy, event: Event) -> bool:
    """Whether the event goes out flagged for limited data use under the policy."""
    return policy == "always" or (policy == "from_consent" and lookup(event, "consent.ldu") is True)
