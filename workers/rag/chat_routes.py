"""The rag Worker's chat routes: sessions, messages, and agentic turns (rag.agent)."""

from __future__ import annotations

import json
from typing import Any

from kernel.bindings.env import Bindings
from kernel.bindings.services import (
    PRINCIPAL_HEADER,
)
from kernel.contracts.api import SearchHit
from kernel.contracts.rag import (
    AnswerRequest,
    AnswerResponse,
    ChatAnswer,
    ChatMessageRequest,
    CreateSession,
    SessionCreated,
    SessionDeleted,
    SessionDetail,
    SessionList,
    ToolStep,
)
from kernel.domain.paging import only_params
from kernel.domain.tenancy import TenantDB, scope_from_request, tenant_db
from kernel.runtime import sse
from kernel.runtime.errors import BadRequest, NotFound, ValidationFailed
from kernel.runtime.http import Request, Response, json_response
from rag import agent, chat, progress
from rag.answer import answer, as_sources
from rag.cache import Caches, cached_embedder
from rag.live import open_live
from rag.replies import spent
from rag.search import Embedder
from rag.tool_routes import ToolRoutes
from rag.understanding import Understanding, understand


class ChatRoutes:
    def __init__(self, bindings: Bindings, tools: ToolRoutes) -> None:
        self.b, self.tools = bindings, tools

    def _embedder(self, caches: Caches) -> Embedder:
        return cached_embedder(self.b, caches)

    def _owner(self, request: Request) -> str:
        owner = request.header(PRINCIPAL_HEADER)
        if not owner:
            raise BadRequest("chat needs an authenticated principal")
        return owner

    async def _session(self, db: TenantDB, request: Request) -> dict[str, Any]:
        rows = (
            await db.run(
                chat.select_session(db, request.params["session_id"], self._owner(request))
            )
        ).rows
        if not rows:
            raise NotFound(f"chat session {request.params['session_id']} not found")
        return chat.decode_session(rows[0])

    async def create_session(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        body = request.model(CreateSession) if request.body else CreateSession()
        if body.write_tools and not body.tools:
            raise ValidationFailed(
                "write_tools: needs tools=true",
                details={"fields": [{"field": "write_tools", "message": "needs tools=true"}]},
            )
        session_id = chat.new_session_id()
        owner = self._owner(request)
        await db.run(
            chat.insert_session(db, session_id, owner, body.title, body.tools, body.write_tools)
        )
        created = SessionCreated(
            session_id=session_id, title=body.title, tools=body.tools, write_tools=body.write_tools
        )
        return json_response(created.model_dump(), 201)

    async def list_sessions(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        rows = (await db.run(chat.select_sessions(db, self._owner(request)))).rows
        sessions = [chat.decode_session(r) for r in rows]
        return json_response(SessionList.model_validate({"sessions": sessions}).model_dump())

    async def get_session(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        session = await self._session(db, request)
        rows = (await db.run(chat.select_messages(db, session["id"]))).rows
        messages = [chat.decode_message(r) for r in reversed(rows)]
        detail = SessionDetail.model_validate({**session, "messages": messages})
        return json_response(detail.model_dump())

    async def delete_session(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        session = await self._session(db, request)
        await db.batch(chat.delete_session(db, session["id"], self._owner(request)))
        return json_response(SessionDeleted(session_id=session["id"], deleted=True).model_dump())

    async def post_message(self, request: Request) -> Response:
        scope = scope_from_request(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        session = await self._session(db, request)
        message = request.model(ChatMessageRequest)
        await progress.asked(db, scope.viewer)
        history = [
            chat.decode_message(r)
            for r in reversed(
                (await db.run(chat.select_messages(db, session["id"], chat.HISTORY_TURNS))).rows
            )
        ]
        retrieval_query = chat.rewrite_follow_up(message.content, history)
        await db.run(chat.insert_message(db, session["id"], "user", message.content, "complete"))
        caches = Caches(self.b.kv, db, "rag")
        ask = chat.answer_request(message, retrieval_query)
        meta = {"retrieval_query": retrieval_query}
        embed_query = self._embedder(caches)
        # Classified once, on the user's own words: it picks the path and labels the answer.
        understood = await understand(message.content, embed_query)
        if session["tools"] and understood.intent != "small_talk":
            return await self._agentic(
                request, db, session, message, history, ask, meta, understood
            )
        if message.stream:  # tokens as the model writes them; usage as `usage` events
            items = await open_live(
                self.b,
                scope,
                ask,
                embed_query,
                request.request_id,
                question=message.content,
                understood=understood,
            )
            return Response(
                status=200,
                headers=dict(sse.HEADERS),
                stream=chat.stream_answer(db, session["id"], items, meta),
            )
        result = await answer(
            self.b,
            scope,
            ask,
            embed_query,
            request.request_id,
            question=message.content,
            understood=understood,
        )
        return await self._store_reply(db, session["id"], result, meta, retrieval_query)

    async def _agentic(
        self,
        request: Request,
        db: TenantDB,
        session: dict[str, Any],
        message: ChatMessageRequest,
        history: list[dict[str, Any]],
        ask: AnswerRequest,
        meta: dict[str, Any],
        understood: Understanding,
    ) -> Response:
        """A chat turn where the model may call the caller's tools first (rag.agent)."""
        caller = self.tools.caller(
            request,
            model_requested=True,
            session_id=session["id"],
            allow_writes=session["write_tools"],
        )
        box = self.tools.toolbox(db)
        steps = agent.max_steps(self.b.var("EDGERAG_AGENT_MAX_STEPS"))
        turn = agent.run_turn(box, caller, message.content, history, steps)
        embed, scope, rid = box.embed, db.scope, request.request_id
        if message.stream:

            async def open_answer(evidence: list[SearchHit] | None) -> Any:
                return await open_live(
                    self.b,
                    scope,
                    ask,
                    embed,
                    rid,
                    evidence,
                    question=message.content,
                    understood=understood,
                )

            items = agent.streamed(turn, open_answer)
            return Response(
                status=200,
                headers=dict(sse.HEADERS),
                stream=chat.stream_answer(db, session["id"], items, meta),
            )
        done = await agent.finished(turn)
        evidence = as_sources(done.evidence) if done.evidence else None
        result = await answer(
            self.b,
            scope,
            ask,
            embed,
            rid,
            evidence,
            question=message.content,
            understood=understood,
        )
        meta = {**meta, "tool_calls": [s.model_dump() for s in done.steps]}
        return await self._store_reply(
            db, session["id"], result, meta, ask.query, done.steps, done.limited, done.spent
        )

    async def _store_reply(
        self,
        db: TenantDB,
        session_id: str,
        result: AnswerResponse,
        meta: dict[str, Any],
        retrieval_query: str,
        steps: list[ToolStep] | None = None,
        limited: bool = False,
        agent_spent: int = 0,
    ) -> Response:
        tokens = result.usage.get("total_tokens", 0) + agent_spent
        citations = [c.model_dump() for c in result.citations]
        await db.batch(
            [
                chat.insert_message(
                    db,
                    session_id,
                    "assistant",
                    result.answer,
                    "complete",
                    json.dumps(citations),
                    json.dumps(
                        {
                            **meta,
                            "confidence": result.confidence,
                            "abstained": result.abstained,
                            "usage": result.usage,
                        }
                    ),
                ),
                chat.touch_session(db, session_id),
            ]
        )
        reply = ChatAnswer(
            **result.model_dump(),
            session_id=session_id,
            retrieval_query=retrieval_query,
            tool_calls=steps or [],
            step_limit_reached=limited,
        )
        return spent(json_response(reply.model_dump()), tokens)
