"""CPython stand-in for the slice of the `workers` runtime SDK that edgerag's entry.py files use.

On Cloudflare (and in the edge tier) the real `workers-runtime-sdk` provides this module; it
imports `js`/`pyodide`, so it cannot load on CPython. This shim mirrors the real signatures
(`WorkerEntrypoint(ctx, env)`, `Request.method` as `HTTPMethod`, `await request.bytes()`,
`Response(body, status=, headers=)`) so the same entry.py runs on both. It lives outside
`workers/` and is put on sys.path only by the emulator and tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from email.message import Message
from http import HTTPMethod, HTTPStatus
from typing import Any

__all__ = ["Request", "Response", "WorkerEntrypoint"]


def _headers(pairs: Mapping[str, str] | list[tuple[str, str]] | None) -> Message:
    # The real SDK exposes headers as an http.client.HTTPMessage (an email Message):
    # case-insensitive lookups, `.get`, `.items()`.
    message = Message()
    items = pairs.items() if isinstance(pairs, Mapping) else (pairs or [])
    for name, value in items:
        message[name] = value
    return message


class _Body:
    _body: bytes
    stream: AsyncIterator[bytes] | None = None

    async def bytes(self) -> bytes:
        if self.stream is not None:
            self._body = b"".join([chunk async for chunk in self.stream])
            self.stream = None
        return self._body

    async def text(self) -> str:
        return self._body.decode("utf-8")

    async def json(self) -> Any:
        return json.loads(self._body)


class Request(_Body):
    def __init__(
        self,
        url: str,
        *,
        method: str | HTTPMethod = "GET",
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | str | None = None,
    ) -> None:
        self.url = url
        self.method = HTTPMethod[str(method).upper()]
        self.headers = _headers(headers)
        self._body = body.encode() if isinstance(body, str) else (body or b"")

    def __repr__(self) -> str:
        return f"Request(method={self.method.value!r}, url={self.url!r})"


class Response(_Body):
    """`body` may also be an async iterator of bytes: the shim's stand-in for a ReadableStream."""

    def __init__(
        self,
        body: bytes | str | AsyncIterator[bytes] | None = None,
        status: HTTPStatus | int | None = None,
        status_text: str = "",
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    ) -> None:
        self.stream: AsyncIterator[bytes] | None = None
        if body is not None and hasattr(body, "__aiter__"):
            self.stream = body  # type: ignore[assignment]
            body = None
        if body is not None and not isinstance(body, str | bytes):
            raise TypeError(f"Unsupported type in Response: {type(body).__name__}")
        self._body = body.encode() if isinstance(body, str) else (body or b"")
        self.status = int(status) if status else 200
        self.status_text = status_text
        self.headers = _headers(headers)

    def __repr__(self) -> str:
        return f"Response(status={self.status})"


class WorkerEntrypoint:
    """Same constructor shape as the runtime's: the runtime builds it with (ctx, env)."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env
