"""Bridge between the platform's Request/Response and the kernel's.

On Cloudflare these are the `workers` SDK classes; locally the emulator's CPython shim of them,
which has the same surface. Nothing else in the code base touches them.
"""

from __future__ import annotations

from typing import Any, Protocol

from kernel.app import WorkerApp
from kernel.http import Request

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


class _ResponseFactory(Protocol):
    def __call__(self, body: bytes, status: int, headers: dict[str, str]) -> Any: ...


async def to_kernel_request(runtime_request: Any) -> Request:
    method = runtime_request.method
    method = getattr(method, "value", method)  # SDK gives http.HTTPMethod
    headers = {str(k).lower(): str(v) for k, v in runtime_request.headers.items()}
    body = b"" if method in _BODYLESS else await runtime_request.bytes()
    return Request(
        method=str(method).upper(), url=str(runtime_request.url), headers=headers, body=body
    )


async def serve(app: WorkerApp, runtime_request: Any, response_cls: Any) -> Any:
    request = await to_kernel_request(runtime_request)
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
