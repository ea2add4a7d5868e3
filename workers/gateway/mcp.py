"""`POST`/`DELETE /mcp`: the MCP server lives in the rag Worker (rag/mcp/); the gateway
authenticates as for any route, checks `Origin` as MCP's transport requires, prices the message
and forwards it with the identity headers.

Pricing reads the JSON-RPC body: a `tools/call` counts in its tool's rate-limit class and, for
a tool that calls a model (`answer`, `summarize`, …), reserves from the tenant's token budget —
the same as `POST /v1/tools/{name}`. Everything else (initialize, lists, reads, ping) is one
`api` request. A body that does not parse is priced as `api`; the rag Worker answers it -32700.
"""

from __future__ import annotations

from gateway import cors
from gateway.context import Gateway, principal
from gateway.forward import forward
from gateway.route import Cost
from kernel.contracts.mcp import MCP_TOOLS
from kernel.runtime.errors import ApiError, Forbidden
from kernel.runtime.http import Request, Response
from kernel.runtime.jsonbounds import parse_json

PLAIN = Cost("api", False)


def message_cost(body: bytes) -> Cost:
    try:
        message = parse_json(body)
    except (ApiError, ValueError):
        return PLAIN
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return PLAIN
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    spec = MCP_TOOLS.get(name) if isinstance(name, str) else None
    return Cost(spec.rate, spec.spends_tokens) if spec else PLAIN


async def endpoint(gw: Gateway, request: Request) -> Response:
    """The transport spec's DNS-rebinding guard: a browser page may call only from an origin
    the caller's tenant allows (its CORS origins); clients that are not browsers send none."""
    origin = request.header("origin")
    if origin is not None:
        try:
            normalized = cors.normalize_origin(origin)
        except ValueError:
            normalized = ""
        tenant = gw.tdb(principal(request).tenant_id)
        if not normalized or not await cors.tenant_allows(tenant, normalized):
            raise Forbidden(
                f"origin {origin[:100]} is not one of this tenant's CORS origins",
                code="origin_not_allowed",
            )
    return await forward(gw, request, "RAG")
