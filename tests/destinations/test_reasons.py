"""Reason text: secrets scrubbed before the cut, the platform's text cut to the limit."""

from __future__ import annotations

from destinations.reasons import LIMIT, reason, scrub, short


def test_scrub_replaces_every_secret_and_ignores_empty_ones() -> None:
    """Each non-empty secret becomes ***; an empty secret changes nothing."""
    assert scrub("token abc, quoted a%2Bc", "abc", "a%2Bc", "") == "token ***, quoted ***"


def test_short_scrubs_before_cutting() -> None:
    """A secret straddling the limit is scrubbed whole, not cut in half and leaked."""
    text = "x" * (LIMIT - 3) + "secret"
    assert short(text, "secret") == "x" * (LIMIT - 3) + "***"


def test_reason_is_the_bare_label_without_text() -> None:
    """`label: text` with text, the label alone without."""
    assert reason("Meta 190", "bad token", "token") == "Meta 190: bad ***"
    assert reason("Meta 190", "") == "Meta 190"
    assert len(reason("L", "y" * 1000)) == len("L: ") + LIMIT
