"""Calls between Workers over service bindings, with the request id, tenant and trace context
(`traceparent`, kernel.runtime.tracing) carried along."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kernel.bindings.ports import Service, ServiceResponse
from kernel.runtime import tracing
from kernel.runtime.errors import ApiError, Relayed, UpstreamError
from kernel.runtime.http import Response
from kernel.runtime.logs import log

TENANT_HEADER = "x-edgerag-tenant"
# Who acts inside the tenant (API key or user id) and their role; set only by the gateway.
PRINCIPAL_HEADER = "x-edgerag-principal"
ROLE_HEADER = "x-edgerag-role"
# A student's teachers (comma-separated user ids), resolved by the gateway from D1 per request:
# the visibility scope of `students` documents (kernel.domain.tenancy.Viewer).
TEACHERS_HEADER = "x-edgerag-teachers"
# A teacher's students (comma-separated user ids, at most 400): whose learning context and
# progress the teacher may read (rag.usercontext).
STUDENTS_HEADER = "x-edgerag-students"
INTERNAL_HEADER_PREFIX = "x-edgerag-"  # never accepted from the internet (the gateway strips them)


class CloudflareService:
    """Service port over a Fetcher binding (the SDK's `_FetcherWrapper`)."""

    adapter_kind = "cloudflare"

    def __init__(self, binding: Any, host: str) -> None:
        self._binding = binding
        self.name = host
        # The hostname is ignored by service bindings but must parse as a URL.
        self._origin = f"https://{host}.internal"

    async def fetch(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> ServiceResponse:
        kwargs: dict[str, Any] = {"method": method, "headers": dict(headers)}
        if body is not None and method not in ("GET", "HEAD"):
            kwargs["body"] = body
        try:
            response = await self._binding.fetch(self._origin + path, **kwargs)
            headers = {str(k).lower(): str(v) for k, v in response.headers.items()}
            # Streams cross the binding as streams: server-sent events, and chunked audio.
            kind = headers.get("content-type", "")
            if kind.startswith("text/event-stream") or (
                kind.startswith("audio/") and "content-length" not in headers
            ):
                return ServiceResponse(
                    int(response.status), headers, b"", _read_js_stream(response)
                )
            data = await response.bytes()
        except Exception as exc:  # JsException etc. cross the FFI as generic errors
            raise UpstreamError(f"service call {method} {path} failed: {exc}") from exc
        return ServiceResponse(status=int(response.status), headers=headers, body=data)


async def _read_js_stream(response: Any) -> AsyncIterator[bytes]:
    reader = response.js_object.body.getReader()
    try:
        while True:
            part = await reader.read()
            if part.done:
                return
            yield bytes(part.value.to_bytes())
    finally:
        reader.cancel()  # our reader went away: tell the producing Worker


async def call(
    service: Service,
    method: str,
    path: str,
    *,
    request_id: str,
    tenant_id: str | None = None,
    payload: Any = None,
    body: bytes | None = None,
    content_type: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> ServiceResponse:
    headers = {"x-request-id": request_id, **(extra_headers or {})}
    if tenant_id is not None:
        headers[TENANT_HEADER] = tenant_id
    if payload is not None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        content_type = "application/json"
    if content_type:
        headers["content-type"] = content_type
    target = str(getattr(service, "name", "?"))
    started = time.perf_counter()
    status = 0
    # The hop as a client span; the Worker behind continues the trace from its traceparent.
    attributes = {"http.request.method": method, "server.address": target}
    with tracing.span(f"{method} {target}", tracing.CLIENT, attributes) as span:
        headers.update(span.headers())
        try:
            response = await service.fetch(method, path, headers=headers, body=body)
            status = response.status
            span.set("http.response.status_code", status)
            if status >= 400:
                span.fail(str(status))
            return response
        finally:
            # One line per Worker hop: with the request id, logs trace a request through the mesh.
            log(
                "service_call",
                request_id=request_id,
                tenant=tenant_id,
                to=target,
                method=method,
                path=path.split("?", 1)[0],
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )


# Response headers a Worker's reply keeps on its way to the client (all others stay inside).
RELAYED = (
    "content-type",
    "retry-after",
    "allow",
    "content-disposition",
    "x-speech-cache",
    "mcp-session-id",  # issued by the MCP server's `initialize` (rag/mcp/transport.py)
)
# A stream's headers: the AI SDK's UI message stream names its protocol version in one.
STREAM_RELAYED = (
    "content-type",
    "cache-control",
    "content-disposition",
    "x-speech-cache",
    "x-vercel-ai-ui-message-stream",
    "x-accel-buffering",
)


def relay(upstream: ServiceResponse) -> Response:
    """Pass a Worker's response through unchanged (errors are already in the one shape)."""
    if upstream.stream is not None:
        headers = {k: v for k, v in upstream.headers.items() if k in STREAM_RELAYED}
        return Response(status=upstream.status, headers=headers, stream=upstream.stream)
    keep = {k: v for k, v in upstream.headers.items() if k in RELAYED}
    return Response(status=upstream.status, body=upstream.body, headers=keep)


def upstream_error(upstream: ServiceResponse, what: str) -> ApiError:
    """A Worker's non-2xx reply as an error to raise: its own error passed on when it is in the
    one shape, else a 502 naming `what` (never the body: it may hold another tenant's text)."""
    try:
        error = json.loads(upstream.body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return UpstreamError(f"{what} answered {upstream.status}")
    keep = {k: v for k, v in upstream.headers.items() if k == "retry-after"}
    return Relayed(upstream.status, code, message, headers=keep, details=error.get("details"))
