"""Read tools: search the knowledge base, read a document's section, read a user's context.

Each reads exactly as the caller could through the public routes: search inside the caller's
visibility (rag.search), documents through the ingest Worker, which authorizes every read
(a document the caller may not see is a 404, as for an id that does not exist).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from kernel.bindings.services import ServiceResponse, call, upstream_error
from kernel.contracts.api import SearchRequest
from kernel.contracts.tools import (
    GetDocumentArgs,
    GetDocumentResult,
    GetUserContextArgs,
    Passage,
    SearchArgs,
    SearchResult,
)
from rag import usercontext
from rag.search import hybrid_search
from rag.tools.dispatch import Caller, Toolbox


async def search_knowledge_base(box: Toolbox, args: SearchArgs, caller: Caller) -> BaseModel:
    query = SearchRequest(
        query=args.query, top_k=args.top_k, mode=args.mode, filters=args.filters, rerank=True
    )
    found = await hybrid_search(box.b, caller.scope, query, box.embed)
    caller.evidence.extend(found.results)
    return SearchResult(
        passages=[
            Passage(
                n=i,
                document_id=h.document_id,
                chunk_id=h.chunk_id,
                title=h.title,
                text=h.text,
                score=round(h.rerank_score if h.rerank_score is not None else h.score, 4),
                page=h.page,
                char_start=h.char_start,
                char_end=h.char_end,
            )
            for i, h in enumerate(found.results, start=1)
        ]
    )


async def ingest_get(box: Toolbox, caller: Caller, path: str) -> dict[str, Any]:
    """GET on the ingest Worker as the caller; its errors (404, 403, 422) pass on unchanged."""
    reply: ServiceResponse = await call(
        box.b.service("INGEST"),
        "GET",
        path,
        request_id=caller.request_id,
        tenant_id=caller.scope.tenant_id,
        extra_headers=caller.identity,
    )
    if reply.status != 200:
        raise upstream_error(reply, "ingest Worker")
    data: dict[str, Any] = json.loads(reply.body)
    return data


async def get_document(box: Toolbox, args: GetDocumentArgs, caller: Caller) -> BaseModel:
    document = await ingest_get(box, caller, f"/documents/{args.document_id}")
    query: dict[str, str] = {"max_chars": str(args.max_chars)}
    if args.section is not None:
        query["section"] = args.section
    elif args.page is not None:
        query["page"] = str(args.page)
    outline = await ingest_get(
        box, caller, f"/documents/{args.document_id}/sections?{urlencode(query)}"
    )
    section = outline.get("section")
    current: dict[str, Any] = next(
        (v for v in document.get("versions", []) if v["version"] == document.get("live_version")),
        {},
    )
    return GetDocumentResult.model_validate(
        {
            "document": {**document, "text_length": current.get("text_length")},
            "sections": outline["sections"],
            "section": section,
        }
    )


async def get_user_context(box: Toolbox, args: GetUserContextArgs, caller: Caller) -> BaseModel:
    return await usercontext.read(box.db(caller), caller.scope.viewer, args.user_id)
