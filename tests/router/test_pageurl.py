"""Page URLs keep everything but the query parameters that carry an email address."""

from __future__ import annotations

import pytest

from router.pageurl import without_emails


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://s.example/p?fbclid=Ab-_%2F", "https://s.example/p?fbclid=Ab-_%2F"),
        ("https://s.example/t?email=jane%40example.com&x=1", "https://s.example/t?x=1"),
        ("https://s.example/t?e=jane@example.com", "https://s.example/t"),
        ("https://s.example/t?u=jane%2Bx%40example.co.uk#frag", "https://s.example/t#frag"),
        ("https://user:pw@s.example/?a=b", "https://user:pw@s.example/?a=b"),
        ("https://s.example/t?note=at%40home", "https://s.example/t?note=at%40home"),
    ],
)
def test_emails_are_removed_from_query_strings(url: str, expected: str) -> None:
    """Only pairs whose decoded value holds an email go; others stay byte for byte."""
    assert without_emails(url) == expected
