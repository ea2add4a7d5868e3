"""Documents as MCP resources: `edgerag://documents/{id}` (the live version's text) and
`edgerag://documents/{id}/pages/{n}` (one page of it). Listed and read through the ingest
Worker as the caller, which decides visibility as on every document route: a document the caller
may not see is "Resource not found" (-32002), like one that does not exist.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from kernel.contracts.mcp import (
    DOCUMENT_URI,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    MAX_RESOURCE_CHARS,
    PAGE_URI,
    RESOURCE_NOT_FOUND,
    Annotations,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextResourceContents,
)
from kernel.contracts.tools import MAX_TOOL_TEXT
from kernel.runtime.errors import ApiError
from rag.mcp.jsonrpc import RpcError
from rag.tools.dispatch import Caller, Toolbox
from rag.tools.knowledge import ingest_get

_URI = re.compile(r"^edgerag://documents/([A-Za-z0-9_-]{1,64})(?:/pages/([1-9][0-9]{0,5}))?$")
PAGE_SIZE = 100
TEXT = "text/plain"

TEMPLATES = ListResourceTemplatesResult(
    resourceTemplates=[
        ResourceTemplate(
            uriTemplate=DOCUMENT_URI,
            name="document",
            title="A document's text",
            description="The live version's extracted text (the first"
            f" {MAX_RESOURCE_CHARS:,} characters; longer documents are read by page).",
            mimeType=TEXT,
        ),
        ResourceTemplate(
            uriTemplate=PAGE_URI,
            name="document-page",
            title="One page of a document",
            description=f"The text of page n (from 1; at most {MAX_TOOL_TEXT:,} characters).",
            mimeType=TEXT,
        ),
    ]
)


def _resource(document: dict[str, Any]) -> Resource:
    tags = ", ".join(document.get("tags") or [])
    description = f"{document['visibility']} document, version {document['live_version']}"
    return Resource(
        uri=DOCUMENT_URI.format(document_id=document["id"]),
        name=str(document["title"]),
        description=f"{description}; tags: {tags}" if tags else description,
        mimeType=TEXT,
        annotations=Annotations(lastModified=str(document["updated_at"])),
    )


def _refusal(exc: ApiError, uri: str = "") -> RpcError:
    if exc.status == 404:
        return RpcError(RESOURCE_NOT_FOUND, f"Resource not found: {exc.message}", {"uri": uri})
    if exc.status in (400, 422):
        return RpcError(INVALID_PARAMS, f"Invalid params: {exc.message}", exc.details or None)
    return RpcError(INTERNAL_ERROR, f"{exc.code}: {exc.message}", {"status": exc.status})


async def list_documents(box: Toolbox, caller: Caller, cursor: str | None) -> ListResourcesResult:
    """One page of the documents the caller may read that have a ready version; `nextCursor`
    is the ingest Worker's own (an invalid one is -32602)."""
    query = {"limit": str(PAGE_SIZE), **({"cursor": cursor} if cursor else {})}
    try:
        page = await ingest_get(box, caller, f"/documents?{urlencode(query)}")
    except ApiError as exc:
        raise _refusal(exc) from None
    return ListResourcesResult(
        resources=[_resource(d) for d in page["documents"] if d.get("live_version") is not None],
        nextCursor=page.get("next_cursor"),
    )


async def read(box: Toolbox, caller: Caller, uri: str) -> ReadResourceResult:
    found = _URI.match(uri)
    if found is None:
        raise RpcError(
            INVALID_PARAMS,
            "Invalid params: not an edgerag resource; read edgerag://documents/{id}"
            " or edgerag://documents/{id}/pages/{n}",
            {"uri": uri[:200]},
        )
    document_id, page = found.groups()
    query = (
        {"page": page, "max_chars": str(MAX_TOOL_TEXT)}
        if page
        else {"whole": "true", "max_chars": str(MAX_RESOURCE_CHARS)}
    )
    try:
        got = await ingest_get(box, caller, f"/documents/{document_id}/sections?{urlencode(query)}")
    except ApiError as exc:
        raise _refusal(exc, uri) from None
    section = got.get("section") or {"text": "", "truncated": False}
    meta = {
        "edgerag/version": got["version"],
        "edgerag/text_length": got["text_length"],
        "edgerag/truncated": bool(section["truncated"]),
    }
    return ReadResourceResult(
        contents=[TextResourceContents(uri=uri, mimeType=TEXT, text=section["text"], meta=meta)]
    )
