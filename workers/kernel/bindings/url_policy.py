"""Which URLs edgerag may fetch on a tenant's behalf (SSRF policy). Pure Python, Pyodide-safe.

`check_url` normalises a URL and refuses, with `kernel.bindings.ports.OutboundError`:

- schemes other than http/https                                    -> reason "scheme"
- malformed URLs, credentials (`user:pass@`), control characters or
  backslashes, and ports other than 80, 443, 8080, 8443             -> reason "invalid_url"
- hosts that are IP literals outside the public unicast space: private, loopback,
  link-local, CGNAT, reserved, multicast, unspecified, documentation ranges, in any
  spelling a browser or `inet_aton` accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`,
  `%31%32%37.0.0.1`, full-width digits, `[::ffff:127.0.0.1]`, 6to4/NAT64/Teredo wrappers)
- hostnames that cannot be public: `localhost`, `*.localhost`, `*.local`, `*.internal`,
  `*.localdomain`, `*.home.arpa` and single-label names (`http://intranet/`)
                                                                   -> reason "private_address"

Hostnames are only checked by name here: resolving them needs DNS, which is the adapter's
job (`check_resolved` is the shared half of that check). The same function is applied to
every redirect hop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import quote, unquote, urljoin, urlsplit

from kernel.bindings.ports import OutboundError

ALLOWED_SCHEMES = frozenset({"http", "https"})
ALLOWED_PORTS = frozenset({80, 443, 8080, 8443})
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048

# Special-use names (RFC 6761 localhost, RFC 6762 local, RFC 8375 home.arpa, ICANN's 2024
# reservation of .internal) and the customary `localdomain`.
PRIVATE_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa")

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPAT = ipaddress.ip_network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _invalid(url: str, why: str) -> OutboundError:
    return OutboundError("invalid_url", f"invalid URL: {why}", url=url)


def _private(url: str, why: str) -> OutboundError:
    return OutboundError(
        "private_address",
        f"refusing to fetch {why}: only public internet addresses can be fetched",
        url=url,
    )


# --- IP literals -------------------------------------------------------------------------------
def _looks_numeric(part: str) -> bool:
    """WHATWG's "ends in a number": all digits, or 0x followed by hex digits."""
    if part[:2].lower() == "0x":
        return all(c in "0123456789abcdefABCDEF" for c in part[2:])
    return bool(part) and part.isascii() and part.isdigit()


def _ipv4_part(part: str) -> int | None:
    """One dotted part as `inet_aton`/WHATWG read it: decimal, 0x-hex or 0-leading octal."""
    if not _looks_numeric(part):
        return None
    try:
        if part[:2].lower() == "0x":
            return int(part[2:], 16) if len(part) > 2 else 0
        if len(part) > 1 and part[0] == "0":
            return int(part[1:], 8)
        return int(part, 10)
    except ValueError:  # 08, 09: not octal
        return None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` as an IPv4 address in any legacy spelling, None if it is not numeric.

    Raises ValueError for hosts that *look* numeric but are out of range (browsers reject
    those too, e.g. `256.1.1.1` or `example.0x7f`).
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot is allowed
    if not _looks_numeric(parts[-1]):
        return None  # a domain name (WHATWG: the last label decides)
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers) or len(numbers) > 4:
        raise ValueError("a host whose last label is a number must be an IPv4 address")
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(values)):
        raise ValueError("IPv4 address out of range")
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (5 - len(values)) + last
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPAT and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public_ip(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses (and their v6 wrappings)."""
    if (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        return all(is_public_ip(v4) for v4 in _embedded_ipv4(ip))
    return True


def _ip_literal(host: str) -> IPAddress | None:
    """The address if `host` (already lower-cased, brackets removed) is an IP literal."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return parse_ipv4(host)


def is_private_hostname(host: str) -> bool:
    name = host.rstrip(".")
    if "." not in name:
        return True  # single label: resolved through search domains, never public
    return any(name == s or name.endswith("." + s) for s in PRIVATE_SUFFIXES)


# --- URLs ----------------------------------------------------------------------------------------
def check_url(url: str) -> str:
    """The normalised URL if edgerag may fetch it; raises `OutboundError` otherwise.

    Normal form: lower-case scheme and host, IDNA (punycode) host, IPv4 literals in dotted
    decimal, default port dropped, empty path as `/`, fragment removed, non-ASCII in the
    path and query percent-encoded.
    """
    if not isinstance(url, str) or not url.strip():
        raise _invalid(str(url), "empty")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(url[:80] + "…", f"longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise _invalid(url, "contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)  # validates bracketed IPv6 hosts itself (3.11.4+)
    except ValueError as exc:
        raise _invalid(url, "malformed host") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        what = f"unsupported URL scheme {scheme!r}" if scheme else "the URL has no scheme"
        raise OutboundError("scheme", f"{what}: only http and https URLs can be fetched", url=url)
    netloc = parts.netloc
    if "@" in netloc:
        raise _invalid(url, "credentials (user:password@) are not allowed in URLs")
    if not netloc:
        raise _invalid(url, "no host")

    # Split host and port ourselves: urlsplit's .port raises on garbage, .hostname drops info.
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise _invalid(url, "unterminated IPv6 literal")
        raw_host, rest = netloc[1:end], netloc[end + 1 :]
        bracketed = True
    else:
        raw_host, sep, port_text = netloc.partition(":")
        rest = sep + port_text
        bracketed = False
    if rest and not rest.startswith(":"):
        raise _invalid(url, "junk after the host")
    port_text = rest[1:]
    if port_text and not port_text.isdigit():
        raise _invalid(url, f"port {port_text!r} is not a number")
    port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
    if port not in ALLOWED_PORTS:
        raise _invalid(url, f"port {port} is not allowed (only 80, 443, 8080 and 8443)")

    try:  # browsers percent-decode hosts; zone ids in IPv6 literals arrive as %25
        host = unquote(raw_host, errors="strict")
    except UnicodeDecodeError as exc:
        raise _invalid(url, "the host name is not valid UTF-8") from exc
    if bracketed:
        try:
            ip: IPAddress | None = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise _invalid(url, "bad IPv6 literal") from exc
    else:
        if not host:
            raise _invalid(url, "no host")
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise _invalid(url, "the host name is not a valid domain name") from exc
        if not set(host) <= _HOST_CHARS:
            raise _invalid(url, "the host name contains characters that are not allowed")
        try:
            ip = _ip_literal(host)
        except ValueError as exc:
            raise _invalid(url, str(exc)) from exc

    if ip is not None:
        if not is_public_ip(ip):
            raise _private(url, f"the non-public address {ip}")
        host_out = f"[{ip.compressed}]" if ip.version == 6 else str(ip)
    else:
        host = host.rstrip(".")
        if is_private_hostname(host):
            raise _private(url, f"the local host name {host!r}")
        host_out = host

    netloc_out = host_out if port == DEFAULT_PORTS[scheme] else f"{host_out}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    query = quote(parts.query, safe=_PATH_SAFE + "?")
    return f"{scheme}://{netloc_out}{path}" + (f"?{query}" if query else "")


def host_of(url: str) -> str:
    """The host of a URL normalised by `check_url` (brackets removed from IPv6)."""
    host = urlsplit(url).hostname
    if not host:
        raise _invalid(url, "no host")
    return host


def check_resolved(url: str, host: str, addresses: Iterable[str]) -> list[IPAddress]:
    """Refuse a host that resolved to no address or to any non-public one (DNS-based SSRF).

    All addresses must be public, not just one: the connection may use any of them.
    """
    parsed: list[IPAddress] = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError as exc:
            raise OutboundError("network", f"could not resolve host {host!r}", url=url) from exc
        if not is_public_ip(ip):
            raise _private(url, f"the host {host!r}, which resolves to a non-public address")
        parsed.append(ip)
    if not parsed:
        raise OutboundError("network", f"could not resolve host {host!r}", url=url)
    return parsed


# --- shared failure messages (both adapters word them the same) --------------------------------
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def check_fetch_args(max_bytes: int, timeout_s: float, max_redirects: int) -> None:
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    if not timeout_s > 0:
        raise ValueError("timeout_s must be positive")
    if max_redirects < 0:
        raise ValueError("max_redirects must be >= 0")


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def too_large_error(url: str, max_bytes: int) -> OutboundError:
    return OutboundError(
        "too_large", f"the document at {url} is larger than the {_size(max_bytes)} limit", url=url
    )


def timeout_error(url: str, timeout_s: float) -> OutboundError:
    return OutboundError(
        "timeout", f"{url} did not answer completely within {timeout_s:g} s", url=url
    )


def http_status_error(url: str, status: int, why: str = "") -> OutboundError:
    detail = f" ({why})" if why else ""
    return OutboundError(
        "http_status", f"{url} answered HTTP {status}{detail}", url=url, status=status
    )


def redirects_error(url: str, max_redirects: int) -> OutboundError:
    return OutboundError("redirects", f"{url} redirected more than {max_redirects} times", url=url)


def network_error(url: str, why: str) -> OutboundError:
    return OutboundError("network", f"could not fetch {url}: {why}", url=url)


def redirect_target(current: str, location: str | None, status: int) -> str:
    """The checked next hop of a redirect answered by `current`."""
    if not location:
        raise http_status_error(current, status, "a redirect without a Location header")
    return check_url(urljoin(current, location.strip()))
