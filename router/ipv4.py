"""IPv4 text: a canonical dotted quad is recognized by one compiled pattern; anything else is for ipaddress.

`ipaddress.ip_address` is pure Python (about 10 us for `203.0.113.50`) and the ingest and the TikTok
mapping ask it about every event's IP address. The pattern accepts only what `ipaddress.IPv4Address`
accepts in its canonical spelling (four decimal octets 0-255, no leading zeros, ASCII digits), so a
match needs no second opinion; a text it does not match (IPv6, or anything invalid) still goes to
ipaddress, which decides. tests/router/test_ipv4.py holds the pattern to ipaddress on generated texts.
"""

from __future__ import annotations

import re
from typing import Final

_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
DOTTED_QUAD: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)
"""An IPv4 address as `str(ipaddress.IPv4Address(text))` would write it."""


def is_dotted_quad(text: str) -> bool:
    """True when `text` is an IPv4 address in canonical form (then ipaddress accepts it as it is);
    False says only that ipaddress must decide."""
    return DOTTED_QUAD.fullmatch(text) is not None
