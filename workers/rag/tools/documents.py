"""Document tools that can write: tag_document (suggest; apply) and ingest_document.

Writes go to the ingest Worker as the caller, which authorizes them as it does any public
request (a teacher changes only their own documents; students change none): the dispatcher's
role check is the first gate, the owner's the second.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from kernel.bindings.services import call, upstream_error
from kernel.contracts.api import GeneratedBy
from kernel.contracts.llm import TaskRequest
from kernel.contracts.tools import (
    IngestDocumentArgs,
    IngestDocumentResult,
    TagDocumentArgs,
    TagDocumentResult,
)
from kernel.runtime.errors import Forbidden
from rag.tools.dispatch import Caller, Toolbox
from rag.tools.knowledge import ingest_get
from rag.tools.language import document_text, run_task

_TAG = re.compile(r"^[\w][\w .+#/-]{0,62}[\w+#]?$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
LEVELS = ("beginner", "intermediate", "advanced")
MAX_TAGS = 32  # a document's tags (kernel.contracts.api.DocumentOptions)


async def ingest_send(
    box: Toolbox, caller: Caller, method: str, path: str, payload: dict[str, Any]
) -> dict[str, Any]:
    reply = await call(
        box.b.service("INGEST"),
        method,
        path,
        request_id=caller.request_id,
        tenant_id=caller.scope.tenant_id,
        payload=payload,
        extra_headers=caller.identity,
    )
    if reply.status not in (200, 201, 202):
        raise upstream_error(reply, "ingest Worker")
    data: dict[str, Any] = json.loads(reply.body)
    return data


def clean_suggestion(output: dict[str, Any], max_tags: int) -> tuple[list[str], dict[str, str]]:
    """The model's tags and metadata, kept only where they are well-formed."""
    tags: list[str] = []
    for raw in output.get("tags") or []:
        tag = raw.strip().lower() if isinstance(raw, str) else ""
        if _TAG.match(tag) and tag not in tags:
            tags.append(tag)
    metadata: dict[str, str] = {}
    subject, level, language = output.get("subject"), output.get("level"), output.get("language")
    if isinstance(subject, str) and _TAG.match(subject.strip().lower()):
        metadata["subject"] = subject.strip().lower()
    if level in LEVELS:
        metadata["level"] = str(level)
    if isinstance(language, str) and _LANGUAGE.match(language):
        metadata["language"] = language
    return tags[:max_tags], metadata


async def tag_document(box: Toolbox, args: TagDocumentArgs, caller: Caller) -> BaseModel:
    if args.apply and not caller.allow_writes:
        raise Forbidden(
            "tag_document with apply=true writes, and write tools are not enabled in this chat"
            " session",
            code="tool_not_enabled",
        )
    document = await ingest_get(box, caller, f"/documents/{args.document_id}")
    text = await document_text(box, caller, args.document_id)
    done = await run_task(
        box,
        caller,
        TaskRequest(
            task="tag_document", text=text or str(document["title"]), max_items=args.max_tags
        ),
    )
    tags, metadata = clean_suggestion(done.output, args.max_tags)
    current = list(document.get("tags") or [])
    if args.apply:
        merged = sorted(set(current) | set(tags))[:MAX_TAGS]
        updated = await ingest_send(
            box,
            caller,
            "PATCH",
            f"/documents/{args.document_id}",
            {"tags": merged, "metadata": {**(document.get("metadata") or {}), **metadata}},
        )
        current = list(updated.get("tags") or merged)
    return TagDocumentResult(
        document_id=args.document_id,
        suggested_tags=tags,
        suggested_metadata=metadata,
        applied=args.apply,
        tags=current,
        generated_by=GeneratedBy(provider=done.provider, model=done.model, tried=done.tried),
    )


async def ingest_document(box: Toolbox, args: IngestDocumentArgs, caller: Caller) -> BaseModel:
    accepted = await ingest_send(
        box, caller, "POST", "/documents", args.model_dump(exclude_none=True)
    )
    return IngestDocumentResult.model_validate(accepted)
