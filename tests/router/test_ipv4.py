"""IPv4 fast path: the compiled pattern accepts only what ipaddress accepts, as ipaddress writes it."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from destinations.tiktok.fields import is_ip
from router.clientip import client_ip
from router.ipv4 import is_dotted_quad


def ipaddress_canonical(text: str) -> bool:
    """The oracle: ipaddress takes `text` as IPv4 and writes it back unchanged."""
    try:
        return str(ipaddress.IPv4Address(text)) == text
    except ValueError:
        return False


octet_texts = st.one_of(
    st.integers(0, 255).map(str),
    st.integers(0, 999).map(str),
    st.integers(0, 255).map(lambda n: f"0{n}"),
    st.text(alphabet="0123456789٣ +-x", min_size=0, max_size=4),
)
quads = st.lists(octet_texts, min_size=3, max_size=5).map(".".join)
near_misses = st.text(alphabet="0123456789.:abcdef \n٣", max_size=20)


@given(st.one_of(quads, near_misses, st.ip_addresses().map(str)))
def test_a_match_is_an_address_ipaddress_writes_the_same(text: str) -> None:
    if is_dotted_quad(text):
        assert ipaddress_canonical(text)


@given(st.ip_addresses(v=4))
def test_every_ipv4_address_in_its_canonical_form_matches(address: ipaddress.IPv4Address) -> None:
    assert is_dotted_quad(str(address))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.50", True),
        ("0.0.0.0", True),
        ("255.255.255.255", True),
        ("256.1.1.1", False),
        ("01.2.3.4", False),  # ipaddress refuses leading zeros
        ("1.2.3", False),
        ("1.2.3.4.5", False),
        ("1.2.3.4\n", False),
        (" 1.2.3.4", False),
        ("1.2.3.٤", False),  # a non-ASCII digit
        ("::1", False),  # IPv6: ipaddress decides
    ],
)
def test_cases(text: str, expected: bool) -> None:
    assert is_dotted_quad(text) is expected
    if expected:
        assert ipaddress_canonical(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("203.0.113.50", True), ("2001:db8::1", True), ("01.2.3.4", False), ("256.0.0.1", False), ("", False)],
)
def test_tiktok_is_ip_agrees_with_ipaddress(text: str, expected: bool) -> None:
    assert is_ip(text) is expected


@pytest.mark.parametrize(
    ("peer", "expected"),
    [("203.0.113.50", "203.0.113.50"), ("203.0.113.50:443", "203.0.113.50"), ("2001:DB8::1", "2001:db8::1")],
)
def test_client_ip_keeps_its_canonical_form(peer: str, expected: str) -> None:
    assert client_ip(None, peer, 0) == expected
