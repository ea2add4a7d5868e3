"""Outbound fetch emulator: `kernel.bindings.ports.Outbound` on httpx, with the SSRF policy enforced.

Stricter than the Cloudflare adapter where CPython allows it: host names are resolved
(`socket.getaddrinfo` in a thread, or an injected resolver) and refused when *any* address
is not public, and the connection is then pinned to the checked address (the request goes
to the IP, with the original `Host` header and TLS SNI), so a second DNS answer cannot
swap in a private address between check and connect. Every redirect hop is re-checked;
the body is streamed and abandoned as soon as it passes the cap (counted after content
decoding, so a gzip bomb stops early too); one deadline covers DNS, all hops and the body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from kernel.bindings.ports import FetchedResource, OutboundError
from kernel.bindings.url_policy import (
    REDIRECT_STATUSES,
    check_fetch_args,
    check_resolved,
    check_url,
    http_status_error,
    network_error,
    redirect_target,
    redirects_error,
    timeout_error,
    too_large_error,
)

Resolver = Callable[[str], list[str]]

_HEADERS = {
    "user-agent": "edgerag-fetch/0.1 (emulator)",
    "accept": "text/html, application/xhtml+xml, application/pdf, text/markdown, text/plain, "
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document;q=0.9, */*;q=0.1",
}


def system_resolver(host: str) -> list[str]:
    """Every address `host` resolves to (blocking; run it in a thread)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Borrowed(httpx.AsyncBaseTransport):
    """An injected transport, shielded from the per-fetch client's `aclose`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)


class EmulatedOutbound:
    """`kernel.bindings.ports.Outbound` for the local mesh. Inject `transport` (e.g. an
    `httpx.MockTransport`) and `resolver` in tests so nothing leaves the process."""

    adapter_kind = "emulator"  # kernel.bindings.env passes emulator ports through unwrapped

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._transport = transport
        self._resolver = resolver or system_resolver

    async def fetch(
        self, url: str, *, max_bytes: int, timeout_s: float, max_redirects: int = 5
    ) -> FetchedResource:
        check_fetch_args(max_bytes, timeout_s, max_redirects)
        start = check_url(url)
        hop = [start]  # the URL being fetched when the deadline hits
        try:
            async with asyncio.timeout(timeout_s):
                return await self._fetch(start, hop, max_bytes, timeout_s, max_redirects)
        except TimeoutError as exc:
            raise timeout_error(hop[0], timeout_s) from exc

    async def _fetch(
        self, start: str, hop: list[str], max_bytes: int, timeout_s: float, max_redirects: int
    ) -> FetchedResource:
        transport = (
            _Borrowed(self._transport)
            if self._transport is not None
            else httpx.AsyncHTTPTransport(retries=0)
        )
        async with httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,  # no proxies from the environment: they would bypass pinning
            timeout=httpx.Timeout(timeout_s),
        ) as client:
            current = start
            for _ in range(max_redirects + 1):
                hop[0] = current
                request = await self._pinned_request(client, current)
                try:
                    response = await client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise timeout_error(current, timeout_s) from exc
                except httpx.HTTPError as exc:
                    raise network_error(current, str(exc) or type(exc).__name__) from exc
                try:
                    status = response.status_code
                    if status in REDIRECT_STATUSES:
                        current = redirect_target(current, response.headers.get("location"), status)
                        continue
                    if not 200 <= status < 300:
                        raise http_status_error(current, status)
                    body = await _read_capped(response, max_bytes, current, timeout_s)
                    return FetchedResource(
                        url=start,
                        final_url=current,
                        status=status,
                        content_type=response.headers.get("content-type"),
                        body=body,
                    )
                finally:
                    await response.aclose()
        raise redirects_error(start, max_redirects)

    async def _pinned_request(self, client: httpx.AsyncClient, url: str) -> httpx.Request:
        """A request for `url` that connects to an address checked by the policy."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
        except ValueError:  # a name: resolve it and check every address
            try:
                found = await asyncio.to_thread(self._resolver, host)
            except OSError as exc:
                raise OutboundError("network", f"could not resolve host {host!r}", url=url) from exc
            address = check_resolved(url, host, found)[0]
        literal = f"[{address.compressed}]" if address.version == 6 else str(address)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        headers = {**_HEADERS, "host": parts.netloc}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return client.build_request("GET", target, headers=headers, extensions=extensions)


async def _read_capped(
    response: httpx.Response, max_bytes: int, url: str, timeout_s: float
) -> bytes:
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large_error(url, max_bytes)
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > max_bytes:
                raise too_large_error(url, max_bytes)
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise timeout_error(url, timeout_s) from exc
    except httpx.HTTPError as exc:
        raise network_error(url, str(exc) or type(exc).__name__) from exc
    return b"".join(chunks)
