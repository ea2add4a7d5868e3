"""Forwarding a request to the Worker behind it, as bytes, with the caller's identity.

The Worker behind parses and validates (one validation, where the data is owned); the gateway
adds who is asking — tenant, principal, role and, for students, their teachers — and reads what
the Worker reports spending from a header, never from the body.
"""

from __future__ import annotations

from urllib.parse import urlencode

from gateway.context import Gateway, caller, principal
from kernel.bindings.services import (
    PRINCIPAL_HEADER,
    ROLE_HEADER,
    STUDENTS_HEADER,
    TEACHERS_HEADER,
    call,
    relay,
)
from kernel.contracts.rag import CACHED_HEADER, USAGE_HEADER
from kernel.runtime.http import Request, Response

# Client headers the Workers behind read (MCP's session and version: rag/mcp/transport.py).
PASSED_THROUGH = ("idempotency-key", "mcp-session-id", "mcp-protocol-version")


async def identity_headers(gw: Gateway, request: Request) -> dict[str, str]:
    who = principal(request)
    viewer = await gw.viewer(request)
    headers = {PRINCIPAL_HEADER: who.id, ROLE_HEADER: who.role}
    if viewer.teachers:
        headers[TEACHERS_HEADER] = ",".join(viewer.teachers)
    if viewer.students:
        headers[STUDENTS_HEADER] = ",".join(viewer.students)
    return headers


async def forward(gw: Gateway, request: Request, service: str) -> Response:
    """`/v1/<path>` → the same `<path>` on `service`, query and body unchanged."""
    who = principal(request)
    headers = await identity_headers(gw, request)
    for name in PASSED_THROUGH:
        value = request.header(name)
        if value is not None:
            headers[name] = value
    query = f"?{urlencode(request.query)}" if request.query else ""
    upstream = await call(
        gw.b.service(service),
        request.method,
        request.path.removeprefix("/v1") + query,
        request_id=request.request_id,
        tenant_id=who.tenant_id,
        body=request.body if request.method in ("POST", "PUT", "PATCH") else None,
        content_type=request.header("content-type"),
        extra_headers=headers,
    )
    usage = upstream.headers.get(USAGE_HEADER, "")
    if usage.isdigit():
        caller(request).usage_tokens = int(usage)
    caller(request).served_from_cache = upstream.headers.get(CACHED_HEADER) == "true"
    return relay(upstream)


async def purge_caches(gw: Gateway, request: Request, response: Response) -> None:
    """After `DELETE …?purge=true`: cached searches/answers may quote the purged text, so
    remove them rather than just orphan them."""
    if request.query.get("purge") not in ("true", "1"):
        return
    await call(
        gw.b.service("RAG"),
        "POST",
        "/internal/cache/clear",
        request_id=request.request_id,
        tenant_id=principal(request).tenant_id,
        payload={},
    )
