"""Reason text for decisions: a platform's own words, with secrets scrubbed out, cut short.

Reasons end up in logs, metrics labels and the dead-letter table, so they carry a summary of what the
platform said, never a credential and never a whole response body.
"""

from __future__ import annotations

from typing import Final

LIMIT: Final = 200
"""Characters of platform text kept in a reason (the label in front of it is not counted)."""


def scrub(text: str, *secrets: str) -> str:
    """The text with every non-empty secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def short(text: str, *secrets: str) -> str:
    """The text with the secrets scrubbed out, then cut to LIMIT (so no secret survives in part)."""
    return scrub(text, *secrets)[:LIMIT]


def reason(label: str, text: str, *secrets: str) -> str:
    """`<label>: <short text>`, or the bare label when there is no text."""
    text = short(text, *secrets)
    return f"{label}: {text}" if text else label
