"""`tools/list` and `tools/call`: the caller's tools (kernel.contracts.mcp.MCP_TOOLS) through the
one dispatcher (rag.tools.dispatch) — role check, argument validation, timeout and audit row
exactly as `POST /v1/tools/{name}` — and their results in MCP's shape.

A tool that ran and failed (403, 404, 422 naming the field, a timeout) is a result with
`isError: true` and the reason as text, so the model can correct itself; only a name no tool
has is a protocol error (-32602), as the spec asks.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from kernel.contracts.api import AnswerRequest, AnswerResponse
from kernel.contracts.mcp import (
    DOCUMENT_URI,
    INVALID_PARAMS,
    CallToolResult,
    ListToolsResult,
    ResourceLink,
    TextContent,
    Tool,
    ToolAnnotations,
)
from kernel.contracts.tools import ToolSpec
from kernel.domain.tenancy import TenantScope
from kernel.runtime.errors import ApiError
from rag.mcp.jsonrpc import RpcError
from rag.tools import IMPLS
from rag.tools.dispatch import Caller, Impl, Toolbox

# The answer the rag Worker gives `POST /answer` (cached, progress counted), and its tokens.
Answered = Callable[[TenantScope, AnswerRequest, str], Awaitable[tuple[dict[str, Any], int]]]

# Writes with an argument (`apply: true`) although the registry lists it as a read tool (what
# it does by default): never hinted read-only to a client deciding whether to ask the user.
_SOMETIMES_WRITES = frozenset({"tag_document"})


def impls(answered: Answered) -> dict[str, Impl]:
    async def answer(box: Toolbox, args: AnswerRequest, caller: Caller) -> BaseModel:
        body, tokens = await answered(caller.scope, args, caller.request_id)
        caller.spent += tokens
        return AnswerResponse.model_validate(body)

    return {**IMPLS, "search": IMPLS["search_knowledge_base"], "answer": answer}


def declaration(spec: ToolSpec) -> Tool:
    writes = spec.writes or spec.name in _SOMETIMES_WRITES
    title = spec.name.replace("_", " ").capitalize()
    return Tool(
        name=spec.name,
        title=title,
        description=spec.description,
        inputSchema=spec.args.model_json_schema(),
        outputSchema=spec.result.model_json_schema(mode="serialization"),
        annotations=ToolAnnotations(title=title, readOnlyHint=not writes, destructiveHint=False),
    )


def list_tools(box: Toolbox, caller: Caller) -> ListToolsResult:
    return ListToolsResult(tools=[declaration(spec) for spec in box.allowed(caller)])


def _links(result: dict[str, Any]) -> list[ResourceLink]:
    """Each document a search or an answer drew on, once, as a resource the client can read."""
    seen: dict[str, str] = {}
    for key in ("passages", "citations"):
        for item in result.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("document_id"), str):
                seen.setdefault(item["document_id"], str(item.get("title") or ""))
    return [
        ResourceLink(
            uri=DOCUMENT_URI.format(document_id=document_id),
            name=document_id,
            title=title or None,
            mimeType="text/plain",
        )
        for document_id, title in seen.items()
    ]


def _failure(exc: ApiError) -> CallToolResult:
    lines = [f"{exc.code}: {exc.message}"]
    fields = exc.details.get("fields") or []
    if len(fields) > 1:  # the message names the first; the model should see every one
        lines += [f"- {f.get('field')}: {f.get('message')}" for f in fields if isinstance(f, dict)]
    return CallToolResult(content=[TextContent(text="\n".join(lines))], isError=True)


async def call_tool(
    box: Toolbox, caller: Caller, name: str, arguments: dict[str, Any] | None
) -> CallToolResult:
    try:
        done = await box.call(name, arguments or {}, caller)
    except ApiError as exc:
        if exc.code == "unknown_tool":
            raise RpcError(INVALID_PARAMS, f"Unknown tool: {name[:128]}") from None
        return _failure(exc)
    text = json.dumps(done.result, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(
        content=[TextContent(text=text), *_links(done.result)],
        structuredContent=done.result,
        meta={"edgerag/audit_id": done.audit_id},
    )
