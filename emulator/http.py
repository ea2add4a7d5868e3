"""`kernel.bindings.ports.Http` on httpx, for the llm Worker's provider calls in the emulator.

Inject `transport` (an `httpx.MockTransport` speaking a provider's wire format) in tests; by
default it is a plain connection pool — provider base URLs are operator configuration, so a
local model server on loopback is allowed here, unlike document URLs (emulator/outbound.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from kernel.bindings.ports import HttpError, HttpReply


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
