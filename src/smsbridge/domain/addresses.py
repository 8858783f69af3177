"""Which network addresses a provider URL may reach (the SSRF policy, applied at connect time).

Cloud metadata services are refused always, even when private addresses are allowed
(``SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS``): they hand out the host's cloud credentials to
whoever asks, and no SMS provider lives there.
"""

from __future__ import annotations

import ipaddress

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure IMDS, OpenStack, DO, Oracle
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task credentials
        ipaddress.ip_address("169.254.169.253"),  # AWS DNS / time services
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("168.63.129.16"),  # Azure WireServer
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud (legacy)
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
        ipaddress.ip_address("fd00:ec2::23"),  # AWS IPv6 ECS/EKS
    }
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def metadata_reason(raw: str) -> str | None:
    """Why ``raw`` is refused even where private addresses are allowed: a cloud metadata
    address (also when embedded in an IPv6 one), or None."""
    try:
        address: IPAddress = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            address = embedded
    return "cloud metadata address" if address in _METADATA else None


def blocked_reason(raw: str) -> str | None:
    """Why connecting to ``raw`` is refused, or None when it is a public address."""
    try:
        address: IPAddress = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = blocked_reason(str(embedded))
            return f"embeds {embedded}: {inner}" if inner else None
    if address in _METADATA:
        return "cloud metadata address"
    if address.is_loopback:
        return "loopback address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_link_local:
        return "link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "carrier-grade NAT address"
    if address.is_private:
        return "private address"
    if address.is_multicast or address.is_reserved:
        return "reserved address"
    return None
