"""The outbound-fetch contract against both adapters, over an in-process fake upstream.

- `emulator.outbound.EmulatedOutbound` with an `httpx.MockTransport` and a fake resolver
  (`docs.example.com` "resolves" to 93.184.216.34, which is never contacted: the mock answers).
- `kernel.bindings.cloudflare.CloudflareOutbound` with a fake of the SDK's `fetch` (manual redirects,
  an abort signal, a JS-style body reader) serving the same routes, so its glue is checked
  on CPython; the real `fetch` only exists in Pyodide.

Plus emulator-only behaviour: DNS checks, connection pinning, streaming abort, decoding.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from emulator.outbound import EmulatedOutbound, system_resolver
from kernel.bindings.cloudflare import CloudflareOutbound
from tests.contract.outbound_contract import (
    CAP,
    DOC_HTML,
    ROUTES,
    TIMEOUT,
    UPSTREAM_BASE,
    UPSTREAM_HOST,
    OutboundContract,
)

PUBLIC_IP = "93.184.216.34"
FAKE_DNS: dict[str, list[str]] = {
    UPSTREAM_HOST: [PUBLIC_IP],
    "rebind.example.net": ["10.0.0.7"],
    "mixed.example.net": [PUBLIC_IP, "127.0.0.1"],
    "v6private.example.net": ["fd00::1"],
}


def fake_resolver(host: str) -> list[str]:
    try:
        return FAKE_DNS[host]
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


@dataclass
class FakeUpstream:
    """Serves `ROUTES`; records the path of every request and how many chunks it streamed."""

    requests: list[str] = field(default_factory=list)
    seen: list[httpx.Request] = field(default_factory=list)
    chunks_sent: int = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        self.seen.append(request)
        route = ROUTES.get(request.url.path)
        if route is None:
            return httpx.Response(404)
        if route.delay_s:
            await asyncio.sleep(route.delay_s)
        headers = list(route.headers)
        if not route.chunks:
            return httpx.Response(route.status, headers=headers, content=route.body)

        async def stream() -> AsyncIterator[bytes]:
            for i in range(route.chunks):
                if i == 1 and route.body_delay_s:
                    await asyncio.sleep(route.body_delay_s)
                self.chunks_sent += 1
                yield route.body

        return httpx.Response(route.status, headers=headers, content=stream())


class TestEmulatedOutbound(OutboundContract):
    @pytest.fixture
    def upstream(self) -> FakeUpstream:
        return FakeUpstream()

    @pytest.fixture
    def outbound(self, upstream: FakeUpstream) -> EmulatedOutbound:
        return EmulatedOutbound(httpx.MockTransport(upstream), resolver=fake_resolver)

    async def test_adapter_kind(self, outbound: EmulatedOutbound) -> None:
        assert EmulatedOutbound.adapter_kind == "emulator"

    async def test_connection_is_pinned_to_the_checked_address(
        self, outbound: EmulatedOutbound, upstream: FakeUpstream
    ) -> None:
        await self.fetch(outbound, "/doc.html")
        (request,) = upstream.seen
        assert request.url.host == PUBLIC_IP
        assert request.headers["host"] == UPSTREAM_HOST
        assert request.extensions["sni_hostname"] == UPSTREAM_HOST
        assert "edgerag" in request.headers["user-agent"]

    @pytest.mark.parametrize(
        "host", ["rebind.example.net", "mixed.example.net", "v6private.example.net"]
    )
    async def test_names_resolving_to_private_addresses_are_refused(
        self, outbound: EmulatedOutbound, upstream: FakeUpstream, host: str
    ) -> None:
        err = await self.refused(outbound, f"https://{host}/doc.html")
        assert err.reason == "private_address"
        assert host in str(err)
        assert "10.0.0.7" not in str(err)  # resolved addresses are not disclosed
        assert upstream.requests == []

    async def test_unresolvable_host(self, outbound: EmulatedOutbound) -> None:
        err = await self.refused(outbound, "https://nowhere.example.org/")
        assert err.reason == "network"

    async def test_transport_failure_is_network(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        outbound = EmulatedOutbound(httpx.MockTransport(refuse), resolver=fake_resolver)
        err = await self.refused(outbound, "/doc.html")
        assert err.reason == "network"

    async def test_stream_is_abandoned_at_the_cap(
        self, outbound: EmulatedOutbound, upstream: FakeUpstream
    ) -> None:
        await self.refused(outbound, "/big-stream")
        assert upstream.chunks_sent <= CAP // 8192 + 2  # not the 10 000 on offer

    async def test_cap_counts_decoded_bytes(self) -> None:
        bomb = gzip.compress(b"\0" * (CAP * 20))
        assert len(bomb) < CAP

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-encoding": "gzip"}, content=bomb)

        outbound = EmulatedOutbound(httpx.MockTransport(handler), resolver=fake_resolver)
        assert (await self.refused(outbound, "/bomb")).reason == "too_large"

    async def test_slow_resolver_counts_against_the_deadline(self) -> None:
        def stuck(host: str) -> list[str]:
            import time

            time.sleep(TIMEOUT * 3)
            return [PUBLIC_IP]

        outbound = EmulatedOutbound(httpx.MockTransport(FakeUpstream()), resolver=stuck)
        assert (await self.refused(outbound, "/doc.html")).reason == "timeout"

    async def test_injected_transport_survives_fetches(self, outbound: EmulatedOutbound) -> None:
        for _ in range(2):
            assert (await self.fetch(outbound, "/doc.html")).body == DOC_HTML

    def test_system_resolver(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[str] = []

        def fake_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
            calls.append(host)
            tcp = socket.SOCK_STREAM
            return [
                (socket.AF_INET, tcp, 6, "", (PUBLIC_IP, 0)),
                (socket.AF_INET, tcp, 6, "", (PUBLIC_IP, 0)),
                (socket.AF_INET6, tcp, 6, "", ("2606:2800:220:1::1", 0, 0, 0)),
            ]

        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
        assert system_resolver("docs.example.com") == [PUBLIC_IP, "2606:2800:220:1::1"]
        assert calls == ["docs.example.com"]


# --- the Cloudflare adapter over a fake `workers.fetch` --------------------------------------
class FakeJsException(Exception):
    """Like pyodide.ffi.JsException: carries the JS error's `name`."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass
class FakeSignal:
    """`AbortSignal.timeout(ms)`: aborts everything tied to it once `ms` have passed."""

    deadline: float

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    async def guard(self, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, max(self.remaining(), 0))
        except TimeoutError:
            raise FakeJsException(
                "TimeoutError", "The operation was aborted due to timeout"
            ) from None


class FakeReader:
    def __init__(self, chunks: AsyncIterator[bytes], signal: FakeSignal) -> None:
        self._chunks, self._signal = chunks, signal
        self.cancelled = False

    async def read(self) -> dict[str, Any]:
        try:
            chunk = await self._signal.guard(self._chunks.__anext__())
        except StopAsyncIteration:
            return {"done": True, "value": None}
        return {"done": False, "value": FakeUint8Array(chunk)}

    async def cancel(self) -> None:
        self.cancelled = True


class FakeUint8Array:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def to_bytes(self) -> bytes:
        return self._data


class FakeStream:
    def __init__(self, response: httpx.Response, signal: FakeSignal) -> None:
        self._response, self._signal = response, signal

    def getReader(self) -> FakeReader:
        return FakeReader(self._response.aiter_bytes(), self._signal)

    async def cancel(self) -> None:
        await self._response.aclose()


class FakeSdkResponse:
    """The SDK's `workers.Response`: `.status`, `.headers` (case-insensitive), `.js_object`."""

    def __init__(self, response: httpx.Response, signal: FakeSignal) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.js_object = type("JsResponse", (), {})()
        self.js_object.body = FakeStream(response, signal)

    async def bytes(self) -> bytes:  # pragma: no cover - the adapter streams
        raise AssertionError("the adapter should stream the body")


def fake_sdk_fetch(upstream: FakeUpstream) -> Callable[..., Any]:
    async def fetch(
        url: str, *, method: str, headers: dict[str, str], redirect: str, signal: FakeSignal
    ) -> FakeSdkResponse:
        assert method == "GET"
        assert redirect == "manual", "redirects must be followed by hand to re-check each hop"
        assert isinstance(headers, dict)  # the SDK refuses tuples; dicts become JS objects
        request = httpx.Request("GET", url, headers=headers)
        response = await signal.guard(upstream(request))
        return FakeSdkResponse(response, signal)

    return fetch


class TestCloudflareOutboundFake(OutboundContract):
    @pytest.fixture
    def upstream(self) -> FakeUpstream:
        return FakeUpstream()

    @pytest.fixture
    def outbound(self, upstream: FakeUpstream) -> CloudflareOutbound:
        def abort_signal(ms: int) -> FakeSignal:
            assert isinstance(ms, int) and ms > 0
            return FakeSignal(asyncio.get_running_loop().time() + ms / 1000)

        return CloudflareOutbound(fetcher=fake_sdk_fetch(upstream), abort_signal=abort_signal)

    async def test_network_error(self) -> None:
        async def broken(url: str, **kwargs: Any) -> Any:
            raise FakeJsException("TypeError", "Network connection lost.")

        outbound = CloudflareOutbound(fetcher=broken, abort_signal=lambda ms: None)
        err = await self.refused(outbound, UPSTREAM_BASE + "/doc.html")
        assert err.reason == "network"
        assert "Network connection lost" in str(err)

    async def test_declared_length_is_checked_before_reading(self) -> None:
        upstream = FakeUpstream()

        class Unread(FakeSdkResponse):
            def __init__(self, response: httpx.Response, signal: FakeSignal) -> None:
                super().__init__(response, signal)
                self.js_object.body = type(
                    "Stream", (), {"getReader": self.boom, "cancel": self.cancelled}
                )()

            def boom(self) -> None:
                raise AssertionError("read a body whose Content-Length is over the cap")

            async def cancelled(self) -> None:
                pass

        async def fetch(url: str, **kwargs: Any) -> Unread:
            return Unread(await upstream(httpx.Request("GET", url)), kwargs["signal"])

        outbound = CloudflareOutbound(
            fetcher=fetch, abort_signal=lambda ms: FakeSignal(float("inf"))
        )
        assert (await self.refused(outbound, "/big")).reason == "too_large"
