"""The rag Worker's learning routes: personalized and translated sections (rag.learning) and
reading progress (questions asked are counted where answers are made)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from kernel.bindings.env import Bindings
from kernel.bindings.services import PRINCIPAL_HEADER, call, upstream_error
from kernel.contracts.learning import (
    MAX_TTS_CHARS,
    PersonalizeRequest,
    Progress,
    ProgressSummary,
    ProgressUpdate,
    SpeakRequest,
    TranslateRequest,
    TtsRequest,
)
from kernel.contracts.rag import CACHED_HEADER
from kernel.domain.paging import only_params
from kernel.domain.tenancy import TenantDB, tenant_db
from kernel.runtime.errors import BadRequest, NotFound, ValidationFailed
from kernel.runtime.http import Request, Response, json_response
from rag import learning, progress
from rag.replies import spent
from rag.tool_routes import ToolRoutes
from rag.tools.knowledge import ingest_get


class LearningRoutes:
    def __init__(self, bindings: Bindings, tools: ToolRoutes) -> None:
        self.b, self.tools = bindings, tools

    async def personalize(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        caller = self.tools.caller(request)
        reply, cached = await learning.personalize(
            self.tools.toolbox(db), caller, request.model(PersonalizeRequest)
        )
        return _reply(reply.model_dump(), cached, caller.spent)

    async def translate(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        caller = self.tools.caller(request)
        ask = request.model(TranslateRequest)
        rows = (
            await db.execute(
                "SELECT translation_provider FROM tenant_settings WHERE tenant_id = ?1"
            )
        ).rows
        chosen = rows[0]["translation_provider"] if rows else None
        provider = str(chosen or self.b.var("EDGERAG_TRANSLATION_PROVIDER") or "workers-ai")
        reply, cached = await learning.translate(self.tools.toolbox(db), caller, ask, provider)
        return _reply(reply.model_dump(), cached, caller.spent)

    async def tts(self, request: Request) -> Response:
        """Speech for a text or one of the caller's chat messages, from the llm Worker."""
        db = tenant_db(self.b, request)
        ask = request.model(TtsRequest)
        text = ask.text or await self._message_text(db, request, ask.message_id or "")
        speak = SpeakRequest.model_validate(
            {"text": text, "voice": ask.voice, "format": ask.format}, strict=False
        )
        reply = await call(
            self.b.service("LLM"),
            "POST",
            "/tts",
            request_id=request.request_id,
            tenant_id=db.scope.tenant_id,
            payload=speak.model_dump(exclude_none=True),
        )
        if reply.status != 200:
            raise upstream_error(reply, "llm Worker")
        # Audio may cross the binding as a stream (CloudflareService): read it whole here.
        audio = reply.body or b"".join([c async for c in reply.stream or _chunks(b"")])
        headers = {
            k: v
            for k, v in reply.headers.items()
            if k in ("content-type", "x-edgerag-tts", CACHED_HEADER)
        }
        headers["content-disposition"] = f'inline; filename="speech.{ask.format}"'
        headers["x-speech-cache"] = "hit" if reply.headers.get(CACHED_HEADER) == "true" else "miss"
        response = Response(status=200, headers=headers, body=b"" if ask.stream else audio)
        if ask.stream:
            response.stream = _chunks(audio)
        return spent(response, 0)

    async def _message_text(self, db: TenantDB, request: Request, message_id: str) -> str:
        session_id, seq = message_id.split(":")
        owner = request.header(PRINCIPAL_HEADER) or ""
        rows = (
            await db.execute(
                "SELECT m.content FROM chat_messages m JOIN chat_sessions s"
                " ON s.tenant_id = m.tenant_id AND s.id = m.session_id"
                " WHERE m.tenant_id = ?1 AND m.session_id = ?2 AND m.seq = ?3 AND s.owner_id = ?4",
                (session_id, int(seq), owner),
            )
        ).rows
        if not rows or not owner:
            raise NotFound(f"message {message_id} not found")
        # What a reader hears: the sentences, without citation markers or markup.
        text = re.sub(r"\s*\[\d+\]", "", str(rows[0]["content"]))
        text = re.sub(r"<[^>]*>", " ", text).strip()
        if not text:
            raise ValidationFailed("message_id: the message has no text to speak")
        return text[: 8 * MAX_TTS_CHARS]

    async def get_my_progress(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        return json_response(
            Progress.model_validate(await progress.read(db, db.scope.viewer)).model_dump()
        )

    async def post_my_progress(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = db.scope.viewer
        if viewer is None or not viewer.principal_id:
            raise BadRequest("progress needs an authenticated principal")
        update = request.model(ProgressUpdate)
        # The document (and section) must be one the reader can see: the ingest Worker decides.
        box = self.tools.toolbox(db)
        caller = self.tools.caller(request)
        path = f"/documents/{update.document_id}"
        if update.section:
            found = await ingest_get(
                box, caller, f"{path}/sections?section={quote(update.section, safe='')}&max_chars=1"
            )
            section = label(found["section"])
        else:
            await ingest_get(box, caller, path)
            section = ""
        await db.run(
            progress.record(db, viewer.principal_id, update.document_id, section, update.completed)
        )
        return json_response(Progress.model_validate(await progress.read(db, viewer)).model_dump())

    async def get_user_progress(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        user_id = request.params["user_id"]
        found = await progress.read(db, db.scope.viewer, user_id)
        return json_response(Progress.model_validate(found).model_dump())

    async def get_summary(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        found = await progress.summary(db, db.scope.viewer)
        return json_response(ProgressSummary.model_validate(found).model_dump())


def _reply(body: dict[str, object], cached: bool, tokens: int) -> Response:
    response = spent(json_response(body), 0 if cached else tokens)
    if cached:  # the gateway gives the rate-limit hit back: a cached section is free
        response.headers[CACHED_HEADER] = "true"
    return response


async def _chunks(audio: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(audio), size):
        yield audio[start : start + size]


def label(section: dict[str, Any]) -> str:
    """How progress names a section: its heading path, or its page range."""
    path: list[str] = section.get("path") or []
    if path:
        return " > ".join(path)
    first, last = section.get("page_start"), section.get("page_end")
    return f"page {first}" if first == last else f"pages {first}-{last}"
