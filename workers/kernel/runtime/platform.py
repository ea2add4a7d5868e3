"""Bridge between the platform's Request/Response and the kernel's.

On Cloudflare these are the `workers` SDK classes; locally the emulator's CPython shim of them,
which has the same surface. Nothing else in the code base touches them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kernel.runtime.app import WorkerApp
from kernel.runtime.http import Request

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


async def to_kernel_request(runtime_request: Any) -> Request:
    method = runtime_request.method
    method = getattr(method, "value", method)  # SDK gives http.HTTPMethod
    headers = {str(k).lower(): str(v) for k, v in runtime_request.headers.items()}
    body = b"" if method in _BODYLESS else await runtime_request.bytes()
    return Request(
        method=str(method).upper(), url=str(runtime_request.url), headers=headers, body=body
    )


def background(ctx: Any) -> Any:
    """`ctx.waitUntil` for Python coroutines (workerd keeps a passed Python future alive)."""
    if ctx is None:
        return None

    def wait_until(work: Any) -> None:
        ctx.waitUntil(asyncio.ensure_future(work))

    return wait_until


def runtime_stream(stream: AsyncIterator[bytes], wait_until: Any) -> Any:
    """A body the platform can stream. On Cloudflare: the readable side of a TransformStream
    fed by a background pump; a failed write (client gone) closes the producer. On CPython the
    emulator's SDK shim takes the async iterator as is."""
    try:
        import js  # only inside Pyodide
        from pyodide.ffi import to_js
    except ImportError:
        return stream

    pipe = js.TransformStream.new()
    writer = pipe.writable.getWriter()

    async def pump() -> None:
        try:
            async for chunk in stream:
                await writer.write(to_js(chunk))
            await writer.close()
        except Exception:
            pass  # the reader went away; aclose() below tells the producer
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    if wait_until is not None:
        wait_until(pump())
    return pipe.readable


async def serve(app: WorkerApp, runtime_request: Any, response_cls: Any, ctx: Any = None) -> Any:
    request = await to_kernel_request(runtime_request)
    request.wait_until = background(ctx)
    response = await app.handle(request)
    if response.stream is not None:
        body = runtime_stream(response.stream, request.wait_until)
        return response_cls(body, status=response.status, headers=response.headers)
    return response_cls(response.body, status=response.status, headers=response.headers)


_apps: dict[tuple[int, int], tuple[Any, WorkerApp]] = {}


def cached_app(build: Any, raw_env: Any) -> WorkerApp:
    """Build a Worker's app once per env (an isolate keeps one env for its lifetime).

    The env is kept alongside so its id cannot be recycled while the entry exists.
    """
    key = (id(build), id(raw_env))
    hit = _apps.get(key)
    if hit is None or hit[0] is not raw_env:
        hit = (raw_env, build(raw_env))
        _apps[key] = hit
    return hit[1]
