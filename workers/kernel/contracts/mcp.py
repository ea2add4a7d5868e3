"""The Model Context Protocol at `/mcp` (Streamable HTTP, JSON-RPC 2.0): the protocol versions
and error codes we speak, the tools an MCP client sees, and the shapes of what we answer.

Both the gateway (the rate-limit class and token budget of a `tools/call`: `MCP_TOOLS`) and the
rag Worker (rag/mcp/) read this. MCP's own field names are camelCase; the models keep them so
a dump is the wire shape with no alias table in between.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.contracts.api import AnswerRequest, AnswerResponse
from kernel.contracts.tools import TOOLS, ToolSpec

# Revisions reached by the `initialize` handshake over Streamable HTTP, oldest first. Both
# carry structuredContent and outputSchema; 2025-03-26 (JSON-RPC batches, no structured
# results) is not offered: a client asking for it is answered with LATEST, as the spec says.
PROTOCOL_VERSIONS = ("2025-06-18", "2025-11-25")
LATEST = PROTOCOL_VERSIONS[-1]

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"

# JSON-RPC 2.0 error codes, and MCP's for a resource that does not exist (or is not visible).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002

DOCUMENT_URI = "edgerag://documents/{document_id}"
PAGE_URI = "edgerag://documents/{document_id}/pages/{page}"
MAX_RESOURCE_CHARS = 100_000  # a document resource's text; longer ones are read by page

# --- the tools an MCP client sees --------------------------------------------------------------
# `search` is search_knowledge_base under the name MCP clients look for (listed once, not
# twice); `answer` is POST /v1/answer as a tool. Every other registry tool keeps its name.
SEARCH = replace(
    TOOLS["search_knowledge_base"],
    name="search",
    description="Search the knowledge base (hybrid dense + keyword, reranked) within the"
    " documents you may read. Returns numbered passages with their document, page and"
    " character span; read a whole document as the resource edgerag://documents/{id}.",
)
ANSWER = ToolSpec(
    "answer",
    "A grounded answer to a question from the knowledge base, with verified citations (each"
    " quote checked against the stored text), a confidence, and follow-up questions. Abstains"
    " when the documents do not support an answer. Spends model tokens.",
    AnswerRequest,
    AnswerResponse,
    rate="answer",
    spends_tokens=True,
    timeout_s=60.0,
)
MCP_TOOLS: dict[str, ToolSpec] = {
    SEARCH.name: SEARCH,
    ANSWER.name: ANSWER,
    **{name: spec for name, spec in TOOLS.items() if name != "search_knowledge_base"},
}


# --- request params (lenient where clients add fields: `_meta`, newer capabilities) -----------
class _Params(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class InitializeParams(_Params):
    protocolVersion: str = Field(min_length=1, max_length=64)
    capabilities: dict[str, Any] = Field(default_factory=dict)
    clientInfo: dict[str, Any] | None = None


class PageParams(_Params):
    cursor: str | None = Field(default=None, min_length=1, max_length=200)


class CallToolParams(_Params):
    name: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] | None = None


class ReadResourceParams(_Params):
    uri: str = Field(min_length=1, max_length=2048)


# --- results -------------------------------------------------------------------------------
class _Result(BaseModel):
    # Built as `meta=` here, read as `_meta` from the wire, written as `_meta`.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)
    meta: dict[str, Any] | None = Field(
        default=None, validation_alias="_meta", serialization_alias="_meta"
    )


class Implementation(BaseModel):
    name: str
    title: str | None = None
    version: str


class InitializeResult(_Result):
    protocolVersion: str
    capabilities: dict[str, Any]
    serverInfo: Implementation
    instructions: str | None = None


class ToolAnnotations(BaseModel):
    """Hints for a client deciding whether to ask the user first (never a permission)."""

    title: str | None = None
    readOnlyHint: bool | None = None
    destructiveHint: bool | None = None
    idempotentHint: bool | None = None
    openWorldHint: bool | None = None


class Tool(BaseModel):
    name: str
    title: str | None = None
    description: str
    inputSchema: dict[str, Any]
    outputSchema: dict[str, Any] | None = None
    annotations: ToolAnnotations | None = None


class ListToolsResult(_Result):
    tools: list[Tool]
    nextCursor: str | None = None


class TextContent(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ResourceLink(BaseModel):
    """A tool result's pointer to a document resource (read it with resources/read)."""

    type: Literal["resource_link"] = "resource_link"
    uri: str
    name: str
    title: str | None = None
    mimeType: str | None = None


class CallToolResult(_Result):
    content: list[TextContent | ResourceLink]
    structuredContent: dict[str, Any] | None = None
    isError: bool = False


class Annotations(BaseModel):
    audience: list[Literal["user", "assistant"]] | None = None
    lastModified: str | None = None


class Resource(BaseModel):
    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mimeType: str | None = None
    annotations: Annotations | None = None


class ListResourcesResult(_Result):
    resources: list[Resource]
    nextCursor: str | None = None


class ResourceTemplate(BaseModel):
    uriTemplate: str
    name: str
    title: str | None = None
    description: str | None = None
    mimeType: str | None = None


class ListResourceTemplatesResult(_Result):
    resourceTemplates: list[ResourceTemplate]
    nextCursor: str | None = None


class TextResourceContents(_Result):
    uri: str
    mimeType: str | None = None
    text: str


class ReadResourceResult(_Result):
    contents: list[TextResourceContents]


# --- the JSON-RPC envelope of a reply ------------------------------------------------------
class ErrorObject(BaseModel):
    code: int
    message: str
    data: Any = None


class ErrorResponse(BaseModel):
    jsonrpc: Literal["2.0"] = "2.0"
    id: str | int | None
    error: ErrorObject


def wire(model: BaseModel) -> dict[str, Any]:
    """A result as MCP carries it: `_meta` by its name, absent fields left out."""
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True)
    return dumped
