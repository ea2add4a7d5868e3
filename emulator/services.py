"""Service bindings between emulated Workers, serialized the way the network would.

A call builds a fresh SDK-shaped Request from bytes and headers, runs the target Worker's real
`entry.py` class, and copies the Response back to bytes: no Python object crosses Workers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from workers import Request

from kernel.bindings.ports import ServiceResponse


async def _copy(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Bytes cross, the producer's objects don't; closing this closes the producer (a reader
    that goes away cancels the ReadableStream it was reading)."""
    try:
        async for chunk in stream:
            yield bytes(chunk)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


class EmulatedService:
    adapter_kind = "emulator"

    def __init__(self, name: str, make_worker: Callable[[], Any]) -> None:
        self.name = name
        self._make_worker = make_worker

    async def fetch(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> ServiceResponse:
        request = Request(
            f"https://{self.name}.internal{path}",
            method=method,
            headers=[(str(k), str(v)) for k, v in headers.items()],
            body=bytes(body) if body else None,
        )
        response = await self._make_worker().fetch(request)
        if response.stream is not None:
            return ServiceResponse(
                status=int(response.status),
                headers={str(k).lower(): str(v) for k, v in response.headers.items()},
                body=b"",
                stream=_copy(response.stream),
            )
        return ServiceResponse(
            status=int(response.status),
            headers={str(k).lower(): str(v) for k, v in response.headers.items()},
            body=bytes(await response.bytes()),
        )
