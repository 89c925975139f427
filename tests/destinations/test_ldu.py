"""Limited data use: always, never, or as the event's consent.ldu says."""

from __future__ import annotations

import pytest

from destinations.ldu import Policy, applies


@pytest.mark.parametrize(
    ("policy", "consent", "flagged"),
    [
        ("always", None, True),
        ("never", {"ldu": True}, False),
        ("from_consent", {"ldu": True}, True),
        ("from_consent", {"ldu": False}, False),
        ("from_consent", {"ldu": "true"}, False),
        ("from_consent", None, False),
    ],
)
def test_policy_and_consent_decide(policy: Policy, consent: dict[str, object] | None, flagged: bool) -> None:
    """Only a boolean true consent.ldu flags an event under from_consent."""
    assert applies(policy, {"consent": consent}) is flagged
