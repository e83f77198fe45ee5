"""The SSRF guard: which addresses an HTTP origin fetch may connect to.

The host is resolved here and the connection goes to the very address that was checked
(no second lookup a rebinding DNS server could answer differently). Every redirect hop
goes through the same check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from proxy.errors import Forbidden, OriginFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services live here; never reachable, whatever the configuration says.
ALWAYS_BLOCKED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


def _unmapped(address: IPAddress) -> IPAddress:
    """IPv4 hidden in IPv6 (mapped, 6to4, NAT64 well-known prefix) is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be fetched from, or None when it may."""
    plain = _unmapped(address)
    if any(plain in network for network in ALWAYS_BLOCKED) or plain.is_link_local:
        return "link-local (cloud metadata) addresses are never fetched"
    if plain.is_multicast or plain.is_unspecified or plain.is_reserved:
        return "multicast, unspecified and reserved addresses are never fetched"
    if plain.is_global:
        return None
    if allow_private and (plain.is_private or plain.is_loopback):
        return None
    return "private and loopback addresses are refused (sources.allow_private_networks is off)"


async def resolve_allowed(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """Resolve ``host`` to the addresses to try in order; refuse if ANY answer is bad."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OriginFailed(f"cannot resolve origin host {host!r}: {exc.strerror}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise OriginFailed(f"origin host {host!r} has no address")
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason:
            raise Forbidden(f"origin host {host!r} resolves to {address}: {reason}")
    return list(dict.fromkeys(addresses))
