"""`kernel.bindings.ports.Http` on httpx, for the llm Worker's provider calls in the emulator.

Inject `transport` (an `httpx.MockTransport` speaking a provider's wire format) in tests; by
default it is a plain connection pool — provider base URLs are operator configuration, so a
local model server on loopback is allowed here, unlike document URLs (emulator/outbound.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import httpx

from kernel.bindings.ports import HttpError, HttpReply, HttpStream


class EmulatedHttp:
    adapter_kind = "emulator"  # kernel.bindings.env passes emulator ports through unwrapped

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(retries=0),
            trust_env=False,  # no proxies or netrc from the environment
            follow_redirects=False,
        )

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpReply:
        try:
            response = await self._client.request(
                method, url, headers=dict(headers), content=body, timeout=httpx.Timeout(timeout_s)
            )
        except httpx.TimeoutException as exc:
            raise HttpError("timeout", f"{method} {url} took longer than {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise HttpError("network", f"{method} {url} failed: {type(exc).__name__}") from exc
        return HttpReply(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=response.content,
        )

    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpStream:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        request = self._client.build_request(
            method, url, headers=dict(headers), content=body, timeout=httpx.Timeout(timeout_s)
        )
        try:
            response = await asyncio.wait_for(self._client.send(request, stream=True), timeout_s)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise HttpError("timeout", f"{method} {url} took longer than {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise HttpError("network", f"{method} {url} failed: {type(exc).__name__}") from exc

        async def chunks() -> AsyncIterator[bytes]:
            parts = response.aiter_bytes()  # content-decoded, as `send` returns it
            try:
                while True:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise HttpError(
                            "timeout", f"{method} {url}: the body took over {timeout_s:g} s"
                        )
                    try:
                        yield await asyncio.wait_for(anext(parts), left)
                    except StopAsyncIteration:
                        return
                    except (TimeoutError, httpx.TimeoutException) as exc:
                        raise HttpError(
                            "timeout", f"{method} {url}: the body took over {timeout_s:g} s"
                        ) from exc
                    except httpx.HTTPError as exc:
                        raise HttpError(
                            "network", f"{method} {url}: the body broke off ({type(exc).__name__})"
                        ) from exc
            finally:
                await response.aclose()  # the connection goes: the server sees the client leave

        return HttpStream(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            chunks=chunks(),
        )
