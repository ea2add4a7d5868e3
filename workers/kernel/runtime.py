"""Bridge between the platform's Request/Response and the kernel's.

On Cloudflare these are the `workers` SDK classes; locally the emulator's CPython shim of them,
which has the same surface. Nothing else in the code base touches them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kernel.app import WorkerApp
from kernel.http import Request

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


async def serve(app: WorkerApp, runtime_request: Any, response_cls: Any, ctx: Any = None) -> Any:
    request = await to_kernel_request(runtime_request)
    request.wait_until = background(ctx)
    response = await app.handle(request)
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
