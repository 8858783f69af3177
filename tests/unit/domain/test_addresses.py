"""blocked_reason: the SSRF policy applied to every address a provider URL resolves to."""

from __future__ import annotations

import pytest

from smsbridge.domain.addresses import blocked_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback address"),
        ("127.255.255.254", "loopback address"),
        ("10.1.2.3", "private address"),
        ("172.16.0.1", "private address"),
        ("172.31.255.255", "private address"),
        ("192.168.1.1", "private address"),
        ("100.64.0.1", "carrier-grade NAT address"),
        ("100.127.255.254", "carrier-grade NAT address"),
        ("0.0.0.0", "unspecified address"),
        ("169.254.169.254", "cloud metadata address"),
        ("169.254.1.1", "link-local address"),
        ("100.100.100.200", "cloud metadata address"),
        ("224.0.0.1", "reserved address"),
        ("::1", "loopback address"),
        ("::", "unspecified address"),
        ("fe80::1", "link-local address"),
        ("fe80::1%eth0", "link-local address"),
        ("fd00::1", "private address"),
        ("fc00::1", "private address"),
        ("fd00:ec2::254", "cloud metadata address"),
        ("ff02::1", "reserved address"),
        ("::ffff:127.0.0.1", "embeds 127.0.0.1: loopback address"),
        ("::ffff:10.0.0.1", "embeds 10.0.0.1: private address"),
        ("::ffff:169.254.169.254", "embeds 169.254.169.254: cloud metadata address"),
        ("::ffff:100.64.0.1", "embeds 100.64.0.1: carrier-grade NAT address"),
        ("2002:7f00:1::", "embeds 127.0.0.1: loopback address"),
        ("2002:c0a8:101::1", "embeds 192.168.1.1: private address"),
        ("64:ff9b::7f00:1", "embeds 127.0.0.1: loopback address"),
        ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254: cloud metadata address"),
    ],
)
def test_blocked_addresses(address: str, reason: str) -> None:
    assert blocked_reason(address) == reason


# Blocked whatever the reason: the standard library's special-purpose tables differ between
# Python patch releases, so only the verdict is pinned here.
@pytest.mark.parametrize("address", ["240.0.0.1", "255.255.255.255", "198.18.0.1", "2001:db8::1"])
def test_special_purpose_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(address) is not None


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700:4700::1111",
        "2a00:1450:4007:80e::200e",
        "::ffff:8.8.8.8",
        "2002:808:808::",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(address) is None


@pytest.mark.parametrize("raw", ["", "localhost", "example.com", "1.2.3", "256.0.0.1", "::g"])
def test_anything_but_an_ip_address_is_refused(raw: str) -> None:
    assert blocked_reason(raw) == "not an IP address"
