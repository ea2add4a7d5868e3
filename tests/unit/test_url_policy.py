"""`kernel.bindings.url_policy`: which URLs may be fetched for URL documents, and their normal form."""

from __future__ import annotations

import ipaddress

import pytest

from kernel.bindings.ports import OUTBOUND_REASONS, OutboundError
from kernel.bindings.url_policy import (
    check_resolved,
    check_url,
    is_public_ip,
    parse_ipv4,
    redirect_target,
)

ACCEPTED = [
    ("https://example.com", "https://example.com/"),
    ("http://example.com/a/b?x=1&y=2", "http://example.com/a/b?x=1&y=2"),
    ("HTTPS://Docs.Example.COM:443/Path#frag", "https://docs.example.com/Path"),
    ("http://example.com:80/", "http://example.com/"),
    ("http://example.com:8080/x", "http://example.com:8080/x"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("http://example.com:443/", "http://example.com:443/"),
    ("  https://example.com/trimmed  ", "https://example.com/trimmed"),
    ("https://example.com./", "https://example.com/"),
    ("https://bücher.ch/straße", "https://xn--bcher-kva.ch/stra%C3%9Fe"),
    ("https://example.com/?q=ü", "https://example.com/?q=%C3%BC"),
    ("https://example.com/already%20encoded", "https://example.com/already%20encoded"),
    ("http://93.184.216.34/", "http://93.184.216.34/"),
    ("http://0x5db8d822/", "http://93.184.216.34/"),  # hex integer form of a public address
    ("http://1572395042/", "http://93.184.216.34/"),  # decimal integer form
    (
        "http://[2606:2800:220:1:248:1893:25c8:1946]/",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/",
    ),
    ("http://[2606:2800:0220:0001::1]:8080/", "http://[2606:2800:220:1::1]:8080/"),
    ("https://sub_domain.example.com/", "https://sub_domain.example.com/"),
]

REJECTED = [
    # scheme
    ("ftp://example.com/f", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("data:text/html,hi", "scheme"),
    ("example.com/no-scheme", "scheme"),
    ("//example.com/", "scheme"),
    # malformed, credentials, ports
    ("", "invalid_url"),
    ("http://", "invalid_url"),
    ("http:///path", "invalid_url"),
    ("http://user@example.com/", "invalid_url"),
    ("http://user:pass@example.com/", "invalid_url"),
    ("http://example.com@127.0.0.1/", "invalid_url"),
    ("http://example.com:22/", "invalid_url"),
    ("http://example.com:0/", "invalid_url"),
    ("http://example.com:6379/", "invalid_url"),
    ("http://example.com:99999/", "invalid_url"),
    ("http://example.com:http/", "invalid_url"),
    ("http://example.com/a b", "invalid_url"),
    ("http://exa\tmple.com/", "invalid_url"),
    ("http://example.com\\@127.0.0.1/", "invalid_url"),
    ("http://ex%00ample.com/", "invalid_url"),
    ("http://%ff.example.com/", "invalid_url"),
    ("http://exa$mple.com/", "invalid_url"),
    ("http://[::1/", "invalid_url"),
    ("http://[not-v6]/", "invalid_url"),
    ("http://256.1.1.1/", "invalid_url"),
    ("http://1.2.3.4.5/", "invalid_url"),
    ("http://1.2.3.08/", "invalid_url"),
    ("http://example.0x7f/", "invalid_url"),
    ("http://" + "a" * 64 + ".com/", "invalid_url"),  # label too long for DNS
    ("https://example.com/" + "x" * 3000, "invalid_url"),
    # IPv4 literals outside the public unicast space, in every spelling
    ("http://127.0.0.1/", "private_address"),
    ("http://127.0.0.1./", "private_address"),
    ("http://127.1/", "private_address"),
    ("http://2130706433/", "private_address"),
    ("http://0x7f000001/", "private_address"),
    ("http://0x7f.1/", "private_address"),
    ("http://0177.0.0.1/", "private_address"),
    ("http://0x7F.0.0.1/", "private_address"),
    ("http://%31%32%37.0.0.1/", "private_address"),
    ("http://１２７.０.０.１/", "private_address"),  # full-width digits (IDNA maps them)
    ("http://127。0。0。1/", "private_address"),  # ideographic full stops
    ("http://0/", "private_address"),
    ("http://0.0.0.0/", "private_address"),
    ("http://10.1.2.3/", "private_address"),
    ("http://172.16.0.1/", "private_address"),
    ("http://192.168.1.1:8080/", "private_address"),
    ("http://169.254.169.254/latest/meta-data/", "private_address"),
    ("http://100.64.0.1/", "private_address"),  # carrier-grade NAT
    ("http://192.0.2.1/", "private_address"),  # documentation
    ("http://198.18.0.1/", "private_address"),  # benchmarking
    ("http://224.0.0.1/", "private_address"),  # multicast
    ("http://240.0.0.1/", "private_address"),  # reserved
    ("http://255.255.255.255/", "private_address"),
    # IPv6 literals, including IPv4 wrapped in IPv6
    ("http://[::1]/", "private_address"),
    ("http://[::]/", "private_address"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "private_address"),
    ("http://[fe80::1]/", "private_address"),
    ("http://[fe80::1%25eth0]/", "private_address"),
    ("http://[fc00::1]/", "private_address"),
    ("http://[fd12:3456::1]/", "private_address"),
    ("http://[fec0::1]/", "private_address"),  # deprecated site-local
    ("http://[ff02::1]/", "private_address"),
    ("http://[2001:db8::1]/", "private_address"),
    ("http://[::ffff:127.0.0.1]/", "private_address"),
    ("http://[::ffff:7f00:1]/", "private_address"),
    ("http://[::ffff:10.0.0.1]/", "private_address"),
    ("http://[::127.0.0.1]/", "private_address"),  # IPv4-compatible
    ("http://[64:ff9b::a9fe:a9fe]/", "private_address"),  # NAT64 of 169.254.169.254
    ("http://[2002:7f00:1::]/", "private_address"),  # 6to4 of 127.0.0.1
    ("http://[2002:a00:1::]/", "private_address"),  # 6to4 of 10.0.0.1
    # names that cannot be public
    ("http://localhost/", "private_address"),
    ("http://LOCALHOST:8080/", "private_address"),
    ("http://localhost./", "private_address"),
    ("http://ｌｏｃａｌｈｏｓｔ/", "private_address"),
    ("http://api.localhost/", "private_address"),
    ("http://printer.local/", "private_address"),
    ("http://metadata.google.internal/", "private_address"),
    ("http://box.localdomain/", "private_address"),
    ("http://router.home.arpa/", "private_address"),
    ("http://intranet/", "private_address"),
    ("http://metadata/", "private_address"),
]


@pytest.mark.parametrize(("url", "normal"), ACCEPTED)
def test_accepted(url: str, normal: str) -> None:
    assert check_url(url) == normal
    assert check_url(normal) == normal  # idempotent


@pytest.mark.parametrize(("url", "reason"), REJECTED)
def test_rejected(url: str, reason: str) -> None:
    with pytest.raises(OutboundError) as info:
        check_url(url)
    err = info.value
    assert err.reason == reason
    assert err.reason in OUTBOUND_REASONS
    message = str(err)
    assert message
    if reason == "private_address":
        assert "public" in message  # explains what *is* allowed
    if reason == "scheme":
        assert "http and https" in message


def test_credentials_never_echoed() -> None:
    with pytest.raises(OutboundError) as info:
        check_url("https://alice:hunter2@example.com/")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("10.0x10.0", "10.16.0.0"),
        ("192.168.257", "192.168.1.1"),
        ("0x", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
    ],
)
def test_parse_ipv4_legacy_forms(host: str, address: str) -> None:
    assert parse_ipv4(host) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize("host", ["example.com", "127.0.0.1.example.com", "0x7f.com", "a-1"])
def test_parse_ipv4_leaves_names_alone(host: str) -> None:
    assert parse_ipv4(host) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("1.1.1.1", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("::ffff:192.168.0.1", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo: not global (conservative)
    ],
)
def test_is_public_ip(address: str, public: bool) -> None:
    assert is_public_ip(ipaddress.ip_address(address)) is public


def test_check_resolved() -> None:
    url = "https://docs.example.com/"
    assert [str(a) for a in check_resolved(url, "docs.example.com", ["93.184.216.34"])] == [
        "93.184.216.34"
    ]
    for answers in (["10.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::1"], ["fe80::1%eth0"]):
        with pytest.raises(OutboundError) as info:
            check_resolved(url, "docs.example.com", answers)
        assert info.value.reason == "private_address"
    for answers in ([], ["not-an-ip"]):
        with pytest.raises(OutboundError) as info:
            check_resolved(url, "docs.example.com", answers)
        assert info.value.reason == "network"


def test_redirect_target() -> None:
    base = "https://docs.example.com/a/b.html"
    assert redirect_target(base, "c.html", 302) == "https://docs.example.com/a/c.html"
    assert redirect_target(base, "/x", 301) == "https://docs.example.com/x"
    assert redirect_target(base, "//other.example.org/y", 307) == "https://other.example.org/y"
    for location, reason in [
        ("http://127.0.0.1/", "private_address"),
        ("ftp://x.example.com/", "scheme"),
        (None, "http_status"),
        ("", "http_status"),
    ]:
        with pytest.raises(OutboundError) as info:
            redirect_target(base, location, 302)
        assert info.value.reason == reason


def test_unknown_reason_is_a_bug() -> None:
    with pytest.raises(ValueError):
        OutboundError("nope")
