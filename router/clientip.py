"""The client's IP address, trusting exactly the configured number of proxy hops in X-Forwarded-For."""

from __future__ import annotations

import ipaddress

from router.ipv4 import is_dotted_quad


def client_ip(forwarded_for: str | None, peer: str | None, trusted_hops: int) -> str | None:
    """Each trusted proxy appends the address it saw, so the client is `trusted_hops` from the right.

    The left-most entries are whatever the client claims and are never trusted.
    """
    chain = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()]
    chain.append(peer or "")
    index = len(chain) - 1 - trusted_hops
    return _valid(chain[max(index, 0)])


def _valid(candidate: str) -> str | None:
    host = candidate[1:].split("]", maxsplit=1)[0] if candidate.startswith("[") else candidate
    if host.count(":") == 1:  # IPv4 with a port
        host = host.split(":")[0]
    if is_dotted_quad(host):
        return host  # already what str(ip_address(host)) gives
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
